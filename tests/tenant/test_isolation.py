"""Two clients with the same campaign, agent, extension and contact names: each login
sees and changes only its own rows, with the names it expects, and nothing else."""

from __future__ import annotations

import pymysql
import pytest
from sqlalchemy import text

from tests.tenant.helpers import execute, query

TENANT_TABLES = ["agents", "alerts", "calls", "campaign_attempts", "campaign_destinations",
                 "campaign_progress", "campaign_runs", "campaigns", "client_list", "contacts",
                 "db_logins", "dids", "do_not_call", "extensions", "my_client_calls", "my_clients",
                 "my_margins", "my_margins_daily", "my_plans", "my_rates", "payments", "queues",
                 "rates", "transfers", "users"]


def test_a_login_sees_its_own_world_by_the_expected_names(world):
    a = world.clients["a"]
    with world.login("a", "agent") as conn:
        assert {r[0] for r in query(conn, "SHOW DATABASES")} == {"information_schema",
                                                                 world.tenant_database}
        assert sorted(r[0] for r in query(conn, "SHOW TABLES")) == TENANT_TABLES
        assert query(conn, "SELECT code, balance, plan, channels, status FROM client_list") == [
            (a.code, 25, "default", 10, "active")]
        assert query(conn, "SELECT id, name FROM campaigns") == [(a.campaign_id, "Spring")]
        assert query(conn, "SELECT id, name FROM agents") == [(a.agent_id, "Agent 7")]
        assert query(conn, "SELECT id, exten, sip_username, sip_password FROM extensions") == [
            (a.extension_id, "1001", f"{a.code}-1001", None)]
        assert query(conn, "SELECT id, campaign_id, phone FROM contacts") == [
            (a.contact_id, a.campaign_id, "442071234567")]
        assert sorted(r[0] for r in query(conn, "SELECT username FROM users")) == sorted(
            f"{role}-{a.code}" for role in ("admin", "supervisor", "agent"))
        assert [r[0] for r in query(conn, "SELECT account FROM db_logins ORDER BY user_id")] == [
            a.accounts[role] for role in ("admin", "supervisor", "agent")]
        assert query(conn, "SELECT amount, kind FROM payments") == [(25, "opening")]
        assert len(query(conn, "SELECT did FROM dids")) == 1


def test_each_login_changes_only_its_own_rows_with_the_same_names(world):
    a, b = world.clients["a"], world.clients["b"]
    with world.login("a", "supervisor") as conn:
        assert execute(conn, "UPDATE campaigns SET status = 'paused' WHERE name = 'Spring'") == 1
        assert execute(conn, "UPDATE agents SET status = 'disabled' WHERE name = 'Agent 7'") == 1
        assert execute(conn, "UPDATE contacts SET first_name = 'Alex' WHERE phone = '442071234567'") == 1
        execute(conn, "INSERT INTO campaigns (name, caller_id) VALUES ('Summer', '1001')")
        execute(conn, "INSERT INTO contacts (campaign_id, phone) VALUES (%s, '15551234')",
                (a.campaign_id,))
        assert execute(conn, "DELETE FROM contacts WHERE phone = '15551234'") == 1
    with world.login("b", "admin") as conn:
        # B's same-named rows did not move; B can use the same names for new rows too.
        assert query(conn, "SELECT status FROM campaigns") == [("draft",)]
        assert query(conn, "SELECT status FROM agents") == [("active",)]
        execute(conn, "INSERT INTO campaigns (name) VALUES ('Summer')")
        execute(conn, "INSERT INTO extensions (exten, sip_password) VALUES ('1002', 'other-secret')")
    with world.engine.connect() as conn:
        rows = conn.execute(text(
            "SELECT client_id, name, status FROM campaigns ORDER BY client_id, name")).all()
        assert [tuple(r) for r in rows] == [(a.id, "Spring", "paused"), (a.id, "Summer", "draft"),
                                            (b.id, "Spring", "draft"), (b.id, "Summer", "draft")]
        assert conn.execute(text("SELECT client_id, sip_username FROM extensions WHERE exten = '1002'")
                            ).one() == (b.id, f"{b.code}-1002")
        assert conn.execute(text("SELECT first_name FROM contacts WHERE client_id = :b"),
                            {"b": b.id}).scalar_one() == "Sam"


def test_rows_a_login_inserts_belong_to_its_client(world):
    a = world.clients["a"]
    with world.login("a", "admin") as conn:
        execute(conn, "INSERT INTO agents (name) VALUES ('Agent 8')")
        execute(conn, "INSERT INTO users (username, role) VALUES (%s, 'agent')", (f"new-{a.code}",))
        execute(conn, "INSERT INTO contacts (phone) VALUES ('15550000')")
    with world.engine.connect() as conn:
        assert conn.execute(text("SELECT client_id FROM agents WHERE name = 'Agent 8'")).all() == [(a.id,)]
        assert conn.execute(text("SELECT client_id FROM users WHERE username = :u"),
                            {"u": f"new-{a.code}"}).all() == [(a.id,)]
        assert conn.execute(text("SELECT client_id, campaign_id FROM contacts WHERE phone = '15550000'")
                            ).all() == [(a.id, None)]


