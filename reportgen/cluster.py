"""A run's shards on Dask (dask.distributed): a local cluster of `--workers` processes, or
an existing scheduler (`--scheduler ADDRESS` or DASK_SCHEDULER_ADDRESS).

What this module leaves to Dask and what it does itself:
- Dask schedules the shards, and re-runs a shard whose worker died on another worker
  (`distributed.scheduler.allowed-failures` times);
- every worker resolves the weights itself, before any shard is sent, so that a worker
  that cannot get them stops the run early (exit 3) and is named;
- a shard runs in a workspace of the worker's own (no shared file system is assumed);
  its figures come back as bytes and are written here as each shard arrives;
- the crops go out a few shards ahead of the workers (not all at once), so the
  scheduler's and this process's memory stay flat in the number of images;
- progress: workers send events (cumulative units per shard, so a shard re-run after a
  lost worker is not counted twice), shown here as in a serial run.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import os
import tempfile
import threading
from pathlib import Path, PurePosixPath

from .errors import ClusterError, ReportgenError, UsageError, WeightsError

try:
    import dask
    import distributed
    from distributed import Client, LocalCluster, as_completed
except ImportError:  # an optional extra
    raise UsageError("--workers and --scheduler need Dask's distributed scheduler, which is "
                     "not installed", hint="pip install 'reportgen[dask]'") from None

PROGRESS_TOPIC = "reportgen-progress"
CONNECT_TIMEOUT = "20s"
WORKERS_TIMEOUT = 60          # seconds to wait for the first worker to join
SHARDS_AHEAD = 2              # shards queued per worker beyond the running one
# The local cluster's workers skip Dask's statistical profiler (a stack sample of the task
# thread every 10 ms) and sample the system every 2 s instead of 0.5 s: with one MXNet
# thread per core nothing is idle, so their event loops took CPU from the network (3 % of
# each worker). Measured at 100 images on 2 workers: 141.7 s with, 133.3 s without.
LOCAL_WORKER_CONFIG = {"distributed.worker.profile.enabled": False,
                       "distributed.admin.system-monitor.interval": "2s"}


class DaskExecutor:
    """The shards of a run on a Dask cluster. Used as a context manager: the local cluster
    (if any) and the client are closed on the way out, whatever happens."""

    def __init__(self, config, progress):
        self.config = config
        self.progress = progress
        self.address = config.scheduler   # the CLI has taken DASK_SCHEDULER_ADDRESS into it
        self.cluster = self.client = None
        self.description = {"executor": "dask"}
        self._shard_units: dict[int, float] = {}
        self._lock = threading.Lock()

    # --- connecting --------------------------------------------------------------------

    def __enter__(self):
        # Dask's client logs a traceback when it loses the scheduler; the run says it in
        # one line (ClusterError) instead.
        self._log_levels = _quiet_dask_logs()
        try:
            if self.address:
                self.progress.message(f"connecting to the Dask scheduler at {self.address}")
                self.client = Client(self.address, timeout=CONNECT_TIMEOUT, set_as_default=False)
            else:
                workers = self.config.workers
                threads = str(max(1, len(os.sched_getaffinity(0)) // workers))
                self.progress.message(f"starting a local Dask cluster: {workers} workers x "
                                      f"{threads} MXNet thread(s)")
                with dask.config.set(LOCAL_WORKER_CONFIG):    # the nannies pass it on
                    self.cluster = LocalCluster(
                        n_workers=workers, threads_per_worker=1, processes=True, host="127.0.0.1",
                        dashboard_address=None, silence_logs=logging.ERROR,
                        # heap: the workers reuse freed memory as a serial run does
                        # (reportgen.mx), which the nannies' MALLOC_TRIM_THRESHOLD_ would stop
                        env={"REPORTGEN_MXNET_THREADS": threads, "OMP_NUM_THREADS": threads,
                             "REPORTGEN_MALLOC": "heap"})
                self.client = Client(self.cluster, set_as_default=False)
            self.client.wait_for_workers(1, timeout=WORKERS_TIMEOUT)
        except (OSError, TimeoutError, distributed.comm.core.CommClosedError) as exc:
            self.close()
            where = f"the Dask scheduler at {self.address}" if self.address else "a local Dask cluster"
            raise ClusterError(f"cannot use {where}: {_one_line(exc)}",
                               hint="start `dask scheduler` and `dask worker ADDRESS` (README: "
                                    "Large and distributed runs), or check --scheduler") from None
        except BaseException:
            self.close()
            raise
        self.client.subscribe_topic(PROGRESS_TOPIC, self._on_progress)
        return self

    def __exit__(self, *exc):
        self.close()
        return False

    def close(self) -> None:
        if self.client is not None and self.cluster is None:
            # Workers of an existing cluster outlive the run: they give back the network
            # kept for a next shard (about 1.6 GB) instead of holding it until the next run.
            try:
                self.client.run(forget_network)
            except Exception:      # the scheduler or a worker is gone: nothing to give back
                pass
        for thing in (self.client, self.cluster):
            if thing is not None:
                try:
                    thing.close()
                except Exception:   # closing after the scheduler died: nothing left to do
                    pass
        self.client = self.cluster = None
        for name, level in getattr(self, "_log_levels", {}).items():
            logging.getLogger(name).setLevel(level)

    # --- weights -----------------------------------------------------------------------

    def resolve_weights(self, plan) -> dict:
        """Each worker resolves every model's weights (downloading into its own cache if it
        must); the first failure stops the run with its exit code, naming the worker."""
        self.plan = plan
        try:
            replies = self.client.run(worker_weights, plan)
        except Exception as exc:
            raise ClusterError(f"the Dask workers could not run reportgen: {_one_line(exc)}",
                               hint="install reportgen (same version) on every worker machine") from None
        failures = {address: reply for address, reply in replies.items() if reply["error"]}
        for address, reply in sorted(failures.items()):
            error = WeightsError if reply["exit_code"] == WeightsError.exit_code else UsageError
            raise error(f"worker {address}: {reply['error']}", hint=reply["hint"])
        self.workers = {address: reply["worker"] for address, reply in sorted(replies.items())}
        first = sorted(replies)[0]
        self.description.update(scheduler=self.client.scheduler.address, workers=self.workers)
        return replies[first]["sources"]

    # --- the shards --------------------------------------------------------------------

    def run(self, prepared, job, ws, progress):
        """Yields each shard's ShardResult as it arrives (in any order), after writing the
        files it brought into the workspace."""
        from . import shards

        workers = max(1, len(self.workers))
        sanity_images = job.settings.sanity_images if "sanity" in job.settings.checks else 0
        size = shards.shard_size(len(prepared.ok_ids), job.batch_size, workers,
                                 self.config.shard_size, sanity_images)
        planned = shards.plan_shards(prepared.ok_ids, prepared.crops, size, job.batch_size,
                                     sanity_images)
        self.description.update(shards=len(planned), shard_size=size, shard_workers={})
        queue = iter(planned)
        running = as_completed(loop=self.client.loop)
        try:
            for _ in range(workers * (1 + SHARDS_AHEAD)):
                self._submit(next(queue, None), job, running)
            for future in running:
                try:
                    result = future.result()
                except ReportgenError:
                    raise
                except (distributed.KilledWorker,) as exc:
                    raise ClusterError(f"a shard failed on every worker it was tried on: {_one_line(exc)}",
                                       hint="a worker may be running out of memory: use fewer "
                                            "workers per machine or a smaller --batch-size") from None
                self._submit(next(queue, None), job, running)
                _write_files(result.files, ws.root)
                result.files = {}
                self.description["shard_workers"][str(result.index)] = result.worker
                yield result
        except (OSError, TimeoutError, distributed.comm.core.CommClosedError,
                distributed.client.FutureCancelledError) as exc:
            raise ClusterError(f"lost the Dask scheduler at {self.description.get('scheduler', '?')}: "
                               f"{_one_line(exc)}",
                               hint="the previous report is left as it was; run again when the "
                                    "scheduler is back") from None

    def _submit(self, shard, job, running) -> None:
        if shard is None:
            return
        crops = shard.crops[:]          # read from the memmap only now
        shard_job = dataclasses.replace(job, shard=dataclasses.replace(shard, crops=crops.copy()))
        running.add(self.client.submit(worker_shard, shard_job, self.plan, pure=False,
                                       key=f"reportgen-shard-{shard.index}-{os.getpid()}-{id(self)}"))

    def _on_progress(self, event) -> None:
        """A worker's progress event: {"shard", "units" (cumulative), "label"} or {"message"}."""
        _, data = event
        with self._lock:
            if "message" in data:
                self.progress.message(f"[{data['worker']}] {data['message']}")
                return
            before = self._shard_units.get(data["shard"], 0.0)
            if data["units"] > before:
                self._shard_units[data["shard"]] = data["units"]
                self.progress.advance(data["units"] - before, data["label"])


