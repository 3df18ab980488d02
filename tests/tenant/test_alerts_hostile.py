"""Alerts seen from a client's own login: its `alerts` view shows its own events and nothing
else; the outbox, the destinations (with their webhook secrets) and the thresholds are the
operator's, and no statement of the client reads or changes them."""

from __future__ import annotations

from decimal import Decimal

import pymysql
import pytest
from sqlalchemy import text

from tests.tenant.helpers import assert_unchanged, checksums, error_code, execute, query

DENIED_TABLE = 1142
DENIED_COLUMN = 1143
NOT_UPDATABLE = 1288     # the target table of the UPDATE is not updatable


@pytest.fixture
def alerted(world):
    """Both clients alerted below 30 USD, each with its own webhook, and one low-balance
    alert and one suspension/reactivation pair each."""
    with world.engine.begin() as conn:
        for client in world.clients.values():
            conn.execute(text("UPDATE clients SET low_balance_threshold = 30 WHERE id = :c"),
                         {"c": client.id})
            conn.execute(text(
                "INSERT INTO alert_destinations (client_id, kind, address, secret) "
                "VALUES (:c, 'webhook', :url, :secret)"),
                {"c": client.id, "url": f"https://{client.code}.example/hook",
                 "secret": f"secret-of-{client.letter}-0123456789"})
    for client in world.clients.values():
        with world.engine.begin() as conn:
            conn.execute(text("INSERT INTO payments (client_id, amount, kind, reference) "
                              "VALUES (:c, -1, 'correction', 'fee')"), {"c": client.id})
            conn.execute(text("UPDATE clients SET status = 'suspended' WHERE id = :c"),
                         {"c": client.id})
            conn.execute(text("UPDATE clients SET status = 'active' WHERE id = :c"),
                         {"c": client.id})
    return world


def own_ids(world, letter: str) -> list[str]:
    with world.engine.connect() as conn:
        return [r[0] for r in conn.execute(text(
            "SELECT dedupe_id FROM alert_events WHERE client_id = :c ORDER BY id"),
            {"c": world.clients[letter].id})]


def test_a_login_sees_its_own_alerts_only(alerted):
    for role in ("admin", "agent"):
        login = alerted.login("a", role)
        try:
            seen = query(login, "SELECT dedupe_id, kind, balance, threshold FROM alerts"
                                " ORDER BY created_at, kind")
        finally:
            login.close()
        assert sorted(r[0] for r in seen) == sorted(own_ids(alerted, "a"))
        assert sorted(r[1] for r in seen) == ["low-balance", "reactivated", "suspended"]
        # the threshold was set above the balance (25): that was the crossing
        assert ("low-balance", Decimal("25.0000"), Decimal("30.0000")) in [r[1:] for r in seen]
    assert set(own_ids(alerted, "a")).isdisjoint(own_ids(alerted, "b"))


@pytest.mark.parametrize("sql, error", [
    ("SELECT * FROM {db}.alert_events", DENIED_TABLE),
    ("SELECT * FROM {db}.alert_deliveries", DENIED_TABLE),
    ("SELECT secret FROM {db}.alert_destinations", DENIED_TABLE),
    ("INSERT INTO {db}.alert_destinations (client_id, kind, address, secret)"
     " VALUES ({a_id}, 'webhook', 'https://attacker.example/', 'sixteen-chars-or-more')", DENIED_TABLE),
    ("UPDATE {db}.alert_destinations SET address = 'https://attacker.example/'", DENIED_TABLE),
    ("DELETE FROM {db}.alert_deliveries", DENIED_TABLE),
    ("UPDATE {db}.clients SET low_balance_threshold = NULL", DENIED_TABLE),
    ("UPDATE alerts SET kind = 'reactivated'", DENIED_TABLE),
    ("DELETE FROM alerts", DENIED_TABLE),
    ("SELECT secret FROM alerts", DENIED_COLUMN),
    ("CALL {db}.alert_event_add({b_id}, 'suspended', 0, NULL)", 1370),
    ("CALL {db}.note_balance_move({b_id}, 100, 0)", 1370),
])
def test_a_login_cannot_read_or_change_the_outbox_or_the_notifier_settings(alerted, sql, error):
    before = checksums(alerted)
    login = alerted.login("a", "admin")
    try:
        statement = sql.format(db=alerted.database, a_id=alerted.clients["a"].id,
                               b_id=alerted.clients["b"].id)
        with pytest.raises(pymysql.MySQLError) as refused:
            execute(login, statement)
        assert error_code(refused.value) in (error, 1054), refused.value
    finally:
        login.close()
    assert_unchanged(before, checksums(alerted))


def test_another_clients_alerts_by_their_ids_show_nothing(alerted):
    login = alerted.login("a", "admin")
    try:
        theirs = own_ids(alerted, "b")
        assert query(login, "SELECT * FROM alerts WHERE dedupe_id IN (%s, %s, %s)",
                     theirs) == []
    finally:
        login.close()
