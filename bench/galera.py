"""Benchmark: authorizations/s on a private 3-node MariaDB Galera cluster, with the
writers on ONE node and on TWO nodes, and the certification conflicts (retries) seen.

    .venv/bin/python bench/galera.py [--duration 20] [--concurrency 60] [--clients 20]

What it does (about a minute and a half with the defaults):
1. Forms a private 3-node cluster on 127.0.0.1 (tests/faults/galera_cluster.py: own
   datadirs under a temporary directory, own ports; never the shared 3306 instance),
   applies the schema through node 1 and creates --clients clients with channel limits
   2-10 and plenty of credit, and one rate (0.60/min, 1/1 increments).
2. Phase "1 node": two `ictcontact serve` processes, both on node 1. Phase "2 nodes": the
   same two servers, one on node 1 and one on node 2. One asynchronous fake Asterisk (this
   process) keeps --concurrency authorizations in flight, alternating between the servers,
   each for a random client; an ALLOW is settled at once, at the same server, with a
   random talk time, so channels free up and fill again all along.
3. Prints per phase: authorizations/s (answered authorize sessions in the window), ALLOW
   and rejections by reason, authorize p50/p99 latency, and what the nodes counted in the
   window: certification failures (`wsrep_local_cert_failures`) and transactions aborted
   by a replicated write (`wsrep_local_bf_aborts`), each of which the server retried.

Checked after each phase on every node: no call left live, each client's ledger exact
(balance == payments - charged costs), the costs the fake Asterisk was told equal the
costs debited, and the most live calls sampled for a client never above its limit.
Exit status 1 if a check fails. Every process it starts is stopped on exit.
"""

from __future__ import annotations

import argparse
import random
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter
from decimal import Decimal
from pathlib import Path

from sqlalchemy import text

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from fastagi import channel_vars as v  # noqa: E402
from fastagi.db import migrate  # noqa: E402
from fastagi.db.engine import make_engine  # noqa: E402
from fastagi.testing.fake_asterisk import run_session  # noqa: E402
from tests.faults.galera_cluster import GaleraCluster, missing_packages  # noqa: E402
from tests.serve_process import environ  # noqa: E402

DATABASE = "ict_bench_galera"
NUMBER = "15550100"
PER_SECOND = Decimal("0.01")
COUNTERS = ("wsrep_local_cert_failures", "wsrep_local_bf_aborts")


def node_counters(engines) -> Counter:
    total = Counter()
    for engine in engines:
        with engine.connect() as conn:
            for name, value in conn.exec_driver_sql(
                    "SHOW GLOBAL STATUS WHERE Variable_name IN "
                    "('wsrep_local_cert_failures', 'wsrep_local_bf_aborts')"):
                total[name.lower()] += int(value)
    return total


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def start_servers(urls: list[str], log_dir: Path) -> list[tuple[subprocess.Popen, int]]:
    """`ictcontact serve` per URL (WARNING logs, to a file); returns once each accepts."""
    log_dir.mkdir(parents=True, exist_ok=True)
    started = []
    for n, url in enumerate(urls, start=1):
        port = free_port()
        with open(log_dir / f"server-{n}-{port}.log", "w") as log:
            process = subprocess.Popen(
                [sys.executable, "-m", "fastagi", "--log-level", "WARNING", "serve",
                 "--server-name", f"bench-{n}", "--db-pool-size", "10"],
                env=environ(ICTCONTACT_DB=url,
                            ICTCONTACT_LISTEN=f"tcp:{port}:interface=127.0.0.1:backlog=1024"),
                stdout=log, stderr=log, stdin=subprocess.DEVNULL)
        started.append((process, port))
        deadline = time.monotonic() + 60
        while True:
            if process.poll() is not None:
                raise RuntimeError(f"server {n} exited: see {log_dir}")
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                if time.monotonic() > deadline:
                    raise RuntimeError(f"server {n} not listening after 60 s")
                time.sleep(0.1)
    return started


def stop_servers(servers) -> None:
    for process, _ in servers:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
    for process, _ in servers:
        try:
            process.wait(30)
        except subprocess.TimeoutExpired:
            process.kill()


