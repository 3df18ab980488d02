"""What the two wire protocols (fastagi.agi.protocol, fastagi.ami.protocol) share about one
connection: Deferreds waiting for a moment of it (the greeting, the close), failing every
command still pending when it breaks, and how the peer and the close are named in logs."""

from __future__ import annotations

from typing import Any, Generic, Iterable, TypeVar

from twisted.internet.defer import Deferred
from twisted.python.failure import Failure

T = TypeVar("T")


class Waiters(Generic[T]):
    """Deferreds waiting for one moment: `wait()` gives one (cancelling it just stops
    waiting); `fire(value)` or `fail(error)` ends every one waiting then."""

    def __init__(self) -> None:
        self._waiting: list[Deferred[T]] = []

    def wait(self) -> Deferred[T]:
        def forget(waiter: Deferred[T]) -> None:
            if waiter in self._waiting:
                self._waiting.remove(waiter)

        waiter: Deferred[T] = Deferred(forget)
        self._waiting.append(waiter)
        return waiter

    def fire(self, value: T) -> None:
        waiting, self._waiting = self._waiting, []
        for waiter in waiting:
            waiter.callback(value)

    def fail(self, error: Exception) -> None:
        waiting, self._waiting = self._waiting, []
        fail_each(waiting, error)


def fail_each(deferreds: Iterable[Deferred[Any]], error: Exception) -> None:
    """Errback each Deferred not yet called (a cancelled command was) with `error`."""
    for deferred in deferreds:
        if not deferred.called:
            deferred.errback(Failure(error))


def peer_of(transport: Any) -> tuple[str, str]:
    """('host:port', 'host') of the connection's peer, for logs and records."""
    peer = transport.getPeer()
    host = getattr(peer, "host", peer)
    return f"{host}:{getattr(peer, 'port', '')}".rstrip(":"), str(getattr(peer, "host", ""))


def describe_close(reason: Failure | None) -> str:
    """Why a connection closed, in a few words."""
    if reason is None:
        return "closed"
    return reason.getErrorMessage() or reason.type.__name__
