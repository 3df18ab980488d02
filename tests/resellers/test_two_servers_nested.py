"""Nested admission across two real `ictcontact serve` processes on one database: siblings
under one reseller racing for its last channels and its last credit, and a server killed
with SIGKILL in the middle of a burst. At every level: never over a limit, never below a
floor, the ledger exact.

Tree: master -> r1 -> r2 -> a, b; and c directly under r1. Prices per second (1/1
increments): a and b pay r2 0.01 (0.60/min), r2 and c pay r1 0.006 (0.36/min), r1 pays
the operator 0.003 (0.18/min); so every margin is hand-computed from the talk time.
"""

from __future__ import annotations

import signal
from datetime import datetime, timedelta, timezone
from decimal import Decimal

import pytest
import pytest_twisted
from twisted.internet import reactor
from twisted.internet.defer import gatherResults

from fastagi import channel_vars as v, reasons
from fastagi.store import calls
from fastagi.testing.fake_asterisk import run_session
from tests.resellers.world import balance, client_under, ledger_gap, live_at, plan_of
from tests.serve_process import Server
from tests.support.sql import scalar

NUMBER = "15550100"
MAX_CALL = 600
LEVELS = ("a", "b", "c", "r2", "r1", "master")


def per_second(rate: str) -> dict:
    return {"1": (rate, "0", 1, 1)}


def build(engine, r1_balance: str, r1_channels: int) -> None:
    op = plan_of(engine, None, "op", per_second("0.18"))
    client_under(engine, "r1", None, op, balance=r1_balance, channel_limit=r1_channels)
    r1_sells = plan_of(engine, "r1", "r1-sells", per_second("0.36"))
    client_under(engine, "r2", "r1", r1_sells, balance="100", channel_limit=100)
    client_under(engine, "c", "r1", r1_sells, balance="100", channel_limit=100)
    r2_sells = plan_of(engine, "r2", "r2-sells", per_second("0.60"))
    for code in ("a", "b"):
        client_under(engine, code, "r2", r2_sells, balance="100", channel_limit=100)


@pytest.fixture
def two_servers(db_url):
    servers = [Server(db_url, "--max-call-seconds", str(MAX_CALL), "--server-name", f"agi-{n}")
               for n in (1, 2)]
    yield servers
    for server in servers:
        if server.process.poll() is None:
            server.process.send_signal(signal.SIGTERM)
    for server in servers:
        code, log = server.finish()
        assert code in (0, -signal.SIGKILL), log
        assert "Traceback" not in log, log


async def burst(servers, count: int, tolerate_failures: bool = False) -> list[dict]:
    """`count` simultaneous authorizations by a, b and c in turn, alternating servers (a
    session that fails answers {} when `tolerate_failures`)."""
    sessions = []
    for i in range(count):
        session = run_session(reactor, "127.0.0.1", servers[i % len(servers)].port,
                              "authorize", ("abc"[i % 3], NUMBER), timeout=30)
        session.addCallback(lambda r: dict(r.set_by_server))
        if tolerate_failures:
            session.addErrback(lambda _: {})
        sessions.append(session)
    return await gatherResults(sessions, consumeErrors=True)


async def settle_all(server, allowed: list[dict]) -> dict[str, int]:
    """Settle each call with its own talk time (i + 1 seconds); returns seconds by call."""
    talk = {a[v.CALL_ID]: i + 1 for i, a in enumerate(allowed)}
    await gatherResults([run_session(reactor, "127.0.0.1", server.port, "settle",
                                     (call_id, f"ms={s * 1000}", "ANSWER"))
                         for call_id, s in talk.items()])
    return talk


def assert_ledgers_exact(engine) -> None:
    assert {c: ledger_gap(engine, c) for c in LEVELS} == {c: 0 for c in LEVELS}
    assert {c: live_at(engine, c) for c in LEVELS} == {c: (0, 0) for c in LEVELS}


def assert_margins(engine, talk: dict[str, int]) -> None:
    """r2 earns 0.004/s on a's and b's calls, r1 0.003/s on every call (r2's buy price or
    c's, 0.006, minus its own 0.003), exactly."""
    seconds = {code: sum(s for call_id, s in talk.items() if scalar(
        engine, "SELECT client_code FROM calls WHERE id = :i", i=call_id) == code)
        for code in "abc"}
    got = {code: scalar(engine, "SELECT COALESCE(SUM(g.margin), 0) FROM call_charges g"
                        " JOIN clients c ON c.id = g.client_id WHERE c.code = :c", c=code)
           for code in ("r2", "r1")}
    assert got == {
        "r2": Decimal("0.004") * (seconds["a"] + seconds["b"]),
        "r1": Decimal("0.003") * sum(seconds.values())}
    assert balance(engine, "r1") == Decimal(scalar(
        engine, "SELECT SUM(amount) FROM payments p JOIN clients c ON c.id = p.client_id"
        " WHERE c.code = 'r1'")) - Decimal("0.003") * sum(talk.values())


