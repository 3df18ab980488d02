"""Trunk capacity across two real `ictcontact serve` processes: never exceeded, released
after every failed attempt, after settle, and when a server is killed; calls per second
never exceeded either."""

from __future__ import annotations

import signal
from decimal import Decimal

import pytest
import pytest_twisted
from twisted.internet import reactor
from twisted.internet.defer import DeferredList, gatherResults

from fastagi import channel_vars as v, reasons
from fastagi.testing.fake_asterisk import run_session
from tests.callcontrol.tenants import add_client, add_rate, default_plan_id
from tests.routing.carriers import (add_buy_rate, add_group, add_route, add_trunk, breaks_rate,
                                    live_on)
from tests.serve_process import Server
from tests.support.sql import execute, rows, scalar

UK = "442071234567"
CLIENTS = [f"c{n}" for n in range(5)]


@pytest.fixture
def two_servers(db_url):
    # 120 takes of one trunk queue on its row lock: a generous --db-timeout keeps a loaded
    # test machine from turning the tail of the queue into `unavailable` (what is checked
    # here is the capacity, not the machine's speed)
    servers = [Server(db_url, "--max-call-seconds", "600", "--server-name", f"agi-{n}",
                      "--db-timeout", "25", "--session-timeout", "30")
               for n in (1, 2)]
    yield servers
    for server in servers:
        if server.process.poll() is None:
            server.process.send_signal(signal.SIGTERM)
    for server in servers:
        server.finish()


@pytest.fixture
def carriers(engine):
    """Five clients with room to spare; UK calls on `small` (7) then `spare` (3)."""
    plan = default_plan_id(engine)
    add_rate(engine, plan, "44", "0.10")
    for code in CLIENTS:
        add_client(engine, code, balance="100", channel_limit=100)
    small, spare = add_trunk(engine, "small", capacity=7), add_trunk(engine, "spare", capacity=3)
    group = add_group(engine, "44", max_tries=2)
    for priority, trunk in ((10, small), (20, spare)):
        add_buy_rate(engine, trunk, "44", "0.05")
        add_route(engine, group, trunk, priority)
    return small, spare


async def sessions(servers, script, argses):
    results = await gatherResults([
        run_session(reactor, "127.0.0.1", servers[i % len(servers)].port, script, args,
                    timeout=60) for i, args in enumerate(argses)], consumeErrors=True)
    assert all(r.server_closed for r in results)
    return [dict(r.set_by_server) for r in results]


@pytest_twisted.ensureDeferred
async def test_racing_servers_never_exceed_a_trunks_capacity(engine, two_servers, carriers):
    small, spare = carriers
    answers = await sessions(two_servers, "authorize",
                             [(CLIENTS[i % 5], UK) for i in range(120)])
    allowed = [a for a in answers if a[v.RESULT] == v.ALLOW]
    assert sorted(a[v.TRUNK] for a in allowed) == ["small"] * 7 + ["spare"] * 3
    assert {a[v.REASON] for a in answers if a[v.RESULT] != v.ALLOW} == {reasons.NO_ROUTE}
    assert (live_on(engine, small), live_on(engine, spare)) == (7, 3)
    assert scalar(engine, "SELECT COUNT(DISTINCT server) FROM calls WHERE trunk_id IS NOT NULL") == 2

    # every `small` call fails (CHANUNAVAIL): its unit is released at once, and `spare` is
    # full, so each one ends in no-route, its call closed by settle at no cost
    on_small = [a for a in allowed if a[v.TRUNK] == "small"]
    failed = await sessions(two_servers, "failover",
                            [(a[v.CALL_ID], "CHANUNAVAIL", "38", "small") for a in on_small])
    assert {f[v.REASON] for f in failed} == {reasons.NO_ROUTE}
    assert live_on(engine, small) == 0
    await sessions(two_servers, "settle", [(a[v.CALL_ID], "ms=", "CHANUNAVAIL") for a in on_small])

    # the spare calls end: every unit is back
    on_spare = [a for a in allowed if a[v.TRUNK] == "spare"]
    await sessions(two_servers, "settle", [(a[v.CALL_ID], "ms=3000", "ANSWER") for a in on_spare])
    assert (live_on(engine, small), live_on(engine, spare)) == (0, 0)
    assert scalar(engine, "SELECT COUNT(*) FROM call_attempts WHERE state = 'live'") == 0
    # `small` failed 7 times in a row (3 start a cool-down), seen by both servers: only
    # `spare` takes calls for now
    again = await sessions(two_servers, "authorize", [(CLIENTS[i % 5], UK) for i in range(40)])
    assert sorted(a[v.TRUNK] for a in again if a[v.RESULT] == v.ALLOW) == ["spare"] * 3


