"""Never lose the last good report: atomic swap, locking, recovery, SIGKILL at any moment."""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from conftest import REPO
from reportgen import publish
from reportgen.errors import UsageError


def make_report(folder: Path, label: str) -> None:
    folder.mkdir(parents=True)
    (folder / "results.json").write_text(json.dumps({"schema": "reportgen.results/1", "label": label}))


def label_of(folder: Path) -> str:
    return json.loads((folder / "results.json").read_text())["label"]


def test_exchange_swaps_two_folders(tmp_path):
    make_report(tmp_path / "a", "a")
    make_report(tmp_path / "b", "b")
    assert publish.exchange(tmp_path / "a", tmp_path / "b")
    assert label_of(tmp_path / "a") == "b" and label_of(tmp_path / "b") == "a"


@pytest.mark.parametrize("atomic", [True, False])
def test_publish_replaces_the_previous_report(tmp_path, monkeypatch, atomic):
    if not atomic:
        monkeypatch.setattr(publish, "exchange", lambda a, b: False)
    target = tmp_path / "report"
    make_report(target, "old")
    with publish.Staging(target) as staging:
        (staging.path / "results.json").write_text(json.dumps({"schema": "reportgen.results/1",
                                                                "label": "new"}))
        staging.publish()
    assert label_of(target) == "new"
    assert [p.name for p in tmp_path.iterdir()] == ["report"]


def test_failed_run_leaves_the_previous_report_alone(tmp_path):
    target = tmp_path / "report"
    make_report(target, "old")
    with pytest.raises(RuntimeError):
        with publish.Staging(target) as staging:
            (staging.path / "half.png").write_bytes(b"x")
            raise RuntimeError("boom")
    assert label_of(target) == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["report"]


def test_recover_puts_back_a_report_moved_aside_and_removes_leftovers(tmp_path):
    target = tmp_path / "report"
    make_report(tmp_path / ".report.old-123", "old")      # killed between the two renames
    make_report(tmp_path / ".report.partial-123", "half")
    publish.recover(target)
    assert label_of(target) == "old"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["report"]


def test_second_lock_on_the_same_output_is_refused(tmp_path):
    target = tmp_path / "report"
    with publish.OutputLock(target):
        with pytest.raises(UsageError, match=f"pid {os.getpid()}"):
            with publish.OutputLock(target):
                pass
    with publish.OutputLock(target):   # released: free again
        pass


def test_lock_of_a_killed_process_does_not_block(tmp_path):
    target = tmp_path / "report"
    holder = subprocess.Popen([sys.executable, "-c",
                               "import sys, time; from reportgen.publish import OutputLock\n"
                               f"l = OutputLock({str(target)!r}).__enter__(); print('locked', flush=True); time.sleep(60)"],
                              stdout=subprocess.PIPE, text=True, cwd=REPO)
    assert holder.stdout.readline().strip() == "locked"
    with pytest.raises(UsageError):
        with publish.OutputLock(target):
            pass
    holder.send_signal(signal.SIGKILL)
    holder.wait()
    with publish.OutputLock(target):
        pass


def assert_complete(folder: Path) -> str:
    """A report folder with every file whole; returns its creation stamp."""
    results = json.loads((folder / "results.json").read_text("utf-8"))
    pdf = (folder / "report.pdf").read_bytes()
    assert pdf.startswith(b"%PDF") and pdf.rstrip().endswith(b"%%EOF")
    html = (folder / "report.html").read_text("utf-8")
    for source in re.findall(r'<img src="([^"]+)"', html):
        assert (folder / source).is_file(), source
    assert not (folder / ".scratch").exists()
    return results["created"] + str(results["run"]["seconds"]["total"])


def one_photo(tmp_path: Path) -> Path:
    """A folder holding one sample photo: the quickest real run."""
    images = tmp_path / "in"
    images.mkdir()
    shutil.copy(REPO / "samples" / "rocket.jpg", images)
    return images


def reportgen_command(images: Path, out: Path) -> list[str]:
    return [sys.executable, "-m", "reportgen", "run", str(images), "-m", "resnet152",
            "--weights", "untrained", "-q", "-o", str(out)]


@pytest.mark.slow
def test_sigkill_at_any_moment_leaves_a_complete_report(tmp_path):
    images = one_photo(tmp_path)
    out = tmp_path / "report"
    started = time.monotonic()
    subprocess.run(reportgen_command(images, out), check=True, cwd=REPO)
    duration = time.monotonic() - started
    stamps = {assert_complete(out)}
    for fraction in (0.3, 0.7, 0.9, 0.97, 1.0, 1.05):
        run = subprocess.Popen(reportgen_command(images, out), cwd=REPO)
        time.sleep(duration * fraction)
        run.send_signal(signal.SIGKILL)
        run.wait()
        stamps.add(assert_complete(out))
    # The next run cleans what the killed ones left and still succeeds.
    subprocess.run(reportgen_command(images, out), check=True, cwd=REPO)
    assert assert_complete(out) not in stamps
    assert sorted(p.name for p in tmp_path.iterdir()) == [".report.lock", "in", "report"]


@pytest.mark.slow
def test_second_run_on_the_same_output_says_so_and_exits(tmp_path):
    images = one_photo(tmp_path)
    out = tmp_path / "report"
    first = subprocess.Popen(reportgen_command(images, out), cwd=REPO)
    try:
        lock = tmp_path / ".report.lock"
        deadline = time.monotonic() + 60
        while not (lock.exists() and lock.read_text().strip()) and time.monotonic() < deadline:
            time.sleep(0.05)
        second = subprocess.run(reportgen_command(images, out), cwd=REPO,
                                capture_output=True, text=True)
        assert second.returncode == 2
        assert f"another reportgen run (pid {first.pid}) is writing" in second.stderr
        assert "Traceback" not in second.stderr
    finally:
        first.send_signal(signal.SIGTERM)
        assert first.wait(60) == 130


def test_sigterm_unwinds_and_exits_130(tmp_path):
    out = tmp_path / "report"
    run = subprocess.Popen(reportgen_command(REPO / "samples", out), cwd=REPO,
                           stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 60
    while not list(tmp_path.glob(".report.partial-*")) and time.monotonic() < deadline:
        time.sleep(0.05)
    run.send_signal(signal.SIGTERM)
    assert run.wait(60) == 130
    assert "interrupted" in run.stderr.read()
    assert not out.exists() and not list(tmp_path.glob(".report.partial-*"))
