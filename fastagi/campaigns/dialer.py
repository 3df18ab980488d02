"""The dialer service: every tick, claim what each running campaign may dial now and
originate it; every half second, finish ended attempts by the retry rules.

All state that decides anything lives in the database (fastagi.store.dialer),
so several dialers can run side by side and one may die at any moment. A pause, a
suspension or exhausted credit is seen by the very next claim (a tick is 50 ms by
default): no new originate after it.
"""

from __future__ import annotations

import logging
import random
from dataclasses import dataclass, field
from typing import Any, Callable

from twisted.internet.defer import CancelledError, Deferred, ensureDeferred, fail, succeed
from twisted.internet.interfaces import IDelayedCall, IReactorTime
from twisted.python.failure import Failure

from fastagi.ami.errors import ActionFailed, ConnectionLost, NotConnected
from fastagi.campaigns.originate import Originate, OriginateOutcome
from fastagi.campaigns.pacing import CONNECTION_LOST, NOT_SENT
from fastagi.campaigns.queue_status import QueueSnapshot, QueueWatch
from fastagi.clock import utc_now
from fastagi.emergency import DEFAULT_NUMBERS as DEFAULT_EMERGENCY_NUMBERS
from fastagi.billing.admission import DEFAULT_CREDIT_SLICE_SECONDS, DEFAULT_MAX_CALL_SECONDS
from fastagi.services import DbRun
from fastagi.store import dialer as store

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class DialerConfig:
    """Settings of one dialer process (times in seconds)."""

    name: str
    tick_seconds: float = 0.05          # how often campaigns are claimed from
    list_seconds: float = 1.0           # how often the list of running campaigns is read
    housekeeping_seconds: float = 0.5   # finishing attempts, renewing claims
    finish_seconds: float = 5.0         # marking campaigns finished
    claim_seconds: float = 30.0         # a dead dialer's claims lapse after this
    orphan_seconds: float = 120.0       # an attempt authorize never saw is failed after this
    failure_grace_seconds: float = 10.0  # after a failed originate, wait for the dialplan
    batch: int = 50                     # most contacts claimed per campaign per tick
    requeue_seconds: float = 30.0       # a contact refused for the client's limits waits
    queue_poll_seconds: float = 0.5     # progressive: how old a queue's agent count may be
    emergency_numbers: tuple[str, ...] = DEFAULT_EMERGENCY_NUMBERS
    credit_slice_seconds: int = DEFAULT_CREDIT_SLICE_SECONDS  # as serve's: what authorize reserves
    max_call_seconds: int = DEFAULT_MAX_CALL_SECONDS          # as serve's

    def __post_init__(self) -> None:
        if not self.name or len(self.name) > 64:
            raise ValueError("the dialer name must be 1-64 characters")
        for name in ("tick_seconds", "list_seconds", "housekeeping_seconds", "claim_seconds",
                     "orphan_seconds", "batch", "queue_poll_seconds"):
            if getattr(self, name) <= 0:
                raise ValueError(f"{name} must be positive, not {getattr(self, name)!r}")
        if self.credit_slice_seconds < 0 or self.max_call_seconds <= 0:
            raise ValueError("credit_slice_seconds must not be negative and max_call_seconds "
                             "must be positive (set them as for serve)")
        if self.claim_seconds <= self.housekeeping_seconds * 4:
            raise ValueError("claim_seconds must be well above housekeeping_seconds "
                             "(claims are renewed by housekeeping)")

    @property
    def limits(self) -> store.DialerLimits:
        return store.DialerLimits(dialer=self.name, claim_seconds=self.claim_seconds,
                                  batch=self.batch, emergency_numbers=self.emergency_numbers,
                                  requeue_seconds=self.requeue_seconds,
                                  credit_slice_seconds=self.credit_slice_seconds,
                                  max_call_seconds=self.max_call_seconds)


@dataclass
class DialerStats:
    originated: int = 0
    answered: int = 0
    originate_failed: int = 0
    skipped: int = 0
    finished: int = 0
    limited_by: dict[str, int] = field(default_factory=dict)


