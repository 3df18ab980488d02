"""One of two `ictcontact serve` processes is killed with SIGKILL in the middle of load.

Two real server processes share one database (the shared MariaDB, a fresh database for
the test). Workers authorize and settle over both, like Asterisk with two `agi://` hosts:
an authorization that finds a server gone fails over to the other; a call's settle goes
to the server that authorized it (the hangup handler's URL), so the calls the killed
server authorized and that hang up while it is down are never settled. The servers run
with a tiny maximum call length, stale grace and sweep interval, so those calls are closed
by the periodic stale sweep within seconds. Observed:
- the surviving server answers every session definitely while the other is dead;
- the killed one restarts cleanly on the same database and serves again;
- every call allowed but never settled ends `stale`, unbilled, in `calls_for_review`, and
  each stale call was closed exactly once (the servers' sweep logs add up);
- no over-admission at any moment: the calls the test holds and `live_calls` in the
  database (polled all along) never exceed a client's channel limit;
- the ledger holds and every settled call costs what it talked.
"""

from __future__ import annotations

import random
import re
import signal
from decimal import Decimal

import pytest
import pytest_twisted
from twisted.internet import reactor
from twisted.internet.defer import ensureDeferred, gatherResults
from twisted.internet.threads import deferToThread

from fastagi import channel_vars as v, reasons
from tests.callcontrol.tenants import add_client, add_rate, default_plan_id, ledger_gap
from tests.serve_process import Server
from tests.support.sql import scalar
from tests.support.waiting import pause as sleep

from .conftest import scaled
from .load import Attempt, Call, attempt

LIMITS = {"acme": 2, "globex": 3, "initech": 4}
OPENING = Decimal("100")
PER_SECOND = Decimal("0.01")       # 0.60/min, 1/1 increments
MAX_CALL = 2                       # --max-call-seconds
GRACE = 1                          # --stale-grace-seconds: expiry = 3 s after authorization
NUMBER = "15550100"
USABLE = (v.CALL_ID, v.MAX_MS, v.DIAL)  # what the dialplan needs from an ALLOW
SESSION_TIMEOUT = 5.0
WORKERS = scaled(10, 40)
BEFORE_KILL_S = scaled(1.5, 5)
DEAD_S = scaled(1.5, 5)
AFTER_RESTART_S = scaled(1.5, 5)
SWEEP_WAIT_S = 15                  # the last orphan expires 3 s after authorization


def start_server(db_url: str, name: str) -> Server:
    return Server(db_url, "--max-call-seconds", str(MAX_CALL),
                  "--stale-grace-seconds", str(GRACE), "--stale-sweep-seconds", "1",
                  "--session-timeout", str(SESSION_TIMEOUT), "--db-timeout", "2",
                  "--db-pool-size", "4", "--server-name", name)


