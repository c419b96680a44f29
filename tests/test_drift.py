"""Changes since the previous report: the drift record from plain records (synthetic
reports, no network), and end to end (two runs into one folder; a changed image and
changed weights; --fail-on-drift)."""

from __future__ import annotations

import json
import shutil
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from reportgen import drift, output
from reportgen.cli import main
from reportgen.errors import UsageError
from reportgen.records import Prediction
from synthetic import synthetic_result

REPO = Path(__file__).resolve().parents[1]


def test_compact_map_is_the_4x4_block_mean_in_float16():
    values = np.arange(224 * 224, dtype=np.float64).reshape(224, 224)
    compact = drift.compact_map(values)
    assert compact.shape == (56, 56) and compact.dtype == np.float16
    # block (i, j) covers rows 4i..4i+3 and columns 4j..4j+3: its mean is the value at
    # (4i + 1.5, 4j + 1.5) of this linear ramp
    i, j = 10, 37
    expected = (4 * i + 1.5) * 224 + (4 * j + 1.5)
    assert compact[i, j] == np.float16(expected)


def _report(root: Path, result, maps: dict) -> Path:
    """A previous report on disk: results.json and the compact maps."""
    (root / drift.MAPS_DIR).mkdir(parents=True, exist_ok=True)
    output.write_results_json(result, root / "results.json")
    for (image_id, model), per_method in maps.items():
        drift.save_compact_maps(root / drift.compact_file(image_id, model), per_method)
    return root


def _maps(result, seed: int) -> dict:
    rng = np.random.default_rng(seed)
    return {(image.id, model): {method: rng.random((224, 224)).astype(np.float32)
                                for method in result.methods}
            for image in result.processed for model in image.models}


@pytest.fixture
def previous(tmp_path):
    result = synthetic_result(6, tmp_path / "old")
    maps = _maps(result, 1)
    return result, maps, _report(tmp_path / "old", result, maps)


def test_the_same_records_and_maps_show_no_changes(tmp_path, previous):
    result, maps, old = previous
    new = _report(tmp_path / "new", result, maps)
    record, per_image = drift.compare_with(drift.load_baseline(old / "results.json"), result,
                                           new / drift.MAPS_DIR, drift.Thresholds())
    assert record["no_changes"] and not record["exceeded"]
    assert record["images"] == {"added": [], "removed": [], "changed": [], "compared": 6}
    for model in record["per_model"].values():
        assert model["top1_changed"] == 0 and model["probability_change_abs"]["max"] == 0.0
        assert all(s["min"] == 1.0 and s["n"] == 6 for s in model["spearman"].values())
    assert record["moved"] == []
    assert set(per_image) == {image.id for image in result.processed}
    assert drift.summary_line(record) == "none (6 images compared)"


def test_exactly_what_changed_is_reported(tmp_path, previous):
    result, maps, old = previous
    images = list(result.images)
    # image 0 replaced (other content, same name), image 5 removed, a new one added
    images[0] = replace(images[0], sha256="1" * 64)
    added = replace(images[5], id="synthetic-new", path="photos/new.jpg", shown="photos/new.jpg")
    images[5] = added
    # image 1: vgg16's top-1 changes; image 2: resnet152's target probability moves
    first = images[1].models["vgg16"]
    other = Prediction(999, "toilet tissue", 0.5)
    images[1] = replace(images[1], models={**images[1].models, "vgg16": replace(
        first, top5=(other,) + first.top5[1:], target=other)})
    second = images[2].models["resnet152"]
    moved_target = replace(second.target, probability=second.target.probability + 0.25)
    images[2] = replace(images[2], models={**images[2].models, "resnet152": replace(
        second, target=moved_target, top5=(moved_target,) + second.top5[1:])})
    models = tuple(replace(m, weights={**m.weights, "sha1": "ab" * 20}) if m.name == "vgg19" else m
                   for m in result.models)
    new_result = replace(result, images=tuple(images), models=models,
                         run={**result.run, "mxnet": "1.9.2"})
    new_maps = dict(_maps(new_result, 1))
    new_maps.update({key: value for key, value in maps.items() if key[0] != "synthetic-00005"})
    # image 3's vgg19 saliency map becomes another (unrelated) map
    new_maps[("synthetic-00003", "vgg19")] = {
        **maps[("synthetic-00003", "vgg19")],
        "saliency": np.random.default_rng(2).random((224, 224)).astype(np.float32)}
    new = _report(tmp_path / "new", new_result, new_maps)

    record, per_image = drift.compare_with(drift.load_baseline(old / "results.json"), new_result,
                                           new / drift.MAPS_DIR, drift.Thresholds(0.98, 0))
    assert record["images"] == {"added": ["photos/new.jpg"], "removed": ["photos/synthetic-00005.jpg"],
                                "changed": ["photos/synthetic-00000.jpg"], "compared": 4}
    assert record["models"] == {"added": [], "removed": [], "weights_changed": {"vgg19": [None, "ab" * 20]}}
    assert record["versions"] == {"mxnet": ["1.9.1", "1.9.2"]}
    assert record["top1_changed"] == 1 and record["per_model"]["vgg16"]["top1_changed"] == 1
    assert record["maps_moved"] == 1
    assert record["per_model"]["vgg19"]["below_threshold"] == {"saliency": 1, "gradcam": 0}
    assert record["exceeded"] and not record["no_changes"]
    assert record["per_model"]["resnet152"]["probability_change_abs"]["max"] == pytest.approx(0.25)
    # the moved list: the unrelated map first (lowest correlation), then the top-1 change
    assert [(e["image"], e["model"]) for e in record["moved"][:3]] == [
        ("photos/synthetic-00003.jpg", "vgg19"), ("photos/synthetic-00001.jpg", "vgg16"),
        ("photos/synthetic-00002.jpg", "resnet152")]
    assert abs(record["moved"][0]["spearman"]["saliency"]) < 0.1
    assert per_image["synthetic-00001"]["vgg16"]["top1"] == [first.top5[0].class_id, 999]
    assert "synthetic-00000" not in per_image          # changed content: not compared

    # thresholds decide "exceeded": one top-1 change tolerated, the moved map still counts
    record, _ = drift.compare_with(drift.load_baseline(old / "results.json"), new_result,
                                   new / drift.MAPS_DIR, drift.Thresholds(-1.0, 1))
    assert not record["exceeded"] and not record["no_changes"]


