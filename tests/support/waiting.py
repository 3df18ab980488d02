"""Waiting in tests: for a condition, with a deadline, failing with what was awaited.

A test never sleeps to let something happen: it waits until it can see it happened
(`wait_until`), and a deadline turns "never" into a failure that names the condition. The
deadlines are generous (a loaded machine is slow, a broken one never gets there); a test
asserts on what happened, not on how fast. `pause` is for the few places where time itself
is the behaviour: nothing may happen for N seconds, or load runs for N seconds.
"""

from __future__ import annotations

import inspect
import time
from typing import Any, Callable

from twisted.internet import reactor
from twisted.internet.task import deferLater


async def pause(seconds: float) -> None:
    """Let `seconds` pass on the reactor (only where time itself is the behaviour)."""
    await deferLater(reactor, seconds, lambda: None)


async def wait_until(predicate: Callable[[], Any], timeout: float = 60,
                     what: str | None = None, step: float = 0.05) -> Any:
    """Poll `predicate` (it may return an awaitable, e.g. a query on a thread) on the
    reactor until it returns something true; return that. AssertionError after `timeout`
    seconds, naming `what` (default: the predicate's source)."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if inspect.isawaitable(value):
            value = await value
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"not within {timeout} s: {what or describe(predicate)}")
        await pause(step)


def wait_until_blocking(predicate: Callable[[], Any], timeout: float = 60,
                        what: str | None = None, step: float = 0.05) -> Any:
    """`wait_until` for a test that does not run the reactor (it blocks this thread)."""
    deadline = time.monotonic() + timeout
    while not (value := predicate()):
        if time.monotonic() > deadline:
            raise AssertionError(f"not within {timeout} s: {what or describe(predicate)}")
        time.sleep(step)
    return value


def describe(predicate: Callable) -> str:
    try:
        return inspect.getsource(predicate).strip()
    except (OSError, TypeError):
        return repr(predicate)
