"""The report at 10,000 images, from synthetic records (no network): the PDF is bounded in
pages and size, the HTML lists every image, results.csv has every row."""

from __future__ import annotations

import pytest
from pypdf import PdfReader

from reportgen import output, pipeline
from reportgen.progress import Progress
from synthetic import synthetic_result


def render(count: int, root):
    result = synthetic_result(count, root)
    output.write_outputs(result, pipeline.Workspace(root), ("html", "pdf"), 0.0, Progress(1, quiet=True))
    return result, PdfReader(root / "report.pdf")


@pytest.mark.slow
def test_ten_thousand_images_give_the_pdf_of_fifty(tmp_path):
    _, small = render(60, tmp_path / "small")
    result, large = render(10_000, tmp_path / "large")
    assert len(result.pages["chosen"]) == 50
    assert len(large.pages) == len(small.pages) < 150
    size_small = (tmp_path / "small" / "report.pdf").stat().st_size
    size_large = (tmp_path / "large" / "report.pdf").stat().st_size
    assert size_large < 1.1 * size_small
    text = " ".join(" ".join(page.extract_text() for page in large.pages).split())
    assert "This report has pages for 50 of the 10,000 images" in text
    html = (tmp_path / "large" / "report.html").read_text("utf-8")
    assert html.count('<img class="thumb"') == 10_000
    assert html.count('<section class="image"') == 50
    assert not (tmp_path / "large" / ".print.html").exists()
    rows = (tmp_path / "large" / "results.csv").read_text("utf-8").splitlines()
    assert len(rows) == 1 + 10_000 * 3


def test_results_json_written_image_by_image_is_the_whole_document(tmp_path):
    """The streamed results.json is byte for byte json.dumps(indent=2) of the whole."""
    import json
    from dataclasses import replace

    for count in (0, 1, 7):
        result = synthetic_result(count, tmp_path / str(count))
        path = output.write_results_json(result, tmp_path / f"{count}.json")
        data = json.loads(path.read_text("utf-8"))
        assert len(data["images"]) == count
        whole = dict(data)
        assert path.read_text("utf-8") == json.dumps(whole, indent=2, ensure_ascii=False) + "\n"
    odd = replace(result, title='a\n  "images": [],\nb')       # the marker's text in a value
    data = json.loads(output.write_results_json(odd, tmp_path / "odd.json").read_text("utf-8"))
    assert data["title"] == odd.title and len(data["images"]) == 7
