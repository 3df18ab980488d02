"""Turn the injected clock into the naive-UTC datetimes the DATETIME columns hold."""

from __future__ import annotations

from datetime import datetime, timezone

from twisted.internet.interfaces import IReactorTime


def utc_now(clock: IReactorTime) -> datetime:
    return datetime.fromtimestamp(clock.seconds(), timezone.utc).replace(tzinfo=None)
