"""A client's supervisor runs its own campaigns from its login: every dialling rule, a
progressive campaign on its own queue (never another client's), its own do-not-call list
(the operator's stays hidden), and reads the progress board of its campaigns only."""

from __future__ import annotations

import pytest
from sqlalchemy import text

from tests.tenant.helpers import error_code, execute, query


def test_a_supervisor_sets_every_dialling_rule_of_its_own_campaign(world):
    a = world.clients["a"]
    with world.login("a", "supervisor") as conn:
        assert execute(conn, (
            "UPDATE campaigns SET calls_per_second = 2.5, max_channels = 4, keep_free_channels = 2, "
            "max_attempts = 5, retry_busy_seconds = 120, retry_no_answer_seconds = 600, "
            "retry_failed_seconds = 300, window_days = 'mon,tue', window_start = '10:00', "
            "window_end = '18:00', time_zone = 'Europe/London', recording = 'custom/offer' "
            "WHERE name = 'Spring'")) == 1
        execute(conn, "INSERT INTO queues (name) VALUES ('sales')")
        queue = query(conn, "SELECT id FROM queues WHERE name = 'sales'")[0][0]
        execute(conn, "INSERT INTO campaigns (name, mode, queue_id, queue_wait_seconds) "
                      "VALUES ('Callback', 'progressive', %s, 45)", (queue,))
        assert query(conn, "SELECT campaign, mode, queue, contacts FROM campaign_progress "
                           "ORDER BY campaign_id") == [("Spring", "broadcast", None, 1),
                                                       ("Callback", "progressive",
                                                        f"{a.code}-sales", 0)]
        with pytest.raises(Exception) as refused:
            execute(conn, "UPDATE campaigns SET dialer_note = 'x'")
        assert error_code(refused.value) == 1143      # the dialer's own column: read only
    with world.engine.connect() as conn:
        row = conn.execute(text(
            "SELECT client_id, calls_per_second, time_zone, recording FROM campaigns "
            "WHERE name = 'Spring' AND client_id = :c"), {"c": a.id}).one()
    assert (row.client_id, str(row.calls_per_second), row.time_zone, row.recording) == (
        a.id, "2.500", "Europe/London", "custom/offer")


def test_a_progressive_campaign_cannot_use_another_clients_queue(world):
    b = world.clients["b"]
    with world.engine.begin() as conn:
        theirs = conn.execute(text("INSERT INTO queues (client_id, name) VALUES (:c, 'sales')"),
                              {"c": b.id}).lastrowid
    with world.login("a", "supervisor") as conn:
        with pytest.raises(Exception) as refused:
            execute(conn, "INSERT INTO campaigns (name, mode, queue_id) "
                          "VALUES ('Steal', 'progressive', %s)", (theirs,))
        assert error_code(refused.value) == 1452     # fk_campaigns_queue_same_client


def test_each_client_keeps_its_own_do_not_call_list(world):
    a, b = world.clients["a"], world.clients["b"]
    with world.engine.begin() as conn:
        conn.execute(text("INSERT INTO do_not_call (phone, note) VALUES ('447700900001', "
                          "'operator: regulator list')"))
    with world.login("a", "supervisor") as conn:
        execute(conn, "INSERT INTO do_not_call (phone, note) VALUES ('447700900002', 'asked')")
        assert query(conn, "SELECT phone FROM do_not_call") == [("447700900002",)]
    with world.login("b", "agent") as conn:
        assert query(conn, "SELECT phone FROM do_not_call") == []
        with pytest.raises(Exception) as refused:
            execute(conn, "INSERT INTO do_not_call (phone) VALUES ('447700900003')")
        assert error_code(refused.value) == 1142     # agents read only
    with world.engine.connect() as conn:
        assert [tuple(r) for r in conn.execute(text(
            "SELECT client_id, phone FROM do_not_call ORDER BY id"))] == [
            (None, "447700900001"), (a.id, "447700900002")]
        # a's list now keeps the number out of a's campaigns, not b's
        assert conn.execute(text("SELECT on_do_not_call(:a, '447700900002'), "
                                 "on_do_not_call(:b, '447700900002')"),
                            {"a": a.id, "b": b.id}).one() == (1, 0)
