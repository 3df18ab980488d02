"""The alert outbox (schema/135): what lands in alert_events and alert_deliveries, in the
transaction that moved the balance or the status, once per crossing."""

from __future__ import annotations

from decimal import Decimal

import pytest
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError, OperationalError

from tests.builders import make_client, top_up
from tests.support.sql import execute, rows, scalar


def charge(conn, client, amount: str) -> None:
    """A settled call costing `amount`: the balance falls through the calls ledger trigger."""
    conn.execute(text(
        "INSERT INTO calls (client_id, client_code, number, state, cost, reserved, "
        "authorized_at) VALUES (:client, :code, '442071234567', 'settled', :cost, 0, "
        "UTC_TIMESTAMP(3))"), {"client": client.id, "code": client.code,
                               "cost": Decimal(amount)})


def correct(conn, client, amount: str) -> None:
    top_up(conn, client.id, Decimal(amount), kind="correction")


def events(engine, client) -> list[tuple]:
    return [tuple(r) for r in rows(engine, "SELECT kind, balance, threshold FROM alert_events"
                                           " WHERE client_id = :c ORDER BY id", c=client.id)]


@pytest.fixture
def client(engine):
    with engine.begin() as conn:
        made = make_client(conn, balance=Decimal("10"))
        conn.execute(text("UPDATE clients SET low_balance_threshold = 5 WHERE id = :c"),
                     {"c": made.id})
    return made


def test_no_threshold_no_alert(engine):
    with engine.begin() as conn:
        plain = make_client(conn, balance=Decimal("10"))
        charge(conn, plain, "9.5")
    assert events(engine, plain) == []


def test_once_per_crossing_and_rearmed_by_a_top_up(engine, client):
    with engine.begin() as conn:
        charge(conn, client, "4")          # 10 -> 6: above
    assert events(engine, client) == []
    with engine.begin() as conn:
        charge(conn, client, "2")          # 6 -> 4: crosses
    with engine.begin() as conn:
        charge(conn, client, "1")          # 4 -> 3: still below, no second alert
        correct(conn, client, "-1")        # 3 -> 2
    low = ("low-balance", Decimal("4.0000"), Decimal("5.0000"))
    assert events(engine, client) == [low]
    with engine.begin() as conn:
        top_up(conn, client.id, Decimal("1"))     # 2 -> 3: still below: not re-armed
        charge(conn, client, "0.5")               # 3 -> 2.5
    assert events(engine, client) == [low]
    with engine.begin() as conn:
        top_up(conn, client.id, Decimal("2.5"))   # 2.5 -> 5: at the threshold: re-armed
        charge(conn, client, "0.0001")            # 5 -> 4.9999: crosses again
    assert events(engine, client) == [low, ("low-balance", Decimal("4.9999"), Decimal("5.0000"))]


def test_the_alert_is_in_the_transaction_that_moved_the_balance(engine, client):
    with pytest.raises(RuntimeError):
        with engine.begin() as conn:
            charge(conn, client, "6")
            assert scalar(conn, "SELECT COUNT(*) FROM alert_events WHERE client_id = :c",
                          c=client.id) == 1
            raise RuntimeError("roll back")
    assert events(engine, client) == []
    # a refused move (below the floor) leaves no alert either
    with pytest.raises(OperationalError, match="below its floor"):
        with engine.begin() as conn:
            correct(conn, client, "-11")
    assert events(engine, client) == []


def test_a_threshold_raised_above_the_balance_is_a_crossing(engine, client):
    execute(engine, "UPDATE clients SET low_balance_threshold = 12 WHERE id = :c", c=client.id)
    execute(engine, "UPDATE clients SET low_balance_threshold = 15 WHERE id = :c", c=client.id)
    # already below 12: raising it to 15 is no new crossing; lowering is none either
    execute(engine, "UPDATE clients SET low_balance_threshold = 3 WHERE id = :c", c=client.id)
    assert events(engine, client) == [("low-balance", Decimal("10.0000"), Decimal("12.0000"))]


def test_suspension_and_reactivation_are_events(engine, client):
    execute(engine, "UPDATE clients SET status = 'suspended' WHERE id = :c", c=client.id)
    execute(engine, "UPDATE clients SET notes = 'called them' WHERE id = :c", c=client.id)
    execute(engine, "UPDATE clients SET status = 'active' WHERE id = :c", c=client.id)
    assert events(engine, client) == [("suspended", Decimal("10.0000"), None),
                                      ("reactivated", Decimal("10.0000"), None)]


