"""Runs on Dask: real clusters on loopback (a LocalCluster, and a `dask scheduler` with
`dask worker` processes), checked against the serial run of the same inputs."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest

from conftest import REPO
from reportgen import pipeline, shards
from reportgen.cli import main

pytest.importorskip("distributed")

DASK = str(Path(sys.executable).parent / "dask")      # Dask's own command line
SMALL = ["--weights", "untrained", "-m", "resnet152", "--batch-size", "2", "--format", "html", "-q"]


def report_digest(folder: Path) -> tuple[dict, dict[str, str]]:
    """results.json without what may differ between runs (timings, the run section,
    the creation time), and the sha256 of every other file but the HTML (which shows
    the timings)."""
    results = json.loads((folder / "results.json").read_text())
    results.pop("run")
    results.pop("created")
    for model in results["models"]:
        model.pop("seconds")
    files = {p.relative_to(folder).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
             for p in sorted(folder.rglob("*"))
             if p.is_file() and p.name not in ("results.json", "report.html")}
    return results, files


def differences(a, b, path="") -> list[str]:
    """Where two JSON-like values differ, as paths (readable assertion messages)."""
    if type(a) is not type(b):
        return [f"{path}: {a!r:.80} != {b!r:.80}"]
    if isinstance(a, dict):
        return [d for k in sorted(set(a) | set(b), key=str)
                for d in differences(a.get(k), b.get(k), f"{path}.{k}")]
    if isinstance(a, list):
        if len(a) != len(b):
            return [f"{path}: {len(a)} items != {len(b)}"]
        return [d for i, (x, y) in enumerate(zip(a, b)) for d in differences(x, y, f"{path}[{i}]")]
    return [] if a == b else [f"{path}: {a!r:.80} != {b!r:.80}"]


def assert_same_report(a: Path, b: Path) -> None:
    (results_a, files_a), (results_b, files_b) = report_digest(a), report_digest(b)
    assert differences(results_a, results_b) == []
    assert differences(files_a, files_b) == []


@pytest.fixture(scope="module")
def serial_small(tmp_path_factory):
    out = tmp_path_factory.mktemp("serial") / "report"
    assert main(["run", *SMALL, "-o", str(out)]) == 0
    return out


# --- the shard plan ---------------------------------------------------------------------

@pytest.mark.parametrize("count,batch,workers,requested,sanity,expected", [
    (1000, 4, 2, None, 0, 64),         # 8 shards per worker of 62.5, to the batch
    (10000, 4, 8, None, 0, 64),        # 20 per worker
    (100, 4, 2, None, 0, 52),          # one shard per worker: 52 + 48
    (100, 3, 2, None, 0, 51),          # 50 rounded up to a multiple of the batch
    (40, 4, 2, None, 0, 20),           # fewer images than a shard: one per worker
    (5, 4, 8, None, 0, 4),             # more workers than batches
    (10, 4, 1, 2, 0, 4),               # requested, rounded up to the batch
    (10, 2, 1, 2, 6, 6),               # the first shard holds the sanity images
])
def test_shard_size_is_a_multiple_of_the_batch_holding_the_sanity_images(
        count, batch, workers, requested, sanity, expected):
    size = shards.shard_size(count, batch, workers, requested, sanity)
    assert size == expected and size % batch == 0 and size >= sanity


def test_shards_cover_every_image_once_in_order():
    ids = [f"i{n}" for n in range(11)]
    crops = np.arange(11, dtype=np.uint8)[:, None, None, None] * np.ones((1, 2, 2, 3), np.uint8)
    planned = shards.plan_shards(ids, crops, 4, 4)     # 3 images are no whole batch: last
    assert [s.ids for s in planned] == [ids[0:4], ids[4:8], ids[8:11]]
    assert [s.first for s in planned] == [True, False, False] and {s.of for s in planned} == {3}
    assert np.array_equal(np.concatenate([s.crops for s in planned]), crops)
    assert [s.ids for s in shards.plan_shards(ids, crops, None)] == [ids]
    # Whole batches short: the short shard goes first (it also does the per-model work),
    # unless it would hold fewer than the sanity check's images.
    twelve = ids + ["i11"]
    crops12 = np.concatenate([crops, crops[:1]])
    for batch, first_at_least, expected in [(2, 0, [4, 4, 4]), (1, 0, [4, 4, 4])]:
        assert [len(s.ids) for s in shards.plan_shards(twelve, crops12, 4, batch, first_at_least)] == expected
    assert [len(s.ids) for s in shards.plan_shards(twelve, crops12, 8, 4)] == [4, 8]
    assert [s.ids for s in shards.plan_shards(twelve, crops12, 8, 4)] == [twelve[:4], twelve[4:]]
    assert [len(s.ids) for s in shards.plan_shards(twelve, crops12, 8, 4, 5)] == [8, 4]
    assert [len(s.ids) for s in shards.plan_shards(twelve, crops12, 8, 8)] == [8, 4]   # 4 is no batch
    assert [s.ids for s in shards.plan_shards(ids, crops, 4)] == [ids[0:3], ids[3:7], ids[7:11]]
    hundred = [f"i{n}" for n in range(100)]
    assert [len(s.ids) for s in shards.plan_shards(hundred, np.zeros((100, 1)), 52, 4)] == [48, 52]
    assert len(shards.plan_shards([], crops[:0], 4)) == 1       # the per-model parts still run


# --- a local cluster --------------------------------------------------------------------

def _worker_config():
    import dask
    return {key: dask.config.get(key) for key in
            ("distributed.worker.profile.enabled", "distributed.admin.system-monitor.interval")}


def test_local_workers_run_without_dasks_profiler(tmp_path):
    """The local cluster's workers leave the cores to the network: no stack sampling every
    10 ms, the system sampled every 2 s; and this process's own settings are untouched."""
    import types

    import dask

    from reportgen.cluster import DaskExecutor
    from reportgen.progress import Progress

    before = _worker_config()
    config = types.SimpleNamespace(workers=1, scheduler=None)
    with DaskExecutor(config, Progress(1, quiet=True)) as executor:
        replies = executor.client.run(_worker_config)
    assert list(replies.values()) == [{"distributed.worker.profile.enabled": False,
                                       "distributed.admin.system-monitor.interval": "2s"}]
    assert _worker_config() == before and before["distributed.worker.profile.enabled"] is True