class Load:
    """The fake Asterisk side of one phase."""

    def __init__(self, reactor, ports, clients, limits, concurrency, seed) -> None:
        self.reactor = reactor
        self.ports = ports
        self.clients = clients
        self.limits = limits
        self.concurrency = concurrency
        self.rng = random.Random(seed)
        self.window = (0.0, 0.0)
        self.latencies: list[float] = []
        self.outcomes: Counter = Counter()
        self.told = Counter()
        self.held = Counter()
        self.peak = Counter()
        self.errors: list[str] = []
        self.stopping = False

    def in_window(self, t: float) -> bool:
        return self.window[0] <= t < self.window[1]

    async def worker(self, n: int) -> None:
        from twisted.internet.task import deferLater
        port = self.ports[n % len(self.ports)]
        while not self.stopping:
            code = self.rng.choice(self.clients)
            started = self.reactor.seconds()
            result = await run_session(self.reactor, "127.0.0.1", port, "authorize",
                                       (code, NUMBER), timeout=15)
            answer = dict(result.set_by_server)
            ended = self.reactor.seconds()
            if self.in_window(ended):
                self.latencies.append(ended - started)
                self.outcomes[answer.get(v.REASON) or answer.get(v.RESULT) or "none"] += 1
            if not result.server_closed or v.RESULT not in answer:
                self.errors.append(f"authorize {code}: {answer}")
                continue
            if answer[v.RESULT] != v.ALLOW:
                continue
            self.held[code] += 1
            self.peak[code] = max(self.peak[code], self.held[code])
            await deferLater(self.reactor, self.rng.uniform(0, 0.05), lambda: None)
            seconds = self.rng.randint(0, 30)
            self.held[code] -= 1
            settled = dict((await run_session(
                self.reactor, "127.0.0.1", port, "settle",
                (answer[v.CALL_ID], str(seconds), "ANSWER"), timeout=15)).set_by_server)
            if settled.get(v.RESULT) != v.ALLOW:
                self.errors.append(f"settle {answer[v.CALL_ID]}: {settled}")
                continue
            self.told[code] += Decimal(settled[v.COST])


