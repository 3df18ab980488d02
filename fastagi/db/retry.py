"""Run a whole transaction again when doing so cannot change its outcome.

- MySQL/MariaDB aborted it for a deadlock or a lock wait (nothing was committed). On a
  Galera cluster a transaction that lost certification to a conflicting write from
  another node fails the same way, with 1213 at COMMIT (or on any statement, when the
  replicated write aborts it): nothing was committed there either.
- MariaDB had cached a table with its triggers unparsed (a statement killed while it
  opened the table, fastagi.db.table_cache): the statement did not run, the engine's
  error hook flushed the table cache.
- The connection was lost (MariaDB restarted, an idle connection was closed): the pool
  then drops every connection older than the failure, so one more try gets a fresh one.
  That is safe for idempotent work, and for other work only when it failed before its
  commit was sent (it raises NotCommitted); a connection lost during COMMIT leaves the
  outcome unknown and is never retried.
"""

from __future__ import annotations

import logging
import random
import time
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Callable, Iterator, TypeVar

from sqlalchemy.exc import DBAPIError, OperationalError

from fastagi.db import table_cache

log = logging.getLogger(__name__)
T = TypeVar("T")

RETRYABLE_ERRNOS = {1213, 1205}  # ER_LOCK_DEADLOCK (and Galera certification), ER_LOCK_WAIT_TIMEOUT
MAX_PAUSE_S = 0.16

Observer = Callable[[str], None]   # called with "reconnect" or "lock" at every retry

# Who hears of the retries of the work running in this context: set by whoever runs the
# work (DbRunner, for each call on its threads: the metrics), for that work only.
_observer: ContextVar[Observer | None] = ContextVar("retry_observer", default=None)


@contextmanager
def observed_by(observer: Observer | None) -> Iterator[None]:
    """Within this block (this thread or task), every retry is reported to `observer`."""
    token = _observer.set(observer)
    try:
        yield
    finally:
        _observer.reset(token)


def _retried(kind: str) -> None:
    observer = _observer.get()
    if observer is not None:
        observer(kind)


class NotCommitted(Exception):
    """The connection was lost before the commit was sent: the transaction did not happen.
    Raised `from` the DBAPIError, which is what the caller sees if no retry is left."""


def mysql_errno(exc: BaseException) -> int | None:
    orig = getattr(exc, "orig", None)
    args = getattr(orig, "args", ())
    return args[0] if args and isinstance(args[0], int) else None


def is_disconnect(exc: BaseException) -> bool:
    return isinstance(exc, DBAPIError) and bool(exc.connection_invalidated)


def backoff(attempt: int, pause_s: float) -> float:
    """Seconds to wait after failed try number `attempt`: doubling from `pause_s`, capped
    at MAX_PAUSE_S, with jitter (half to all of it) so that two servers that conflicted
    do not meet again at the same instant."""
    return min(MAX_PAUSE_S, pause_s * 2 ** (attempt - 1)) * random.uniform(0.5, 1.0)


def with_retry(work: Callable[[], T], attempts: int = 8, pause_s: float = 0.01,
               idempotent: bool = False) -> T:
    """Run `work` (one whole transaction): again on deadlock/lock wait/certification
    failure, up to `attempts` (at most ~0.6 s of pauses by default); and once more after a
    lost connection when that is safe (see the module doc). What is left raises."""
    reconnected = False
    for attempt in range(1, attempts + 1):
        try:
            return work()
        except NotCommitted as exc:
            if reconnected:
                raise exc.__cause__ from None
            reconnected = True
            _retried("reconnect")
            log.info("transaction retried on a new connection: %s", exc.__cause__)
        except DBAPIError as exc:
            if is_disconnect(exc):
                if not idempotent or reconnected:
                    raise
                reconnected = True
                _retried("reconnect")
                log.info("transaction retried on a new connection: %s", exc)
                continue
            if table_cache.is_unparsed_trigger(exc) and attempt < attempts:
                # the engine's error hook flushed the table cache: nothing ran
                _retried("lock")
                log.info("transaction retried after a table cached with unparsed triggers "
                         "(attempt %d)", attempt)
                time.sleep(backoff(attempt, pause_s))
                continue
            if (not isinstance(exc, OperationalError)
                    or mysql_errno(exc) not in RETRYABLE_ERRNOS or attempt == attempts):
                raise
            _retried("lock")
            log.info("transaction retried after MySQL error %s (attempt %d)",
                     mysql_errno(exc), attempt)
            time.sleep(backoff(attempt, pause_s))
    raise AssertionError("unreachable")
