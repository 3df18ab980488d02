"""fastagi.workers.WorkerPool's shutdown: queued work can be dropped, and the wait for
work in progress is bounded (a thread stuck in a database read must not hold the exit)."""

from __future__ import annotations

import threading
import time

from twisted.internet.defer import CancelledError

from fastagi.workers import WorkerPool


class ThreadReactor:
    """callFromThread runs the call at once (in the worker thread): enough here."""

    def callFromThread(self, fn, *args, **kwargs) -> None:
        fn(*args, **kwargs)


def test_stop_with_a_timeout_leaves_a_stuck_thread_behind():
    pool = WorkerPool(ThreadReactor(), 2, name="test-workers")
    pool.start()
    release = threading.Event()
    pool.submit(release.wait)
    unstick = threading.Timer(3, release.set)   # a stop that joins fails, it does not hang
    unstick.start()
    started = time.monotonic()
    try:
        assert pool.stop(timeout=0.2) == 1          # one thread still in its call
        assert time.monotonic() - started < 2
    finally:
        release.set()
        unstick.cancel()


def test_stop_without_a_timeout_waits_for_the_work():
    pool = WorkerPool(ThreadReactor(), 1, name="test-workers")
    pool.start()
    done = []
    pool.submit(lambda: time.sleep(0.2) or done.append(1))
    assert pool.stop() == 0 and done == [1]


def test_cancel_queued_drops_work_no_thread_started():
    pool = WorkerPool(ThreadReactor(), 1, name="test-workers")
    pool.start()
    release, running = threading.Event(), threading.Event()
    ran = []
    first = pool.submit(lambda: running.set() or release.wait())
    assert running.wait(5)
    queued = [pool.submit(ran.append, n) for n in range(3)]
    failures = []
    for deferred in queued:
        deferred.addErrback(failures.append)
    assert pool.cancel_queued() == 3
    assert [f.type for f in failures] == [CancelledError] * 3
    release.set()
    assert pool.stop(timeout=5) == 0
    assert ran == []                  # never run
    results = []
    first.addCallback(results.append)
    assert results == [True]          # the call in progress finished normally
