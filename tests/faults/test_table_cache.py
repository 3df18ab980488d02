"""A statement killed while MariaDB parses a table's triggers leaves that table's cached
instance unusable: every later statement that gets it fails with 1064 "... has an error
in its body" (MariaDB 10.11.19; docs/faults.md). On Galera a brute-force abort does the
same. The server flushes the table cache and runs the transaction again, so a call is
decided as if nothing had happened."""

from __future__ import annotations

import logging
import random
import threading
import time
from datetime import datetime

import pymysql
import pytest
from sqlalchemy.engine import make_url

from fastagi.billing.admission import CallRequest
from fastagi.db import table_cache
from fastagi.store import calls
from tests.callcontrol.tenants import add_client, add_rate, default_plan_id

INSERT_CALL = (
    "INSERT INTO calls (client_id, client_code, direction, number, state, reseller_levels,"
    " emergency, prefix, rate_per_min, connection_fee, initial_increment,"
    " subsequent_increment, max_seconds, reserved, authorized_at, expires_at)"
    " VALUES (%s, 'acme', 'out', '442071234567', 'live', 0, 0, '44', 0.06, 0, 60, 60, 3600,"
    " 0.06, UTC_TIMESTAMP(3), UTC_TIMESTAMP(3) + INTERVAL 1 HOUR)")
TRIES = 3000


def connect(db_url: str, autocommit: bool = False):
    url = make_url(db_url)
    return pymysql.connect(host=url.host, port=url.port or 3306, user=url.username,
                           password=url.password or "", database=url.database,
                           autocommit=autocommit)


def insert_call(conn, client_id: int) -> BaseException | None:
    """One INSERT of a live call, rolled back; the error it met, if any."""
    try:
        with conn.cursor() as cursor:
            cursor.execute(INSERT_CALL, (client_id,))
        return None
    except pymysql.Error as exc:
        return exc
    finally:
        conn.rollback()


def break_the_calls_instance(db_url: str, client_id: int) -> int:
    """Kill INSERTs into calls while they open a new instance of the table until one is
    cached with its triggers unparsed; the tries it took (34 and 38 here)."""
    admin, victim = connect(db_url, autocommit=True), connect(db_url)
    try:
        for n in range(1, TRIES + 1):
            with admin.cursor() as cursor:
                cursor.execute("FLUSH LOCAL TABLES calls")   # the next INSERT opens it anew
            insert = threading.Thread(target=insert_call, args=(victim, client_id))
            insert.start()
            time.sleep(random.uniform(0, 0.003))
            with admin.cursor() as cursor:
                cursor.execute(f"KILL QUERY {victim.thread_id()}")
            insert.join()
            if table_cache.is_unparsed_trigger(insert_call(victim, client_id) or Exception()):
                return n
    finally:
        victim.close()
        admin.close()
    pytest.fail(f"no KILL in {TRIES} tries broke the table cache: the hazard this test "
                f"recovers from was not made")


def test_a_call_after_a_kill_broke_the_calls_table_is_still_decided(db_url, engine, caplog):
    add_rate(engine, default_plan_id(engine), "44", "0.06")
    client_id = add_client(engine, "acme", balance="10")
    break_the_calls_instance(db_url, client_id)
    # the instance is cached broken: a plain INSERT fails again, and would forever
    probe = connect(db_url)
    assert table_cache.is_unparsed_trigger(insert_call(probe, client_id) or Exception())
    caplog.set_level(logging.INFO, logger="fastagi.db")
    got = calls.authorize(engine, CallRequest("acme", "442071234567"), datetime.utcnow(),
                          calls.Limits())
    assert got.admission.allowed, got
    assert "FLUSH LOCAL TABLES done" in caplog.text
    assert "retried after a table cached with unparsed triggers" in caplog.text
    # and the cache is whole again for everyone
    assert insert_call(probe, client_id) is None
    probe.close()


def test_other_parse_errors_are_not_taken_for_it():
    class Fake(Exception):
        pass
    assert table_cache.is_unparsed_trigger(
        Fake(1064, "Unknown trigger has an error in its body: 'Query was empty'"))
    assert not table_cache.is_unparsed_trigger(
        Fake(1064, "You have an error in your SQL syntax; check the manual"))
    assert not table_cache.is_unparsed_trigger(Fake(1213, "Deadlock found"))
    assert not table_cache.is_unparsed_trigger(Fake("no errno"))
