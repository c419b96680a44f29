"""One background thread for a shard's per-image outputs (figures, map statistics, map
rankings, arrays), so that the main thread goes on with the network.

Why a thread helps on a machine whose cores the network keeps busy: the network is the
only work that uses both cores; everything else (figures, statistics, loading the next
model's weights) is single-threaded. Queued here, the per-image work runs while the main
thread loads the next model (the other core is idle then) and in the gaps the network
leaves, instead of after each batch. The thread runs at a lower scheduling priority, so
that while the network needs both cores the kernel gives them to the network.

Outputs stay deterministic: the tasks run one at a time, in the order they were queued,
and each writes only files of its own image and model.
"""

from __future__ import annotations

import os
import threading
from concurrent.futures import Future, ThreadPoolExecutor

NICENESS = 10          # lower priority than the network's threads, not starved
AHEAD = 8              # tasks queued at most: bounds the arrays held for them (a VGG
                       # image's first-conv output alone is 12.8 MB)


def lower_priority() -> None:
    """Make this thread run only on a core nothing else wants (Linux SCHED_IDLE, for the
    calling thread alone); where that is not possible, raise its niceness; else leave it."""
    try:
        os.sched_setscheduler(0, os.SCHED_IDLE, os.sched_param(0))
        return
    except (AttributeError, OSError):
        pass
    try:
        os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), NICENESS)
    except (AttributeError, OSError):
        pass


class FigureQueue:
    """Runs `submit`ted functions in order on one thread; `wait()` returns when all are
    done and re-raises the first error."""

    def __init__(self, ahead: int = AHEAD):
        self._pool = ThreadPoolExecutor(1, thread_name_prefix="reportgen-figures",
                                        initializer=lower_priority)
        self._slots = threading.BoundedSemaphore(ahead)
        self._futures: list[Future] = []
        self._failed: Future | None = None

    def submit(self, function, *args, **kwargs) -> Future:
        """Queue function(*args, **kwargs); blocks while `ahead` tasks are waiting. Fails
        fast with the error of a task that has already failed."""
        if self._failed is not None:
            self._failed.result()
        self._slots.acquire()
        try:
            future = self._pool.submit(function, *args, **kwargs)
        except BaseException:
            self._slots.release()
            raise
        future.add_done_callback(self._done)
        self._futures.append(future)
        return future

    def _done(self, future: Future) -> None:
        self._slots.release()
        if self._failed is None and not future.cancelled() and future.exception() is not None:
            self._failed = future

    def wait(self) -> None:
        """Every queued task done; the first error raised."""
        for future in self._futures:
            future.result()

    def close(self) -> None:
        """Tasks not started are dropped (after an error or an interrupt); the one under
        way finishes."""
        self._pool.shutdown(wait=True, cancel_futures=True)

    def __enter__(self) -> "FigureQueue":
        return self

    def __exit__(self, *exc) -> bool:
        self.close()
        return False


def import_rendering_in_background() -> None:
    """Import the report's rendering modules (matplotlib, WeasyPrint: ~0.7 s) on a
    low-priority thread while the network runs, instead of after it, on the run's critical
    path. An import error is left for the main thread's own import to raise and report."""
    def load() -> None:
        lower_priority()
        try:
            from .render import charts, html, pdf  # noqa: F401
        except BaseException:
            pass

    threading.Thread(target=load, name="reportgen-import-rendering", daemon=True).start()
