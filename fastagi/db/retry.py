"""Retry a whole transaction when MySQL/MariaDB aborts it for a deadlock or lock wait."""

from __future__ import annotations

import logging
import time
from typing import Callable, TypeVar

from sqlalchemy.exc import OperationalError

log = logging.getLogger(__name__)
T = TypeVar("T")

RETRYABLE_ERRNOS = {1213, 1205}  # ER_LOCK_DEADLOCK, ER_LOCK_WAIT_TIMEOUT


def mysql_errno(exc: BaseException) -> int | None:
    orig = getattr(exc, "orig", None)
    args = getattr(orig, "args", ())
    return args[0] if args and isinstance(args[0], int) else None


def with_retry(work: Callable[[], T], attempts: int = 5, pause_s: float = 0.01) -> T:
    """Run `work` (one whole transaction), again on deadlock/lock-wait, up to `attempts`."""
    for attempt in range(1, attempts + 1):
        try:
            return work()
        except OperationalError as exc:
            if mysql_errno(exc) not in RETRYABLE_ERRNOS or attempt == attempts:
                raise
            log.info("transaction retried after MySQL error %s (attempt %d)",
                     mysql_errno(exc), attempt)
            time.sleep(pause_s * attempt)
    raise AssertionError("unreachable")
