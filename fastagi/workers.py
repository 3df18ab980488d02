"""A fixed set of worker threads that run blocking calls for the reactor.

Leaner than twisted.python.threadpool for this one job (measured: the database hand-off
was about a tenth of a server's CPU): a C SimpleQueue in, `callFromThread` out. A
Deferred that was cancelled or timed out meanwhile ignores the late result.
"""

from __future__ import annotations

import queue
import threading
import time
from typing import Any, Callable

from twisted.internet.defer import Deferred
from twisted.internet.interfaces import IReactorFromThreads
from twisted.python.failure import Failure

_STOP = None


class WorkerPool:
    """`size` threads named `<name>-N`; start() before use, stop() joins them."""

    def __init__(self, reactor: IReactorFromThreads, size: int, name: str) -> None:
        if size < 1:
            raise ValueError("a worker pool needs at least one thread")
        self.max = size
        self._reactor = reactor
        self._queue: queue.SimpleQueue = queue.SimpleQueue()
        self._threads = [threading.Thread(target=self._work, name=f"{name}-{n}", daemon=True)
                         for n in range(1, size + 1)]
        self._in_call: set[threading.Thread] = set()   # threads running a call now
        self.started = False

    def start(self) -> None:
        if not self.started:
            self.started = True
            for thread in self._threads:
                thread.start()

    def stop(self, timeout: float | None = None) -> int:
        """Let queued work finish, then end every thread; wait up to `timeout` seconds in
        all (None: as long as it takes). Fires nothing; returns how many threads were still
        busy at the deadline (daemons: they do not hold up the process's exit)."""
        if not self.started:
            return 0
        self.started = False
        for _ in self._threads:
            self._queue.put(_STOP)
        deadline = None if timeout is None else time.monotonic() + timeout
        for thread in self._threads:
            thread.join(None if deadline is None else max(0.0, deadline - time.monotonic()))
        # An idle thread not yet out of its queue wait is about to end: not counted
        return sum(thread.is_alive() and thread in self._in_call for thread in self._threads)

    def cancel_queued(self) -> int:
        """Cancel the work no thread has started yet (each Deferred errbacks with
        CancelledError); returns how many. Call it in the reactor thread."""
        dropped = []
        while True:
            try:
                item = self._queue.get_nowait()
            except queue.Empty:
                break
            if item is _STOP:
                continue
            dropped.append(item[0])
        for deferred in dropped:
            deferred.cancel()   # a Deferred that already timed out stays as it is
        return len(dropped)

    def submit(self, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Deferred:
        """Fires (in the reactor thread) with fn's result, or errbacks with its failure."""
        if not self.started:
            raise RuntimeError("the worker pool is not running")
        deferred: Deferred = Deferred()
        self._queue.put((deferred, fn, args, kwargs))
        return deferred

    def _work(self) -> None:
        while True:
            item = self._queue.get()
            if item is _STOP:
                return
            deferred, fn, args, kwargs = item
            me = threading.current_thread()
            self._in_call.add(me)
            try:
                result = fn(*args, **kwargs)
            except BaseException:
                self._reactor.callFromThread(deferred.errback, Failure())
            else:
                self._reactor.callFromThread(deferred.callback, result)
            finally:
                self._in_call.discard(me)
