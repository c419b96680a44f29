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
AHEAD = 8              # tasks outstanding at most: bounds the arrays held for them (a
                       # VGG image's first-conv output alone is 12.8 MB); callers submit
                       # copies, not views that would keep a whole batch alive


def lower_priority() -> None:
    """Raise this thread's niceness (Linux: PRIO_PROCESS with a thread id sets that thread
    alone); where that is not possible the thread runs at normal priority.

    Niceness rather than SCHED_IDLE: on an idle 2-core machine both gave the network the
    same time (16 images x 3 models: 2.0 and 2.3 s over the floor, one run each), but on a
    host kept busy by other work (several Dask workers, other jobs) a SCHED_IDLE thread
    gets next to nothing, and the run would wait on its figures."""
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
        self._failed: BaseException | None = None

    def submit(self, function, *args, **kwargs) -> Future:
        """Queue function(*args, **kwargs); blocks while `ahead` tasks are waiting. Fails
        fast with the error of a task that has already failed."""
        self.raise_if_failed()
        self._slots.acquire()
        try:
            future = self._pool.submit(self._run, function, args, kwargs)
        except BaseException:
            self._slots.release()
            raise
        future.add_done_callback(self._done)
        self._futures.append(future)
        return future

    def _run(self, function, args, kwargs):
        try:
            return function(*args, **kwargs)
        except BaseException as exc:
            # Recorded here, before the future completes: a done-callback runs only after
            # result() has already woken the waiter.
            if self._failed is None:
                self._failed = exc
            raise

    def _done(self, future: Future) -> None:
        self._slots.release()

    def raise_if_failed(self) -> None:
        """Re-raise the error of a task that has already failed, if any."""
        if self._failed is not None:
            raise self._failed

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


def import_rendering_in_background(lang: str = "en") -> threading.Thread:
    """Import the report's rendering modules (matplotlib, WeasyPrint: ~0.7 s) and compile
    the report's template in `lang` (0.07 s) on a low-priority thread while the network
    runs, instead of after it, on the run's critical path. An import or template error is
    left for the main thread's own use to raise and report.
    Join the thread before anything decodes images again: WeasyPrint's import sets Pillow's
    LOAD_TRUNCATED_IMAGES."""
    def load() -> None:
        lower_priority()
        try:
            from .render import charts, html, pdf  # noqa: F401
            html.warm_templates(lang)
        except BaseException:
            pass

    thread = threading.Thread(target=load, name="reportgen-import-rendering", daemon=True)
    thread.start()
    return thread


def start_chart_helper() -> None:
    """Start the process the charts are drawn in at the end (render.chart_helper) now, while
    a core is idle; if it cannot start, the charts are drawn in this process."""
    from .render import chart_helper
    chart_helper.start()
