"""The login transactions under concurrency, on the real MariaDB from several threads:
every wrong PIN counts, two agents at one phone end with one session, and a login racing
a suspension never leaves a suspended client's agent logged in."""

from __future__ import annotations

import threading
from datetime import datetime, timezone

from fastagi.db.engine import make_engine
from fastagi.store import agents
from tests.agents.world import PIN, PIN_502, build_tenant, open_sessions
from tests.support.sql import execute, rows

THREADS = 8


def now() -> datetime:
    return datetime.now(timezone.utc).replace(tzinfo=None)


def run_together(*works):
    """Start every work at once (a barrier), wait for all; return (results, errors)."""
    barrier = threading.Barrier(len(works))
    results, errors = [None] * len(works), []

    def runner(index, work):
        barrier.wait()
        try:
            results[index] = work()
        except Exception as exc:  # collected and asserted by the test
            errors.append(exc)

    threads = [threading.Thread(target=runner, args=(i, w)) for i, w in enumerate(works)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    return results, errors


def test_parallel_wrong_pins_all_count(db_url):
    engine = make_engine(db_url, pool_size=THREADS)
    try:
        acme = build_tenant(engine, "acme")
        execute(engine, "UPDATE agent_login_policy SET max_pin_failures = 100")
        request = agents.Request("acme", "acme-1001")
        results, errors = run_together(*[
            (lambda: agents.attempt_login(engine, request, "501", "0000", now()))
            for _ in range(THREADS)])
        assert errors == []
        assert [r.reason for r in results] == ["wrong-pin"] * THREADS
        assert rows(engine, "SELECT pin_failures FROM agents WHERE id = :a",
                    a=acme.agents["501"]) == [(THREADS,)]
    finally:
        engine.dispose()


def test_two_agents_at_one_phone_at_once_end_with_one_session(db_url):
    engine = make_engine(db_url, pool_size=4)
    try:
        build_tenant(engine, "acme")
        request = agents.Request("acme", "acme-1001")
        for _ in range(5):
            results, errors = run_together(
                lambda: agents.attempt_login(engine, request, "501", PIN["acme"], now()),
                lambda: agents.attempt_login(engine, request, "502", PIN_502, now()))
            assert errors == [] and all(r.allowed for r in results)
            assert len(open_sessions(engine)) == 1
        # (an agent already logged in at the phone keeps its session, so how many were
        # opened depends on the order; every one that ended was replaced)
        assert rows(engine, "SELECT DISTINCT end_reason FROM agent_sessions"
                            " WHERE ended_at IS NOT NULL") == [("replaced",)]
    finally:
        engine.dispose()


def test_a_login_racing_a_suspension_never_stays_logged_in(db_url):
    engine = make_engine(db_url, pool_size=4)
    try:
        build_tenant(engine, "acme")
        request = agents.Request("acme", "acme-1001")
        outcomes = set()
        for _ in range(10):
            execute(engine, "UPDATE clients SET status = 'active' WHERE code = 'acme'")
            results, errors = run_together(
                lambda: agents.attempt_login(engine, request, "501", PIN["acme"], now()),
                lambda: execute(engine, "CALL suspend_client('acme')"))
            assert errors == []
            outcomes.add(results[0].reason)
            assert open_sessions(engine) == []
        assert outcomes <= {"ok", "client-suspended"}
        # every session that was opened was ended by the suspension, and logged so
        opened = rows(engine, "SELECT COUNT(*) FROM agent_sessions")[0][0]
        assert rows(engine, "SELECT COUNT(*) FROM agent_login_log WHERE event = 'logout'"
                            " AND reason = 'suspended'") == [(opened,)]
    finally:
        engine.dispose()
