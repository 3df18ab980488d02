"""Keeping live calls in step with Asterisk: a call whose channel is gone gets closed now,
not at the stale sweep minutes later.

A pass (every --reconcile-seconds, default 30, and at every AMI login) reads this
Asterisk's live calls from the database FIRST, then asks Asterisk for its channels
(`CoreShowChannels`). Every call in the database snapshot had its channel when it was
authorized (the AGI ran on it), and a channel never comes back, so a call whose uniqueid
and channel name are both missing from the later list is gone. It is checked again
`confirm_seconds` later (a settle from the hangup handler may be landing; the CDR is
being written), and only a call still live and still missing is closed: settled from its
CDR (billsec, disposition) through the idempotent settle path, or closed as stale for
review when Asterisk left no CDR. A channel that exists is never touched.

Several servers connected to one Asterisk all reconcile it: each close is conditional on
the call still being live, so the first wins and the others change nothing. A server only
reconciles the Asterisk it is connected to (`calls.asterisk`).
"""

from __future__ import annotations

import logging
from typing import Callable, Sequence

from twisted.internet import task
from twisted.internet.interfaces import IReactorTime

from fastagi.ami.client import AmiClient
from fastagi.clock import utc_now
from fastagi.metrics import Metrics
from fastagi.services import DbRun
from fastagi.store import call_watch

log = logging.getLogger(__name__)

LIST_TIMEOUT = 30.0   # seconds for the whole CoreShowChannels list


class Reconciler:
    def __init__(self, ami: AmiClient, db: DbRun, clock: IReactorTime,
                 asterisk: Callable[[], str | None], metrics: Metrics,
                 confirm_seconds: float = 5.0) -> None:
        self._ami = ami
        self._db = db
        self._clock = clock
        self._asterisk = asterisk
        self._metrics = metrics
        self._confirm = confirm_seconds
        self._running = False
        self._waiting: object | None = None
        self.passes = 0
        ami.on_connected(lambda _: self.run())

    async def run(self) -> call_watch.GoneOutcome | None:
        """One pass; fires with what it closed (None when skipped: AMI down, or a pass
        already running)."""
        asterisk = self._asterisk()
        if self._running or not self._ami.connected or not asterisk:
            return None
        self._running = True
        try:
            outcome = await self._pass(asterisk)
        except Exception as exc:
            self._metrics.reconciliation_runs.labels("failed").inc()
            log.warning("reconciliation with Asterisk %s did not finish: %s", asterisk, exc)
            return None
        finally:
            self._running = False
        self.passes += 1
        self._metrics.reconciliation_runs.labels("ok").inc()
        return outcome

    async def _pass(self, asterisk: str) -> call_watch.GoneOutcome:
        suspects = await self._missing(asterisk, None)
        if not suspects:
            return call_watch.GoneOutcome((), (), ())
        self._waiting = task.deferLater(self._clock, self._confirm, lambda: None)
        try:
            await self._waiting
        finally:
            self._waiting = None
        gone = await self._missing(asterisk, [c.id for c in suspects])
        if not gone:
            return call_watch.GoneOutcome((), (), ())
        outcome = await self._db.run(call_watch.close_gone, gone, asterisk,
                                     utc_now(self._clock))
        self._metrics.reconciliation_fixes.labels("settled").inc(len(outcome.settled))
        self._metrics.reconciliation_fixes.labels("closed").inc(len(outcome.closed))
        if outcome.settled or outcome.closed:
            log.warning("reconciliation with Asterisk %s: %d call(s) whose channel was gone "
                        "settled from their CDR (%s), %d closed for review (%s)", asterisk,
                        len(outcome.settled), _ids(outcome.settled), len(outcome.closed),
                        _ids(outcome.closed))
        return outcome

    async def _missing(self, asterisk: str,
                       only: Sequence[int] | None) -> list[call_watch.LiveCall]:
        """Live calls (all on `asterisk`, or the `only` ids still live) whose channel
        Asterisk does not have. The database is read before Asterisk is asked."""
        if only is None:
            known = await self._db.run(call_watch.live_calls_on, asterisk)
        else:
            known = await self._db.run(call_watch.still_live, only)
        if not known:
            return []
        # a busy box lists thousands of channels: allow the list more than one action
        channels = await self._ami.core_show_channels(
            timeout=max(LIST_TIMEOUT, self._ami.action_timeout))
        uniqueids = {c.uniqueid for c in channels}
        names = {c.channel for c in channels}
        return [call for call in known
                if (call.uniqueid or call.channel)
                and call.uniqueid not in uniqueids and call.channel not in names]

    def stop(self) -> None:
        waiting = self._waiting
        if waiting is not None:
            waiting.cancel()


def _ids(ids: Sequence[int]) -> str:
    return ", ".join(map(str, ids[:20])) + (" ..." if len(ids) > 20 else "") or "-"