def test_base_table_rules_still_hold_through_the_views(world):
    a = world.clients["a"]
    with world.login("a", "admin") as conn:
        for sql, code in [
            ("INSERT INTO campaigns (name) VALUES ('Spring')", 1062),          # unique per client
            ("INSERT INTO contacts (phone) VALUES ('not a number')", 4025),    # CHECK
            ("INSERT INTO extensions (exten) VALUES ('1001')", 1062),
            ("UPDATE extensions SET exten = '1009'", 1644),                    # trigger
        ]:
            try:
                execute(conn, sql)
            except Exception as exc:  # noqa: BLE001 - the code is asserted
                assert exc.args[0] == code, (sql, exc)
            else:
                raise AssertionError(f"accepted: {sql}")
        execute(conn, "UPDATE extensions SET sip_password = 'new-secret-1'")
        assert query(conn, "SELECT sip_password FROM extensions") == [(None,)]
    with world.engine.connect() as conn:
        md5 = conn.execute(text("SELECT md5_cred FROM extensions WHERE id = :e"),
                           {"e": a.extension_id}).scalar_one()
        expected = conn.execute(text("SELECT MD5(CONCAT(:u, ':asterisk:new-secret-1'))"),
                                {"u": f"{a.code}-1001"}).scalar_one()
        assert md5 == expected


def test_writable_views_carry_cascaded_check_option(world):
    with world.engine.connect() as conn:
        rows = dict(conn.execute(text(
            "SELECT table_name, check_option FROM information_schema.views "
            "WHERE table_schema = :t"), {"t": world.tenant_database}).all())
    assert rows == {"agents": "CASCADED", "campaigns": "CASCADED", "contacts": "CASCADED",
                    "extensions": "CASCADED", "users": "CASCADED", "calls": "NONE",
                    "client_list": "NONE", "db_logins": "NONE", "dids": "NONE",
                    "payments": "NONE", "rates": "NONE", "queues": "CASCADED",
                    "do_not_call": "CASCADED", "campaign_progress": "NONE",
                    "campaign_attempts": "NONE", "campaign_destinations": "NONE",
                    "campaign_runs": "NONE",
                    "alerts": "NONE", "my_client_calls": "NONE", "my_clients": "NONE",
                    "my_margins": "NONE", "my_margins_daily": "NONE", "my_plans": "NONE",
                    "my_rates": "NONE", "transfers": "NONE"}


def test_a_table_is_offered_by_adding_rows_and_refreshing(world):
    """How a later table (e.g. queues) joins the tenant world: rows, then one CALL."""
    a = world.clients["a"]
    with world.engine.begin() as conn:
        conn.execute(text(
            "INSERT INTO tenant_views (name, writable, description, definition) VALUES "
            "('phones', 1, 'test', 'SELECT id, exten, callerid FROM extensions "
            "WHERE client_id = (SELECT client_id FROM tenant_session)')"))
        conn.execute(text("INSERT INTO tenant_privileges (view_name, role, privilege, columns) "
                          "VALUES ('phones', 'agent', 'SELECT', NULL), "
                          "('phones', 'supervisor', 'UPDATE', 'callerid')"))
        conn.execute(text("CALL refresh_tenant_world()"))
    with world.login("a", "supervisor") as conn:
        assert query(conn, "SELECT id, exten FROM phones") == [(a.extension_id, "1001")]
        assert execute(conn, "UPDATE phones SET callerid = 'Desk'") == 1
    with world.login("a", "agent") as conn:
        try:
            execute(conn, "UPDATE phones SET callerid = 'x'")
        except Exception as exc:  # noqa: BLE001 - the code is asserted
            assert exc.args[0] == 1142
        else:
            raise AssertionError("an agent wrote through the new view")
    with world.engine.connect() as conn:
        assert conn.execute(text("SELECT client_id, callerid FROM extensions WHERE callerid IS NOT NULL")
                            ).all() == [(a.id, "Desk")]


def test_a_view_without_the_tenant_filter_is_refused(engine):
    from sqlalchemy.exc import DBAPIError
    try:
        with engine.begin() as conn:
            conn.execute(text("INSERT INTO tenant_views (name, description, definition) "
                              "VALUES ('everything', 'x', 'SELECT * FROM clients')"))
    except DBAPIError as exc:
        assert exc.orig.args[0] == 4025  # CHECK constraint ck_tenant_views_filtered
    else:
        raise AssertionError("an unfiltered tenant view was accepted")


def test_each_client_manages_its_own_queues_under_the_same_name(world):
    a, b = world.clients["a"], world.clients["b"]
    for key in ("a", "b"):
        with world.login(key, "supervisor") as conn:
            execute(conn, "INSERT INTO queues (name, strategy) VALUES ('sales', 'rrmemory')")
    with world.login("a", "agent") as conn:
        assert query(conn, "SELECT name, asterisk_name, strategy FROM queues") == [
            ("sales", f"{a.code}-sales", "rrmemory")]
        with pytest.raises(pymysql.MySQLError):   # an agent only reads
            execute(conn, "UPDATE queues SET strategy = 'ringall'")
    with world.login("b", "supervisor") as conn:
        assert execute(conn, "UPDATE queues SET wrapup_seconds = 10 WHERE name = 'sales'") == 1
    with world.engine.connect() as conn:
        rows = conn.execute(text("SELECT client_id, asterisk_name, wrapup_seconds FROM queues "
                                 "ORDER BY client_id")).all()
    assert [tuple(r) for r in rows] == [(a.id, f"{a.code}-sales", 0), (b.id, f"{b.code}-sales", 10)]