@pytest_twisted.ensureDeferred
async def test_failover_races_for_the_last_units_of_the_next_trunk(engine, two_servers, carriers):
    small, spare = carriers
    first = await sessions(two_servers, "authorize", [(CLIENTS[i % 5], UK) for i in range(7)])
    assert {a[v.TRUNK] for a in first} == {"small"}
    moved = await sessions(two_servers, "failover",
                           [(a[v.CALL_ID], "CONGESTION", "34", "small") for a in first])
    assert sorted(m[v.RESULT] for m in moved) == [v.ALLOW] * 3 + [v.REJECT] * 4
    assert {m[v.TRUNK] for m in moved if m[v.RESULT] == v.ALLOW} == {"spare"}
    assert (live_on(engine, small), live_on(engine, spare)) == (0, 3)
    # `small` failed 7 times in a row (3 before a cool-down): it is cooling down now
    assert scalar(engine, "SELECT cooled_until IS NOT NULL FROM trunk_states WHERE trunk_id = :t",
                  t=small) == 1


@pytest_twisted.ensureDeferred
async def test_a_killed_server_leaves_no_capacity_behind(engine, two_servers, carriers):
    small, spare = carriers
    burst = DeferredList([
        run_session(reactor, "127.0.0.1", two_servers[i % 2].port, "authorize",
                    (CLIENTS[i % 5], UK), timeout=60) for i in range(60)], consumeErrors=True)
    two_servers[0].process.send_signal(signal.SIGKILL)
    results = await gatherResults([
        run_session(reactor, "127.0.0.1", two_servers[1].port, "authorize", (CLIENTS[i % 5], UK),
                    timeout=60) for i in range(20)], consumeErrors=True)
    await burst                              # every session ended (those on the killed one broke off)
    survivors = [dict(r.set_by_server) for r in results]
    # whatever the killed server committed is live; nothing over capacity
    assert live_on(engine, small) <= 7 and live_on(engine, spare) <= 3
    live_calls = [r.id for r in rows(engine, "SELECT id FROM calls WHERE state = 'live'")]
    assert len(live_calls) == live_on(engine, small) + live_on(engine, spare)
    # Asterisk runs the hangup handlers against the surviving server (hagi): every unit back
    await sessions([two_servers[1]], "settle", [(str(c), "ms=1000", "ANSWER") for c in live_calls])
    assert (live_on(engine, small), live_on(engine, spare)) == (0, 0)
    assert scalar(engine, "SELECT COUNT(*) FROM call_attempts WHERE state = 'live'") == 0
    assert len(survivors) >= 20


@pytest_twisted.ensureDeferred
async def test_racing_servers_never_exceed_a_trunks_calls_per_second(engine, two_servers,
                                                                     carriers):
    """Each server stamps its takes with its own clock: the takes of `small` (2 a second),
    read back from call_attempts, never hold more than 2 in any one second (sliding)."""
    small, spare = carriers
    execute(engine, "UPDATE trunks SET capacity = 200, calls_per_second = 2 WHERE id = :t", t=small)
    execute(engine, "UPDATE trunks SET capacity = 200 WHERE id = :t", t=spare)
    answers = []
    for _ in range(3):                      # three bursts of 30, as fast as they come
        answers += await sessions(two_servers, "authorize",
                                  [(CLIENTS[i % 5], UK) for i in range(30)])
    assert {a[v.RESULT] for a in answers} == {v.ALLOW}
    starts = [r.started_at for r in rows(engine, "SELECT started_at FROM call_attempts"
                                         " WHERE trunk_id = :t", t=small)]
    assert breaks_rate(starts, Decimal(2)) == []
    assert len(starts) >= 2 and len(starts) + live_on(engine, spare) == 90
