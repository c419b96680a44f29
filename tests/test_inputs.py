"""Unattended runs: one folder mixing bad, awkward and hostile-named inputs. The report
covers the good ones, lists every bad one with its reason, and the run exits 1."""

from __future__ import annotations

import json
import os
import re
import shutil
import struct
import zlib
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from reportgen import images
from reportgen.cli import main
from reportgen.errors import InputError

HOSTILE_NAMES = ["a b.png", "#hash%20.png", "-leading-dash.png", "quote\"s 'and'.png",
                 "<img src=x onerror=alert(1)>.png", "中文 名前.png"]


def photo(width=320, height=240, seed=0) -> Image.Image:
    """A smooth colourful picture (compresses well, survives JPEG)."""
    y, x = np.mgrid[0:height, 0:width]
    rgb = np.stack([x * 255 // max(1, width - 1), y * 255 // max(1, height - 1),
                    (x + y + seed * 40) % 256], axis=-1)
    return Image.fromarray(rgb.astype(np.uint8), "RGB")


def png_claiming(width: int, height: int) -> bytes:
    """A tiny PNG whose header claims width x height pixels (a decompression bomb)."""
    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(b"\0" * 64)) + chunk(b"IEND", b"")


def make_bad(folder: Path) -> dict[str, str]:
    """Inputs that must be skipped: name -> a word the reason must contain."""
    (folder / "empty.jpg").write_bytes(b"")
    (folder / "text.png").write_text("this is not a picture")
    photo().save(folder / "truncated.png")
    data = (folder / "truncated.png").read_bytes()
    (folder / "truncated.png").write_bytes(data[: len(data) // 2])
    (folder / "bomb.png").write_bytes(png_claiming(100_000, 100_000))
    (folder / "folder.jpg").mkdir()
    (folder / "photo.heic").write_bytes(b"\x00\x00\x00\x18ftypheic" + b"\0" * 64)
    os.symlink("loop.jpg", folder / "loop.jpg")
    return {"empty.jpg": "empty", "text.png": "not an image", "truncated.png": "decode",
            "bomb.png": "too many pixels", "folder.jpg": "folder", "photo.heic": "HEIC",
            "loop.jpg": "symlink"}


def make_awkward(folder: Path) -> dict[str, str | None]:
    """Valid but awkward inputs: name -> a note the report must carry (or None)."""
    base = photo()
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90 degrees clockwise to display
    base.save(folder / "rotated.jpg", exif=exif)
    base.convert("L").save(folder / "gray.png")
    base.convert("P", palette=Image.ADAPTIVE).save(folder / "palette.png")
    palette_t = base.convert("P", palette=Image.ADAPTIVE)
    palette_t.info["transparency"] = 0
    palette_t.save(folder / "palette_transparent.png", transparency=0)
    rgba = base.convert("RGBA")
    rgba.putalpha(128)
    rgba.save(folder / "alpha.png")
    base.convert("CMYK").save(folder / "cmyk.jpg")
    sixteen = (np.asarray(base.convert("L"), dtype=np.uint16) * 257)
    Image.fromarray(sixteen).save(folder / "sixteen.png")
    frames = [photo(seed=i) for i in range(3)]
    frames[0].save(folder / "anim.gif", save_all=True, append_images=frames[1:], duration=100)
    frames[0].save(folder / "anim.webp", save_all=True, append_images=frames[1:], duration=100)
    frames[0].save(folder / "pages.tif", save_all=True, append_images=frames[1:])
    Image.new("RGB", (1, 1), (200, 30, 30)).save(folder / "one_pixel.png")
    photo(4000, 3).save(folder / "wide_strip.png")
    photo(3, 4000).save(folder / "tall_strip.png")
    photo(6000, 4000).save(folder / "large.jpg", quality=70)
    base.save(folder / "UPPER.JPG")
    for i, name in enumerate(HOSTILE_NAMES):
        photo(seed=i).save(folder / name)
    return {"anim.gif": "animated (3 frames)", "anim.webp": "animated (3 frames)",
            "pages.tif": "3 pages", **{n: None for n in (
                "rotated.jpg", "gray.png", "palette.png", "palette_transparent.png", "alpha.png",
                "cmyk.jpg", "sixteen.png", "one_pixel.png", "wide_strip.png", "tall_strip.png",
                "large.jpg", "UPPER.JPG", *HOSTILE_NAMES)}}


@pytest.fixture(scope="module")
def mixed_run(tmp_path_factory):
    folder = tmp_path_factory.mktemp("mixed") / "inputs"
    folder.mkdir()
    bad = make_bad(folder)
    awkward = make_awkward(folder)
    missing = folder.parent / "not-there.png"
    out = folder.parent / "report"
    capture = folder.parent / "stderr.txt"
    import contextlib
    import io
    err = io.StringIO()
    with contextlib.redirect_stderr(err):
        code = main(["run", str(folder), str(missing), "-m", "resnet152", "--weights",
                     "untrained", "-q", "-o", str(out)])
    capture.write_text(err.getvalue())
    return code, out, bad, awkward, missing, err.getvalue()


@pytest.mark.slow
def test_mixed_folder_exits_1_and_lists_every_bad_input(mixed_run):
    code, out, bad, awkward, missing, stderr = mixed_run
    assert code == 1
    results = json.loads((out / "results.json").read_text("utf-8"))
    by_name = {Path(i["path"]).name: i for i in results["images"]}
    assert set(by_name) == set(bad) | set(awkward) | {missing.name}
    for name, word in {**bad, missing.name: "does not exist"}.items():
        assert by_name[name]["status"] == "skipped", name
        assert word in by_name[name]["reason"], (name, by_name[name]["reason"])
    for name in awkward:
        assert by_name[name]["status"] == "ok", (name, by_name[name]["reason"])
    # One line on stderr per skipped input, even with -q.
    skipped_lines = [line for line in stderr.splitlines() if line.startswith("reportgen: skipped")]
    assert len(skipped_lines) == len(bad) + 1
    assert "Traceback" not in stderr


@pytest.mark.slow
def test_awkward_inputs_carry_their_notes_and_sizes(mixed_run):
    _, out, _, awkward, _, _ = mixed_run
    results = json.loads((out / "results.json").read_text("utf-8"))
    by_name = {Path(i["path"]).name: i for i in results["images"]}
    for name, note in awkward.items():
        notes = " ".join(by_name[name]["notes"])
        assert (note in notes) if note else not notes, (name, notes)
    assert by_name["rotated.jpg"]["original_size"] == [240, 320]   # EXIF-rotated
    assert by_name["large.jpg"]["original_size"] == [6000, 4000]
    html = (out / "report.html").read_text("utf-8")
    assert "animated (3 frames): the first frame was used" in html


@pytest.mark.slow
def test_nothing_of_the_bad_inputs_reaches_the_assets(mixed_run):
    _, out, _, _, _, _ = mixed_run
    results = json.loads((out / "results.json").read_text("utf-8"))
    skipped_ids = {i["id"] for i in results["images"] if i["status"] == "skipped"}
    ok_ids = {i["id"] for i in results["images"] if i["status"] == "ok"}
    assets = [p.name for p in (out / "assets").iterdir()]
    assert not [a for a in assets if a.split("__")[0] in skipped_ids]
    assert {a.split("__")[0] for a in assets if a.endswith("__crop.png") and "noise" not in a} == ok_ids
    for name in assets:
        assert re.fullmatch(r"[a-z0-9_.-]+", name), name


@pytest.mark.slow
def test_hostile_names_are_shown_literally(mixed_run):
    pypdf = pytest.importorskip("pypdf")
    _, out, _, _, _, _ = mixed_run
    html = (out / "report.html").read_text("utf-8")
    assert "<img src=x onerror" not in html
    assert "&lt;img src=x onerror=alert(1)&gt;.png" in html
    assert "quote&#34;s &#39;and&#39;.png" in html
    text = "\n".join(page.extract_text() for page in pypdf.PdfReader(out / "report.pdf").pages)
    flat = re.sub(r"\s+", "", text)
    for name in HOSTILE_NAMES[:-1]:   # the CJK name depends on installed fonts: test_fonts
        assert re.sub(r"\s+", "", name) in flat, name
    from reportgen.render.fonts import uncovered_characters

    if shutil.which("fc-list") and not uncovered_characters([HOSTILE_NAMES[-1]]):
        assert re.sub(r"\s+", "", HOSTILE_NAMES[-1]) in flat   # a CJK font is installed
    skipped_section = text[text.index("Skipped inputs"):]
    assert "bomb.png" in skipped_section


def test_resize_and_crop_equals_resizing_everything_then_cropping():
    """The box-resize shortcut against the plain definition (resize, then crop)."""
    for size in [(320, 240), (240, 320), (1000, 30), (257, 256)]:
        img = photo(*size)
        scale = 256 / min(size)
        full = img.resize((max(224, round(size[0] * scale)), max(224, round(size[1] * scale))),
                          Image.BILINEAR)
        left, top = (full.width - 224) // 2, (full.height - 224) // 2
        reference = np.asarray(full.crop((left, top, left + 224, top + 224)), dtype=np.int32)
        assert np.abs(images.resize_and_crop(img).astype(np.int32) - reference).max() <= 1


def test_bomb_is_refused_before_decoding(tmp_path):
    path = tmp_path / "bomb.png"
    path.write_bytes(png_claiming(100_000, 100_000))
    with pytest.raises(InputError, match="too many pixels"):
        images.decode(path)


def test_extreme_aspect_ratio_stays_small(tmp_path):
    path = tmp_path / "strip.png"
    photo(20000, 2).save(path)
    decoded = images.decode(path)
    assert decoded.crop.shape == (224, 224, 3) and decoded.original_size == (20000, 2)