@pytest_twisted.ensureDeferred
async def test_siblings_racing_for_a_resellers_last_channels_over_two_servers(
        engine, two_servers):
    build(engine, r1_balance="1000", r1_channels=7)
    answers = await burst(two_servers, 60)
    allowed = [a for a in answers if a[v.RESULT] == v.ALLOW]
    assert len(allowed) == 7
    assert {a[v.REASON] for a in answers if a[v.RESULT] != v.ALLOW} == {reasons.CHANNEL_LIMIT}
    assert scalar(engine, "SELECT COUNT(*) FROM calls WHERE state = 'rejected'"
                  " AND (reason, rejected_by) <> ('channel-limit', 'r1')") == 0
    assert live_at(engine, "r1")[0] == 7
    assert scalar(engine, "SELECT COUNT(DISTINCT server) FROM calls") == 2
    # the server's log line names the reseller that refused
    for server in two_servers:
        server.wait_for(r"decision=REJECT reason=channel-limit .* rejected_by=r1\b")
    talk = await settle_all(two_servers[1], allowed)
    assert_ledgers_exact(engine)
    assert_margins(engine, talk)
    # channels freed at every level: again exactly 7
    again = await burst(two_servers, 40)
    assert sum(a[v.RESULT] == v.ALLOW for a in again) == 7


@pytest_twisted.ensureDeferred
async def test_siblings_racing_for_a_resellers_last_credit_over_two_servers(
        engine, two_servers):
    # a call of at most 600 s costs r1 1.80: 9.00 pays for exactly 5 at once
    build(engine, r1_balance="9.00", r1_channels=100)
    answers = await burst(two_servers, 60)
    allowed = [a for a in answers if a[v.RESULT] == v.ALLOW]
    assert len(allowed) == 5
    assert all(a[v.MAX_MS] == str(MAX_CALL * 1000) for a in allowed)
    assert {a[v.REASON] for a in answers if a[v.RESULT] != v.ALLOW} == {reasons.NO_CREDIT}
    assert scalar(engine, "SELECT COUNT(*) FROM calls WHERE state = 'rejected'"
                  " AND (reason, rejected_by) <> ('no-credit', 'r1')") == 0
    assert live_at(engine, "r1") == (5, Decimal("9.0000"))
    talk = await settle_all(two_servers[0], allowed)
    assert balance(engine, "r1") >= 0
    assert_ledgers_exact(engine)
    assert_margins(engine, talk)


@pytest_twisted.ensureDeferred
async def test_a_server_killed_mid_burst_leaves_every_level_exact(engine, two_servers):
    build(engine, r1_balance="20", r1_channels=30)
    victim, survivor = two_servers
    first = await burst(two_servers, 30)
    load = burst(two_servers, 120, tolerate_failures=True)
    reactor.callLater(0.02, victim.process.send_signal, signal.SIGKILL)
    answers = first + await load
    assert victim.process.wait(10) == -signal.SIGKILL
    assert {} in answers, "some sessions must have been cut by the kill"
    allowed = [a for a in answers if a.get(v.RESULT) == v.ALLOW]
    assert allowed, "some calls must be admitted before and after the kill"
    # the survivor settles what Asterisk heard of; what it never heard of is swept as stale
    talk = await settle_all(survivor, allowed)
    swept = calls.close_stale(engine, datetime.now(timezone.utc).replace(tzinfo=None) + timedelta(seconds=MAX_CALL + 3600))
    assert scalar(engine, "SELECT COUNT(*) FROM calls WHERE state = 'live'") == 0
    assert swept == scalar(engine, "SELECT COUNT(*) FROM calls WHERE state = 'stale'")
    # nothing was released before the sweep: every call ever admitted was live at once
    admitted = scalar(engine, "SELECT COUNT(*) FROM calls WHERE state IN ('settled', 'stale')")
    assert admitted <= 30
    assert_ledgers_exact(engine)
    assert_margins(engine, talk)