def _large_block_in_the_heap() -> bool:
    import ctypes

    import numpy as np

    import reportgen.mx  # noqa: F401  (what a shard imports first)

    block = np.ones(8 << 20)
    libc = ctypes.CDLL(None)
    libc.sbrk.restype = ctypes.c_void_p
    return block.ctypes.data < libc.sbrk(0)


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc's malloc")
def test_local_workers_reuse_freed_memory_as_a_serial_run_does(tmp_path):
    """The nannies set MALLOC_TRIM_THRESHOLD_, which alone would leave the workers' large
    blocks in fresh mappings (reportgen.mx.keep_freed_memory_for_reuse); --workers asks
    for the heap all the same."""
    import types

    from reportgen.cluster import DaskExecutor
    from reportgen.progress import Progress

    config = types.SimpleNamespace(workers=1, scheduler=None)
    with DaskExecutor(config, Progress(1, quiet=True)) as executor:
        replies = executor.client.run(_large_block_in_the_heap)
    assert list(replies.values()) == [True]


@pytest.mark.slow
def test_two_workers_give_the_serial_report_byte_for_byte(tmp_path, serial_small):
    out = tmp_path / "dask"
    assert main(["run", *SMALL, "-o", str(out), "--workers", "2", "--shard-size", "2"]) == 0
    assert_same_report(out, serial_small)
    run = json.loads((out / "results.json").read_text())["run"]
    assert run["executor"] == "dask" and run["shards"] == 2 and len(run["workers"]) == 2
    assert set(run["shard_workers"].values()) <= set(run["workers"])
    assert all(w["mxnet_threads"] == "1" for w in run["workers"].values())  # 2 cores / 2 workers
    assert json.loads((serial_small / "results.json").read_text())["run"]["executor"] == "serial"


