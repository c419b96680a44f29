"""Rendering safety: the PDF reads only files of the report, and fails on a missing one."""

import time
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from reportgen.render import html, images as pictures
from reportgen.render.pdf import LocalOnlyFetcher, ReportRenderError, png_zlib_stream, write_pdf


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


def test_pdf_rendering_leaves_the_garbage_collector_as_it_found_it(tmp_path):
    import gc
    (tmp_path / "assets").mkdir()
    Image.new("RGB", (4, 4)).save(tmp_path / "assets" / "ok.png")
    assert gc.isenabled()
    write_pdf(page(tmp_path, "assets/ok.png"), tmp_path)
    assert gc.isenabled()
    with pytest.raises(ReportRenderError):
        write_pdf(page(tmp_path, "assets/missing.png"), tmp_path)
    assert gc.isenabled()
    gc.disable()
    try:
        write_pdf(page(tmp_path, "assets/ok.png"), tmp_path)
        assert not gc.isenabled()   # a caller's choice is kept
    finally:
        gc.enable()


def _odd_pngs(folder: Path) -> list[str]:
    """PNGs reportgen does not write, which must go WeasyPrint's own way."""
    rng = np.random.default_rng(1)
    rgb = rng.integers(0, 256, (9, 7, 3), dtype=np.uint8)
    Image.fromarray(rgb).convert("P").save(folder / "palette.png")
    Image.fromarray(rgb).convert("RGBA").save(folder / "alpha.png")
    Image.fromarray(rgb[..., 0]).save(folder / "transparent.png", transparency=5)
    Image.fromarray(rgb[..., 0].astype(np.uint16) * 257).save(folder / "gray16.png")
    return ["palette.png", "alpha.png", "transparent.png", "gray16.png"]


def test_png_streams_are_reused_only_where_the_pdf_stays_byte_identical(tmp_path):
    """The crops and gray maps reportgen writes are embedded from their own zlib streams;
    the PDF is byte for byte the one WeasyPrint writes when it encodes them again."""
    import weasyprint
    from weasyprint.images import RasterImage

    assets = tmp_path / "assets"
    assets.mkdir()
    rng = np.random.default_rng(0)
    crop = rng.integers(0, 256, (224, 224, 3), dtype=np.uint8)
    pictures.save_png(Image.fromarray(crop, "RGB"), assets / "crop.png")
    pictures.save_png(pictures.saliency_gray(rng.random((224, 224), dtype=np.float32)), assets / "gray.png")
    pictures.save_png(pictures.filter_grid(rng.normal(size=(64, 3, 3, 3))), assets / "filters.png")
    ours = ["crop.png", "gray.png", "filters.png"]
    odd = _odd_pngs(assets)
    for name in ours:
        assert png_zlib_stream((assets / name).read_bytes()) is not None
    for name in odd:
        assert png_zlib_stream((assets / name).read_bytes()) is None, name
    interlaced = bytearray((assets / "crop.png").read_bytes())
    interlaced[28] = 1                      # the IHDR's interlace byte
    assert png_zlib_stream(bytes(interlaced)) is None      # (Pillow cannot write one)

    html_path = tmp_path / "report.html"
    html_path.write_text("<html><body>" + "".join(f'<img src="assets/{n}">' for n in ours + odd)
                         + "</body></html>", "utf-8")
    original = RasterImage.__dict__["_get_png_data"]
    reused = write_pdf(html_path, tmp_path).read_bytes()
    assert RasterImage.__dict__["_get_png_data"] is original        # put back after
    encoded_again = weasyprint.HTML(filename=str(html_path), base_url=tmp_path.as_uri() + "/",
                                    url_fetcher=LocalOnlyFetcher(tmp_path)).write_pdf()
    assert reused == encoded_again


def test_a_png_stream_taken_as_it_is_shows_the_files_pixels(tmp_path):
    """A crop written at zlib level 1 (as the run writes crops) is embedded from its own
    stream, not WeasyPrint's level-6 one: the PDF's image has exactly the crop's pixels."""
    import io

    from pypdf import PdfReader

    (tmp_path / "assets").mkdir()
    crop = np.random.default_rng(2).integers(0, 256, (50, 60, 3), dtype=np.uint8)
    pictures.save_png(Image.fromarray(crop, "RGB"), tmp_path / "assets" / "crop.png", compress_level=1)
    pdf_path = write_pdf(page(tmp_path, "assets/crop.png"), tmp_path)
    stream = png_zlib_stream((tmp_path / "assets" / "crop.png").read_bytes())
    assert stream in pdf_path.read_bytes()
    embedded, = PdfReader(io.BytesIO(pdf_path.read_bytes())).pages[0].images
    assert np.array_equal(np.asarray(embedded.image.convert("RGB")), crop)


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