class Cluster:
    """The two servers as Asterisk sees them, and everything the test was told."""

    def __init__(self, servers: dict[str, Server]) -> None:
        self.servers = servers                     # name -> Server (the live one)
        self.alive = set(servers)
        self.attempts: list[Attempt] = []
        self.calls: dict[str, Call] = {}
        self.orphans: list[Call] = []              # settle got no full answer
        self.refused: list[Call] = []              # ... because its server was gone
        self.held: dict[str, set[str]] = {code: set() for code in LIMITS}
        self.peak_held = {code: 0 for code in LIMITS}
        self.peak_live = {code: 0 for code in LIMITS}
        self.stopping = False

    async def run(self, name: str, script: str, *args: str) -> Attempt:
        server = self.servers[name]
        got = await attempt(server.port, name, script, *args, timeout=SESSION_TIMEOUT + 10)
        self.attempts.append(got)
        return got

    async def authorize(self, rng: random.Random, client: str) -> Call | None:
        order = sorted(self.alive)
        rng.shuffle(order)
        for name in order:  # like several agi:// hosts: the next one if one is down
            got = await self.run(name, "authorize", client, NUMBER)
            if got.error is None:
                break
        else:
            return None
        if got.result != v.ALLOW or not all(got.answer.get(k) for k in USABLE):
            return None  # a partial ALLOW (the server died mid-answer): the dialplan fails closed
        call = Call(got.answer[v.CALL_ID], client, rng.randint(0, MAX_CALL), server=name)
        assert call.call_id not in self.calls
        self.calls[call.call_id] = call
        self.held[client].add(call.call_id)
        self.peak_held[client] = max(self.peak_held[client], len(self.held[client]))
        return call

    async def hang_up(self, call: Call) -> None:
        """The hangup handler: settle at the server that authorized the call. (Held until
        the settle starts: from then on the database may free the channel at any moment.)"""
        self.held[call.client].discard(call.call_id)
        got = await self.run(call.server, "settle", call.call_id, call.talk, "ANSWER")
        if got.result == v.ALLOW and got.answer.get(v.COST):
            call.cost = got.answer[v.COST]
        else:  # the server was gone (refused) or died mid-session: the fate is the DB's
            assert got.error or got.result is None or got.answer.get(v.COST) is None, str(got)
            self.orphans.append(call)
            if got.error:
                self.refused.append(call)

    async def worker(self, n: int) -> None:
        rng = random.Random(n)
        client = list(LIMITS)[n % len(LIMITS)]
        while not self.stopping:
            call = await self.authorize(rng, client)
            if call is not None:
                await sleep(rng.uniform(0.05, 0.6))
                await self.hang_up(call)
            await sleep(rng.uniform(0, 0.02))

    async def poll_live_calls(self, engine) -> None:
        """Sample live_calls per client from the database all along."""
        def sample():
            with engine.connect() as conn:
                return dict(conn.exec_driver_sql(
                    "SELECT code, live_calls FROM client_list").all())
        while not self.stopping:
            for code, live in (await deferToThread(sample)).items():
                if code in self.peak_live:
                    self.peak_live[code] = max(self.peak_live[code], live)
            await sleep(0.05)


def rows(engine, sql: str) -> list:
    with engine.connect() as conn:
        return conn.exec_driver_sql(sql).all()


def closed_by_sweeps(log: str) -> int:
    return sum(int(n) for n in re.findall(r"closed (\d+) stale call\(s\)", log))


