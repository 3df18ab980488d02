"""Queues, agent PINs, sessions and the app_queue realtime views, on the real MariaDB:
what an administrator can write by hand, what the database refuses, and what Asterisk
would read (right rows for active clients, none for suspended ones)."""

from __future__ import annotations

import re

import pytest
from sqlalchemy.exc import DBAPIError

from fastagi.agents.rules import pin_matches
from tests.agents.world import build_tenant, members, open_sessions
from tests.support.sql import execute, rows


@pytest.fixture
def world(engine):
    return {"acme": build_tenant(engine, "acme"), "beta": build_tenant(engine, "beta")}


def refused(engine, sql, **params) -> str:
    with pytest.raises(DBAPIError) as caught:
        execute(engine, sql, **params)
    return str(caught.value.orig)


def start_session(engine, tenant, number="501", exten="1001"):
    execute(engine, "INSERT INTO agent_sessions (client_id, agent_id, extension_id, started_at)"
                    " VALUES (:c, :a, :e, UTC_TIMESTAMP())",
            c=tenant.id, a=tenant.agents[number], e=tenant.extensions[exten])


def test_pin_is_write_only_and_hashed_the_way_the_server_checks_it(engine, world):
    (pin, pin_hash), = rows(engine, "SELECT pin, pin_hash FROM agents WHERE id = :a",
                            a=world["acme"].agents["501"])
    assert pin is None
    assert re.fullmatch(r"sha512\$[0-9a-f]{32}\$[0-9a-f]{128}", pin_hash)
    assert pin_matches(pin_hash, "1234") and not pin_matches(pin_hash, "12345")
    other, = rows(engine, "SELECT pin_hash FROM agents WHERE id = :a",
                  a=world["acme"].agents["502"])
    assert other[0].split("$")[1] != pin_hash.split("$")[1], "every PIN gets its own salt"


def test_a_new_pin_unlocks(engine, world):
    agent = world["acme"].agents["501"]
    execute(engine, "UPDATE agents SET pin_failures = 3, locked_until = UTC_TIMESTAMP()"
                    " + INTERVAL 1 HOUR WHERE id = :a", a=agent)
    execute(engine, "UPDATE agents SET pin = '8888' WHERE id = :a", a=agent)
    (failures, locked, pin_hash), = rows(
        engine, "SELECT pin_failures, locked_until, pin_hash FROM agents WHERE id = :a", a=agent)
    assert (failures, locked) == (0, None) and pin_matches(pin_hash, "8888")


@pytest.mark.parametrize("sql, message", [
    ("UPDATE agents SET pin = '12' WHERE client_id = :c", "4-10 digits"),
    ("UPDATE agents SET pin = '12ab' WHERE client_id = :c", "4-10 digits"),
    ("UPDATE agents SET login_number = 'x1' WHERE client_id = :c", "ck_agents_login_number"),
    ("UPDATE agents SET login_number = '501' WHERE client_id = :c", "Duplicate"),
    ("INSERT INTO queues (client_id, name) VALUES (:c, 'sales')", "Duplicate"),
    ("INSERT INTO queues (client_id, name) VALUES (:c, 'no-dash')", "ck_queues_name"),
    ("INSERT INTO queues (client_id, name, strategy) VALUES (:c, 'q2', 'roundrobin')", "strategy"),
    ("INSERT INTO queues (client_id, name, ring_timeout) VALUES (:c, 'q3', 0)",
     "ck_queues_ring_timeout"),
    ("UPDATE queues SET client_id = (SELECT id FROM clients WHERE code = 'beta')"
     " WHERE client_id = :c", "cannot move"),
])
def test_refused_with_a_clear_error(engine, world, sql, message):
    assert message in refused(engine, sql, c=world["acme"].id)


def test_queue_names_are_unique_per_client_and_prefixed_for_asterisk(engine, world):
    assert rows(engine, "SELECT c.code, q.name, q.asterisk_name FROM queues q JOIN clients c"
                        " ON c.id = q.client_id ORDER BY c.code") == [
        ("acme", "sales", "acme-sales"), ("beta", "sales", "beta-sales")]
    execute(engine, "UPDATE queues SET name = 'support' WHERE id = :q", q=world["acme"].queue_id)
    assert rows(engine, "SELECT asterisk_name FROM queues WHERE id = :q",
                q=world["acme"].queue_id) == [("acme-support",)]


