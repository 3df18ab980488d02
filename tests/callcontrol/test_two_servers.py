"""Admission and credit hold across two real `ictcontact serve` processes."""

from __future__ import annotations

import signal
from decimal import Decimal

import pytest
import pytest_twisted
from twisted.internet import reactor
from twisted.internet.defer import gatherResults

from fastagi import channel_vars as v, reasons
from fastagi.testing.fake_asterisk import run_session
from tests.callcontrol.tenants import add_client, add_rate, default_plan_id, ledger_gap
from tests.serve_process import Server
from tests.support.sql import scalar


@pytest.fixture
def two_servers(db_url):
    servers = [Server(db_url, "--max-call-seconds", "600", "--server-name", f"agi-{n}")
               for n in (1, 2)]
    yield servers
    for server in servers:
        server.process.send_signal(signal.SIGTERM)
    for server in servers:
        code, log = server.finish()
        assert code == 0, log


async def authorize_burst(servers, count: int, *args: str):
    """`count` simultaneous authorize sessions, alternating between the servers."""
    sessions = [run_session(reactor, "127.0.0.1", servers[i % len(servers)].port, "authorize",
                            args, timeout=30) for i in range(count)]
    results = await gatherResults(sessions, consumeErrors=True)
    assert all(r.server_closed for r in results)
    return [dict(r.set_by_server) for r in results]


@pytest_twisted.ensureDeferred
async def test_200_simultaneous_authorizations_over_two_servers_admit_exactly_10(
        engine, two_servers):
    add_rate(engine, default_plan_id(engine), "44", "0.01")
    add_client(engine, "acme", balance="1000", channel_limit=10)
    answers = await authorize_burst(two_servers, 200, "acme", "442071234567")
    allowed = [a for a in answers if a[v.RESULT] == v.ALLOW]
    assert len(allowed) == 10
    assert {a[v.REASON] for a in answers if a[v.RESULT] != v.ALLOW} == {reasons.CHANNEL_LIMIT}
    assert scalar(engine, "SELECT live_calls FROM client_list WHERE code = 'acme'") == 10
    # Both processes served: the call records name both servers.
    assert scalar(engine, "SELECT COUNT(DISTINCT server) FROM calls") == 2
    # Settling frees the channels for the next burst, again exactly 10.
    await gatherResults([run_session(reactor, "127.0.0.1", two_servers[0].port, "settle",
                                     (a[v.CALL_ID], "30", "ANSWER")) for a in allowed])
    again = await authorize_burst(two_servers, 50, "acme", "442071234567")
    assert sum(a[v.RESULT] == v.ALLOW for a in again) == 10


@pytest_twisted.ensureDeferred
async def test_credit_for_n_maximum_calls_admits_n_of_n_plus_1_over_two_servers(
        engine, two_servers):
    add_rate(engine, default_plan_id(engine), "1", "0.0123", connection_fee="0.0045",
             initial=30, subsequent=6)
    one_call = Decimal("0.0045") + Decimal("0.0123") * 10   # 600 s maximum: 0.1275
    n = 12
    cid = add_client(engine, "acme", balance=str(one_call * n), channel_limit=100)
    answers = await authorize_burst(two_servers, n + 1, "acme", "15550100")
    allowed = [a for a in answers if a[v.RESULT] == v.ALLOW]
    assert len(allowed) == n
    assert all(a[v.MAX_MS] == "600000" for a in allowed)
    assert [a[v.REASON] for a in answers if a[v.RESULT] != v.ALLOW] == [reasons.NO_CREDIT]
    settled = await gatherResults([
        run_session(reactor, "127.0.0.1", two_servers[i % 2].port, "settle",
                    (a[v.CALL_ID], str(7 * i + 1), "ANSWER")) for i, a in enumerate(allowed)])
    costs = [Decimal(dict(s.set_by_server)[v.COST]) for s in settled]
    balance = scalar(engine, "SELECT balance FROM client_accounts WHERE client_id = :i", i=cid)
    assert balance == one_call * n - sum(costs)
    assert balance >= 0
    assert ledger_gap(engine, cid) == 0
