"""Scale benchmark: authorize p99 with 1,000,000 finished calls vs an empty database, and
server memory after 10,000 and 100,000 sessions.

    .venv/bin/python bench/scale.py [--clients 10000] [--records 1000000]
                                        [--duration 30] [--servers 2] [--rss-sessions 10000,100000]

Takes about 6 minutes on the 2-core development machine. Steps:
1. A fresh database `ict_bench_scale` (dropped and recreated; the name must start with
   ict_bench) with the 100,000-prefix deck and --clients clients (the mix of bench/calls.py).
2. "empty": --servers `ictcontact serve` processes, the complete-call load of bench/calls.py
   for --duration s; authorize p50/p99.
3. --records finished call records inserted in bulk (INSERT ... SELECT from MariaDB's
   sequence engine, 100,000 rows a statement: settled answered calls with a cost, settled
   unanswered calls, rejected attempts, over the last 30 days, spread over the clients with plenty of credit;
   the ledger trigger debits each cost, so the ledger check still holds).
4. "1M": fresh servers, the same load; authorize p99 must stay within 2x of "empty".
5. Memory: one fresh server; VmRSS (from /proc/PID/status) after 10,000 sessions and after
   100,000 sessions (about 50,000 complete calls); the second must be within 20% of the
   first.
Then the ledger check for every client. Exit 1 when a target or a check fails.
"""

from __future__ import annotations

import argparse
import os
import random
import sys
import tempfile
import time
from pathlib import Path

from sqlalchemy import text

import calls as bench
import ratedeck
from fastagi.db.engine import make_engine

BATCH = 100_000


def insert_finished_calls(url: str, records: int) -> float:
    """`records` finished calls over every bench client with plenty of credit (server
    'bulk'), in bulk; returns seconds taken."""
    engine = make_engine(url, pool_size=1, timeout_s=600)
    started = time.perf_counter()
    try:
        # The ledger trigger updates clients, so the INSERT cannot read clients itself:
        # a numbered copy of the bench clients to join instead.
        with engine.begin() as conn:
            conn.execute(text(
                "CREATE TABLE bench_client_numbers (n INT NOT NULL PRIMARY KEY"
                " COMMENT 'Client number 0..N-1', client_id INT UNSIGNED NOT NULL"
                " COMMENT 'clients.id', code VARCHAR(32) NOT NULL COMMENT 'clients.code')"
                " ENGINE=InnoDB COMMENT='bench/scale.py: clients numbered for bulk inserts'"))
            conn.execute(text(
                "INSERT INTO bench_client_numbers (n, client_id, code)"
                " SELECT ROW_NUMBER() OVER (ORDER BY id) - 1, id, code FROM clients"
                " WHERE code LIKE 'c%' AND balance >= :rich"), {"rich": bench.RICH_BALANCE / 2})
            clients = conn.execute(text(
                "SELECT COUNT(*) FROM bench_client_numbers")).scalar_one()
        for first in range(1, records + 1, BATCH):
            last = min(first + BATCH - 1, records)
            # s.seq % 20 = 0: a rejected attempt; % 5 = 1: unanswered (cost 0); else answered.
            # The sequence table name is an identifier built from integers, not input.
            at = "(b.base + INTERVAL (s.seq * 2) SECOND)"
            sql = f"""
                INSERT INTO calls (client_id, client_code, direction, number, state, reason,
                    prefix, rate_per_min, connection_fee, initial_increment,
                    subsequent_increment, max_seconds, reserved, server, authorized_at,
                    expires_at, settled_at, answered_seconds, dial_status, billable_seconds,
                    cost)
                SELECT c.client_id, c.code, 'out', CONCAT('44207', LPAD(s.seq, 7, '0')),
                    IF(s.seq % 20 = 0, 'rejected', 'settled'),
                    IF(s.seq % 20 = 0, 'no-credit', NULL),
                    '44', 0.012000, 0, 60, 60, 3600, 0, 'bulk', {at},
                    IF(s.seq % 20 = 0, NULL, {at} + INTERVAL 3900 SECOND),
                    IF(s.seq % 20 = 0, NULL, {at} + INTERVAL 120 SECOND),
                    IF(s.seq % 20 = 0 OR s.seq % 5 = 1, NULL, 61 + s.seq % 240),
                    IF(s.seq % 20 = 0, NULL, IF(s.seq % 5 = 1, 'NOANSWER', 'ANSWER')),
                    IF(s.seq % 20 = 0, NULL, IF(s.seq % 5 = 1, 0, 120 + 60 * (s.seq % 4))),
                    IF(s.seq % 20 = 0, NULL,
                       IF(s.seq % 5 = 1, 0, 0.0240 + 0.0120 * (s.seq % 4)))
                FROM seq_{first}_to_{last} s
                JOIN bench_client_numbers c ON c.n = s.seq % :clients
                CROSS JOIN (SELECT UTC_TIMESTAMP(3) - INTERVAL 24 DAY AS base) b"""
            with engine.begin() as conn:
                conn.execute(text(sql), {"clients": clients})
            print(f"  {last:,} call records ({time.perf_counter() - started:.0f} s)",
                  flush=True)
    finally:
        engine.dispose()
    return time.perf_counter() - started


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clients", type=int, default=10_000)
    parser.add_argument("--records", type=int, default=1_000_000)
    parser.add_argument("--duration", type=float, default=30)
    parser.add_argument("--warmup", type=float, default=5)
    parser.add_argument("--servers", type=int, default=2)
    parser.add_argument("--concurrency", type=int, default=60,
                        help="calls in flight (default 60: below saturation, so the p99 "
                             "shows the database work rather than queueing)")
    parser.add_argument("--talk-ms", default="50,400")
    parser.add_argument("--rss-sessions", default="10000,100000",
                        help="sessions after which the server's RSS is read, FIRST,SECOND")
    parser.add_argument("--server-url", default=os.environ.get(
        "ICT_BENCH_SERVER", "mysql+pymysql://root@127.0.0.1:3306"))
    parser.add_argument("--database", default="ict_bench_scale")
    parser.add_argument("--server-log-level", default="WARNING")
    parser.add_argument("--keep", action="store_true", help="keep the database afterwards")
    parser.add_argument("--seed", type=int, default=1)
    bench.add_deck_argument(parser)
    args = parser.parse_args(argv)
    args.talk = tuple(int(x) for x in args.talk_ms.split(","))
    args.rss_at = [int(x) for x in args.rss_sessions.split(",")]
    args.calls = None
    return args