@pytest.mark.slow
def test_a_worker_keeps_its_last_network_for_its_next_shard(tmp_path, capsys):
    """Two shards on one worker: the second starts with the model the first ended with,
    without loading it again, and the report is still the serial one byte for byte."""
    argv = ["run", "--weights", "untrained", "-m", "vgg16,resnet152", "--batch-size", "2",
            "--format", "html", *(str(REPO / "samples" / name) for name in
                                  ("chelsea.png", "rocket.jpg", "coffee.jpg", "astronaut.jpg"))]
    assert main([*argv, "-q", "-o", str(tmp_path / "serial")]) == 0
    capsys.readouterr()
    assert main([*argv, "-o", str(tmp_path / "dask"), "--workers", "1", "--shard-size", "2"]) == 0
    loads = [line for line in capsys.readouterr().err.splitlines() if "loading weights" in line]
    assert_same_report(tmp_path / "dask", tmp_path / "serial")
    assert json.loads((tmp_path / "dask" / "results.json").read_text())["run"]["shards"] == 2
    # shard 1: vgg16, resnet152; shard 2: resnet152 kept, vgg16 loaded
    assert [line.split("] ")[1].split(":")[0] for line in loads] == ["vgg16", "resnet152", "vgg16"]


@pytest.mark.slow
def test_every_method_check_and_array_is_the_same_on_dask(tmp_path):
    """Both families, every method, the sanity cascade (in the first shard) and
    --save-arrays: computed on the workers, identical to the serial run."""
    argv = ["run", "--weights", "untrained", "-m", "vgg16,resnet152", "--batch-size", "2",
            "--format", "html", "-q",
            "--save-arrays", "--methods", "all", "--smoothgrad-samples", "2", "--ig-steps", "2",
            "--checks", "sanity", "--sanity-images", "1",
            str(REPO / "samples" / "chelsea.png"), str(REPO / "samples" / "rocket.jpg"),
            str(REPO / "samples" / "coffee.jpg")]
    assert main([*argv, "-o", str(tmp_path / "serial")]) == 0
    assert main([*argv, "-o", str(tmp_path / "dask"), "--workers", "2", "--shard-size", "2"]) == 0
    assert_same_report(tmp_path / "dask", tmp_path / "serial")
    serial = report_digest(tmp_path / "serial")
    assert len([f for f in serial[1] if f.startswith("arrays/")]) == 3 * 2
    assert all(m["sanity"]["images"] == 1 for m in serial[0]["models"])


def test_without_dask_the_flags_say_what_to_install(tmp_path, monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "distributed", None)
    monkeypatch.delitem(sys.modules, "reportgen.cluster", raising=False)
    assert main(["run", *SMALL, "-o", str(tmp_path / "r"), "--workers", "2"]) == 2
    err = capsys.readouterr().err
    assert "reportgen[dask]" in err and "Traceback" not in err
    assert not (tmp_path / "r").exists()


def test_workers_and_scheduler_together_are_a_usage_error(tmp_path, capsys):
    assert main(["run", *SMALL, "-o", str(tmp_path / "r"), "--workers", "2",
                 "--scheduler", "tcp://127.0.0.1:1"]) == 2
    assert "give one of them" in capsys.readouterr().err


def test_a_worker_without_the_weights_stops_the_run_early_naming_it(tmp_path, capsys):
    missing = tmp_path / "nowhere" / "resnet152.params"
    code = main(["run", *SMALL, "-o", str(tmp_path / "r"), "--workers", "1",
                 "--params", f"resnet152={missing}"])
    err = capsys.readouterr().err
    assert code == 3, err
    line = [l for l in err.splitlines() if l.startswith("reportgen: error:")][0]
    assert "worker tcp://127.0.0.1:" in line and str(missing) in line
    assert "Traceback" not in err and not (tmp_path / "r").exists()


# --- a scheduler and workers as separate processes --------------------------------------

