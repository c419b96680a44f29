"""--config nightly.toml (every flag's setting; flags win) and --log-file for cron."""

from __future__ import annotations

import json
import re
import shutil

import pytest

from conftest import REPO
from reportgen.cli import main


def write_config(folder, text):
    path = folder / "nightly.toml"
    path.write_text(text, "utf-8")
    return path


@pytest.mark.slow
def test_config_file_settings_with_flags_winning_and_a_log(tmp_path):
    (tmp_path / "photos").mkdir()
    shutil.copy(REPO / "samples" / "rocket.jpg", tmp_path / "photos")
    config = write_config(tmp_path, """
inputs = ["photos", "missing.png"]      # relative to this file
output = "out"
models = ["resnet152"]
weights = "untrained"
seed = 3
title = "From the file"
author = "Night shift \U0001E900"   # Adlam: no font here has it
format = "html"
quiet = true
log-file = "logs/nightly.log"
""")
    elsewhere = tmp_path / "cwd"
    elsewhere.mkdir()
    import os
    old = os.getcwd()
    os.chdir(elsewhere)
    try:
        code = main(["run", "--config", str(config), "--title", "From the flag"])
    finally:
        os.chdir(old)
    assert code == 1   # missing.png skipped
    results = json.loads((tmp_path / "out" / "results.json").read_text())
    assert results["title"] == "From the flag" and results["author"] == "Night shift \U0001E900"
    if shutil.which("fc-list"):
        assert any("no installed font has glyphs" in w and "\U0001E900" in w
                   for w in results["warnings"])
    assert results["run"]["seed"] == 3 and [m["name"] for m in results["models"]] == ["resnet152"]
    assert not (tmp_path / "out" / "report.pdf").exists()
    log = (tmp_path / "logs" / "nightly.log").read_text()
    lines = log.splitlines()
    assert all(re.match(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d[+-]\d\d:\d\d ", line) for line in lines)
    assert "start: reportgen" in lines[0] and "--config" in lines[0]
    assert any("skipped" in line and "missing.png: does not exist" in line for line in lines)
    if shutil.which("fc-list"):
        assert any("warning: no installed font" in line for line in lines)
    assert any("resnet152: done: 1 images" in line for line in lines)
    assert any(line.endswith("report.html") and "output:" in line for line in lines)
    assert "exit 1" in lines[-1]


@pytest.mark.parametrize("text, message", [
    ('colour = "blue"\n', "unknown key 'colour'"),
    ('batch-size = "4"\n', "batch-size must be a whole number"),
    ("seed = true\n", "seed must be a whole number"),
    ("save-arrays = 1\n", "save-arrays must be true or false"),
    ('models = ["vgg11"]\n', "unknown model 'vgg11'"),
    ("title = \n", "not valid TOML"),
])
def test_bad_config_names_the_key_and_the_file(tmp_path, capsys, text, message):
    config = write_config(tmp_path, text)
    assert main(["run", "--config", str(config), "-o", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err
    if "model" not in message:
        assert str(config) in err


def test_missing_config_file(tmp_path, capsys):
    assert main(["run", "--config", str(tmp_path / "nope.toml")]) == 2
    assert "nope.toml: cannot read" in capsys.readouterr().err


def test_log_records_a_failed_run(tmp_path):
    log = tmp_path / "run.log"
    (tmp_path / "empty").mkdir()
    code = main(["run", str(tmp_path / "empty"), "--weights", "untrained", "--log-file", str(log),
                 "-o", str(tmp_path / "o")])
    assert code == 2
    text = log.read_text()
    assert "error: no image files found" in text and text.rstrip().endswith("exit 2")


def test_config_file_sets_methods_and_checks(tmp_path):
    """The attribution keys reach the run's settings; flags still win."""
    import argparse

    from reportgen.cli import apply_config_file, build_parser, config_from_args

    config = write_config(tmp_path, """
methods = ["smoothgrad", "integrated_gradients"]
checks = "faithfulness"
smoothgrad-samples = 10
smoothgrad-noise = 0.2
ig-steps = 16
ig-rule = "gausslegendre"
ig-baseline = "mean"
sanity-images = 2
""")
    argv = ["run", "--config", str(config), "--ig-steps", "8", "--weights", "untrained"]
    args = build_parser().parse_args(argv)
    apply_config_file(args, argv)
    settings = config_from_args(args, argv).method_settings()
    assert settings.methods == ("saliency", "smoothgrad", "integrated_gradients")
    assert settings.checks == ("faithfulness",)
    assert (settings.smoothgrad_samples, settings.smoothgrad_noise) == (10, 0.2)
    assert (settings.ig_steps, settings.ig_rule, settings.ig_baseline) == (8, "gausslegendre", "mean")
    assert settings.sanity_images == 2 and len(settings.ig_alphas) == 8
    assert isinstance(args, argparse.Namespace)


def test_config_file_rejects_a_bad_method_setting(tmp_path, capsys):
    config = write_config(tmp_path, 'smoothgrad-noise = "lots"\n')
    assert main(["run", "--config", str(config), "--weights", "untrained", "-o", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err
    assert "smoothgrad-noise must be a number" in err and "Traceback" not in err
