"""Alerts end to end: balance moves and status changes in the database, `ictcontact notifier`
(or `serve --alerts`) as a real subprocess, a real local SMTP server and a real HTTP
receiver that checks the signature. Outages of both, and a notifier killed mid-send."""

from __future__ import annotations

import collections
import signal
import time
from decimal import Decimal

import pytest
from sqlalchemy import text

from fastagi.alerts.messages import signature
from tests.builders import make_client, top_up
from tests.serve_process import PYTHON, LoggedProcess, Server, environ
from tests.support.alert_receivers import SmtpReceiver, WebhookReceiver
from tests.support.sql import execute, rows, scalar
from tests.support.waiting import wait_until_blocking

SECRET = "a shared secret of the client"
FAST = ("--alert-poll-seconds", "0.1", "--alert-retry-seconds", "0.2",
        "--alert-retry-max-seconds", "0.8", "--alert-timeout", "4", "--alert-lease-seconds", "12")


class Notifier(LoggedProcess):
    def __init__(self, url: str, smtp_port: int, name: str, *options: str) -> None:
        super().__init__([PYTHON, "-m", "fastagi", "--log-level", "INFO", "notifier",
                          "--alert-smtp", f"127.0.0.1:{smtp_port}", "--alert-name", name,
                          "--alert-smtp-from", "alerts@operator.example", *FAST, *options],
                         environ(ICTCONTACT_DB=url))
        self.wait_for(r"alert notifier \S+: polling")

    def stop(self) -> str:
        self.process.send_signal(signal.SIGTERM)
        code, log = self.finish()
        assert code == 0, log
        return log


@pytest.fixture
def smtp():
    receiver = SmtpReceiver().start()
    yield receiver
    receiver.stop()


@pytest.fixture
def hook():
    receiver = WebhookReceiver(SECRET).start()
    yield receiver
    receiver.release.set()
    receiver.stop()


@pytest.fixture
def client(engine, hook):
    """A client alerted below 5 USD, with 10: the operator's mailbox gets every alert, the
    client's own system a signed webhook."""
    with engine.begin() as conn:
        made = make_client(conn, balance=Decimal("10"))
        conn.execute(text("UPDATE clients SET low_balance_threshold = 5 WHERE id = :c"),
                     {"c": made.id})
        conn.execute(text("INSERT INTO alert_destinations (client_id, kind, address) "
                          "VALUES (NULL, 'email', 'ops@operator.example')"))
        conn.execute(text("INSERT INTO alert_destinations (client_id, kind, address, secret) "
                          "VALUES (:c, 'webhook', :url, :secret)"),
                     {"c": made.id, "url": hook.url, "secret": SECRET})
    return made


def spend(engine, client, amount: str) -> None:
    with engine.begin() as conn:
        top_up(conn, client.id, Decimal(amount), kind="correction")


def cross(engine, client) -> None:
    """One low-balance crossing: down below 5, then back to 10 (re-armed)."""
    balance = scalar(engine, "SELECT balance FROM client_list WHERE id = :c", c=client.id)
    spend(engine, client, str(Decimal("4.5") - balance))
    with engine.begin() as conn:
        top_up(conn, client.id, Decimal("5.5"))


def dedupe_ids(engine) -> list[str]:
    return [r[0] for r in rows(engine, "SELECT dedupe_id FROM alert_events ORDER BY id")]


def pending(engine) -> int:
    return scalar(engine, "SELECT COUNT(*) FROM alert_deliveries WHERE state = 'pending'")


def test_alerts_arrive_by_email_and_by_signed_webhook(engine, db_url, smtp, hook, client):
    notifier = Notifier(db_url, smtp.port, "n1")
    try:
        spend(engine, client, "-6")                 # 10 -> 4: below 5
        execute(engine, "UPDATE clients SET status = 'suspended' WHERE id = :c", c=client.id)
        execute(engine, "UPDATE clients SET status = 'active' WHERE id = :c", c=client.id)
        wait_until_blocking(lambda: len(smtp.mails) == 3 and len(hook.hooks) == 3, timeout=20)
    finally:
        notifier.stop()
    ids = dedupe_ids(engine)
    assert sorted(smtp.event_ids()) == sorted(ids) and sorted(hook.event_ids()) == sorted(ids)
    assert all(h.signature_ok for h in hook.hooks)
    by_kind = {h.document["event"]: h.document for h in hook.hooks}
    low = by_kind["low-balance"]
    assert (low["balance"], low["threshold"], low["currency"]) == ("4.0000", "5.0000", "USD")
    assert low["client"] == {"id": client.id, "code": client.code, "name": client.name}
    assert set(by_kind) == {"low-balance", "suspended", "reactivated"}
    mail = next(m for m in smtp.mails if m.event_id == low["id"])
    assert mail.to == "ops@operator.example"
    assert mail.message_id == f"<{low['id']}@alerts.ictcontact>"
    assert "below 5.0000 USD" in mail.subject and client.code in mail.subject
    assert pending(engine) == 0
    assert scalar(engine, "SELECT MAX(attempts) FROM alert_deliveries") == 1


def test_a_forged_or_replayed_webhook_fails_the_receivers_check(hook):
    body = b'{"event":"low-balance","id":"x"}'
    now = int(time.time())
    good = signature(SECRET, now, body)
    assert hook.verify(str(now), body, good)
    assert not hook.verify(str(now), body.replace(b"low", b"LOW"), good)   # body changed
    assert not hook.verify(str(now + 1), body, good)                       # timestamp changed
    assert not hook.verify(str(now), body, signature("another client's secret!", now, body))
    old = now - 3600
    assert not hook.verify(str(old), body, signature(SECRET, old, body))   # replayed later