def test_members_and_sessions_never_cross_clients(engine, world):
    acme, beta = world["acme"], world["beta"]
    assert "fk_queue_members_queue_same_client" in refused(
        engine, "INSERT INTO queue_members (client_id, queue_id, agent_id) VALUES (:c, :q, :a)",
        c=acme.id, q=beta.queue_id, a=acme.agents["501"])
    assert "fk_queue_members_agent_same_client" in refused(
        engine, "INSERT INTO queue_members (client_id, queue_id, agent_id) VALUES (:c, :q, :a)",
        c=beta.id, q=beta.queue_id, a=acme.agents["501"])
    assert "fk_agent_sessions_extension_same_client" in refused(
        engine, "INSERT INTO agent_sessions (client_id, agent_id, extension_id, started_at)"
                " VALUES (:c, :a, :e, UTC_TIMESTAMP())",
        c=acme.id, a=acme.agents["501"], e=beta.extensions["1001"])


def test_one_open_session_per_agent_and_per_extension(engine, world):
    acme = world["acme"]
    start_session(engine, acme, "501", "1001")
    assert "Duplicate" in refused(
        engine, "INSERT INTO agent_sessions (client_id, agent_id, extension_id, started_at)"
                " VALUES (:c, :a, :e, UTC_TIMESTAMP())",
        c=acme.id, a=acme.agents["501"], e=acme.extensions["1002"])
    assert "Duplicate" in refused(
        engine, "INSERT INTO agent_sessions (client_id, agent_id, extension_id, started_at)"
                " VALUES (:c, :a, :e, UTC_TIMESTAMP())",
        c=acme.id, a=acme.agents["502"], e=acme.extensions["1001"])
    # ended by hand in phpMyAdmin: recorded as ended by an admin, then a new one may start
    execute(engine, "UPDATE agent_sessions SET ended_at = UTC_TIMESTAMP()")
    assert rows(engine, "SELECT end_reason FROM agent_sessions") == [("admin",)]
    start_session(engine, acme, "501", "1002")
    assert "cannot be reopened" in refused(
        engine, "UPDATE agent_sessions SET ended_at = NULL, end_reason = NULL"
                " WHERE end_reason = 'admin'")


@pytest.mark.parametrize("setup, message", [
    ("UPDATE clients SET status = 'suspended' WHERE code = 'acme'", "client is suspended"),
    ("UPDATE agents SET status = 'disabled' WHERE login_number = '501'", "agent is disabled"),
    ("UPDATE extensions SET status = 'disabled' WHERE exten = '1001'", "extension is disabled"),
])
def test_no_session_by_hand_for_what_cannot_log_in(engine, world, setup, message):
    execute(engine, setup)
    with pytest.raises(DBAPIError) as caught:
        start_session(engine, world["acme"])
    assert message in str(caught.value.orig)


@pytest.mark.parametrize("change, reason", [
    ("UPDATE clients SET status = 'suspended' WHERE code = 'acme'", "suspended"),
    ("CALL suspend_client('acme')", "suspended"),
    ("UPDATE agents SET status = 'disabled' WHERE client_id = :c AND login_number = '501'",
     "agent-disabled"),
    ("UPDATE extensions SET status = 'disabled' WHERE client_id = :c AND exten = '1001'",
     "extension-disabled"),
])
def test_what_locks_an_agent_out_ends_its_session_and_logs_it(engine, world, change, reason):
    start_session(engine, world["acme"], "501", "1001")
    start_session(engine, world["beta"], "501", "1001")
    execute(engine, change, c=world["acme"].id)
    assert open_sessions(engine) == [("beta", "501", "beta-1001")]
    assert rows(engine, "SELECT c.code, s.end_reason FROM agent_sessions s JOIN clients c"
                        " ON c.id = s.client_id WHERE s.ended_at IS NOT NULL") == [
        ("acme", reason)]
    assert rows(engine, "SELECT client_code, event, reason FROM agent_login_log") == [
        ("acme", "logout", reason)]


def test_reactivation_logs_nobody_in(engine, world):
    start_session(engine, world["acme"])
    execute(engine, "CALL suspend_client('acme')")
    execute(engine, "CALL activate_client('acme')")
    assert open_sessions(engine) == []
    assert rows(engine, "SELECT COUNT(*) FROM agent_login_log") == [(1,)]


