"""End to end: `reportgen run` on the bundled samples, checked at the semantic level
(results.json contents, HTML references, PDF pages, text and outline)."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from conftest import REPO, seeded_params
from reportgen import images
from reportgen.cli import main

SAMPLES = sorted(p.name for p in (REPO / "samples").iterdir() if p.suffix in (".jpg", ".png"))
MODELS = ["vgg19", "vgg16", "resnet152"]


@pytest.fixture(scope="module")
def full_run(tmp_path_factory):
    """The README's smoke run: every sample x the three models, untrained, with arrays."""
    out = tmp_path_factory.mktemp("full") / "report"
    code = main(["run", "--weights", "untrained", "-o", str(out), "--save-arrays", "-q",
                 "--title", "Homework 3 <CNN> & saliency", "--author", "B. Student"])
    return code, out


@pytest.mark.slow
def test_full_run_writes_every_output(full_run):
    code, out = full_run
    assert code == 0
    for name in ("report.html", "report.pdf", "results.json", "results.csv"):
        assert (out / name).stat().st_size > 0
    assert not list(out.parent.glob(".report.partial-*")), "staging folder left behind"
    assert not (out / ".scratch").exists()


def test_results_csv_has_a_row_per_image_and_model_matching_results_json(full_run):
    import csv

    _, out = full_run
    results = json.loads((out / "results.json").read_text("utf-8"))
    with (out / "results.csv").open(newline="", encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    assert [(r["image"], r["model"]) for r in rows] == [
        (i["id"], m) for i in results["images"] for m in MODELS]
    for row in rows:
        image = next(i for i in results["images"] if i["id"] == row["image"])
        entry = image["models"][row["model"]]
        assert int(row["top1_class"]) == entry["top5"][0]["class_id"]
        assert float(row["target_probability"]) == entry["target"]["probability"]
        for method in ("saliency", "gradcam"):
            stats = entry["methods"][method]["stats"]
            assert float(row[f"{method}_concentration_top5"]) == stats["concentration_top5"]
        for other in MODELS:
            if other != row["model"]:
                pair = next(p for p in image["agreement"]["saliency"] if set(p.split("|")) == {row["model"], other})
                assert float(row[f"saliency_spearman_with_{other}"]) == image["agreement"]["saliency"][pair]["spearman"]
            else:
                assert row[f"saliency_spearman_with_{other}"] == ""


@pytest.mark.slow
def test_results_json_covers_every_sample_and_model(full_run):
    _, out = full_run
    results = json.loads((out / "results.json").read_text("utf-8"))
    assert results["schema"].startswith("reportgen.results/")
    assert results["weights_meaningful"] is False
    assert any("untrained" in w for w in results["warnings"])
    assert [m["name"] for m in results["models"]] == MODELS
    assert all(m["weights"]["source"] == "untrained" and m["weights"]["seed"] == 0
               for m in results["models"])
    assert {"reportgen", "mxnet", "numpy", "command_line", "seed", "device", "seconds"} <= set(results["run"])
    assert sorted(Path(i["path"]).name for i in results["images"]) == SAMPLES
    for image in results["images"]:
        assert image["status"] == "ok" and len(image["sha256"]) == 64
        assert set(image["models"]) == set(MODELS)
        for model in image["models"].values():
            probabilities = [p["probability"] for p in model["top5"]]
            assert len(probabilities) == 5 and probabilities == sorted(probabilities, reverse=True)
            assert 0 < sum(probabilities) <= 1 + 1e-9
            # Default target: the model's own top-1.
            assert model["target"]["class_id"] == model["top5"][0]["class_id"]
            # Default methods: saliency and Grad-CAM; what was not run is absent.
            assert set(model["methods"]) == {"saliency", "gradcam"}
            for method in model["methods"].values():
                assert 0.05 <= method["stats"]["concentration_top5"] <= 1
                assert "faithfulness" not in method and "completeness_gap" not in method
        assert set(image["agreement"]) == {"saliency", "gradcam"}
        assert set(image["agreement"]["gradcam"]) == {"vgg19|vgg16", "vgg19|resnet152", "vgg16|resnet152"}
    assert set(results["summary"]["per_pair"]["saliency"]) == {"vgg19|vgg16", "vgg19|resnet152", "vgg16|resnet152"}
    assert set(results["methods"]) == {"saliency", "gradcam"} and results["checks"] == []
    assert results["methods"]["gradcam"]["layer"] == {"vgg19": "features.35", "vgg16": "features.29",
                                                      "resnet152": "features.7"}
    assert results["schema"] == "reportgen.results/2"
    assert results["summary"]["findings"] and not results["summary"]["faithfulness"]
    assert results["summary"]["all_top1_agree"]["of"] == len(SAMPLES)


@pytest.mark.slow
def test_saved_arrays_are_what_the_network_saw_and_gave(full_run):
    _, out = full_run
    results = json.loads((out / "results.json").read_text("utf-8"))
    image = results["images"][0]
    crop = np.asarray(Image.open(out / "assets" / f"{image['id']}__crop.png"))
    for model in MODELS:
        arrays = np.load(out / "arrays" / f"{image['id']}__{model}.npz")
        assert arrays["input"].shape == (3, 224, 224) and arrays["input"].dtype == np.float32
        np.testing.assert_array_equal(arrays["input"], images.normalize(crop))
        assert arrays["gradient"].shape == (3, 224, 224) and arrays["gradient"].dtype == np.float32
        np.testing.assert_array_equal(arrays["saliency"], np.abs(arrays["gradient"]).max(axis=0))
        assert arrays["conv1"].dtype == np.float32 and arrays["conv1"].shape[0] == 64
        assert int(arrays["target"]) == image["models"][model]["target"]["class_id"]
        assert float(arrays["saliency"].max()) == pytest.approx(
            image["models"][model]["methods"]["saliency"]["stats"]["max"])
        assert arrays["gradcam"].shape == (224, 224) and arrays["gradcam"].min() >= 0
        assert float(arrays["gradcam"].max()) == pytest.approx(
            image["models"][model]["methods"]["gradcam"]["stats"]["max"])
        assert str(arrays["gradcam_layer"]) == results["methods"]["gradcam"]["layer"][model]
        assert "smoothgrad" not in arrays and "integrated_gradients" not in arrays
    assert (arrays["conv1"].shape[1:]) == (112, 112)  # resnet152: stride-2 7x7 conv


@pytest.mark.slow
def test_html_is_offline_and_every_figure_exists(full_run):
    _, out = full_run
    html = (out / "report.html").read_text("utf-8")
    assert not re.search(r"""(src|href)=["']?(https?:|//|ftp:)""", html)
    sources = re.findall(r'<img src="([^"]+)"', html)
    assert len(sources) >= len(SAMPLES) * len(MODELS) * 3
    for source in sources:
        assert source.startswith("assets/") and (out / source).is_file(), source
    # User text is escaped, never interpreted.
    assert "Homework 3 &lt;CNN&gt; &amp; saliency" in html and "<CNN>" not in html


@pytest.mark.slow
def test_pdf_pages_text_and_outline(full_run):
    pypdf = pytest.importorskip("pypdf")
    _, out = full_run
    reader = pypdf.PdfReader(out / "report.pdf")
    pages = [page.extract_text() for page in reader.pages]
    assert len(pages) >= 2 + len(SAMPLES)
    assert "Homework 3 <CNN> & saliency" in pages[0] and "B. Student" in pages[0]
    assert "Contents" in pages[0] and "Untrained weights" in pages[0]
    assert f"Page 1 of {len(pages)}" in pages[0]
    text = "\n".join(pages)
    for sample in SAMPLES:
        assert sample in text
    for page in pages:
        if "Figure" in page:
            assert "UNTRAINED WEIGHTS" in page
    outline = []

    def walk(items):
        for item in items:
            walk(item) if isinstance(item, list) else outline.append(item.title)
    walk(reader.outline)
    for section in ("VGG vs ResNet", "Images", "Noise image", "Models and first-layer filters",
                    "Method", "Appendix: conv layer weights"):
        assert section in outline
    assert sum(any(s in t for s in SAMPLES) for t in outline) == len(SAMPLES)
    assert reader.metadata.title == "Homework 3 <CNN> & saliency"


def one_image_run(tmp_path, name, *extra):
    inputs = tmp_path / "in"
    inputs.mkdir(exist_ok=True)
    shutil.copy(REPO / "samples" / "chelsea.png", inputs / "cat.png")
    out = tmp_path / name
    code = main(["run", str(inputs), "-m", "vgg16", "--weights", "untrained", "-q",
                 "--format", "html", "-o", str(out), *extra])
    return code, out


@pytest.mark.slow
def test_same_inputs_and_seed_give_identical_outputs(tmp_path):
    first = one_image_run(tmp_path, "a")[1]
    second = one_image_run(tmp_path, "b")[1]
    assets = sorted(p.name for p in (first / "assets").iterdir())
    assert assets == sorted(p.name for p in (second / "assets").iterdir())
    for name in assets:
        assert (first / "assets" / name).read_bytes() == (second / "assets" / name).read_bytes(), name
    a, b = (json.loads((d / "results.json").read_text()) for d in (first, second))
    assert a["images"] == b["images"] and a["summary"] == b["summary"]


@pytest.mark.slow
def test_target_by_class_name_applies_to_every_model(tmp_path):
    code, out = one_image_run(tmp_path, "t", "--target", "tabby")
    assert code == 0
    results = json.loads((out / "results.json").read_text())
    assert results["target"] == "class 281 (tabby)"
    assert results["images"][0]["models"]["vgg16"]["target"]["class_id"] == 281


@pytest.mark.slow
def test_local_params_file_is_used_and_recorded(tmp_path, params_dir):
    params = seeded_params("vgg16", 224, params_dir)
    code, out = one_image_run(tmp_path, "p", "--params", f"vgg16={params}", "--weights", "pretrained")
    assert code == 0
    model = json.loads((out / "results.json").read_text())["models"][0]
    import hashlib
    assert model["weights"]["source"] == "params"
    assert model["weights"]["sha1"] == hashlib.sha1(params.read_bytes()).hexdigest()


def test_pretrained_weights_unavailable_stop_before_any_work(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("MXNET_GLUON_REPO", "http://127.0.0.1:9/")  # discard port: refused
    out = tmp_path / "report"
    code = main(["run", str(REPO / "samples"), "-m", "vgg19", "--model-root",
                 str(tmp_path / "models"), "-o", str(out)])
    assert code == 3
    err = capsys.readouterr().err
    assert "vgg19-ad2f660d.params" in err and str(tmp_path / "models") in err
    assert "--weights untrained" in err and "--params" in err and "Traceback" not in err
    assert len(err.strip().splitlines()) <= 2
    assert not out.exists()
    assert [p.name for p in tmp_path.glob(".report*")] in ([], [".report.lock"])


@pytest.mark.parametrize("argv, message", [
    (["run", "-m", "vgg11"], "unknown model 'vgg11'"),
    (["run", "--target", "no such class"], "no ImageNet class"),
    (["run", "--format", "docx"], "--format"),
    (["run", "--params", "resnet152=x.params", "-m", "vgg16"], "--params names resnet152"),
    (["run", "--methods", "saliency,lime"], "--methods: unknown method lime"),
    (["run", "--checks", "vibes"], "--checks: unknown check vibes"),
    (["run", "--methods", "all", "--ig-rule", "simpson"], "--ig-rule simpson: unknown rule"),
    (["run", "--ig-steps", "1"], "riemann_trapezoid needs at least 2 steps"),
])
def test_usage_errors_exit_2_with_one_line(argv, message, tmp_path, capsys):
    code = main([*argv, "--weights", "untrained", "-o", str(tmp_path / "out")])
    assert code == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err


def test_unknown_flag_exits_2(capsys):
    assert main(["run", "--bogus"]) == 2
    assert "unrecognized arguments: --bogus" in capsys.readouterr().err


def test_unwritable_output_is_refused_before_work(tmp_path, capsys):
    blocker = tmp_path / "a-file"
    blocker.write_text("x")
    assert main(["run", "--weights", "untrained", "-o", str(blocker / "report")]) == 2
    assert "cannot write in" in capsys.readouterr().err
    assert main(["run", "--weights", "untrained", "-o", str(blocker)]) == 2
    assert "is not a folder" in capsys.readouterr().err


def test_no_images_found_is_a_usage_error(tmp_path, capsys):
    (tmp_path / "empty").mkdir()
    assert main(["run", str(tmp_path / "empty"), "--weights", "untrained", "-o", str(tmp_path / "o")]) == 2
    assert "no image files found" in capsys.readouterr().err


def test_refuses_to_replace_a_folder_that_is_not_a_report(tmp_path, capsys):
    precious = tmp_path / "thesis"
    precious.mkdir()
    (precious / "chapter1.tex").write_text("years of work")
    code = main(["run", "--weights", "untrained", "-o", str(precious)])
    assert code == 2 and "not empty" in capsys.readouterr().err
    assert (precious / "chapter1.tex").read_text() == "years of work"


def test_debug_shows_the_traceback_of_an_expected_error(capsys):
    assert main(["run", "-m", "vgg11", "--debug"]) == 2
    err = capsys.readouterr().err
    assert "Traceback" in err and "unknown model 'vgg11'" in err


@pytest.fixture(scope="module")
def methods_run(tmp_path_factory):
    """Every method and both checks, with few copies and steps, on one photo and two
    models (one per family)."""
    tmp = tmp_path_factory.mktemp("methods")
    inputs = tmp / "in"
    inputs.mkdir()
    shutil.copy(REPO / "samples" / "chelsea.png", inputs / "cat.png")
    shutil.copy(REPO / "samples" / "coffee.jpg", inputs / "coffee.jpg")
    out = tmp / "report"
    code = main(["run", str(inputs), "-m", "vgg16,resnet152", "--weights", "untrained", "-q",
                 "-o", str(out), "--methods", "all", "--checks", "faithfulness,sanity",
                 "--smoothgrad-samples", "2", "--ig-steps", "3", "--sanity-images", "1",
                 "--save-arrays"])
    return code, out


@pytest.mark.slow
def test_every_method_and_check_is_in_results_json(methods_run):
    code, out = methods_run
    assert code == 0
    results = json.loads((out / "results.json").read_text("utf-8"))
    methods = ["saliency", "gradcam", "smoothgrad", "integrated_gradients"]
    assert list(results["methods"]) == methods and results["checks"] == ["faithfulness", "sanity"]
    assert results["methods"]["smoothgrad"]["samples"] == 2 and results["methods"]["smoothgrad"]["noise"] == 0.15
    ig = results["methods"]["integrated_gradients"]
    assert (ig["steps"], ig["rule"], ig["baseline"]) == (3, "riemann_trapezoid", "black")
    for image in results["images"]:
        for name, model in image["models"].items():
            assert list(model["methods"]) == methods
            assert 0 <= model["methods"]["integrated_gradients"]["completeness_gap"] or \
                model["methods"]["integrated_gradients"]["completeness_gap"] is None
            random_order = model["faithfulness_random_order"]
            for method in methods:
                f = model["methods"][method]["faithfulness"]
                assert len(f["deletion"]) == len(f["insertion"]) == 21
                assert f["deletion"][0] == pytest.approx(1.0) and f["insertion"][-1] == pytest.approx(1.0)
                assert f["deletion"][-1] == pytest.approx(random_order["deletion"][-1])
                assert isinstance(f["beats_random"], bool)
            arrays = np.load(out / "arrays" / f"{image['id']}__{name}.npz")
            assert arrays["smoothgrad"].shape == arrays["integrated_gradients"].shape == (3, 224, 224)
            assert arrays["gradcam"].shape == (224, 224)
            assert float(arrays["integrated_gradients"].sum()) != 0
    for model in results["models"]:
        sanity = model["sanity"]
        assert sanity["images"] == 1 and len(sanity["stages"]) == 5
        for method in methods:
            assert [row["stage"] for row in sanity["methods"][method]] == sanity["stages"]
    summary = results["summary"]
    assert set(summary["faithfulness"]) == set(methods) and set(summary["sanity"]) == set(methods)
    assert summary["completeness_gap"]["per_model"]["vgg16"]["n"] == 2
    text = " ".join(summary["findings"])
    assert "random pixel order" in text and "weights" in text and "ResNet152" in text


@pytest.mark.slow
def test_methods_report_shows_every_method_and_check(methods_run):
    pypdf = pytest.importorskip("pypdf")
    _, out = methods_run
    reader = pypdf.PdfReader(out / "report.pdf")
    text = re.sub(r"\s+", " ", " ".join(page.extract_text() for page in reader.pages))
    for phrase in ("Findings", "Grad-CAM", "SmoothGrad", "Integrated Gradients", "Beats random",
                   "Sanity check", "conv block 5", "stage 4", "the maps under each method",
                   "completeness gap"):
        assert phrase in text, phrase
    html = (out / "report.html").read_text("utf-8")
    for source in re.findall(r'<img src="([^"]+)"', html):
        assert (out / source).is_file(), source


@pytest.mark.slow
def test_a_method_not_run_is_absent_from_the_report(tmp_path):
    code, out = one_image_run(tmp_path, "plain", "--methods", "saliency")
    assert code == 0
    html = (out / "report.html").read_text("utf-8")
    for absent in ("Grad-CAM", "SmoothGrad", "Integrated Gradients", "Deletion", "Sanity check",
                   "the maps under each method"):
        assert absent not in html, absent


def test_beyond_pages_the_chosen_images_have_pages_and_the_report_says_how(tmp_path):
    from pypdf import PdfReader

    out = tmp_path / "report"
    assert main(["run", "--weights", "untrained", "-m", "vgg16,resnet152", "--pages", "3",
                 "-q", "-o", str(out)]) == 0
    results = json.loads((out / "results.json").read_text("utf-8"))
    chosen = results["pages"]["chosen"]
    assert len(chosen) == 3 and results["pages"]["of"] == 4
    assert results["pages"]["counts"] == {"disagree": 1, "agree": 1, "random": 1}
    by_agreement = sorted(chosen, key=lambda i: chosen[i]["agreement"])
    assert [chosen[i]["reason"] for i in (by_agreement[0], by_agreement[-1])] == ["disagree", "agree"]
    html = (out / "report.html").read_text("utf-8")
    assert html.count('<section class="image"') == 3
    assert "This report has pages for 3 of the 4 images" in html
    assert all(f'id="img-{image_id}"' in html for image_id in chosen)
    # The HTML's table lists every image, linking those with pages; the PDF leaves it out.
    table = html[html.index('id="all-images-table"'):html.index("</table>", html.index('id="all-images-table"'))]
    assert table.count('<img class="thumb"') == 4
    assert sorted(re.findall(r'href="#img-([^"]+)"', table)) == sorted(chosen)
    assert 'data-type="number">vgg16 vs resnet152</th>' in table
    text = "".join(page.extract_text() for page in PdfReader(out / "report.pdf").pages)
    assert "chosen from the numbers" in " ".join(text.split())
    assert "All images" not in text and "click a column" not in text
    assert len(results["images"]) == 4 and len((out / "results.csv").read_text().splitlines()) == 1 + 4 * 2
