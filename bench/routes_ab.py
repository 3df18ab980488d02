"""Benchmark (issue 22): authorize without trunk routing vs with 10,000 route groups, 5
trunks and 100,000 buy rates, measured in the same run.

    .venv/bin/python bench/routes_ab.py [--rounds 4] [--seconds 15] [--concurrency 16]
                                        [--warmup 3] [--deck ../shared/data/ratedeck-100k.csv]
                                        [--db-prefix ict_bench_routes] [--keep] [--reuse]

Two databases (`ict_bench_routes_a`, `ict_bench_routes_b` on --server-url; dropped and made
again, nothing else touched), each with the 100,000-prefix sell deck in the default plan
and 200 rich clients. B also has 5 trunks (capacity 10,000 each), the deck's 100,000
prefixes as buy rates spread over them (every 5th prefix per trunk, at 50-90% of the sell
rate), 10,000 route groups (prefixes drawn from the deck, half `priority`, half
`least-cost`) with the 5 trunks each (50,000 routes, `allow_loss` on, so a trunk without a
buy rate for the number is still usable) and a `default` group. One `ictcontact serve` per
database; after --warmup seconds of unmeasured calls on each (a server makes its copy of
the route table as it starts: 1-2 s with 100,000 buy rates), rounds alternate A, B, A,
B ...: for --seconds, --concurrency fake Asterisk sessions loop authorize (a number under a
random deck prefix) -> settle. Printed: calls, authorize latency p50/p90/p99/mean/max
(connect to server close) per side, B/A ratios, the load average before and after. Exit 1
if a call of B was not routed, or any session failed.
"""

from __future__ import annotations

import argparse
import os
import random
import sys
import tempfile
import time
from decimal import Decimal
from pathlib import Path

from sqlalchemy import text

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import ratedeck  # noqa: E402
from calls import (Servers, bench_url, insert_clients, load_deck, make_population,  # noqa: E402
                   recreate_database)
from fastagi import channel_vars as v  # noqa: E402
from fastagi.db import migrate  # noqa: E402
from fastagi.db.engine import make_engine  # noqa: E402

DEFAULT_DECK = HERE.parent.parent / "shared" / "data" / "ratedeck-100k.csv"
TRUNKS = 5
GROUPS = 10_000


def setup(server_url: str, database: str, deck, routed: bool, rng: random.Random) -> str:
    url = bench_url(server_url, database)
    started = time.perf_counter()
    recreate_database(server_url, database)
    migrate.upgrade(url)
    engine = make_engine(url, pool_size=1)
    try:
        load_deck(engine, deck)
        _, rows = make_population(200, rng)
        for row in rows:
            row["balance"], row["limit"] = Decimal("1000000"), 1000
        insert_clients(engine, rows)
        if routed:
            seed_routes(engine, deck, rng)
    finally:
        engine.dispose()
    print(f"setup {database}: {'routed' if routed else 'no routes'} in "
          f"{time.perf_counter() - started:.1f} s", flush=True)
    return url


def seed_routes(engine, deck, rng: random.Random) -> None:
    with engine.begin() as conn:
        for n in range(TRUNKS):
            conn.execute(text("INSERT INTO trunks (name, endpoint, capacity) VALUES (:n, :e, 10000)"),
                         {"n": f"carrier{n}", "e": f"carrier{n}"})
        ids = [r[0] for r in conn.execute(text("SELECT id FROM trunks ORDER BY id"))]
        buy = [{"t": ids[i % TRUNKS], "p": row["prefix"],
                "r": (Decimal(row["rate_per_min"]) * Decimal(rng.randint(50, 90)) / 100
                      ).quantize(Decimal("0.000001")),
                "i": int(row["initial_increment"]), "s": int(row["subsequent_increment"])}
               for i, row in enumerate(deck)]
        insert = text("INSERT INTO trunk_rates (trunk_id, prefix, rate_per_min,"
                      " initial_increment, subsequent_increment) VALUES (:t, :p, :r, :i, :s)")
        for start in range(0, len(buy), 5000):
            conn.execute(insert, buy[start:start + 5000])
        prefixes = rng.sample([row["prefix"] for row in deck], GROUPS) + ["default"]
        groups = [{"p": p, "o": "least-cost" if i % 2 else "priority"}
                  for i, p in enumerate(prefixes)]
        for start in range(0, len(groups), 5000):
            conn.execute(text("INSERT INTO route_groups (prefix, ordering) VALUES (:p, :o)"),
                         groups[start:start + 5000])
        conn.execute(text(
            "INSERT INTO routes (route_group_id, trunk_id, priority, allow_loss)"
            " SELECT g.id, t.id, 10 * (1 + MOD(g.id + t.id, 5)), 1"
            " FROM route_groups g CROSS JOIN trunks t"))
        counts = conn.execute(text(
            "SELECT (SELECT COUNT(*) FROM route_groups), (SELECT COUNT(*) FROM routes),"
            " (SELECT COUNT(*) FROM trunk_rates), (SELECT COUNT(*) FROM trunks)")).one()
    print(f"  routes: {counts[0]:,} route groups, {counts[1]:,} routes, {counts[2]:,} buy rates,"
          f" {counts[3]} trunks", flush=True)