def test_gray_map_and_overlay_from_a_display_scale_computed_once_are_the_same():
    rng = np.random.default_rng(6)
    values = (rng.gamma(1.0, 1.0, (24, 20)) ** 3).astype(np.float32)
    crop = rng.integers(0, 256, (24, 20, 3), dtype=np.uint8)
    scaled = pictures.display_scale(values)
    assert np.array_equal(np.asarray(pictures.saliency_gray(values, scaled)),
                          np.asarray(pictures.saliency_gray(values)))
    assert np.array_equal(np.asarray(pictures.saliency_overlay(crop, values, scaled)),
                          np.asarray(pictures.saliency_overlay(crop, values)))


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


@pytest.mark.parametrize("shape,factor", [((64, 224, 224), 4), ((64, 112, 112), 2), ((2, 6, 9), 3)])
def test_block_mean_against_a_reshaped_mean(shape, factor):
    values = np.abs(np.random.default_rng(factor).standard_normal(shape)).astype(np.float32)
    n, h, w = shape
    expected = values.astype(np.float64).reshape(n, h // factor, factor, w // factor, factor).mean(axis=(2, 4))
    np.testing.assert_allclose(pictures._block_mean(values, factor), expected, rtol=1e-6)


def test_activation_grid_of_precomputed_tiles_is_the_grid_of_the_full_output():
    """The run draws the grid from |conv1|'s block means (computed by MXNet): the same
    picture as from the full output, up to float rounding of the means."""
    conv1 = np.random.default_rng(3).standard_normal((64, 224, 224)).astype(np.float32)
    tiles = pictures._block_mean(np.abs(conv1), 4)
    from_full = np.asarray(pictures.activation_grid(conv1)).astype(int)
    from_tiles = np.asarray(pictures.activation_grid(tiles)).astype(int)
    assert from_full.shape == from_tiles.shape
    assert np.abs(from_full - from_tiles).max() <= 1


def test_activation_grid_tiles_show_block_means_in_channel_order():
    # Channel i is constant i outside a bright top-left block: after each tile's own
    # 1st-99th percentile scaling, that block is yellow (viridis 1.0), the rest purple.
    conv1 = np.zeros((64, 224, 224), dtype=np.float32)
    conv1[:, :112, :112] = 5.0
    conv1[7, :, :] = 0.0                      # a flat channel draws as the colormap's 0
    grid = np.asarray(pictures.activation_grid(conv1))
    step = pictures.TILE + 2
    low, high = pictures.colormap(np.array([0.0, 1.0]), "viridis")
    for i in (0, 7, 63):
        r, c = divmod(i, 8)
        tile = grid[r * step:r * step + pictures.TILE, c * step:c * step + pictures.TILE]
        half = pictures.TILE // 2
        assert (tile[:half - 1, :half - 1] == (low if i == 7 else high)).all()
        assert (tile[half + 1:, half + 1:] == low).all()


@pytest.mark.parametrize("name", ["jet", "viridis"])
def test_colormap_gives_matplotlibs_colours(name):
    """The colours are looked up in matplotlib's own table with its arithmetic: the same
    bytes as matplotlib's colormap, at the ends, at the bin edges, in float32 and float64,
    and (through matplotlib itself) for NaN and values out of range."""
    import matplotlib

    rng = np.random.default_rng(4)
    edges = np.arange(257) / 256
    for values in (rng.random((50, 40), dtype=np.float32), rng.random(999),
                   edges, edges.astype(np.float32), np.nextafter(edges, -1).clip(0, 1),
                   np.array([0.0, 1.0, np.nextafter(np.float32(1), np.float32(0))], np.float32),
                   np.array([0.5, np.nan, -0.2, 1.3])):
        expected = matplotlib.colormaps[name](values, bytes=True)[..., :3]
        np.testing.assert_array_equal(pictures.colormap(values, name), expected)
    assert pictures.colormap_indices(np.array([0.5, np.nan]), name) is None


def test_overlay_is_the_float_blend_rounded_half_to_even():
    """The overlay blends photo and heat map in integers: every pair of bytes gives what
    rint(a / 2 + b / 2) in float32 gives (x.5 to the even neighbour)."""
    a, b = np.meshgrid(np.arange(256, dtype=np.uint8), np.arange(256, dtype=np.uint8))
    expected = np.rint(0.5 * a.astype(np.float32) + 0.5 * b.astype(np.float32)).astype(np.uint8)
    np.testing.assert_array_equal(pictures._half_blend(a, b), expected)
    assert pictures.OVERLAY_ALPHA == 0.5


def test_activation_grid_with_a_nan_draws_matplotlibs_bad_colour_in_that_tile():
    conv1 = np.random.default_rng(1).standard_normal((64, 112, 112)).astype(np.float32)
    conv1[5, 0, 0] = np.nan
    grid = np.asarray(pictures.activation_grid(conv1))
    clean = np.asarray(pictures.activation_grid(np.nan_to_num(conv1)))
    assert grid.shape == clean.shape
    step = pictures.TILE + 2
    other = np.ones(grid.shape[:2], bool)
    other[0:pictures.TILE, 5 * step:5 * step + pictures.TILE] = False
    np.testing.assert_array_equal(grid[other], clean[other])     # the other tiles, the gaps


def test_row_percentiles_are_numpys():
    """The grid's per-tile 1st and 99th percentiles: numpy's numbers exactly, for float32
    tiles with and without ties, flat tiles, the ends (0 and 100) and a NaN."""
    rng = np.random.default_rng(2)
    smooth = rng.random((64, 3136), dtype=np.float32)
    ties = np.round(rng.random((9, 50)) * 4).astype(np.float32)
    ties[2] = 7.0
    with_nan = smooth[:3, :100].copy()
    with_nan[1, 5] = np.nan
    for rows, percents in ((smooth, (1.0, 99.0)), (ties, (1.0, 99.0)), (ties, (0.0, 50.0, 100.0)),
                           (smooth[:, :7], (1.0, 99.0, 37.5)), (with_nan, (1.0, 99.0))):
        got = pictures.row_percentiles(rows, percents)
        np.testing.assert_array_equal(got, np.percentile(rows, list(percents), axis=1))
        assert got.dtype == np.float64


@pytest.mark.parametrize("channels,centre_only", [(64, False), (10, False), (64, True)])
def test_activation_grid_equals_tiles_placed_one_by_one(channels, centre_only):
    # Reference: every tile scaled and coloured on its own and pasted at its place on a
    # white canvas, row-major, 2 pixels apart (the layout before it became one reshape).
    conv1 = np.random.default_rng(channels).standard_normal((channels, 112, 112)).astype(np.float32)
    conv1[3] = 1.0                                        # a flat channel
    grid = np.asarray(pictures.activation_grid(conv1, centre_only=centre_only))
    size, gap, rows = pictures.TILE, 2, -(-channels // 8)
    expected = np.full((rows * size + (rows - 1) * gap, 8 * size + 7 * gap, 3), 255, np.uint8)
    for i in range(channels):
        channel = np.abs(conv1[i])
        if centre_only:
            tile = channel[28:28 + size, 28:28 + size]
        else:
            tile = channel.reshape(size, 2, size, 2).mean(axis=(1, 3))
        low, high = np.percentile(tile, [1, 99])
        scaled = np.clip((tile - low) / (high - low), 0, 1) if high > low else np.zeros_like(tile)
        r, c = divmod(i, 8)
        expected[r * (size + gap):r * (size + gap) + size, c * (size + gap):c * (size + gap) + size] = \
            pictures.colormap(scaled.astype(np.float32), "viridis")
    assert grid.shape == expected.shape
    # Block means summed in another order may differ in the last float bit, which moves a
    # pixel across a colormap bin boundary at most by one of its 256 colours.
    differs = (grid != expected).any(axis=2)
    assert differs.mean() < 1e-3
    gaps = np.ones(grid.shape[:2], bool)
    for r in range(rows):
        for c in range(8 if r < rows - 1 or channels % 8 == 0 else channels % 8):
            gaps[r * (size + gap):r * (size + gap) + size, c * (size + gap):c * (size + gap) + size] = False
    assert (grid[gaps] == 255).all()


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


# --- charts drawn in a helper process ------------------------------------------------------

def _chart_bytes(root: Path, charts_: dict) -> dict:
    return {name: (root / asset).read_bytes() for name, asset in charts_.items()}


def test_charts_from_the_helper_process_are_the_ones_drawn_here(tmp_path):
    from reportgen.render import charts
    from synthetic import synthetic_result

    here, helper = tmp_path / "here", tmp_path / "helper"
    result = synthetic_result(12, here)
    synthetic_result(12, helper)
    drawn_here = charts.draw_all(result, here)
    drawing = charts.BackgroundCharts(result, helper)
    assert drawing.charts == drawn_here == charts.planned(result)
    assert drawing.wait() == drawn_here
    assert _chart_bytes(helper, drawn_here) == _chart_bytes(here, drawn_here)
    assert drawing._helper is None and not (helper / ".charts-job.pickle").exists()


def test_the_helper_reports_each_chart_once_its_file_is_complete(tmp_path):
    """The PDF reads a chart as soon as the helper says it is drawn: each announcement
    must come after the whole file is written, in the order the report shows them."""
    import pickle
    from reportgen.render import chart_helper, charts
    from synthetic import synthetic_result

    here, helper_root = tmp_path / "here", tmp_path / "helper"
    result = synthetic_result(8, here)
    synthetic_result(8, helper_root)
    expected = _chart_bytes(here, charts.draw_all(result, here))
    job = tmp_path / "job.pickle"
    job.write_bytes(pickle.dumps((result, helper_root, "en", None)))
    helper = chart_helper.take()
    helper.stdin.write(f"{job}\n")
    helper.stdin.flush()
    announced = []
    while (line := helper.stdout.readline().strip()).startswith(chart_helper.DRAWN):
        name = line[len(chart_helper.DRAWN):]
        # Read at once: the helper is still drawing the next chart.
        assert (helper_root / charts.planned(result)[name]).read_bytes() == expected[name]
        announced.append(name)
    assert line == "ok"
    assert announced == list(charts.planned(result))
    helper.stdin.close()
    assert helper.wait(timeout=30) == 0


def test_waiting_for_one_chart_returns_before_the_last_is_drawn(tmp_path, monkeypatch):
    from reportgen.render import charts
    from synthetic import synthetic_result

    result = synthetic_result(8, tmp_path)
    drawing = charts.BackgroundCharts(result, tmp_path)
    first, *rest = charts.planned(result)
    drawing.wait(first)
    assert first in drawing._drawn and drawing._args is not None     # helper still at work
    assert (tmp_path / drawing.charts[first]).stat().st_size > 0
    drawing.wait(first)                  # already drawn: returns at once
    # The helper's remaining lines all arrive before they are read: each must still be
    # seen (a buffered reader behind select() would wait them out, then draw them here).
    helper = drawing._helper
    while not (tmp_path / drawing.charts[rest[-1]]).exists():
        time.sleep(0.05)
    time.sleep(0.5)
    drawn_here = []
    monkeypatch.setattr(charts, "_draw_all", lambda *args: drawn_here.append(1))
    monkeypatch.setattr(charts, "HELPER_TIMEOUT_S", 20.0)
    assert drawing.wait() == charts.planned(result)
    assert drawn_here == [] and helper.wait(timeout=30) == 0
    assert drawing._helper is None and drawing._args is None
    for name in rest:
        assert (tmp_path / drawing.charts[name]).stat().st_size > 0


def test_charts_are_drawn_here_when_the_helper_dies(tmp_path, monkeypatch):
    from reportgen.render import charts
    from synthetic import synthetic_result

    result = synthetic_result(6, tmp_path)
    drawing = charts.BackgroundCharts(result, tmp_path, html_name="report.html")
    drawing._helper.kill()
    drawn_here = []
    draw = charts._draw_all
    monkeypatch.setattr(charts, "_draw_all", lambda *args: drawn_here.append(1) or draw(*args))
    assert drawing.wait() == charts.planned(result)
    assert drawn_here == [1]
    for asset in drawing.charts.values():
        assert Image.open(tmp_path / asset).size[0] > 100
    assert (tmp_path / "report.html").read_text() == html.render_report(
        replace(result, charts=drawing.charts))


def test_the_helper_writes_the_screen_html_after_the_charts(tmp_path):
    """The same report.html as written here, with the charts in it."""
    from reportgen.render import charts
    from synthetic import synthetic_result

    result = synthetic_result(6, tmp_path)
    drawing = charts.BackgroundCharts(result, tmp_path, html_name="report.html")
    assert drawing.wait() == charts.planned(result)
    written = (tmp_path / "report.html").read_text()
    assert written == html.render_report(replace(result, charts=drawing.charts))
    assert all(asset in written for asset in drawing.charts.values())


def test_the_chart_helper_answers_an_error_for_a_job_it_cannot_read(tmp_path):
    from reportgen.render import chart_helper

    helper = chart_helper.take()
    helper.stdin.write(f"{tmp_path / 'missing.pickle'}\n")
    helper.stdin.flush()
    assert helper.stdout.readline().startswith("error: FileNotFoundError")
    helper.stdin.close()
    assert helper.wait(timeout=30) == 0


def _listing_rows(count: int) -> list[dict]:
    rng = np.random.default_rng(3)
    return [{"name": f"features.{k}.body.{k % 7}", "shape": [int(rng.integers(1, 2049)), 64, 3, 3],
             "count": int(rng.integers(1, 3_000_000)), "mean": float(rng.normal(0, 1e-3)),
             "std": float(rng.uniform(1e-3, 0.2)), "min": float(-rng.uniform(0, 1)),
             "max": float(rng.uniform(0, 1))} for k in range(count)]


@pytest.mark.parametrize("lang", ["en", "zh-CN"])
def test_the_print_conv_listing_puts_each_layers_numbers_in_its_column(lang):
    """Cut each line at the header's column widths (2 characters apart): every cell reads
    back as the screen table's formatted value, numbers flush right, text flush left, and
    every column is at least as wide as its header (CJK characters counted twice)."""
    from reportgen import i18n

    formats = i18n.Formats(lang)
    translations = i18n.translations(lang)
    headers = [translations.gettext(h) for h in html.CONV_HEADERS]
    rows = _listing_rows(23)
    listing = html.conv_listing(rows, formats, headers)
    assert [text for text, _, _ in listing["header"]] == headers
    widths = [width for _, width, _ in listing["header"]]
    for text, width, _ in listing["header"]:
        assert width >= html.text_width(text)
    assert html.text_width("均值 ± 标准差") == 13
    lines = [line for block in listing["blocks"] for line in block]
    assert [len(block) for block in listing["blocks"]] == [10, 10, 3]
    for number, (row, line) in enumerate(zip(rows, lines, strict=True), start=1):
        expected = [str(number), row["name"], "×".join(map(str, row["shape"])), formats.count(row["count"]),
                    f"{formats.sci(row['mean'])} ± {formats.sci(row['std'])}",
                    f"{formats.sci(row['min'])} … {formats.sci(row['max'])}"]
        start = 0
        for value, width, (_, _, right) in zip(expected, widths, listing["header"]):
            cell = line[start:start + width].ljust(width)
            assert cell == (value.rjust(width) if right else value.ljust(width)), (line, value)
            assert line[start + width:start + width + 2].strip() == ""
            start += width + 2


def test_print_lists_the_conv_layers_as_text_and_the_screen_as_a_table(tmp_path):
    from reportgen.render import charts
    from synthetic import synthetic_result

    result = synthetic_result(3, tmp_path)
    result = replace(result, charts=charts.planned(result))
    screen, printed = html.render_report(result), html.render_report(result, for_print=True)
    appendix = {name: page[page.index('id="conv-tables"'):] for name, page in
                (("screen", screen), ("print", printed))}
    assert 'class="data conv"' in appendix["screen"] and "conv-listing" not in appendix["screen"]
    assert 'class="data conv"' not in appendix["print"] and 'class="conv-listing"' in appendix["print"]
    for model in result.models:
        for row in model.conv_layers:
            assert appendix["print"].count(f" {row['name']} ") == len(result.models)


def test_warmed_templates_are_not_compiled_again_when_the_report_renders(tmp_path, monkeypatch):
    """warm_templates (run while the network runs) leaves nothing for render_report to
    compile: the environment is one per language and keeps its compiled templates."""
    from reportgen.render import charts
    from synthetic import synthetic_result

    result = synthetic_result(3, tmp_path)
    result = replace(result, charts=charts.planned(result))
    html.warm_templates("zh-TW")
    env = html.environment("zh-TW")
    compiled = []
    compile_ = env.compile
    monkeypatch.setattr(env, "compile", lambda *args, **kwargs: compiled.append(args[1:2]) or compile_(*args, **kwargs))
    for for_print in (False, True):
        html.render_report(result, for_print=for_print, lang="zh-TW")
    assert compiled == []
    assert html.environment("zh-TW") is env and html.environment("en") is not env