def test_realtime_queues_show_active_clients_only(engine, world):
    assert rows(engine, "SELECT name, strategy, timeout, retry, wrapuptime, ringinuse,"
                        " joinempty, leavewhenempty, client FROM ast_queues ORDER BY name") == [
        ("acme-sales", "leastrecent", 20, 5, 10, "no", "unavailable,invalid,unknown",
         "unavailable,invalid,unknown", "acme"),
        ("beta-sales", "leastrecent", 20, 5, 10, "no", "unavailable,invalid,unknown",
         "unavailable,invalid,unknown", "beta")]
    execute(engine, "CALL suspend_client('acme')")
    execute(engine, "UPDATE queues SET status = 'disabled' WHERE client_id = :c",
            c=world["beta"].id)
    assert rows(engine, "SELECT name FROM ast_queues") == []
    execute(engine, "CALL activate_client('acme')")
    assert rows(engine, "SELECT name FROM ast_queues") == [("acme-sales",)]


def test_realtime_members_are_the_logged_in_agents_of_active_clients(engine, world):
    acme, beta = world["acme"], world["beta"]
    assert members(engine) == []  # nobody logged in: queues ring nobody
    start_session(engine, acme, "501", "1002")
    start_session(engine, beta, "502", "1001")
    assert rows(engine, "SELECT queue_name, interface, state_interface, membername, penalty,"
                        " paused, ringinuse FROM ast_queue_members ORDER BY queue_name") == [
        ("acme-sales", "PJSIP/acme-1002", "PJSIP/acme-1002", "acme agent 501 (501)", 0, 0, "no"),
        ("beta-sales", "PJSIP/beta-1001", "PJSIP/beta-1001", "beta agent 502 (502)", 0, 0, "no")]
    uniqueids = rows(engine, "SELECT uniqueid FROM ast_queue_members")
    assert len(set(uniqueids)) == 2
    execute(engine, "UPDATE clients SET status = 'suspended' WHERE code = 'beta'")
    assert members(engine) == [("acme-sales", "PJSIP/acme-1002")]
    execute(engine, "DELETE FROM queue_members WHERE agent_id = :a", a=acme.agents["501"])
    assert members(engine) == []  # logged in, but no longer in the queue


def test_a_did_rings_exactly_one_target_of_its_own_client(engine, world):
    acme, beta = world["acme"], world["beta"]
    execute(engine, "INSERT INTO dids (client_id, did, queue_id) VALUES (:c, '442070000001', :q)",
            c=acme.id, q=acme.queue_id)
    execute(engine, "INSERT INTO dids (client_id, did, exten) VALUES (:c, '442070000002', '1001')",
            c=acme.id)
    assert "fk_dids_queue_same_client" in refused(
        engine, "INSERT INTO dids (client_id, did, queue_id) VALUES (:c, '442070000003', :q)",
        c=acme.id, q=beta.queue_id)
    assert "exactly one target" in refused(
        engine, "INSERT INTO dids (client_id, did, exten, queue_id)"
                " VALUES (:c, '442070000004', '1001', :q)", c=acme.id, q=acme.queue_id)
    assert "exactly one target" in refused(
        engine, "INSERT INTO dids (client_id, did) VALUES (:c, '442070000005')", c=acme.id)
    assert "exactly one target" in refused(
        engine, "UPDATE dids SET queue_id = NULL WHERE did = '442070000001'")


def test_logged_in_agents_view_counts_queue_calls_taken(engine, world):
    acme = world["acme"]
    start_session(engine, acme, "501", "1001")
    cdr = ("INSERT INTO cdr (calldate, accountcode, lastapp, disposition, dstchannel)"
           " VALUES (UTC_TIMESTAMP() + INTERVAL :s SECOND, :acct, :app, :disp, :dst)")
    for seconds, account, app, disposition, dst in [
            (1, "acme", "Queue", "ANSWERED", "PJSIP/acme-1001-00000001"),
            (2, "acme", "Queue", "ANSWERED", "PJSIP/acme-1001-00000002"),
            (3, "acme", "Queue", "NO ANSWER", "PJSIP/acme-1001-00000003"),
            (4, "acme", "Dial", "ANSWERED", "PJSIP/acme-1001-00000004"),
            (5, "acme", "Queue", "ANSWERED", "PJSIP/acme-10010-00000005"),
            (6, "beta", "Queue", "ANSWERED", "PJSIP/acme-1001-00000006"),
            (-3600, "acme", "Queue", "ANSWERED", "PJSIP/acme-1001-00000007")]:
        execute(engine, cdr, s=seconds, acct=account, app=app, disp=disposition, dst=dst)
    assert rows(engine, "SELECT client, login_number, extension, endpoint, calls_taken"
                        " FROM logged_in_agents") == [("acme", "501", "1001", "acme-1001", 2)]
