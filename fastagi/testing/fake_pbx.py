"""A fake Asterisk for the dialer: AMI over real TCP (fastagi.testing.fake_ami) whose
Originate plays what dialplan/ictcontact.conf does with a campaign call, against a real
FastAGI server, so admission and billing really happen.

For each `Originate` of `Local/s@ict-campaign/n` it answers `Originate successfully
queued`, then, like the ;2 half running [ict-campaign] -> [ict-outbound]:
`authorize,<ICTCONTACT_CAMPAIGN_CLIENT>,<ICTCONTACT_CAMPAIGN_NUMBER>,out` with the
OtherChannelId as uniqueid; on REJECT (or no usable answer) the call ends (`Failure`,
reason 1). On ALLOW the number's scripted `Outcome` decides: ANSWER sends
`OriginateResponse` Success (reason 4), holds the call `hold_seconds`, then runs `settle`
with the scripted talk time (as the handler does: `ms=<milliseconds>`); BUSY/NOANSWER/CONGESTION send Failure (5/3/8) first and
settle after (the order that gives the dialer the least help).

Progressive campaigns: `queues` holds FakeQueue agents; `QueueStatus` answers like
app_queue (QueueParams, a QueueMember per agent with Status 1 idle / 2 in use,
QueueStatusComplete). An answered call sent to [ict-campaign-queue] takes a free agent
`agent_delay` seconds after the answer (the time the contact takes to reach Queue()) for
its hold time; one that finds none is recorded in `no_agent`.

Channel ids are checked as Asterisk does (main/channel.c do_ids_conflict): the ;1 half
(ChannelId) is made first, then the ;2 half (OtherChannelId); an id that a live channel's
id starts with is "already in use" and the Originate fails before any dialplan runs
(`id_conflicts` records it).

It records what a test must check: every originate with its arrival time and variables,
calls in flight per client code and per number from the Originate until the call starts
hanging up (a number dialled while already in flight is a double dial), and the most in
flight at once.
"""

from __future__ import annotations

import itertools
import logging
import time
from collections import Counter
from dataclasses import dataclass
from typing import Callable

from twisted.internet.defer import Deferred, ensureDeferred
from twisted.internet.task import deferLater

from fastagi import channel_vars as v
from fastagi.testing.fake_ami import FakeAmi, FakeAmiSession
from fastagi.testing.fake_asterisk import run_session

log = logging.getLogger(__name__)

REASON_CODES = {"BUSY": 5, "NOANSWER": 3, "CONGESTION": 8, "CHANUNAVAIL": 0}


@dataclass(frozen=True)
class Outcome:
    dial_status: str = "ANSWER"     # ANSWER, BUSY, NOANSWER, CONGESTION, CHANUNAVAIL
    talk_seconds: float = 30        # talk time reported to settle (as ms=) when answered
    ring_seconds: float = 0.0       # real seconds before the contact answers or fails
    hold_seconds: float = 0.0       # real seconds an answered call stays up


@dataclass
class FakeQueue:
    agents: int                     # logged-in agents
    busy: int = 0                   # on a call now
    waiting: int = 0                # callers waiting (QueueParams Calls)
    most_busy: int = 0

    def take(self) -> bool:
        if self.busy >= self.agents:
            return False
        self.busy += 1
        self.most_busy = max(self.most_busy, self.busy)
        return True


@dataclass
class Originated:
    at: float                       # time.monotonic() when the Originate arrived
    headers: dict[str, str]
    variables: dict[str, str]
    result: str = ""                # ALLOW / REJECT:<reason> / FAILED
    call_id: str = ""