def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Cluster:
    """`dask scheduler` and `dask worker` processes on 127.0.0.1, stopped by the test."""

    def __init__(self, folder: Path):
        self.folder = folder
        self.processes: list[subprocess.Popen] = []
        self.env = {**os.environ, "PYTHONPATH": str(REPO)}

    def scheduler(self) -> str:
        port = _free_port()
        self.scheduler_process = self._start(
            [DASK, "scheduler", "--host", "127.0.0.1",
             "--port", str(port), "--no-dashboard"], "scheduler")
        self.address = f"tcp://127.0.0.1:{port}"
        self._wait_for_port(port)
        return self.address

    def worker(self, name: str) -> tuple[subprocess.Popen, str]:
        """A worker without a nanny: killing its process kills the worker for good."""
        port = _free_port()
        process = self._start(
            [DASK, "worker", self.address, "--no-nanny",
             "--nthreads", "1", "--host", "127.0.0.1", "--worker-port", str(port),
             "--no-dashboard", "--name", name], name)
        self._wait_for_port(port)
        return process, f"tcp://127.0.0.1:{port}"

    def _start(self, argv, name):
        log = open(self.folder / f"{name}.log", "wb")
        process = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT, env=self.env, cwd=REPO)
        self.processes.append(process)
        return process

    @staticmethod
    def _wait_for_port(port: int, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with socket.socket() as s:
                if s.connect_ex(("127.0.0.1", port)) == 0:
                    return
            time.sleep(0.2)
        raise TimeoutError(f"nothing listens on 127.0.0.1:{port}")

    def stop(self) -> None:
        for process in self.processes:
            if process.poll() is None:
                process.kill()
            process.wait(timeout=30)


@pytest.fixture
def cluster(tmp_path):
    cluster = Cluster(tmp_path)
    yield cluster
    cluster.stop()


def _run_reportgen(argv, on_line, timeout: float = 600) -> tuple[int, str]:
    """`reportgen run` in a process of its own; on_line(line) for each stderr line."""
    process = subprocess.Popen([sys.executable, "-m", "reportgen", *argv], cwd=REPO,
                               stderr=subprocess.PIPE, stdout=subprocess.DEVNULL, text=True)
    lines = []

    def read():
        for line in process.stderr:
            lines.append(line)
            on_line(line)

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    try:
        code = process.wait(timeout=timeout)
    finally:
        if process.poll() is None:
            process.kill()
    reader.join(timeout=10)
    return code, "".join(lines)


@pytest.mark.slow
def test_a_killed_worker_costs_only_its_shard(tmp_path, cluster, serial_small):
    address = cluster.scheduler()
    doomed, doomed_address = cluster.worker("doomed")
    _, survivor_address = cluster.worker("survivor")
    killed = threading.Event()

    def kill_when_it_works(line):
        if not killed.is_set() and f"[{doomed_address}]" in line and "loading weights" in line:
            time.sleep(1.0)                     # mid-shard: loading or in the network
            doomed.send_signal(signal.SIGKILL)
            killed.set()

    out = tmp_path / "report"
    code, err = _run_reportgen(["run", *SMALL[:-1], "-o", str(out), "--scheduler", address,
                                "--shard-size", "2"], kill_when_it_works)
    assert killed.is_set(), err
    assert code == 0, err
    assert_same_report(out, serial_small)
    run = json.loads((out / "results.json").read_text())["run"]
    assert set(run["shard_workers"].values()) == {survivor_address}
    assert run["scheduler"] == address


@pytest.mark.slow
def test_losing_the_scheduler_exits_5_and_keeps_the_previous_report(tmp_path, cluster, serial_small):
    out = tmp_path / "report"
    shutil.copytree(serial_small, out)
    before = {p.relative_to(out): p.read_bytes() for p in out.rglob("*") if p.is_file()}
    address = cluster.scheduler()
    cluster.worker("only")
    lost = threading.Event()

    def kill_scheduler(line):
        if not lost.is_set() and "loading weights" in line:
            cluster.scheduler_process.send_signal(signal.SIGKILL)
            lost.set()

    started = time.monotonic()
    code, err = _run_reportgen(["run", *SMALL[:-1], "-o", str(out), "--scheduler", address],
                               kill_scheduler, timeout=300)
    assert lost.is_set() and code == 5, err
    assert time.monotonic() - started < 240            # it does not hang
    errors = [line for line in err.splitlines() if line.startswith("reportgen: error:")]
    assert len(errors) == 1 and "lost the Dask scheduler" in errors[0], err
    assert "Traceback" not in err
    after = {p.relative_to(out): p.read_bytes() for p in out.rglob("*") if p.is_file()}
    assert after == before


def test_an_unreachable_scheduler_exits_5_with_one_line(tmp_path, capsys):
    port = _free_port()                                # nothing listens there
    code = main(["run", *SMALL, "-o", str(tmp_path / "r"), "--scheduler", f"tcp://127.0.0.1:{port}"])
    err = capsys.readouterr().err
    assert code == 5 and f"tcp://127.0.0.1:{port}" in err and "Traceback" not in err
