"""Extending live calls slice by slice while credit lasts (`--credit-slice-seconds`).

With slices (AMI required), `authorize` admits a call for at most one slice, reserves only
that, and sets `TIMEOUT(absolute)` on the channel to it (the dialplan's `L()` gets the
longest call allowed, --max-call-seconds). Every `check_seconds` this job finds the live
calls on its Asterisk whose limit ends within `lead_seconds`, extends each by up to one
slice in the database (reserved first, under the call's and the client's row lock, from
the credit available then: `call_watch.extend_call`), and only then moves the channel's
hang-up time with AMI `Setvar TIMEOUT(absolute)` to the new limit (seconds from now,
rounded down). func_timeout.c sets the channel's whentohangup; a bridged channel waits in
ast_waitfor_nandfds, which hangs it up when that time comes, and its hangup handler
settles it as usual.

No overdraft: a call can only talk what is already reserved. If AMI is down or the
Setvar fails, the old `TIMEOUT(absolute)` stands and the call ends at its last limit; the
extra reservation is released at settle. When no credit is left the call is simply not
extended. Emergency calls are never sliced.
"""

from __future__ import annotations

import logging
import math
from datetime import timedelta
from typing import Callable

from twisted.internet.interfaces import IReactorTime

from fastagi import channel_vars
from fastagi.ami.client import AmiClient
from fastagi.clock import utc_now
from fastagi.services import DbRun
from fastagi.store import call_watch

log = logging.getLogger(__name__)


class SliceExtender:
    def __init__(self, ami: AmiClient, db: DbRun, clock: IReactorTime,
                 asterisk: Callable[[], str | None], slice_seconds: int, cap_seconds: int,
                 grace_seconds: int, lead_seconds: float = 30.0) -> None:
        self._ami = ami
        self._db = db
        self._clock = clock
        self._asterisk = asterisk
        self.slice_seconds = slice_seconds
        self.cap_seconds = cap_seconds
        self.grace_seconds = grace_seconds
        self.lead_seconds = min(lead_seconds, slice_seconds / 2)

    async def run(self) -> list[call_watch.Extended]:
        """One pass; fires with the extensions whose Setvar Asterisk accepted."""
        asterisk = self._asterisk()
        if not self._ami.connected or not asterisk:
            return []   # the TIMEOUT(absolute) of each call's last slice stands
        due_before = utc_now(self._clock) + timedelta(seconds=self.lead_seconds)
        due = await self._db.run(call_watch.calls_due, asterisk, due_before,
                                 self.cap_seconds)
        done = []
        for item in due:
            extended = await self._db.run(call_watch.extend_call, item.call.id,
                                          self.slice_seconds, self.cap_seconds, due_before,
                                          self.grace_seconds)
            if extended is None:
                log.info("call %d not extended (no credit left, or no longer due): it ends "
                         "at its limit of %d s", item.call.id, item.max_seconds)
                continue
            left = math.floor((extended.deadline - utc_now(self._clock)).total_seconds())
            if left < 1:
                continue   # TIMEOUT(absolute)=0 would cancel the limit: never send it
            try:
                await self._ami.setvar(item.call.uniqueid or item.call.channel,
                                       channel_vars.TIMEOUT_ABSOLUTE, str(left))
            except Exception as exc:
                log.warning("call %d: reserved up to %d s but Setvar failed (%s): it ends at "
                            "its previous limit", item.call.id, extended.max_seconds, exc)
                continue
            done.append(extended)
        return done
