"""The figure queue: per-image work on one background thread, in order, bounded, errors
surfacing in the main thread."""

from __future__ import annotations

import os
import threading

import pytest

from reportgen.figure_queue import NICENESS, FigureQueue


def test_tasks_run_in_order_on_one_other_thread():
    ran, threads = [], set()

    def task(k):
        threads.add(threading.get_ident())
        ran.append(k)
        return k * k

    with FigureQueue(ahead=3) as queue:
        futures = [queue.submit(task, k) for k in range(50)]
        queue.wait()
    assert ran == list(range(50))
    assert [f.result() for f in futures] == [k * k for k in range(50)]
    assert len(threads) == 1 and threading.get_ident() not in threads


def test_submit_blocks_while_ahead_tasks_are_waiting():
    release = threading.Event()
    started = threading.Event()

    def slow():
        started.set()
        release.wait(10)

    with FigureQueue(ahead=2) as queue:
        queue.submit(slow)
        queue.submit(lambda: None)
        started.wait(10)
        third = threading.Thread(target=lambda: queue.submit(lambda: None))
        third.start()
        third.join(0.3)
        assert third.is_alive()           # held back: two tasks are outstanding
        release.set()
        third.join(10)
        assert not third.is_alive()
        queue.wait()


def test_an_error_surfaces_on_wait_and_on_the_next_submit():
    def boom():
        raise ValueError("figure failed")

    with FigureQueue() as queue:
        queue.submit(boom)
        with pytest.raises(ValueError, match="figure failed"):
            queue.wait()
        with pytest.raises(ValueError, match="figure failed"):
            queue.submit(lambda: None)


def test_close_drops_tasks_not_started():
    """After an error or an interrupt, the figures still queued are not drawn."""
    ran = []
    started, gate = threading.Event(), threading.Event()

    def first():
        started.set()
        gate.wait(10)

    queue = FigureQueue(ahead=10)
    queue.submit(first)
    for k in range(5):
        queue.submit(ran.append, k)
    assert started.wait(10)
    threading.Timer(0.3, gate.set).start()
    queue.close()          # returns once the task under way is done
    assert gate.is_set() and ran == []


@pytest.mark.skipif(not hasattr(os, "getpriority"), reason="POSIX scheduling priority")
def test_the_thread_runs_at_a_lower_priority_than_its_caller():
    def niceness():
        return os.getpriority(os.PRIO_PROCESS, threading.get_native_id())

    mine = niceness()
    with FigureQueue() as queue:
        theirs = queue.submit(niceness).result()
    assert theirs == min(19, mine + NICENESS)
    assert niceness() == mine          # the caller's own thread untouched


def test_last_network_is_given_once_and_only_for_its_own_key():
    from reportgen.pipeline import LastNetwork

    last = LastNetwork()
    assert last.model is None and last.take(("vgg16", "w")) is None
    net = object()
    last.keep(("vgg16", "w"), net)
    assert last.model == "vgg16"
    assert last.take(("vgg16", "other weights")) is None   # other weights: not this network
    assert last.model is None                             # ... and it is freed, not kept
    last.keep(("vgg16", "w"), net)
    assert last.take(("vgg16", "w")) is net
    assert last.take(("vgg16", "w")) is None              # handed over, not kept twice