def wait_for_disk(server_url: str, limit_seconds: float = 120) -> None:
    """Wait until the setup's bulk writes have reached disk: while InnoDB flushes thousands
    of dirty pages (about 25 s after a setup here), every commit's fsync waits behind them,
    and the first rounds measured that, not authorize (B/A 1.39 in a run straight after
    the setup, 1.09-1.16 on the same databases after)."""
    engine = make_engine(server_url.rstrip("/") + "/", pool_size=1)
    query = text("SELECT variable_value FROM information_schema.global_status"
                 " WHERE variable_name = 'INNODB_BUFFER_POOL_PAGES_DIRTY'")
    started = time.monotonic()
    try:
        with engine.connect() as conn:
            first = last = int(conn.execute(query).scalar())
            quiet_since = started
            while time.monotonic() - started < limit_seconds:
                time.sleep(1)
                dirty = int(conn.execute(query).scalar())
                if dirty < last:          # still flushing
                    quiet_since = time.monotonic()
                last = dirty
                if dirty <= 500 or time.monotonic() - quiet_since >= 5:
                    break
    finally:
        engine.dispose()
    print(f"waited {time.monotonic() - started:.0f} s for the setup's writes to reach disk"
          f" (dirty pages {first} -> {last})", flush=True)


def drop_quietly(server_url: str, database: str) -> None:
    """DROP the bench database, its events stopped first (a DROP racing the rate event can
    leave MariaDB's trigger-file backups behind and fail with 1010)."""
    engine = make_engine(server_url.rstrip("/") + "/", pool_size=1)
    try:
        with engine.begin() as conn:
            for (event,) in conn.execute(text("SELECT event_name FROM information_schema.events"
                                              " WHERE event_schema = :s"), {"s": database}):
                conn.execute(text(f"ALTER EVENT `{database}`.`{event}` DISABLE"))
        recreate_database(server_url, database)
    except Exception as exc:  # noqa: BLE001 - the figures matter more than the cleanup
        print(f"could not drop {database}: {exc}")
    finally:
        engine.dispose()


def pct(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))] if ordered else 0.0