class _Session(FakeAmiSession):
    """FakeAmiSession that plays campaign calls."""

    def _action_originate(self, headers: dict[str, str]) -> None:
        if not headers.get("Channel"):
            self._respond(headers, "Error", "Channel not specified")
            return
        self._respond(headers, "Success", "Originate successfully queued")
        variables = dict(item.partition("=")[::2] for item in self.action.get_all("Variable"))
        ensureDeferred(self.fake.place_call(self, headers, variables)).addErrback(
            lambda failure: log.error("fake pbx: call failed: %s", failure.getTraceback()))

    def _action_queuestatus(self, headers: dict[str, str]) -> None:
        action_id = headers.get("ActionID")
        id_pair = [("ActionID", action_id)] if action_id else []
        self.fake.queue_status_asked += 1
        self._respond(headers, "Success", "Queue status will follow", ("EventList", "start"))
        items = 0
        for name, queue in self.fake.queues.items():
            if headers.get("Queue") and headers["Queue"] != name:
                continue
            self.write_message(("Event", "QueueParams"), ("Queue", name), ("Max", 0),
                               ("Strategy", "ringall"), ("Calls", queue.waiting), *id_pair)
            items += 1
            for n in range(queue.agents):
                in_use = n < queue.busy
                self.write_message(
                    ("Event", "QueueMember"), ("Queue", name), ("Name", f"agent {n}"),
                    ("Location", f"PJSIP/{name}-{n}"), ("Membership", "realtime"),
                    ("Penalty", 0), ("CallsTaken", 0), ("LastCall", 0), ("LastPause", 0),
                    ("LoginTime", 0), ("InCall", int(in_use)), ("Status", 2 if in_use else 1),
                    ("Paused", 0), ("PausedReason", ""), ("Wrapuptime", 0), *id_pair)
                items += 1
        self.write_message(("Event", "QueueStatusComplete"), *id_pair,
                           ("EventList", "Complete"), ("ListItems", items))


