"""Dialer.stop() with a database call in flight: the tick in progress starts no database
call after it (each could wait a whole --db-timeout on a database that answers nothing),
so stop() fires as soon as that call is over. Driven by a Clock and a database double
whose calls the test answers; no sockets."""

from __future__ import annotations

from typing import Any, Callable

from twisted.internet.defer import Deferred
from twisted.internet.task import Clock

from fastagi.campaigns.dialer import Dialer, DialerConfig
from fastagi.store import dialer as store


class HeldDb:
    """Each call is recorded by its function's name and answered by the test."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, Deferred]] = []

    def run(self, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Deferred:
        held: Deferred = Deferred()
        self.calls.append((fn.__name__, held))
        return held

    @property
    def names(self) -> list[str]:
        return [name for name, _ in self.calls]


def order(attempt_id: int) -> store.DialOrder:
    return store.DialOrder(attempt_id=attempt_id, uniqueid=f"u{attempt_id}", campaign_id=1,
                           contact_id=attempt_id, client_code="acme", phone="442000000001",
                           caller_id=None, recording="custom/promo")


def started_dialer() -> tuple[Dialer, HeldDb, Clock, list[int]]:
    clock, db, originated = Clock(), HeldDb(), []

    def originate(o: store.DialOrder) -> Deferred:
        originated.append(o.attempt_id)
        return Deferred()          # Asterisk has not answered yet

    dialer = Dialer(clock, db, originate, DialerConfig(name="d1"))
    dialer.start()
    return dialer, db, clock, originated


def test_stop_while_listing_campaigns_starts_no_claim():
    dialer, db, clock, originated = started_dialer()
    assert db.names == ["running_campaigns"]
    stopped = dialer.stop()
    assert not stopped.called                      # the tick's call is still in flight
    db.calls[0][1].callback([store.RunningCampaign(id=1, queue=None, wrapup_seconds=0)])
    assert stopped.called
    assert db.names == ["running_campaigns"]       # no claim, no housekeeping
    assert originated == [] and clock.getDelayedCalls() == []


def test_stop_while_claiming_dials_what_was_claimed_and_keeps_no_house():
    dialer, db, clock, originated = started_dialer()
    db.calls[0][1].callback([store.RunningCampaign(id=1, queue=None, wrapup_seconds=0),
                             store.RunningCampaign(id=2, queue=None, wrapup_seconds=0)])
    assert db.names == ["running_campaigns", "claim"]
    stopped = dialer.stop()
    db.calls[1][1].callback(store.ClaimResult(orders=(order(7), order(8)),
                                              limited_by="batch", skipped=0))
    assert stopped.called
    # The contacts claimed are dialled (else they would wait for the orphan sweep), but
    # no second campaign's claim, no finish_attempts, no close_orphans follows.
    assert originated == [7, 8]
    assert db.names == ["running_campaigns", "claim"]
    assert clock.getDelayedCalls() == []


def test_stop_during_housekeeping_starts_no_further_call():
    dialer, db, clock, originated = started_dialer()
    db.calls[0][1].callback([])
    assert db.names == ["running_campaigns", "finish_attempts"]
    stopped = dialer.stop()
    db.calls[1][1].callback(0)
    assert stopped.called
    assert db.names == ["running_campaigns", "finish_attempts"]   # no close_orphans
    assert clock.getDelayedCalls() == []


def test_without_stop_the_tick_goes_on_to_housekeeping():
    """The same tick not stopped makes every call (the tests above do not pass vacuously)."""
    dialer, db, clock, originated = started_dialer()
    db.calls[0][1].callback([store.RunningCampaign(id=1, queue=None, wrapup_seconds=0)])
    db.calls[1][1].callback(store.ClaimResult(orders=(), limited_by="batch", skipped=0))
    db.calls[2][1].callback(0)
    db.calls[3][1].callback(0)
    db.calls[4][1].callback([])
    assert db.names == ["running_campaigns", "claim", "finish_attempts", "close_orphans",
                        "finish_campaigns"]
    assert dialer.stop().called
    assert clock.getDelayedCalls() == []
