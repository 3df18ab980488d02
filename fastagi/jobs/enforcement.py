"""Ending live calls over AMI: a suspension (or exhausted credit) hangs up the client's calls.

How a suspension is learnt cheaply: a trigger on `clients` writes a `client_changes` row
when a client becomes suspended (any session, any tool) or, for clients with
`end_calls_without_credit = 1`, when its balance no longer covers what its live calls
hold. `poll()` (every --enforce-poll-seconds, default 1) reads the log rows of the last
minute with one range read of an index, and acts on the rows it has not acted on yet;
when nothing changes that is the only statement. Reading a time window rather than
"ids above the last one" means a transaction that commits late (ids are taken at INSERT,
not at COMMIT) is still seen.

What is ended is decided again at that moment from the call records (`calls_to_end`: the
client is still suspended or still short; live, non-emergency calls on this Asterisk) and
each call gets one `Hangup` by its uniqueid with the Q.850 cause of the reason (suspended
and no-credit: 21 call rejected, SIP 403 to a call still ringing), up to 50 in flight at once. The hangup makes
Asterisk run the call's hangup handler, whose `settle` bills the talk time up to the
hang-up; if that settle never comes, reconciliation settles the call from its CDR.

While AMI is down nothing is polled (call control goes on, unaffected); at every AMI
login `catch_up()` ends every call that must end (suspensions missed while down), and it
also runs every --enforce-catch-up-seconds as a safety net. Several servers on one
Asterisk each send the Hangup: the second gets `No such channel`, which is harmless.
"""

from __future__ import annotations

import logging
from typing import Callable

from twisted.internet.defer import Deferred, DeferredSemaphore, gatherResults, succeed
from twisted.internet.interfaces import IReactorTime
from twisted.python.failure import Failure

from fastagi import reasons
from fastagi.ami.client import AmiClient
from fastagi.ami.errors import ActionFailed
from fastagi.metrics import Metrics
from fastagi.services import DbRun
from fastagi.store import call_watch

log = logging.getLogger(__name__)

CAUSE_FOR_WHY = {
    call_watch.SUSPENDED: reasons.cause_for(reasons.SUSPENDED),   # 21
    call_watch.NO_CREDIT: reasons.cause_for(reasons.NO_CREDIT),   # 21
}
# Hangup actions in flight at once: Asterisk runs one session's actions one after another,
# so each action's timeout must not also cover a long queue of others ahead of it.
MAX_IN_FLIGHT = 50
WHY_REASON = {call_watch.SUSPENDED: reasons.SUSPENDED, call_watch.NO_CREDIT: reasons.NO_CREDIT}


class Enforcer:
    """Ends the live calls that must end, on the Asterisk `asterisk()` names (None while
    unknown: nothing is done)."""

    def __init__(self, ami: AmiClient, db: DbRun, clock: IReactorTime,
                 asterisk: Callable[[], str | None], metrics: Metrics,
                 window_seconds: int = 60) -> None:
        self._ami = ami
        self._db = db
        self._clock = clock
        self._asterisk = asterisk
        self._metrics = metrics
        self._window = window_seconds
        self._acted: dict[int, float] = {}   # change-log id -> when acted on
        self.last_batch_sent_at: float | None = None
        self._in_flight = DeferredSemaphore(MAX_IN_FLIGHT)
        ami.on_connected(lambda _: self.catch_up())

    async def poll(self) -> int:
        """Act on new change-log rows; fires with the number of Hangup actions sent."""
        if not self._ami.connected or not self._asterisk():
            return 0
        changes = await self._db.run(call_watch.recent_changes, self._window)
        now = self._clock.seconds()
        for change_id, seen in list(self._acted.items()):
            if now - seen > 2 * self._window:
                del self._acted[change_id]
        new = [c for c in changes if c.id not in self._acted]
        if not new:
            return 0
        for change in new:
            self._acted[change.id] = now
        return await self._end({c.client_id for c in new})

    async def catch_up(self) -> int:
        """End every call that must end now (at AMI login, and periodically)."""
        if not self._ami.connected or not self._asterisk():
            return 0
        return await self._end(None)

    async def _end(self, client_ids: set[int] | None) -> int:
        asterisk = self._asterisk()
        to_end = await self._db.run(call_watch.calls_to_end, asterisk, client_ids)
        if not to_end:
            return 0
        log.warning("ending %d live call(s) on Asterisk %s: %s", len(to_end), asterisk,
                    ", ".join(f"call {c.call.id} ({c.why})" for c in to_end[:20])
                    + (" ..." if len(to_end) > 20 else ""))
        await gatherResults([self._in_flight.run(self._hangup, item) for item in to_end])
        self.last_batch_sent_at = self._clock.seconds()
        return len(to_end)

    def _hangup(self, item: call_watch.CallToEnd) -> Deferred:
        target = item.call.uniqueid or item.call.channel
        reason = WHY_REASON[item.why]
        if not target:
            log.error("call %d has neither uniqueid nor channel: cannot end it", item.call.id)
            self._metrics.hangup(reason, "failed")
            return succeed(None)

        def done(_: object) -> None:
            self._metrics.hangup(reason, "hungup")

        def failed(failure: Failure) -> None:
            if failure.check(ActionFailed) and "no such channel" in failure.value.message.lower():
                self._metrics.hangup(reason, "gone")   # already gone: reconciliation's job
                return
            self._metrics.hangup(reason, "failed")
            log.warning("Hangup of call %d (%s) failed: %s", item.call.id, target,
                        failure.getErrorMessage())

        try:
            sending = self._ami.hangup(target, CAUSE_FOR_WHY[item.why])
        except ValueError as exc:  # a uniqueid that cannot be sent (CR/LF in it)
            log.error("call %d: cannot send Hangup for %r: %s", item.call.id, target, exc)
            self._metrics.hangup(reason, "failed")
            return succeed(None)
        return sending.addCallbacks(done, failed)