async def run_round(reactor, port: int, codes, deck, seconds: float, concurrency: int,
                    rng: random.Random, routed: bool, figures: dict) -> None:
    from twisted.internet.defer import ensureDeferred, gatherResults
    from fastagi.testing.fake_asterisk import run_session
    deadline = time.monotonic() + seconds

    async def worker() -> None:
        while time.monotonic() < deadline:
            prefix = rng.choice(deck)["prefix"]
            number = (prefix + "".join(rng.choice("0123456789") for _ in range(12)))[:12]
            started = time.perf_counter()
            got = await run_session(reactor, "127.0.0.1", port, "authorize",
                                    (rng.choice(codes), number), timeout=30)
            elapsed = time.perf_counter() - started
            answer = dict(got.set_by_server)
            if not got.server_closed or answer.get(v.RESULT) != v.ALLOW:
                figures["errors"] += 1
                why = answer.get(v.REASON) or ("not closed" if not got.server_closed else "?")
                figures["why"][why] = figures["why"].get(why, 0) + 1
                continue
            figures["latency"].append(elapsed)
            if routed and not answer.get(v.TRUNK):
                figures["unrouted"] += 1
            settle = await run_session(reactor, "127.0.0.1", port, "settle",
                                       (answer[v.CALL_ID], f"ms={rng.randint(0, 90000)}",
                                        "ANSWER"), timeout=30)
            if not settle.server_closed:
                figures["errors"] += 1
    await gatherResults([ensureDeferred(worker()) for _ in range(concurrency)])


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--server-url", default="mysql+pymysql://root@127.0.0.1:3306")
    parser.add_argument("--deck", default=str(DEFAULT_DECK))
    parser.add_argument("--rounds", type=int, default=4)
    parser.add_argument("--seconds", type=float, default=15)
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--warmup", type=float, default=3,
                        help="seconds of unmeasured calls per side before the rounds (a server"
                             " makes its route table copy as it starts)")
    parser.add_argument("--db-prefix", default="ict_bench_routes",  # must start with ict_bench
                        help="names of the two databases: PREFIX_a, PREFIX_b")
    parser.add_argument("--keep", action="store_true", help="keep the two databases")
    parser.add_argument("--reuse", action="store_true",
                        help="use the two databases a run with --keep left (no setup)")
    args = parser.parse_args(argv)
    rng = random.Random(args.seed)
    deck = ratedeck.read(Path(args.deck))
    names = {"A": f"{args.db_prefix}_a", "B": f"{args.db_prefix}_b"}
    if args.reuse:
        urls = {side: bench_url(args.server_url, name) for side, name in names.items()}
    else:
        urls = {"A": setup(args.server_url, names["A"], deck, False, rng),
                "B": setup(args.server_url, names["B"], deck, True, rng)}
        wait_for_disk(args.server_url)
    engine = make_engine(urls["A"], pool_size=1)
    with engine.connect() as conn:
        codes = [r[0] for r in conn.execute(text("SELECT code FROM clients WHERE name LIKE 'Bench client %'"))]
    engine.dispose()
    figures = {side: {"latency": [], "errors": 0, "unrouted": 0, "why": {}} for side in "AB"}
    servers = Servers(Path(tempfile.mkdtemp(prefix="routes_ab-")))
    load_before = os.getloadavg()
    try:
        procs = {side: servers.start_product(urls[side], 1, "WARNING")[0] for side in "AB"}
        servers.wait_ready(list(procs.values()))
        from twisted.internet import reactor
        from twisted.internet.defer import ensureDeferred

        async def all_rounds() -> None:
            for side in "AB":
                unmeasured = {"latency": [], "errors": 0, "unrouted": 0, "why": {}}
                await run_round(reactor, procs[side].port, codes, deck, args.warmup,
                                args.concurrency, rng, side == "B", unmeasured)
            for n in range(args.rounds):
                for side in ("AB" if n % 2 == 0 else "BA"):
                    await run_round(reactor, procs[side].port, codes, deck, args.seconds,
                                    args.concurrency, rng, side == "B", figures[side])
                    print(f"round {n + 1} {side}: {len(figures[side]['latency'])} calls so far",
                          flush=True)
        done = ensureDeferred(all_rounds())
        done.addBoth(lambda _: reactor.stop())
        reactor.run()
    finally:
        servers.stop()
    load_after = os.getloadavg()
    print(f"\nauthorize latency (ms), {args.rounds} rounds x {args.seconds:g} s per side, "
          f"concurrency {args.concurrency}:")
    print(f"{'side':<28} {'calls':>7} {'p50':>7} {'p90':>7} {'p99':>7} {'mean':>7} {'max':>7}"
          f" {'errors':>6}")
    stats = {}
    for side, label in (("A", "A no route groups"), ("B", "B 10k groups/5 trunks/100k buy")):
        lat = [x * 1000 for x in figures[side]["latency"]]
        stats[side] = (pct(lat, 0.5), pct(lat, 0.9), pct(lat, 0.99), sum(lat) / max(1, len(lat)),
                       max(lat, default=0.0))
        print(f"{label:<28} {len(lat):>7} " + " ".join(f"{x:>7.2f}" for x in stats[side])
              + f" {figures[side]['errors']:>6}")
    for side in "AB":
        if figures[side]["why"]:
            print(f"  {side} not allowed: {figures[side]['why']}")
    ratio = [b / a if a else float("nan") for a, b in zip(stats["A"], stats["B"])]
    print(f"{'B/A':<28} {'':>7} " + " ".join(f"{x:>7.2f}" for x in ratio))
    print(f"load average before {load_before[0]:.2f} {load_before[1]:.2f} {load_before[2]:.2f},"
          f" after {load_after[0]:.2f} {load_after[1]:.2f} {load_after[2]:.2f}"
          f" ({os.cpu_count()} CPUs)")
    if not args.keep:   # after the figures are printed: a failed DROP loses nothing
        for name in names.values():
            drop_quietly(args.server_url, name)
    bad = figures["B"]["unrouted"] + figures["A"]["errors"] + figures["B"]["errors"]
    if figures["B"]["unrouted"]:
        print(f"{figures['B']['unrouted']} calls of B were not routed to a trunk")
    return 1 if bad else 0


if __name__ == "__main__":
    raise SystemExit(main())