# --- on the workers ---------------------------------------------------------------------

_NETWORK = threading.Lock()      # one network in memory per worker process, whatever its threads
_SOURCES: dict[str, dict] = {}   # per weight plan: the weights this worker resolved
_LAST_NETWORK = None             # pipeline.LastNetwork: the network kept for the next shard


def worker_weights(plan, dask_worker=None) -> dict:
    """Run on every worker by client.run: resolve the weights here (this machine's cache,
    SHA-1 check, download); never raises, so that every worker's answer comes back."""
    from . import models

    reply = {"error": None, "exit_code": 0, "hint": None, "sources": None,
             "worker": {"nthreads": dask_worker.state.nthreads if dask_worker else None}}
    try:
        reply["sources"] = _worker_sources(plan)
        reply["worker"]["mxnet_threads"] = models.mx_threads()
    except ReportgenError as exc:
        reply.update(error=exc.message, exit_code=exc.exit_code, hint=exc.hint)
    return reply


def forget_network() -> None:
    """Run on every worker at the end of a run: free the network kept for a next shard
    (unless a shard of another run is using the worker's network now)."""
    if _LAST_NETWORK is not None and _NETWORK.acquire(blocking=False):
        try:
            _LAST_NETWORK.take(None)
        finally:
            _NETWORK.release()


