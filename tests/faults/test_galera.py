"""The product on a private 3-node MariaDB Galera cluster (tests/faults/galera_cluster.py).

On Galera, row locks and GET_LOCK() are local to one node and conflicts surface at COMMIT
as certification failures (1213). Observed here, on real nodes:
- `db upgrade` run on two nodes at once applies every file exactly once (its lock is a
  replicated row, not GET_LOCK, which both nodes would grant at once);
- triggers, procedures, CHECKs and views behave the same on every node, and a ledger
  trigger moves a balance exactly once cluster-wide;
- two real `serve` processes on two different nodes, hit by a burst of simultaneous
  authorizations for one client with a small channel limit and one with little credit:
  0 over-admission, 0 overdraft, every answer definite, every call settled through the
  OTHER node (read-your-writes), and the same exact ledger on all three nodes;
- a node killed mid-load: the server on a surviving node goes on, the one whose node died
  answers `unavailable` within its bounds, and the invariants hold on the survivors.

CI runs one bounded burst; ICT_FULL=1 runs several, larger, and a longer kill phase.
The whole file takes about a minute and a half in CI mode (forming the cluster ~20 s).
"""

from __future__ import annotations

import random
import re
import signal
import subprocess
import threading
from decimal import Decimal

import pymysql
import pytest
import pytest_twisted
from sqlalchemy import text
from sqlalchemy.exc import OperationalError
from twisted.internet import reactor
from twisted.internet.defer import ensureDeferred, gatherResults
from twisted.internet.threads import deferToThread

from fastagi import channel_vars as v, reasons
from fastagi.db import migrate
from fastagi.db.engine import make_engine
from tests.callcontrol.tenants import add_client, add_rate, default_plan_id, ledger_gap
from tests.serve_process import Server, environ, serve_command
from tests.support.waiting import pause as sleep

from .conftest import scaled
from .load import Attempt, attempt

NUMBER = "15550100"
RATE_PER_MIN = "0.60"                # 0.01/s with 1/1 increments, no connection fee
PER_SECOND = Decimal("0.01")
RETRY_LOG = re.compile(r"retried after MySQL error 1213")


# The test's own reads wait this long for a node's answer: a causal read on a loaded 2-core
# machine was once held over the default 10 s (the node applying what the burst wrote).
# What they check does not change; a node that never answers still fails the test.
OBSERVER_TIMEOUT_S = 60


def engines(cluster, database: str) -> list:
    return [make_engine(node.url(database), pool_size=2,
                        statement_timeout_s=OBSERVER_TIMEOUT_S) for node in cluster.nodes]


def dispose(all_engines) -> None:
    for engine in all_engines:
        engine.dispose()


def rows(engine, sql: str, **params) -> list:
    with engine.connect() as conn:
        return conn.execute(text(sql), params).all()


def wait_replicated(engine) -> None:
    """A causal read (the engine's sessions use wsrep_sync_wait): returns once this node
    has applied everything committed anywhere before it."""
    rows(engine, "SELECT 1")


# ---------------------------------------------------------------------------- db upgrade

def test_get_lock_alone_would_not_serialize_upgrades(galera_cluster):
    """Why `db upgrade` cannot use GET_LOCK here: two nodes grant the same lock at once."""
    galera_cluster.ensure_running()
    conns = [pymysql.connect(host="127.0.0.1", port=node.port, user="root")
             for node in galera_cluster.nodes[:2]]
    try:
        got = []
        for conn in conns:
            with conn.cursor() as cursor:
                cursor.execute("SELECT GET_LOCK(%s, 0)", (migrate.LOCK_NAME,))
                got.append(cursor.fetchone()[0])
        assert got == [1, 1]
    finally:
        for conn in conns:
            conn.close()