def test_outages_of_the_mail_server_and_the_webhook_lose_nothing(engine, db_url, smtp, hook,
                                                                  client):
    smtp.stop()
    hook.mode = "fail"
    notifier = Notifier(db_url, smtp.port, "n1")
    try:
        for _ in range(3):
            cross(engine, client)
        # the webhook answers 500, the mail server refuses connections: tried again and again
        wait_until_blocking(lambda: scalar(engine, "SELECT MIN(attempts) FROM alert_deliveries")
                            >= 3, timeout=20)
        errors = {r[0]: r[1] for r in rows(engine,
                  "SELECT t.kind, MAX(d.last_error) FROM alert_deliveries d"
                  " JOIN alert_destinations t ON t.id = d.destination_id GROUP BY t.kind")}
        assert "500" in errors["webhook"] and "Refused" in errors["email"], errors
        hook.stop()                                 # now unreachable too
        webhook_tries = ("SELECT d.id, d.attempts, d.last_error FROM alert_deliveries d"
                         " JOIN alert_destinations t ON t.id = d.destination_id"
                         " WHERE t.kind = 'webhook' ORDER BY d.id")
        before = {r[0]: r[1] for r in rows(engine, webhook_tries)}
        # every webhook delivery tried again since the stop (each backs off on its own)
        wait_until_blocking(lambda: all(r[1] > before[r[0]] for r in rows(engine, webhook_tries)),
                            timeout=20)
        errors_now = [r[2] for r in rows(engine, webhook_tries)]
        assert all("Refused" in e for e in errors_now), errors_now
        assert smtp.mails == [] and hook.hooks == [] and pending(engine) == 6
        # backoff: waits double, up to the maximum (0.2, 0.4, 0.8, 0.8 ...), so the number of
        # tries in these seconds stays far below one per poll
        assert scalar(engine, "SELECT MAX(attempts) FROM alert_deliveries") < 40
        hook.mode = "ok"
        hook.start()
        smtp.start()
        wait_until_blocking(lambda: pending(engine) == 0, timeout=20)
    finally:
        notifier.stop()
    ids = dedupe_ids(engine)
    assert len(ids) == 3
    assert sorted(smtp.event_ids()) == sorted(ids) == sorted(hook.event_ids())
    assert all(h.signature_ok for h in hook.hooks)


def test_a_notifier_killed_mid_send_sends_it_again_with_the_same_id(engine, db_url, smtp,
                                                                   hook, client):
    hook.mode = "hang"                  # the receiver keeps the request and does not answer
    first = Notifier(db_url, smtp.port, "n1")
    cross(engine, client)
    assert hook.arrived.wait(20)
    first.process.send_signal(signal.SIGKILL)       # killed before it heard the answer
    first.finish()
    hook.mode = "ok"
    hook.release.set()
    cross(engine, client)                            # a second alert while no notifier runs
    assert scalar(engine, "SELECT COUNT(*) FROM alert_deliveries WHERE state = 'pending'"
                          " AND lease_until IS NOT NULL") >= 1
    second = Notifier(db_url, smtp.port, "n2")
    try:
        # the killed notifier's lease (12 s) lapses, then n2 sends that one again
        wait_until_blocking(lambda: pending(engine) == 0, timeout=30)
    finally:
        second.stop()
    ids = dedupe_ids(engine)
    assert len(ids) == 2
    received = collections.Counter(hook.event_ids())
    assert set(received) == set(ids)                  # nothing lost, nothing unknown
    assert received[ids[0]] == 2 and received[ids[1]] == 1   # the resend has the same id
    mailed = collections.Counter(smtp.event_ids())    # the mail may have been sent but not
    assert set(mailed) == set(ids) and max(mailed.values()) <= 2   # recorded at the kill
    assert all(h.signature_ok for h in hook.hooks)
    killed = rows(engine, "SELECT d.attempts, d.leased_by FROM alert_deliveries d"
                          " JOIN alert_destinations t ON t.id = d.destination_id"
                          " JOIN alert_events e ON e.id = d.event_id"
                          " WHERE t.kind = 'webhook' AND e.dedupe_id = :id", id=ids[0])
    assert [tuple(r) for r in killed] == [(2, "n2")]


def test_two_notifiers_never_send_the_same_alert_twice(engine, db_url, smtp, hook, client):
    notifiers = [Notifier(db_url, smtp.port, f"n{i}", "--alert-batch", "2") for i in (1, 2)]
    try:
        for _ in range(15):
            cross(engine, client)
        wait_until_blocking(lambda: pending(engine) == 0, timeout=30)
    finally:
        for notifier in notifiers:
            notifier.stop()
    ids = dedupe_ids(engine)
    assert len(ids) == 15
    assert sorted(hook.event_ids()) == sorted(ids) and sorted(smtp.event_ids()) == sorted(ids)
    senders = {r[0] for r in rows(engine, "SELECT DISTINCT leased_by FROM alert_deliveries")}
    assert senders <= {"n1", "n2"}


def test_serve_sends_alerts_with_the_alerts_switch(engine, db_url, smtp, hook, client):
    server = Server(db_url, "--alerts", "yes", "--alert-smtp", f"127.0.0.1:{smtp.port}",
                    "--alert-name", "serve-1", *FAST)
    try:
        spend(engine, client, "-6")
        wait_until_blocking(lambda: pending(engine) == 0 and len(hook.hooks) == 1, timeout=20)
    finally:
        server.process.send_signal(signal.SIGTERM)
        code, log = server.finish()
    assert code == 0, log
    assert hook.event_ids() == dedupe_ids(engine) == smtp.event_ids()
    assert scalar(engine, "SELECT DISTINCT leased_by FROM alert_deliveries") == "serve-1"