def test_each_event_is_queued_for_the_destinations_that_want_it(engine, client):
    with engine.begin() as conn:
        other = make_client(conn, balance=Decimal("10"))
        ids = {}
        for name, client_id, kind, address, secret, wanted in (
                ("ops", None, "email", "ops@example.net", None, "low-balance,suspended,reactivated"),
                ("mine", client.id, "webhook", "http://127.0.0.1:9/hook", "s" * 16, "low-balance"),
                ("theirs", other.id, "email", "them@example.net", None, "low-balance,suspended"),
                ("off", None, "email", "off@example.net", None, "low-balance,suspended")):
            ids[name] = conn.execute(text(
                "INSERT INTO alert_destinations (client_id, kind, address, secret, events, enabled)"
                " VALUES (:c, :k, :a, :s, :e, :on)"),
                {"c": client_id, "k": kind, "a": address, "s": secret, "e": wanted,
                 "on": int(name != "off")}).lastrowid
        charge(conn, client, "6")
        conn.execute(text("UPDATE clients SET status = 'suspended' WHERE id = :c"), {"c": client.id})
    queued = rows(engine, "SELECT e.kind, d.destination_id, d.state, d.attempts"
                          " FROM alert_deliveries d JOIN alert_events e ON e.id = d.event_id"
                          " ORDER BY e.id, d.destination_id")
    assert [tuple(r) for r in queued] == [
        ("low-balance", ids["ops"], "pending", 0), ("low-balance", ids["mine"], "pending", 0),
        ("suspended", ids["ops"], "pending", 0)]
    dedupe = [r[0] for r in rows(engine, "SELECT dedupe_id FROM alert_events")]
    assert len(set(dedupe)) == 2 and all(len(d) == 36 for d in dedupe)


@pytest.mark.parametrize("kind, address, secret, said", [
    ("webhook", "http://example.net/hook", "short", "secret of 16 characters"),
    ("webhook", "ftp://example.net/hook", "s" * 16, "http:// or https:// URL"),
    ("webhook", "http://example.net/hook", None, "secret of 16 characters"),
    ("email", "Ops <ops@example.net>", None, "one plain address"),
    ("sms", "447700900123", None, "column 'kind'"),
])
def test_a_destination_that_cannot_work_is_refused(engine, kind, address, secret, said):
    with pytest.raises(DBAPIError, match=said):
        execute(engine, "INSERT INTO alert_destinations (kind, address, secret)"
                        " VALUES (:k, :a, :s)", k=kind, a=address, s=secret)


def test_events_are_insert_only_for_the_notifier(engine, client):
    """The notifier's account needs no write on alert_events; the outbox keeps its rows
    while deliveries refer to them."""
    with engine.begin() as conn:
        conn.execute(text(
            "INSERT INTO alert_destinations (kind, address) VALUES ('email', 'ops@example.net')"))
        charge(conn, client, "6")
    with pytest.raises(Exception, match="foreign key|1451"):
        execute(engine, "DELETE FROM alert_events WHERE client_id = :c", c=client.id)


def test_a_threshold_is_exact_or_refused(engine, client):
    with pytest.raises(OperationalError, match="low_balance_threshold takes at most 4 decimals"):
        execute(engine, "UPDATE clients SET low_balance_threshold = 5.00001 WHERE id = :c",
                c=client.id)
    with pytest.raises(OperationalError, match="low_balance_threshold takes at most 4 decimals"):
        execute(engine, "INSERT INTO clients (code, name, low_balance_threshold)"
                        " VALUES ('exact1', 'Exact 1', 0.00001)")
    with engine.begin() as conn:
        conn.execute(text("SET SESSION sql_notes = 0"))
        try:
            with pytest.raises(OperationalError, match="sql_notes off"):
                conn.execute(text("UPDATE clients SET low_balance_threshold = 6 WHERE id = :c"),
                             {"c": client.id})
            # a form saved whole, the threshold as it was: goes through
            conn.execute(text("UPDATE clients SET low_balance_threshold = 5, notes = 'x'"
                              " WHERE id = :c"), {"c": client.id})
        finally:
            conn.execute(text("SET SESSION sql_notes = 1"))
    assert scalar(engine, "SELECT low_balance_threshold FROM clients WHERE id = :c",
                  c=client.id) == Decimal("5.0000")