@pytest.mark.slow
@pytest_twisted.ensureDeferred
async def test_one_of_two_servers_killed_mid_load(engine, db_url):
    add_rate(engine, default_plan_id(engine), "1", "0.60", initial=1, subsequent=1)
    ids = {code: add_client(engine, code, balance=str(OPENING), channel_limit=limit)
           for code, limit in LIMITS.items()}
    started = await gatherResults([deferToThread(start_server, db_url, name)
                                   for name in ("agi-1", "agi-2")])
    every_server = list(started)
    cluster = Cluster(dict(zip(("agi-1", "agi-2"), started)))
    try:
        poller = ensureDeferred(cluster.poll_live_calls(engine))
        load = gatherResults([ensureDeferred(cluster.worker(n)) for n in range(WORKERS)])
        await sleep(BEFORE_KILL_S)

        victim = cluster.servers["agi-2"]
        cluster.alive.discard("agi-2")
        killed_at = reactor.seconds()
        victim.process.send_signal(signal.SIGKILL)
        await deferToThread(victim.process.wait, 10)
        dead_at = reactor.seconds()
        await sleep(DEAD_S)

        restarted = await deferToThread(start_server, db_url, "agi-2")
        every_server.append(restarted)
        restarted_at = reactor.seconds()
        cluster.servers["agi-2"] = restarted
        cluster.alive.add("agi-2")
        await sleep(AFTER_RESTART_S)
        cluster.stopping = True
        await load
        await poller

        # The sweep closes every call left live (orphans and in-flight commits).
        for _ in range(int(SWEEP_WAIT_S / 0.25)):
            if scalar(engine, "SELECT COUNT(*) FROM calls WHERE state = 'live'") == 0:
                break
            await sleep(0.25)
        assert scalar(engine, "SELECT COUNT(*) FROM calls WHERE state = 'live'") == 0
    finally:
        cluster.stopping = True
        for server in every_server:
            if server.process.poll() is None:
                server.process.send_signal(signal.SIGTERM)
        finished = [await deferToThread(server.finish) for server in every_server]

    survivor_log, victim_log, restarted_log = (log for _, log in finished)
    assert [code for code, _ in finished] == [0, -signal.SIGKILL, 0], finished
    for log in (survivor_log, restarted_log):
        assert " ERROR " not in log and "Traceback" not in log, log
    # The restarted server started cleanly on the same database and served.
    assert re.search(r"schema version \d+", restarted_log)
    on_restarted = [a for a in cluster.attempts
                    if a.server == "agi-2" and a.started >= restarted_at]
    assert any(a.result == v.ALLOW for a in on_restarted)

    # Every session got a definite answer, except those on the victim at the moment it died.
    # (sessions the kernel accepted while the process was dying count as in flight)
    in_flight_at_kill = [a for a in cluster.attempts if a.server == "agi-2"
                         and a.started <= dead_at and a.ended >= killed_at]
    for a in cluster.attempts:
        if a in in_flight_at_kill:  # any answer, a partial one, or none; but no hang
            assert a.error or (a.closed and a.elapsed < SESSION_TIMEOUT), str(a)
            continue
        if a.error is not None:  # refused: only the victim while it was dead
            assert a.server == "agi-2" and killed_at <= a.started <= restarted_at, str(a)
            continue
        assert a.closed and a.elapsed <= SESSION_TIMEOUT, str(a)
        assert a.result == v.ALLOW or a.reason == reasons.CHANNEL_LIMIT, f"{a} {a.answer}"
    # The survivor kept serving (and allowing) while the other was dead.
    while_dead = [a for a in cluster.attempts
                  if a.server == "agi-1" and killed_at < a.started < restarted_at]
    assert sum(a.result == v.ALLOW for a in while_dead) >= 3, len(while_dead)

    # No over-admission, from Asterisk's side and in the database.
    for code, limit in LIMITS.items():
        assert cluster.peak_held[code] <= limit, cluster.peak_held
        assert cluster.peak_live[code] <= limit, cluster.peak_live
    assert max(cluster.peak_held[c] - LIMITS[c] for c in LIMITS) == 0, \
        "the load must reach the channel limits"

    # Calls never settled were closed as stale by the sweep, once each, unbilled, for review.
    assert cluster.refused, "some calls must have lost their settle to the dead server"
    stale = {str(r.id): r for r in rows(
        engine, "SELECT id, server, cost, settled_at FROM calls WHERE state = 'stale'")}
    state = {str(r.id): (r.state, r.cost) for r in rows(
        engine, "SELECT id, state, cost FROM calls")}
    for call in cluster.orphans:
        assert call.server == "agi-2"
        if call in cluster.refused:
            assert call.call_id in stale, f"orphan {call} was not closed as stale"
        else:  # its settle died with the server: it committed (billed once) or it did not
            assert call.call_id in stale or state[call.call_id] == (
                "settled", Decimal(call.expected_cost(PER_SECOND))), (call, state[call.call_id])
            if call.call_id not in stale:
                call.cost = call.expected_cost(PER_SECOND)
    review = {str(r[0]) for r in rows(
        engine, "SELECT call_id FROM calls_for_review WHERE state = 'stale'")}
    assert review == set(stale)
    assert all(row.cost is None for row in stale.values())
    # Stale calls nobody was told ALLOW for: authorizations in flight on the victim.
    phantoms = [i for i in stale if i not in cluster.calls]
    assert all(stale[i].server == "agi-2" for i in phantoms)
    assert len(phantoms) <= len(in_flight_at_kill)
    assert sum(closed_by_sweeps(log) for _, log in finished) == len(stale)

    # Every settled call billed once what it talked; the ledger holds for every client.
    settled = [c for c in cluster.calls.values() if c.cost is not None]
    assert [c for c in settled if c.cost != c.expected_cost(PER_SECOND)] == []
    for code, client_id in ids.items():
        ours = [c for c in settled if c.client == code]
        assert ledger_gap(engine, client_id) == 0
        assert scalar(engine, "SELECT balance FROM client_accounts WHERE client_id = :i", i=client_id) == \
            OPENING - sum(Decimal(c.cost) for c in ours)
        assert scalar(engine, "SELECT COUNT(*) FROM calls WHERE client_id = :i AND state ="
                      " 'settled'", i=client_id) == len(ours)
    print(f"\n{len(cluster.attempts)} sessions, {len(cluster.calls)} allowed, "
          f"{len(cluster.orphans)} orphaned, {len(phantoms)} phantom, {len(stale)} stale, "
          f"{len(in_flight_at_kill)} in flight at the kill, peak live {cluster.peak_live}")