def test_a_previous_report_without_maps_compares_predictions_only(tmp_path, previous):
    result, maps, old = previous
    shutil.rmtree(old / drift.MAPS_DIR)
    new = _report(tmp_path / "new", result, maps)
    record, _ = drift.compare_with(drift.load_baseline(old / "results.json"), result,
                                   new / drift.MAPS_DIR, drift.Thresholds())
    assert record["maps_missing"] == 6 * 3 * 2 and record["top1_changed"] == 0
    assert not record["exceeded"] and not record["no_changes"]


def test_baseline_that_is_no_report_is_a_usage_error(tmp_path):
    with pytest.raises(UsageError, match="no results.json"):
        drift.find_baseline(tmp_path / "nowhere", tmp_path)
    (tmp_path / "results.json").write_text('{"something": "else"}')
    with pytest.raises(UsageError, match="not a reportgen results.json"):
        drift.load_baseline(drift.find_baseline(tmp_path, tmp_path / "out"))
    (tmp_path / "results.json").write_text("{broken")
    with pytest.raises(UsageError, match="not a readable results.json"):
        drift.load_baseline(tmp_path / "results.json")
    assert drift.find_baseline(None, tmp_path / "empty") is None


@pytest.mark.slow
def test_two_runs_show_no_changes_then_exactly_the_changes(tmp_path, capsys):
    from conftest import seeded_params

    photos = tmp_path / "photos"
    photos.mkdir()
    for name in ("chelsea.png", "coffee.jpg", "rocket.jpg"):
        shutil.copy(REPO / "samples" / name, photos / name)
    out = tmp_path / "report"
    argv = ["run", str(photos), "-o", str(out), "-m", "resnet152,vgg16", "--weights", "untrained",
            "--batch-size", "3", "--format", "html", "-q"]
    assert main(argv) == 0
    assert "drift" not in json.loads((out / "results.json").read_text())   # nothing to compare
    assert main([*argv, "--fail-on-drift"]) == 0
    record = json.loads((out / "results.json").read_text())["drift"]
    assert record["no_changes"] and record["images"]["compared"] == 3
    assert "changes since the previous report: none (3 images compared)" in capsys.readouterr().out

    shutil.copy(REPO / "samples" / "astronaut.jpg", photos / "coffee.jpg")   # same name, new photo
    params = seeded_params("resnet152", 224, tmp_path)
    code = main([*argv, "--fail-on-drift", "--params", f"resnet152={params}"])
    assert code == 4
    results = json.loads((out / "results.json").read_text())   # published before exit 4
    record = results["drift"]
    assert record["images"] == {"added": [], "removed": [], "changed": ["photos/coffee.jpg"],
                                "compared": 2}
    assert list(record["models"]["weights_changed"]) == ["resnet152"]
    assert record["per_model"]["vgg16"]["top1_changed"] == 0
    assert all(s["min"] == 1.0 for s in record["per_model"]["vgg16"]["spearman"].values())
    assert record["per_model"]["resnet152"]["below_threshold"]["saliency"] >= 1
    assert record["exceeded"]
    html = (out / "report.html").read_text()
    assert "Changes since the previous report" in html and "photos/coffee.jpg" in html
    assert "drift beyond the thresholds" in capsys.readouterr().err