class FakePbx(FakeAmi):
    """FakeAmi + the campaign dialplan, against the FastAGI server on `agi_port`."""

    def __init__(self, reactor, agi_port: int, outcome_for: Callable[[str], Outcome] | None = None,
                 agent_delay: float = 0.2, **kwargs) -> None:
        super().__init__(**kwargs)
        self.reactor = reactor
        self.agi_port = agi_port
        self.outcome_for = outcome_for or (lambda number: Outcome())
        self.calls: list[Originated] = []
        self.in_flight: Counter[str] = Counter()          # client code -> calls in flight
        self.most_in_flight: Counter[str] = Counter()
        self.numbers_in_flight: Counter[str] = Counter()
        self.double_dials: list[str] = []
        self.settles: list[tuple[str, str, str]] = []     # (call id, seconds, status)
        self.open_calls = 0
        self.queues: dict[str, FakeQueue] = {}
        self.agent_delay = agent_delay
        self.no_agent: list[str] = []                     # answered, no agent free
        self.queue_status_asked = 0
        self.live_ids: set[str] = set()                   # uniqueids of the live halves
        self.id_conflicts: list[str] = []
        self._sequence = itertools.count(1)
        self._idle_waiters: list[Deferred] = []

    def buildProtocol(self, addr) -> _Session:
        return _Session(self)

    def when_idle(self) -> Deferred[None]:
        """Fires when no call is in progress (now or later)."""
        waiter: Deferred[None] = Deferred()
        if self.open_calls == 0:
            waiter.callback(None)
        else:
            self._idle_waiters.append(waiter)
        return waiter

    async def place_call(self, session: _Session, headers: dict[str, str],
                         variables: dict[str, str]) -> None:
        record = Originated(time.monotonic(), headers, variables)
        self.calls.append(record)
        client = variables.get(v.CAMPAIGN_CLIENT, "")
        number = variables.get(v.CAMPAIGN_NUMBER, "")
        self.open_calls += 1
        if self.numbers_in_flight[number]:
            self.double_dials.append(number)
        self.numbers_in_flight[number] += 1
        self.in_flight[client] += 1
        self.most_in_flight[client] = max(self.most_in_flight[client], self.in_flight[client])
        hung_up = False

        def hang_up() -> None:
            # The call counts as in flight until it starts hanging up: the database frees
            # its slot only later (when settle commits), so these counts can never be
            # above what the dialer saw.
            nonlocal hung_up
            if not hung_up:
                hung_up = True
                self.in_flight[client] -= 1
                self.numbers_in_flight[number] -= 1
        try:
            await self._play(session, headers, record, client, number, hang_up)
        finally:
            hang_up()
            self.open_calls -= 1
            if self.open_calls == 0:
                waiters, self._idle_waiters = self._idle_waiters, []
                for waiter in waiters:
                    waiter.callback(None)

    def _allocate_ids(self, headers: dict[str, str]) -> list[str] | None:
        """The ids of the two halves, or None (and nothing kept) if Asterisk would refuse
        one: by_uniqueid_cb matches an existing id by the new id's length (strncasecmp)."""
        made: list[str] = []
        for name in ("ChannelId", "OtherChannelId"):
            new = headers.get(name, "")
            if not new:
                continue
            if any(old.lower().startswith(new.lower()) for old in self.live_ids):
                log.error("fake pbx: Channel Unique ID '%s' already in use", new)
                self.id_conflicts.append(new)
                self.live_ids.difference_update(made)
                return None
            self.live_ids.add(new)
            made.append(new)
        return made

    async def _play(self, session, headers, record, client, number, hang_up) -> None:
        ids = self._allocate_ids(headers)
        if ids is None:
            record.result = "FAILED"
            hang_up()
            return self._respond_originate(session, headers, False, 0)
        try:
            await self._play_call(session, headers, record, client, number, hang_up)
        finally:
            self.live_ids.difference_update(ids)

    async def _play_call(self, session, headers, record, client, number, hang_up) -> None:
        channel = f"Local/s@ict-campaign-{next(self._sequence):08x};2"
        env = {"uniqueid": headers.get("OtherChannelId", ""), "channel": channel,
               "context": "ict-outbound", "extension": "s", "accountcode": client}
        if not client:
            record.result = "FAILED"
            hang_up()
            return self._respond_originate(session, headers, False, 1)
        auth = await run_session(self.reactor, "127.0.0.1", self.agi_port, "authorize",
                                 (client, number, "out"), env=env, timeout=10)
        found = dict(auth.set_by_server)
        if found.get(v.RESULT) != v.ALLOW or not found.get(v.CALL_ID):
            record.result = (f"REJECT:{found.get(v.REASON, '')}" if found.get(v.RESULT)
                             else "FAILED")
            hang_up()
            return self._respond_originate(session, headers, False, 1)
        record.result, record.call_id = "ALLOW", found[v.CALL_ID]
        outcome = self.outcome_for(number)
        if outcome.ring_seconds:
            await deferLater(self.reactor, outcome.ring_seconds, lambda: None)
        if outcome.dial_status == "ANSWER":
            self._respond_originate(session, headers, True, 4)
            queue = (self.queues.get(record.variables.get(v.CAMPAIGN_QUEUE, ""))
                     if headers.get("Context") == "ict-campaign-queue" else None)
            if queue is not None:
                await deferLater(self.reactor, self.agent_delay, lambda: None)
                if not queue.take():
                    self.no_agent.append(number)
                    queue = None
            if outcome.hold_seconds:
                await deferLater(self.reactor, outcome.hold_seconds, lambda: None)
            if queue is not None:
                queue.busy -= 1
            seconds = f"ms={round(outcome.talk_seconds * 1000)}"   # ANSWEREDTIME_MS
            hang_up()
        else:
            hang_up()
            self._respond_originate(session, headers, False,
                                    REASON_CODES.get(outcome.dial_status, 0))
            seconds = "ms="
        await run_session(self.reactor, "127.0.0.1", self.agi_port, "settle",
                          (record.call_id, seconds, outcome.dial_status), env=env, timeout=10)
        self.settles.append((record.call_id, seconds, outcome.dial_status))

    def _respond_originate(self, session, headers, success: bool, reason: int) -> None:
        pairs: list[tuple[str, object]] = [("Event", "OriginateResponse"),
                                           ("Privilege", "call,all")]
        if headers.get("ActionID"):
            pairs.append(("ActionID", headers["ActionID"]))
        pairs += [("Response", "Success" if success else "Failure"),
                  ("Channel", headers.get("Channel", "")), ("Context", headers.get("Context", "")),
                  ("Exten", headers.get("Exten", "")), ("Reason", reason),
                  ("Uniqueid", headers.get("ChannelId", "") if success else "<unknown>"),
                  ("CallerIDNum", headers.get("CallerID", "<unknown>")),
                  ("CallerIDName", "<unknown>")]
        self.broadcast_event(*pairs)