def worker_shard(job, plan):
    """One shard on this worker, in a workspace of its own; the files come back as bytes."""
    from distributed import get_worker

    from . import pipeline, shards

    global _LAST_NETWORK
    worker = get_worker()
    with _NETWORK:
        sources = _worker_sources(plan)
        if _LAST_NETWORK is None:
            _LAST_NETWORK = pipeline.LastNetwork()
        with tempfile.TemporaryDirectory(prefix="reportgen-shard-") as folder:
            ws = pipeline.Workspace(Path(folder))
            ws.create(job.save_arrays)
            progress = WorkerProgress(worker, job.shard.index)
            result = shards.run_shard(job, sources, ws, progress, _LAST_NETWORK)
            result.files = _read_files(ws.root)
    result.worker = worker.address
    return result


class WorkerProgress:
    """Progress.advance/message/warn, sent to the client as events."""

    def __init__(self, worker, shard: int):
        self.worker, self.shard, self.units = worker, shard, 0.0

    def advance(self, units: float, label: str) -> None:
        self.units += units
        self.worker.log_event(PROGRESS_TOPIC, {"shard": self.shard, "units": self.units, "label": label})

    def message(self, text: str) -> None:
        self.worker.log_event(PROGRESS_TOPIC, {"message": text, "worker": self.worker.address})

    warn = message


def _worker_sources(plan) -> dict:
    """The weights this worker process resolved for `plan`, resolved once per process."""
    from .run import resolve_weights

    key = json.dumps(dataclasses.asdict(plan), default=str, sort_keys=True)
    if key not in _SOURCES:
        _SOURCES[key] = resolve_weights(plan)
    return _SOURCES[key]


def _read_files(root: Path) -> dict[str, bytes]:
    """Every file of a shard's workspace but its scratch, by report-relative path."""
    files = {}
    for path in sorted(root.rglob("*")):
        relative = path.relative_to(root)
        if path.is_file() and relative.parts[0] != ".scratch":
            files[relative.as_posix()] = path.read_bytes()
    return files


def _write_files(files: dict[str, bytes], root: Path) -> None:
    for name, data in files.items():
        relative = PurePosixPath(name)
        if relative.is_absolute() or ".." in relative.parts:
            raise ClusterError(f"a worker sent a file outside the report: {name}")
        path = root / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)


def _quiet_dask_logs() -> dict[str, int]:
    """Only critical messages from Dask's loggers in this process; returns the levels they
    had. Dask's logging config gives some children levels of their own (distributed.client:
    warning), so the parent's level alone does not silence them."""
    names = ["distributed", *(n for n in logging.root.manager.loggerDict if n.startswith("distributed."))]
    levels = {name: logging.getLogger(name).level for name in names}
    for name in names:
        logging.getLogger(name).setLevel(logging.CRITICAL)
    return levels


def _one_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0]}" if text else type(exc).__name__