async def run_phase(reactor, label, urls, engines, ids, limits, args, log_dir) -> dict:
    from twisted.internet.defer import ensureDeferred, gatherResults
    from twisted.internet.task import deferLater
    servers = start_servers(urls, log_dir)
    try:
        load = Load(reactor, [port for _, port in servers], list(ids), limits,
                    args.concurrency, args.seed)
        now = reactor.seconds()
        load.window = (now + args.warmup, now + args.warmup + args.duration)
        workers = gatherResults([ensureDeferred(load.worker(n))
                                 for n in range(args.concurrency)])
        await deferLater(reactor, args.warmup, lambda: None)
        before = node_counters(engines)
        await deferLater(reactor, args.duration, lambda: None)
        after = node_counters(engines)
        load.stopping = True
        await workers
    finally:
        stop_servers(servers)
    failures = list(load.errors[:5])
    over = {c: n for c, n in load.peak.items() if n > limits[c]}
    if over:
        failures.append(f"over-admission seen by the fake Asterisk: {over}")
    for n, engine in enumerate(engines, start=1):
        with engine.connect() as conn:
            conn.exec_driver_sql("SELECT 1")  # causal read: node caught up
            live = conn.exec_driver_sql(
                "SELECT COUNT(*) FROM calls WHERE state = 'live'").scalar()
            bad = conn.execute(text(
                "SELECT c.code FROM clients c JOIN client_accounts a ON a.client_id = c.id"
                " WHERE a.balance <>"
                " (SELECT COALESCE(SUM(amount), 0) FROM payments p WHERE p.client_id = c.id)"
                " - (SELECT COALESCE(SUM(cost), 0) FROM calls k WHERE k.client_id = c.id)"
                " OR a.balance < -c.credit_limit")).scalars().all()
            debited = conn.execute(text(
                "SELECT COALESCE(SUM(cost), 0) FROM calls WHERE server LIKE 'bench-%'"
                " AND state = 'settled'")).scalar()
        if live:
            failures.append(f"node {n}: {live} calls left live")
        if bad:
            failures.append(f"node {n}: ledger wrong for {bad}")
        if n == 1:
            phase_debited = debited
    total_told = sum(load.told.values(), Decimal(0))
    lat = sorted(load.latencies)
    answered = len(lat)
    return {
        "label": label, "auth_per_s": answered / args.duration,
        "allowed": load.outcomes[v.ALLOW], "outcomes": dict(load.outcomes),
        "p50_ms": 1000 * statistics.median(lat) if lat else 0,
        "p99_ms": 1000 * lat[int(0.99 * (answered - 1))] if lat else 0,
        "cert_failures": after["wsrep_local_cert_failures"]
        - before["wsrep_local_cert_failures"],
        "bf_aborts": after["wsrep_local_bf_aborts"] - before["wsrep_local_bf_aborts"],
        "told": total_told, "debited": phase_debited, "failures": failures,
    }


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--duration", type=float, default=20, help="measured seconds per phase")
    parser.add_argument("--warmup", type=float, default=3)
    parser.add_argument("--concurrency", type=int, default=60,
                        help="authorizations in flight at all times")
    parser.add_argument("--clients", type=int, default=20)
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args(argv)
    missing = missing_packages()
    if missing:
        print(f"bench/galera.py needs the Debian packages {', '.join(missing)}", file=sys.stderr)
        return 1
    base = Path(tempfile.mkdtemp(prefix="ict-bench-galera-"))
    log_dir = Path(tempfile.mkdtemp(prefix="ict-bench-galera-logs-"))
    cluster = GaleraCluster(base)
    results = []
    try:
        print(f"cluster: 3 nodes formed in {cluster.form():.1f} s under {base}", flush=True)
        urls = [node.url(DATABASE) for node in cluster.nodes]
        migrate.upgrade(urls[0])
        engines = [make_engine(url, pool_size=2) for url in urls]
        rng = random.Random(args.seed)
        ids, limits = {}, {}
        with engines[0].begin() as conn:
            plan = conn.exec_driver_sql("SELECT id FROM rate_plans WHERE is_default = 1").scalar()
            conn.execute(text("INSERT INTO rates (rate_plan_id, prefix, rate_per_min,"
                              " initial_increment, subsequent_increment)"
                              " VALUES (:p, '1555', 0.60, 1, 1)"), {"p": plan})
            for n in range(args.clients):
                code, limit = f"g{n}", rng.randint(2, 10)
                ids[code] = conn.execute(text(
                    "INSERT INTO clients (code, name, opening_balance, channel_limit)"
                    " VALUES (:c, :n, 100000, :l)"), {"c": code, "n": f"Galera {n}",
                                                      "l": limit}).lastrowid
                limits[code] = limit

        from twisted.internet import reactor
        from twisted.internet.defer import ensureDeferred
        outcome = {}

        async def phases():
            for label, chosen in (("1 node", [urls[0], urls[0]]),
                                  ("2 nodes", [urls[0], urls[1]])):
                figures = await run_phase(reactor, label, chosen, engines, ids, limits,
                                          args, log_dir / label.replace(" ", "-"))
                results.append(figures)
                print(f"{label}: {figures['auth_per_s']:.1f} authorizations/s", flush=True)

        def start():
            running = ensureDeferred(phases())
            running.addErrback(lambda failure: outcome.setdefault("error", failure))
            running.addBoth(lambda _: reactor.stop())
        reactor.callWhenRunning(start)
        reactor.run()
        for engine in engines:
            engine.dispose()
        if "error" in outcome:
            outcome["error"].printTraceback()
            return 1
    finally:
        cluster.terminate()
        subprocess.run(["rm", "-rf", str(base)], check=False)
    print(f"\n{args.concurrency} authorizations in flight, {args.clients} clients "
          f"(limits 2-10), 2 servers, {args.duration:g} s per phase")
    print(f"{'writers on':<11} {'auth/s':>7} {'ALLOW':>6} {'ch-limit':>8} {'unavail':>7} "
          f"{'p50 ms':>7} {'p99 ms':>7} {'cert-fail':>9} {'bf-abort':>8}")
    failed = False
    for r in results:
        o = r["outcomes"]
        print(f"{r['label']:<11} {r['auth_per_s']:>7.1f} {r['allowed']:>6} "
              f"{o.get('channel-limit', 0):>8} {o.get('unavailable', 0):>7} "
              f"{r['p50_ms']:>7.1f} {r['p99_ms']:>7.1f} {r['cert_failures']:>9} "
              f"{r['bf_aborts']:>8}")
    for r in results:
        print(f"{r['label']}: costs told {r['told']} USD; checks: "
              + ("; ".join(r["failures"]) or "ledger exact on every node, no call left "
                 "live, no over-admission"))
        failed = failed or bool(r["failures"])
    total_told = sum((r["told"] for r in results), Decimal(0))
    debited = results[-1]["debited"] if results else Decimal(0)
    print(f"costs: {total_told} USD told to the fake Asterisk, {debited} USD debited")
    print(f"server logs: {log_dir}")
    if total_told != debited:
        failed = True
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
