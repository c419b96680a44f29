"""Rendering safety: the PDF reads only files of the report, and fails on a missing one."""

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from reportgen.render import html, images as pictures
from reportgen.render.pdf import ReportRenderError, write_pdf


def page(root: Path, src: str) -> Path:
    path = root / "report.html"
    path.write_text(f'<html><body><p>figure</p><img src="{src}"></body></html>', "utf-8")
    return path


def test_pdf_with_local_figure_renders(tmp_path):
    (tmp_path / "assets").mkdir()
    Image.new("RGB", (4, 4), "red").save(tmp_path / "assets" / "ok.png")
    assert write_pdf(page(tmp_path, "assets/ok.png"), tmp_path).read_bytes().startswith(b"%PDF")


@pytest.mark.parametrize("src", ["assets/missing.png", "http://127.0.0.1:9/x.png",
                                 "file:///etc/hostname", "../outside.png"])
def test_pdf_refuses_missing_remote_or_outside_resources(tmp_path, src):
    root = tmp_path / "report"
    root.mkdir()
    Image.new("RGB", (4, 4)).save(tmp_path / "outside.png")
    with pytest.raises(ReportRenderError):
        write_pdf(page(root, src), root)
    assert not (root / "report.pdf").exists()


def test_templates_autoescape_and_strict_undefined():
    env = html.environment()
    assert env.from_string("{{ x }}").render(x="<img src=x onerror=alert(1)>") == \
        "&lt;img src=x onerror=alert(1)&gt;"
    with pytest.raises(Exception, match="undefined"):
        env.from_string("{{ missing }}").render()


def test_display_scale_clips_at_the_99th_percentile():
    values = np.arange(1, 101, dtype=np.float32).reshape(10, 10)
    scaled = pictures.display_scale(values)
    assert scaled.max() == 1.0 and scaled.min() == pytest.approx(1 / np.percentile(values, 99))
    assert (scaled[values >= np.percentile(values, 99)] == 1.0).all()
    assert not pictures.display_scale(np.zeros((4, 4))).any()


def test_filter_grid_enlarges_without_blurring():
    weights = np.random.default_rng(0).standard_normal((64, 3, 3, 3))
    grid = np.asarray(pictures.filter_grid(weights))
    tile = grid[:30, :30]           # first filter: 3x3 pixels, each a 10x10 block
    for r in range(3):
        for c in range(3):
            block = tile[r * 10:(r + 1) * 10, c * 10:(c + 1) * 10]
            assert (block == block[0, 0]).all()
    assert grid.shape == (8 * 30 + 7 * 3, 8 * 30 + 7 * 3, 3)


def test_activation_grid_is_8_by_8():
    grid = pictures.activation_grid(np.random.default_rng(0).standard_normal((64, 112, 112)))
    assert grid.size == (8 * pictures.TILE + 7 * 2, 8 * pictures.TILE + 7 * 2)


def test_font_coverage_is_checked_with_fontconfig():
    import shutil

    from reportgen.render.fonts import font_warning, uncovered_characters

    if not shutil.which("fc-list"):
        pytest.skip("fontconfig's fc-list is not installed")
    adlam = "\U0001E900"   # no font on these machines covers Adlam
    assert uncovered_characters(["plain ASCII", "Café"]) == []
    assert uncovered_characters([f"name{adlam}.png", "Café"]) == [adlam]
    warning = font_warning([adlam])
    assert warning and "fonts-noto-cjk" in warning