class Dialer:
    """Runs on `clock` against `db` (a DbRunner), starting calls with `originate`.
    Nothing is claimed while `ready()` is false (no AMI connection): a contact claimed
    then would only fail. `queues` tells a progressive campaign's free agents; without it
    progressive campaigns are not dialled."""

    def __init__(self, clock: IReactorTime, db: DbRun, originate: Originate,
                 config: DialerConfig, ready: Callable[[], bool] = lambda: True,
                 queues: QueueWatch | None = None) -> None:
        self.clock = clock
        self.db = db
        self.originate = originate
        self.config = config
        self.ready = ready
        self.queues = queues
        self._snapshots: dict[str, tuple[float, QueueSnapshot]] = {}
        self._was_ready = True
        self.stats = DialerStats()
        self._running = False
        self._next_tick: IDelayedCall | None = None
        self._ticking: Deferred | None = None      # the tick in progress
        self._stopped: list[Deferred] = []         # stop() callers waiting for that tick
        self._campaigns: list[store.RunningCampaign] = []
        self._listed_at = self._housekept_at = self._finished_at = float("-inf")
        self._timers: set[IDelayedCall] = set()
        self._pending: set[Deferred] = set()

    def start(self) -> None:
        log.info("dialer %s starting (tick %g s, claims lapse after %g s)", self.config.name,
                 self.config.tick_seconds, self.config.claim_seconds)
        self._running = True
        if self._ticking is None and self._next_tick is None:   # not already ticking
            self._run_tick()

    def stop(self) -> Deferred[None]:
        """Stop claiming; fires once the tick in progress is over: it starts no database
        call after this, so that is within one database timeout (or an AMI action timeout,
        for a queue's status). Calls in flight go on in Asterisk; their outcomes are written
        by the FastAGI server and finished by any dialer once this one's claims lapse."""
        self._running = False
        if self._next_tick is not None and self._next_tick.active():
            self._next_tick.cancel()
        self._next_tick = None
        self._stop_waiting()
        if self._ticking is None:
            return succeed(None)
        done: Deferred[None] = Deferred()
        self._stopped.append(done)
        return done

    def _stop_waiting(self) -> None:
        """Forget the originates in flight and the grace timers of failed ones: stopping."""
        for timer in list(self._timers):
            if timer.active():
                timer.cancel()
        self._timers.clear()
        for pending in list(self._pending):
            pending.cancel()

    # --- the tick ----------------------------------------------------------------------
    def _run_tick(self) -> None:
        self._next_tick = None
        started_at = self.clock.seconds()
        self._ticking = ensureDeferred(self.tick()).addErrback(self._tick_failed)
        self._ticking.addBoth(self._tick_over, started_at)

    def _tick_over(self, _: object, started_at: float) -> None:
        self._ticking = None
        waiting, self._stopped = self._stopped, []
        for done in waiting:
            done.callback(None)
        if self._running and self._next_tick is None:
            # Each tick comes 0.5-1.5 tick_seconds after the last one began, at random:
            # dialers ticking in lockstep would hand every freed channel to the one whose
            # tick falls just after a call ends, leaving the others idle.
            interval = self.config.tick_seconds * random.uniform(0.5, 1.5)
            delay = max(0.0, started_at + interval - self.clock.seconds())
            self._next_tick = self.clock.callLater(delay, self._run_tick)

    @staticmethod
    def _tick_failed(failure: Failure) -> None:
        log.error("dialer tick failed (next tick tries again): %s", failure.getErrorMessage())

    async def tick(self) -> None:
        """One round of claims and housekeeping. Once stop() is called it starts no more
        database calls (each `if not self._running` after an await): with a database that
        answers nothing, each would wait its whole timeout and hold up the stop. What it
        leaves undone, the next tick of any dialer does."""
        config, seconds = self.config, self.clock.seconds()
        if seconds - self._listed_at >= config.list_seconds:
            self._campaigns = await self.db.run(store.running_campaigns)
            self._listed_at = seconds
            if not self._running:
                return
        ready = self.ready()
        if ready != self._was_ready:
            self._was_ready = ready
            if ready:
                log.info("dialer %s: Asterisk reachable again, dialling", config.name)
            else:
                log.warning("dialer %s: no AMI connection: no new calls until it is back",
                            config.name)
        for campaign in self._campaigns if ready else ():
            agents = None
            if campaign.queue is not None:
                agents = await self._agents(campaign)
                if not self._running:
                    return
                if agents is None:
                    continue
            result = await self.db.run(store.claim, campaign.id, utc_now(self.clock),
                                       config.limits, agents)
            self.stats.skipped += result.skipped
            self.stats.limited_by[result.limited_by] = \
                self.stats.limited_by.get(result.limited_by, 0) + 1
            # Claimed even if stop() came meanwhile: dialled (no database call), else each
            # attempt would wait for the orphan sweep and count as failed.
            for order in result.orders:
                self._start(order)
            if not self._running:
                self._stop_waiting()   # as stop() did for the calls started before it
                return
        if seconds - self._housekept_at >= config.housekeeping_seconds:
            self._housekept_at = seconds
            now = utc_now(self.clock)
            await self.db.run(store.finish_attempts, now, config.limits)
            if not self._running:
                return
            await self.db.run(store.close_orphans, now, config.orphan_seconds)
            if not self._running:
                return
        if seconds - self._finished_at >= config.finish_seconds:
            self._finished_at = seconds
            for campaign_id in await self.db.run(store.finish_campaigns):
                self.stats.finished += 1
                log.info("campaign %s finished: nothing left to dial", campaign_id)

    async def _agents(self, campaign: store.RunningCampaign) -> QueueSnapshot | None:
        """The queue's free agents, asked again once the last answer is older than
        queue_poll_seconds; None when Asterisk cannot say (nobody is dialled then)."""
        if self.queues is None:
            return None
        now = self.clock.seconds()
        cached = self._snapshots.get(campaign.queue)
        if cached is not None and now - cached[0] < self.config.queue_poll_seconds:
            return cached[1]
        try:
            snapshot = await self.queues.snapshot(campaign.queue, campaign.wrapup_seconds,
                                                  utc_now(self.clock))
        except Exception as exc:   # no AMI, timeout, refused: dial nobody for this queue
            log.warning("dialer: no status of queue %s: %s", campaign.queue, exc)
            self._snapshots.pop(campaign.queue, None)
            return None
        self._snapshots[campaign.queue] = (now, snapshot)
        return snapshot

    # --- one call ----------------------------------------------------------------------
    def _start(self, order: store.DialOrder) -> None:
        self.stats.originated += 1
        try:
            started = self.originate(order)
        except Exception:          # a value AMI cannot carry: nothing was sent
            started = fail(Failure())
        self._pending.add(started)
        started.addBoth(self._settled_pending, started)
        started.addCallbacks(self._outcome, self._error, callbackArgs=(order,),
                             errbackArgs=(order,))
        started.addErrback(lambda failure: log.error("dialer: attempt %s: %s", order.attempt_id,
                                                     failure.getTraceback()))

    def _settled_pending(self, result: Any, started: Deferred) -> Any:
        self._pending.discard(started)
        return result

    def _outcome(self, outcome: OriginateOutcome, order: store.DialOrder) -> None:
        if outcome.answered:
            self.stats.answered += 1
            self._snapshots.pop(order.queue or "", None)   # an agent will be taken: ask again
            self.db.run(store.answered, order.attempt_id, utc_now(self.clock)).addErrback(
                lambda failure: log.error("dialer: attempt %s: answer not recorded: %s",
                                          order.attempt_id, failure.getErrorMessage()))
            return
        # The dialplan may still be writing the real outcome (settle runs on the ;2 half
        # as it hangs up): only an attempt authorize never saw is closed here.
        self._later(order, f"originate failed: {outcome.reason}")

    def _error(self, failure: Failure, order: store.DialOrder) -> None:
        if failure.check(CancelledError):   # stopping: the orphan sweep closes it if need be
            return
        if failure.check(NotConnected):     # never sent: the contact is not charged an attempt
            log.warning("dialer: attempt %s not originated: no AMI connection", order.attempt_id)
            self._close(order, NOT_SENT)
        elif failure.check(ActionFailed, ValueError):
            log.warning("dialer: attempt %s not originated: %s", order.attempt_id,
                        failure.getErrorMessage())
            self._close(order, f"not originated: {failure.getErrorMessage()}")
        elif failure.check(ConnectionLost):  # the call may exist: the grace tells
            log.warning("dialer: attempt %s: AMI connection lost before the reply",
                        order.attempt_id)
            self._later(order, CONNECTION_LOST)
        else:            # no OriginateResponse in time: the call may exist
            self._later(order, f"originate unanswered: {failure.getErrorMessage()}")

    def _later(self, order: store.DialOrder, reason: str) -> None:
        timer: IDelayedCall | None = None

        def fire() -> None:
            self._timers.discard(timer)
            self._close(order, reason)
        timer = self.clock.callLater(self.config.failure_grace_seconds, fire)
        self._timers.add(timer)

    def _close(self, order: store.DialOrder, reason: str) -> None:
        closing = self.db.run(store.originate_failed, order.attempt_id, reason,
                              utc_now(self.clock))

        def closed(was_open: bool) -> None:
            if was_open:
                self.stats.originate_failed += 1
        closing.addCallbacks(closed, lambda failure: log.error(
            "dialer: cannot close attempt %s (the orphan sweep will): %s", order.attempt_id,
            failure.getErrorMessage()))
