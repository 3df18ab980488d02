"""Notifier.stop_claiming() (SIGTERM) while a tick drains a backlog: the tick sends and
records the batch it holds, then claims no more (another claim could wait a whole
--db-timeout on a database that answers nothing, and a backlog would hold up the exit
batch after batch). Sends are replaced by a recorder; the database by a double."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Any, Callable

import pytest_twisted
from twisted.internet import reactor
from twisted.internet.defer import Deferred, ensureDeferred, succeed

from fastagi.alerts import notifier as notifier_module
from fastagi.alerts.config import NotifierConfig
from fastagi.alerts.notifier import Notifier
from fastagi.store.alerts import AlertEvent, Delivery
from tests.support.waiting import wait_until


def delivery(n: int) -> Delivery:
    event = AlertEvent(dedupe_id=f"e{n}", kind="low-balance", client_id=1, client_code="acme",
                       client_name="Acme", balance=Decimal("4"), threshold=Decimal("5"),
                       created_at=datetime(2026, 1, 1))
    return Delivery(id=n, attempt=1, channel="webhook", address="http://hook.invalid/",
                    secret="s", event=event)


class HangingDb:
    """Claims are answered by the test (`claims`, in order: a claim left unanswered is a
    database that stopped answering); marks succeed at once."""

    def __init__(self) -> None:
        self.calls: list[str] = []
        self.claims: list[Deferred] = []

    def run(self, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Deferred:
        self.calls.append(fn.__name__)
        if fn.__name__ == "claim":
            self.claims.append(Deferred())
            return self.claims[-1]
        return succeed(None)


@pytest_twisted.ensureDeferred
async def test_a_stopping_tick_records_its_batch_and_claims_no_more(monkeypatch):
    sent = []
    monkeypatch.setattr(notifier_module, "send", lambda d, smtp, timeout: sent.append(d.id))
    db = HangingDb()
    notifier = Notifier(reactor, db, NotifierConfig(alert_name="n1", alert_batch=2))
    notifier.start()
    try:
        ticking = ensureDeferred(notifier.tick())
        notifier.stop_claiming()                      # SIGTERM while the claim is in flight
        db.claims[0].callback([delivery(1), delivery(2)])     # a full batch: a backlog
        ticking.addTimeout(5, reactor)   # without the check: waits on a second claim
        assert await ticking == 2
    finally:
        notifier.stop()
    assert sorted(sent) == [1, 2]
    assert db.calls == ["claim", "mark_delivered", "mark_delivered"]


@pytest_twisted.ensureDeferred
async def test_a_running_tick_drains_the_backlog(monkeypatch):
    """The same full batch without the stop: claims again at once (the test above is not
    vacuous)."""
    sent = []
    monkeypatch.setattr(notifier_module, "send", lambda d, smtp, timeout: sent.append(d.id))
    db = HangingDb()
    notifier = Notifier(reactor, db, NotifierConfig(alert_name="n1", alert_batch=2))
    notifier.start()
    try:
        ticking = ensureDeferred(notifier.tick())
        db.claims[0].callback([delivery(1), delivery(2)])
        await wait_until(lambda: len(db.claims) == 2, timeout=10, what="a second claim")
        db.claims[1].callback([])
        ticking.addTimeout(5, reactor)
        assert await ticking == 2
    finally:
        notifier.stop()
    assert sorted(sent) == [1, 2]
    assert db.calls == ["claim", "mark_delivered", "mark_delivered", "claim"]