def main(argv=None) -> int:
    args = parse_args(argv)
    rng = random.Random(args.seed)
    deck = ratedeck.load(args.deck, args.deck_rows, args.seed)
    url, population = bench.setup_database(args.server_url, args.database, args.clients,
                                           rng, deck)
    servers = bench.Servers(Path(tempfile.mkdtemp(prefix="ict-scale-")))
    engine = make_engine(url, pool_size=2)
    generator = bench.Generator(None, population, [r["prefix"] for r in deck], rng,
                                args.concurrency, args.talk)
    results: list[bench.Figures] = []
    rss: list[tuple[int, int]] = []
    notes: dict[str, float] = {}

    from twisted.internet import reactor
    from twisted.internet.defer import ensureDeferred
    from twisted.internet.threads import deferToThread

    generator.reactor = reactor

    async def load(label: str) -> None:
        processes = servers.start_product(url, args.servers, args.server_log_level)
        try:
            figures = await bench.run_phase(reactor, servers, generator, label, processes,
                                            engine, args)
        finally:
            servers.stop(processes)
        results.append(figures)
        print(f"{label}: {figures.calls_per_s:.1f} complete calls/s, authorize p99 "
              f"{bench.pct(figures.authorize_ms, .99):.1f} ms", flush=True)

    async def memory() -> None:
        (process,) = servers.start_product(url, 1, args.server_log_level)
        try:
            servers.wait_ready([process])
            rss.append((0, process.rss_kib()))
            done = 0
            for target in args.rss_at:
                figures = bench.Figures(label=f"rss-{target}", servers=1)
                await generator.run([process.port], figures, 0, 0, None, None,
                                    max_sessions=target - done)
                done += figures.sessions
                rss.append((done, process.rss_kib()))
                print(f"server RSS after {done:,} sessions: {rss[-1][1] / 1024:.1f} MiB",
                      flush=True)
        finally:
            servers.stop([process])

    async def everything() -> None:
        await load("empty database")
        print(f"inserting {args.records:,} finished call records ...", flush=True)
        notes["insert_s"] = await deferToThread(insert_finished_calls, url, args.records)
        await load(f"{args.records:,} records")
        await memory()

    outcome: list = []

    def start() -> None:
        running = ensureDeferred(everything())
        running.addErrback(outcome.append)
        running.addBoth(lambda _: reactor.stop())

    failures: list[str] = []
    try:
        reactor.callWhenRunning(start)
        reactor.run()
        if outcome:
            outcome[0].raiseException()
        bench.print_table(results)
        empty, full = results[0], results[1]
        p99_empty = bench.pct(empty.authorize_ms, .99)
        p99_full = bench.pct(full.authorize_ms, .99)
        ratio = p99_full / p99_empty
        print(f"\ninserted {args.records:,} call records in {notes['insert_s']:.0f} s")
        print(f"authorize p99: empty {p99_empty:.1f} ms, with {args.records:,} records "
              f"{p99_full:.1f} ms: {ratio:.2f}x (target <= 2x)")
        if ratio > 2:
            failures.append(f"authorize p99 grew {ratio:.2f}x")
        (_, start_rss), (first_n, first), (second_n, second) = rss[0], rss[1], rss[-1]
        growth = second / first - 1
        print(f"server RSS: {start_rss / 1024:.1f} MiB at start, {first / 1024:.1f} MiB after "
              f"{first_n:,} sessions, {second / 1024:.1f} MiB after {second_n:,} sessions: "
              f"{100 * growth:+.1f}% (target within 20%)")
        if abs(growth) > 0.20:
            failures.append(f"server RSS grew {100 * growth:.1f}%")
        for figures in results:
            if figures.over_admissions or (figures.db_max_over or 0) > 0:
                failures.append(f"{figures.label}: over-admission")
        failures += bench.final_checks(engine, generator)
    finally:
        servers.stop()
        engine.dispose()
        if not args.keep:
            bench.drop_database(args.server_url, args.database)
    if failures:
        print("FAILED: " + "; ".join(failures[:10]))
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