def test_db_upgrade_on_two_nodes_at_once_applies_each_file_once(galera_cluster):
    galera_cluster.ensure_running()
    name = "ict_galera_upgrade_race"
    nodes = galera_cluster.nodes
    wanted = [m.version for m in migrate.available_migrations()]
    results: dict[int, list[int] | BaseException] = {}
    start = threading.Barrier(2)

    def run(index: int) -> None:
        start.wait()
        try:
            results[index] = migrate.upgrade(nodes[index].url(name))
        except BaseException as exc:  # reported below
            results[index] = exc

    threads = [threading.Thread(target=run, args=(i,)) for i in (0, 1)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(120)
    all_engines = engines(galera_cluster, name)
    try:
        assert all(isinstance(r, list) for r in results.values()), results
        assert sorted(results[0] + results[1]) == wanted  # each file applied exactly once
        for engine in all_engines:
            wait_replicated(engine)
            applied = [r[0] for r in rows(engine, "SELECT version FROM schema_migrations "
                                                  "ORDER BY version")]
            assert applied == wanted
            assert rows(engine, "SELECT * FROM schema_upgrade_lock") == []  # released
            assert migrate.status(engine).pending == ()
    finally:
        dispose(all_engines)
        with pymysql.connect(host="127.0.0.1", port=nodes[0].port, user="root") as conn:
            with conn.cursor() as cursor:
                cursor.execute(f"DROP DATABASE IF EXISTS `{name}`")


def test_db_upgrade_waits_for_the_lock_held_on_another_node(galera_db, galera_cluster,
                                                            monkeypatch):
    first, second = galera_cluster.nodes[:2]
    holder_engine = make_engine(first.url(galera_db), pool_size=1)
    monkeypatch.setattr(migrate, "LOCK_WAIT_SECONDS", 1.0)
    try:
        with holder_engine.connect() as conn, migrate._lease_lock(conn):
            with pytest.raises(migrate.SchemaError, match="another upgrade holds the schema "
                                                          r"lock \(.*until .* UTC\)"):
                migrate.upgrade(second.url(galera_db))
        assert migrate.upgrade(second.url(galera_db)) == []  # released: up to date
        # An upgrade that died holding the lock blocks others only until its lease lapses.
        with holder_engine.begin() as conn:
            conn.execute(text("INSERT INTO schema_upgrade_lock (id, holder, taken_at,"
                              " expires_at) VALUES (1, 'dead:1:x', UTC_TIMESTAMP(),"
                              " UTC_TIMESTAMP() - INTERVAL 1 SECOND)"))
        assert migrate.upgrade(second.url(galera_db)) == []
        assert rows(holder_engine, "SELECT COUNT(*) FROM schema_upgrade_lock")[0][0] == 0
    finally:
        holder_engine.dispose()


# ---------------------------------------------------------------------- schema objects

def test_schema_objects_behave_the_same_on_every_node(galera_db, galera_cluster):
    all_engines = engines(galera_cluster, galera_db)
    try:
        for n, engine in enumerate(all_engines, start=1):
            code = f"node{n}"
            client_id = add_client(engine, code, balance="10", channel_limit=3)  # opening
            with engine.begin() as conn:
                conn.execute(text("CALL add_payment(:c, 5, :ref)"), {"c": code, "ref": "INV-1"})
            with engine.begin() as conn:
                conn.execute(text("INSERT INTO payments (client_id, amount, kind, reference) "
                                  "VALUES (:id, -2.5, 'correction', 'FIX-1')"), {"id": client_id})
            refusals = {
                "UPDATE client_accounts SET balance = 1000 WHERE client_id = :id":
                    "client_accounts.balance is kept by the ledger",
                "UPDATE payments SET amount = 1 WHERE client_id = :id":
                    "payments are never changed",
                "DELETE FROM payments WHERE client_id = :id": "payments are never deleted",
                "UPDATE clients SET channel_limit = -1 WHERE id = :id": "ck_clients_channel_limit",
            }
            for statement, message in refusals.items():
                with pytest.raises(Exception, match=message):
                    with engine.begin() as conn:
                        conn.execute(text(statement), {"id": client_id})
        for engine in all_engines:  # every node sees every node's rows, moved once
            wait_replicated(engine)
            listed = rows(engine, "SELECT name, balance, channels, status FROM client_list "
                                  "WHERE name LIKE 'Client node%' ORDER BY name")
            assert [(r[0], r[1], r[2], r[3]) for r in listed] == [
                (f"Client node{n}", Decimal("12.5000"), 3, "active") for n in (1, 2, 3)]
            for (client_id,) in rows(engine, "SELECT id FROM clients WHERE code LIKE 'node%'"):
                assert ledger_gap(engine, client_id) == 0
    finally:
        dispose(all_engines)


# --------------------------------------------------- two servers on two nodes, one burst

BURST = scaled(300, 800)             # simultaneous authorizations per round
ROUNDS = scaled(1, 3)
CHANNELS = 5                         # `chan`: plenty of credit, a small channel limit
CREDIT = Decimal("2.10")             # `cred`: 3 calls of 60 s and one of 30 s, then nothing
SINGLES = scaled(40, 120)            # `one-N`: limit 1, hit by 4 at once (2 per node)
MAX_CALL = 60
DEFINITE = {reasons.CHANNEL_LIMIT, reasons.NO_CREDIT, reasons.UNAVAILABLE}


def serve_on(node, database: str, name: str, *extra: str) -> Server:
    return Server(node.url(database), "--server-name", name, "--max-call-seconds",
                  str(MAX_CALL), "--db-pool-size", "10", *extra)


STOP_S = 30   # serve stops within --shutdown-grace-seconds + --db-timeout (10 + 5 s)


def stop(servers) -> str:
    """SIGTERM every server at once, wait for each; the servers' logs. One that does not
    exit within STOP_S is killed (never left running) and fails the test."""
    servers = list(servers)
    for server in servers:
        if server.process.poll() is None:
            server.process.send_signal(signal.SIGTERM)
    logs, hung = [], []
    for server in servers:
        try:
            logs.append(server.finish(STOP_S)[1])
        except subprocess.TimeoutExpired:
            server.process.kill()
            hung.append(server)
            logs.append(server.finish()[1])
    assert not hung, (f"{len(hung)} serve process(es) did not stop within {STOP_S} s of "
                      f"SIGTERM:\n" + "".join(logs)[-20000:])
    return "".join(logs)


def answer_is_definite(got: Attempt) -> bool:
    if got.error or not got.closed:
        return False
    if got.result == v.ALLOW:
        return all(got.answer.get(k) for k in (v.CALL_ID, v.MAX_MS, v.DIAL))
    return got.result == v.REJECT and got.reason in DEFINITE


def live_usage(engine, code: str) -> tuple[int, Decimal, Decimal]:
    """(live calls, credit they reserve, balance) of one client on one node."""
    live, reserved, balance = rows(
        engine, "SELECT (SELECT COUNT(*) FROM calls k WHERE k.client_id = c.id"
                "        AND k.state = 'live'),"
                " (SELECT COALESCE(SUM(reserved), 0) FROM calls k WHERE k.client_id = c.id"
                "        AND k.state = 'live'), a.balance"
                " FROM clients c JOIN client_accounts a ON a.client_id = c.id"
                " WHERE c.code = :code", code=code)[0]
    return int(live), Decimal(reserved), Decimal(balance)


@pytest_twisted.ensureDeferred
async def test_two_servers_on_two_nodes_never_over_admit_or_overdraw(galera_db, galera_cluster):
    first, second, third = galera_cluster.nodes
    all_engines = engines(galera_cluster, galera_db)
    plan = default_plan_id(all_engines[0])
    add_rate(all_engines[0], plan, "1555", RATE_PER_MIN, initial=1, subsequent=1)
    opening = {"chan": Decimal("100"), "cred": CREDIT}
    ids = {"chan": add_client(all_engines[0], "chan", balance="100", channel_limit=CHANNELS),
           "cred": add_client(all_engines[1], "cred", balance=str(CREDIT), channel_limit=50)}
    admits = {"chan": CHANNELS, "cred": 4}       # what each burst must admit, no more
    for n in range(SINGLES):
        code = f"one-{n}"
        ids[code] = add_client(all_engines[n % 3], code, balance="10", channel_limit=1)
        opening[code], admits[code] = Decimal("10"), 1
    log_sizes = [node.log_size() for node in galera_cluster.nodes]
    servers = {"A": serve_on(first, galera_db, "A"), "B": serve_on(second, galera_db, "B")}
    other = {"A": "B", "B": "A"}
    told = {code: Decimal(0) for code in ids}
    answers: list[Attempt] = []
    try:
        for round_ in range(ROUNDS):
            # Round 2+: top `cred` up (through node 3) to CREDIT again, so it admits 4.
            left = opening["cred"] - told["cred"]
            if round_ and left < CREDIT:
                with all_engines[2].begin() as conn:
                    conn.execute(text("CALL add_payment('cred', :a, :r)"),
                                 {"a": CREDIT - left, "r": f"round-{round_}"})
                opening["cred"] += CREDIT - left
            # The limit-1 clients first, each hit on both nodes in the same instant; then
            # the one-client burst, alternating between the servers.
            burst = [(code, s) for code in ids if code.startswith("one-") for s in "ABAB"]
            burst += [(code, "AB"[i % 2])
                      for i, code in enumerate(["chan", "cred"] * (BURST // 2))]
            got = await gatherResults([
                ensureDeferred(attempt(servers[s].port, s, "authorize", code, NUMBER,
                                       timeout=30)) for code, s in burst])
            answers += got
            assert [str(a) for a in got if not answer_is_definite(a)] == []
            allowed = {code: [a for a, (c, _) in zip(got, burst)
                              if c == code and a.result == v.ALLOW] for code in ids}
            # Held now, none settled: the calls the servers allowed ARE the live calls.
            for engine in all_engines:
                wait_replicated(engine)
                over = {code: len(calls) for code, calls in allowed.items()
                        if len(calls) > admits[code]}
                assert over == {}, "over-admission"
                for code, calls in allowed.items():
                    live, reserved, balance = live_usage(engine, code)
                    assert live == len(calls), code
                    assert reserved <= balance, f"overdraft of {code}"
                live, reserved, balance = live_usage(engine, "cred")
                assert (live, reserved) == (4, balance)  # every cent reserved, not more
                assert live_usage(engine, "chan")[0] == CHANNELS
            # Hang up: each settle goes to the OTHER node than its authorize.
            rng = random.Random(round_)
            settles = []
            for code, calls in allowed.items():
                for a in calls:
                    seconds = rng.randint(0, int(a.answer[v.MAX_MS]) // 1000)
                    settles.append((code, seconds, ensureDeferred(attempt(
                        servers[other[a.server]].port, other[a.server], "settle",
                        a.answer[v.CALL_ID], f"ms={seconds * 1000}", "ANSWER"))))
            for code, seconds, deferred in settles:
                settled = await deferred
                assert settled.result == v.ALLOW, str(settled)
                # answered: at least the 1 s initial increment
                assert settled.answer.get(v.COST) == f"{PER_SECOND * max(seconds, 1):.4f}", \
                    str(settled)
                told[code] += Decimal(settled.answer[v.COST])
        # The same exact ledger on every node.
        for engine in all_engines:
            wait_replicated(engine)
            for code, client_id in ids.items():
                live, reserved, balance = live_usage(engine, code)
                assert (live, reserved) == (0, 0)
                assert balance == opening[code] - told[code] >= 0, code
                assert ledger_gap(engine, client_id) == 0
        snapshots = [rows(e, "SELECT id, state, cost, server FROM calls ORDER BY id")
                     for e in all_engines]
        assert snapshots[0] == snapshots[1] == snapshots[2]
    finally:
        # Shown by pytest only when the test fails: what the nodes went through (a view
        # change, flow control) and what the servers said went wrong.
        print("".join(node.cluster_events(size)
                      for node, size in zip(galera_cluster.nodes, log_sizes))[-20000:])
        dispose(all_engines)
        logs = stop(servers.values())
        print("".join(line + "\n" for line in logs.splitlines()
                      if " ERROR " in line or " WARNING " in line)[-20000:])
    retries = len(RETRY_LOG.findall(logs))
    unavailable = sum(a.reason == reasons.UNAVAILABLE for a in answers)
    print(f"\ngalera burst: {len(answers)} authorizations over 2 nodes, {retries} "
          f"certification/deadlock retries, {unavailable} unavailable")


# ------------------------------------------------------------------ node settings
# (before the kill test, which leaves node 2 down for the next fixture to restart)

def test_sessions_read_causally_and_serve_refuses_a_node_missing_a_setting(galera_db,
                                                                           galera_cluster):
    node = galera_cluster.nodes[2]
    engine = make_engine(node.url(galera_db), pool_size=1)
    try:
        assert rows(engine, "SELECT @@SESSION.wsrep_sync_wait")[0][0] == 1
    finally:
        engine.dispose()
    admin = pymysql.connect(host="127.0.0.1", port=node.port, user="root", autocommit=True)
    try:
        with admin.cursor() as cursor:
            cursor.execute("SET GLOBAL wsrep_auto_increment_control = OFF")
        result = subprocess.run(serve_command(), env=environ(ICTCONTACT_DB=node.url(galera_db)),
                                capture_output=True, text=True, timeout=60)
    finally:
        with admin.cursor() as cursor:
            cursor.execute("SET GLOBAL wsrep_auto_increment_control = ON")
        admin.close()
    assert result.returncode == 1
    assert ("Galera node has wsrep_auto_increment_control=OFF, needs ON"
            in result.stderr), result.stderr


# ------------------------------------------------------------------- a node killed

KILL_WORKERS = scaled(16, 40)
BEFORE_KILL_S = scaled(3, 8)
AFTER_KILL_S = scaled(10, 20)
KILL_LIMIT = 4
KILL_MAX_CALL = 2                    # tiny, so calls whose answer died with the node are
KILL_GRACE = 1                       # swept stale within seconds by the survivors
SESSION_TIMEOUT = 5.0
DB_TIMEOUT = 2.0


@pytest_twisted.ensureDeferred
async def test_a_node_killed_mid_load(galera_db, galera_cluster):
    first, second, third = galera_cluster.nodes
    survivor = make_engine(first.url(galera_db), pool_size=2)
    witness = make_engine(third.url(galera_db), pool_size=2)
    plan = default_plan_id(survivor)
    add_rate(survivor, plan, "1555", RATE_PER_MIN, initial=1, subsequent=1)
    client_id = add_client(survivor, "busy", balance="50", channel_limit=KILL_LIMIT)
    options = ("--max-call-seconds", str(KILL_MAX_CALL), "--stale-grace-seconds",
               str(KILL_GRACE), "--stale-sweep-seconds", "1", "--session-timeout",
               str(SESSION_TIMEOUT), "--db-timeout", str(DB_TIMEOUT), "--db-pool-size", "4")
    servers = {"A": serve_on(first, galera_db, "A", *options),
               "B": serve_on(second, galera_db, "B", *options)}
    attempts: list[tuple[Attempt, bool]] = []        # (attempt, after the kill)
    held: set[str] = set()
    peak = {"held": 0, "live": 0}
    told = Decimal(0)
    state = {"killed": False, "stopping": False}
    lapses: list[str] = []                            # observer reads that timed out

    async def run(name: str, script: str, *args: str) -> Attempt:
        got = await attempt(servers[name].port, name, script, *args,
                            timeout=SESSION_TIMEOUT + 10)
        attempts.append((got, state["killed"]))
        return got

    async def worker(n: int) -> None:
        nonlocal told
        rng = random.Random(n)
        while not state["stopping"]:
            name = rng.choice("AB")
            got = await run(name, "authorize", "busy", NUMBER)
            if got.result == v.ALLOW:
                call_id = got.answer[v.CALL_ID]
                held.add(call_id)
                peak["held"] = max(peak["held"], len(held))
                await sleep(rng.uniform(0.05, 0.5))
                held.discard(call_id)
                seconds = rng.randint(0, KILL_MAX_CALL)
                done = await run(name, "settle", call_id, f"ms={seconds * 1000}", "ANSWER")
                if done.result == v.ALLOW:
                    assert done.answer[v.COST] == f"{PER_SECOND * max(seconds, 1):.4f}", str(done)
                    told += Decimal(done.answer[v.COST])
            await sleep(rng.uniform(0, 0.02))

    async def poll() -> None:
        while not state["stopping"]:
            try:
                live, _, _ = await deferToThread(live_usage, survivor, "busy")
            except OperationalError as exc:
                # The survivor may hold causal reads while the cluster evicts the dead
                # node (seen once over 10 s on a loaded machine): the observer waits,
                # it does not end the test; the servers' own answers are checked below.
                lapses.append(str(exc.orig))
                await sleep(0.2)
                continue
            peak["live"] = max(peak["live"], live)
            await sleep(0.05)

    try:
        load = gatherResults([ensureDeferred(worker(n)) for n in range(KILL_WORKERS)]
                             + [ensureDeferred(poll())])
        await sleep(BEFORE_KILL_S)
        await deferToThread(second.stop, signal.SIGKILL)
        state["killed"] = True
        killed_at = reactor.seconds()
        await sleep(AFTER_KILL_S)
        state["stopping"] = True
        await load
        # Calls whose ALLOW or settle died with node 2 are swept stale by the survivors.
        for _ in range(100):
            live, _, _ = await deferToThread(live_usage, survivor, "busy")
            if live == 0:
                break
            await sleep(0.2)
        assert live == 0
    finally:
        logs = stop(servers.values())
        state["stopping"] = True
    try:
        late = [a for a, after in attempts if after and a.started > killed_at + 6]
        assert [str(a) for a, _ in attempts if a.error or not a.closed] == []
        assert all(a.elapsed < SESSION_TIMEOUT + 1 for a, _ in attempts)
        # The server on the surviving node went on admitting and settling...
        assert any(a.server == "A" and a.result == v.ALLOW for a in late)
        # ... the one whose node died answers a definite `unavailable`, fast.
        on_dead = [a for a in late if a.server == "B"]
        assert on_dead and all(a.reason == reasons.UNAVAILABLE for a in on_dead)
        assert peak["held"] <= KILL_LIMIT and peak["live"] <= KILL_LIMIT
        for engine in (survivor, witness):
            wait_replicated(engine)
            assert ledger_gap(engine, client_id) == 0
            live, reserved, balance = live_usage(engine, "busy")
            assert (live, reserved) == (0, 0) and balance >= 0
            # Every cost the fake Asterisk was told is debited; calls that died with the
            # node are stale (unbilled), never charged twice.
            charged = rows(engine, "SELECT COALESCE(SUM(cost), 0) FROM calls "
                                   "WHERE client_id = :id AND state = 'settled'",
                           id=client_id)[0][0]
            assert charged >= told
            assert Decimal("50") - charged == balance
    finally:
        survivor.dispose()
        witness.dispose()
    late_a = [a for a in late if a.server == "A"]
    print(f"\ngalera node kill: {len(attempts)} sessions, "
          f"{sum(a.result == v.ALLOW for a, _ in attempts)} ALLOW, "
          f"{len(RETRY_LOG.findall(logs))} retries, peak live {peak['live']}; "
          f"after the eviction: server A {len(late_a)} sessions "
          f"({sum(a.reason == reasons.UNAVAILABLE for a in late_a)} unavailable), "
          f"server B {len(on_dead)} sessions, all unavailable, slowest "
          f"{max(a.elapsed for a in on_dead):.2f} s; observer reads timed out: {len(lapses)}")

