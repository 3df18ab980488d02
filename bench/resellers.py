"""Benchmark: authorize under resellers, by depth, against today's flat authorize.

    .venv/bin/python bench/resellers.py [--calls 400] [--ref 14be017] [--resellers 1000]
                                        [--clients-per-reseller 10] [--threads 8]

1. Makes its own database (`ict_bench_resellers_<pid>`, dropped at the end): a chain of
   resellers r1 -> r2 -> r3 -> r4 under master, each selling rate 44 to the next on its own
   plan, and one client at each depth: `flat` (master's, no reseller above: what every
   client was before issue 23), `d1` (r1 above it) ... `d4` (r4, r3, r2, r1 above it).
2. Authorize + settle, one call at a time, rotating over the variants so the machine's
   load hits all alike: `main flat` is fastagi/store/calls.py of --ref (the revision before
   resellers, loaded from git) on the same database and client; the others are this tree.
   Prints p50/p99/mean of authorize (ms, the whole transaction, in-process: no AGI) and
   the ratio of each to `main flat`.
3. Adds --resellers resellers under master with --clients-per-reseller clients each (10,000
   under 1,000 by default) and --threads threads authorizing and settling random ones of
   them, and random flat clients, at once: p50/p99 of each.
Every check: the ledger is exact at every level and no call is left live (exit 1 if not).
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import random
import statistics
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime
from decimal import Decimal
from pathlib import Path

from sqlalchemy import text

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(ROOT))

from bench.bench_db import SERVER_URL  # noqa: E402
from fastagi.billing.admission import CallRequest  # noqa: E402
from fastagi.db import migrate  # noqa: E402
from fastagi.db.engine import make_engine  # noqa: E402
from fastagi.store import calls  # noqa: E402
from tests.support.database import drop_database  # noqa: E402

NOW = datetime(2026, 12, 7, 12, 0, 0)
LIMITS = calls.Limits(max_call_seconds=600, dial_template="x/{number}", stale_grace_seconds=300)
NUMBER = "442071234567"


def main_calls_module(ref: str):
    """fastagi/store/calls.py as it was at `ref`, importable beside this tree's."""
    source = subprocess.run(["git", "-C", str(ROOT), "show", f"{ref}:fastagi/store/calls.py"],
                            capture_output=True, text=True, check=True).stdout
    path = Path(tempfile.mkdtemp()) / "calls_main.py"
    path.write_text(source)
    spec = importlib.util.spec_from_file_location("calls_main", path)
    module = importlib.util.module_from_spec(spec)
    sys.modules["calls_main"] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


def build_chain(engine) -> None:
    with engine.begin() as conn:
        run = lambda sql, **p: conn.execute(text(sql), p)  # noqa: E731
        run("INSERT INTO rate_plans (name) VALUES ('op')")
        plan = run("SELECT id FROM rate_plans WHERE name = 'op'").scalar_one()
        run("INSERT INTO rates (rate_plan_id, prefix, rate_per_min) VALUES (:p, '44', 0.01)",
            p=plan)
        run("INSERT INTO clients (code, name, rate_plan_id, opening_balance, channel_limit)"
            " VALUES ('flat', 'flat', :p, 1000000, 10000)", p=plan)
        parent = None
        for depth in range(1, 5):
            code = f"r{depth}"
            run("INSERT INTO clients (code, name, parent_id, rate_plan_id, opening_balance,"
                " channel_limit) VALUES (:c, :c, (SELECT id FROM clients x WHERE x.code ="
                " COALESCE(:parent, 'master')), :p, 1000000, 10000)",
                c=code, parent=parent, p=plan)
            run("INSERT INTO rate_plans (name, owner_client_id)"
                " SELECT :n, id FROM clients WHERE code = :c", n=f"{code}-sells", c=code)
            plan = run("SELECT id FROM rate_plans WHERE name = :n", n=f"{code}-sells").scalar_one()
            run("INSERT INTO rates (rate_plan_id, prefix, rate_per_min)"
                " VALUES (:p, '44', :r)", p=plan, r=Decimal("0.01") + Decimal("0.002") * depth)
            parent = code
        # d1 under r1 ... d4 under r4: the client at depth k has k resellers above it
        for depth in range(1, 5):
            plan = run("SELECT id FROM rate_plans WHERE name = :n",
                       n=f"r{depth}-sells").scalar_one()
            run("INSERT INTO clients (code, name, parent_id, rate_plan_id, opening_balance,"
                " channel_limit) VALUES (:c, :c, (SELECT id FROM clients x WHERE x.code = :r),"
                " :p, 1000000, 10000)", c=f"d{depth}", r=f"r{depth}", p=plan)


def build_population(engine, resellers: int, per: int) -> tuple[list[str], list[str]]:
    """`resellers` resellers under master, `per` clients each; as many flat clients."""
    with engine.begin() as conn:
        run = lambda sql, **p: conn.execute(text(sql), p)  # noqa: E731
        op = run("SELECT id FROM rate_plans WHERE name = 'op'").scalar_one()
        nested, flat = [], []
        for n in range(resellers):
            code = f"p{n}"
            run("INSERT INTO clients (code, name, rate_plan_id, opening_balance, channel_limit)"
                " VALUES (:c, :c, :p, 1000000, 10000)", c=code, p=op)
            rid = run("SELECT id FROM clients WHERE code = :c", c=code).scalar_one()
            plan = run("INSERT INTO rate_plans (name, owner_client_id) VALUES (:n, :o)",
                       n=f"{code}-sells", o=rid).lastrowid
            run("INSERT INTO rates (rate_plan_id, prefix, rate_per_min)"
                " VALUES (:p, '44', 0.02)", p=plan)
            for k in range(per):
                child = f"p{n}c{k}"
                run("INSERT INTO clients (code, name, parent_id, rate_plan_id, opening_balance,"
                    " channel_limit) VALUES (:c, :c, :r, :p, 1000, 100)",
                    c=child, r=rid, p=plan)
                nested.append(child)
        for n in range(resellers):
            run("INSERT INTO clients (code, name, rate_plan_id, opening_balance, channel_limit)"
                " VALUES (:c, :c, :p, 1000, 100)", c=f"f{n}", p=op)
            flat.append(f"f{n}")
    return nested, flat


def one_call(module, engine, code: str) -> float:
    """Authorize (timed, ms) then settle a call of `code`."""
    started = time.perf_counter()
    got = module.authorize(engine, CallRequest(code, NUMBER), NOW, LIMITS)
    elapsed = (time.perf_counter() - started) * 1000
    if not got.admission.allowed:
        raise SystemExit(f"{code}: unexpectedly rejected: {got.admission.reason}")
    calls.settle(engine, got.call_id, random.randint(0, 120000), "ANSWER", NOW)
    return elapsed


def quantiles(samples: list[float]) -> tuple[float, float, float]:
    ordered = sorted(samples)
    return (statistics.median(ordered), ordered[int(len(ordered) * 0.99) - 1],
            statistics.fmean(ordered))


def check(engine) -> bool:
    with engine.connect() as conn:
        gaps = conn.execute(text(
            "SELECT COUNT(*) FROM clients c JOIN client_accounts a ON a.client_id = c.id"
            " WHERE a.balance <> (SELECT COALESCE(SUM(amount), 0) FROM payments p"
            "   WHERE p.client_id = c.id)"
            " - (SELECT COALESCE(SUM(cost), 0) FROM calls k WHERE k.client_id = c.id)"
            " - (SELECT COALESCE(SUM(cost), 0) FROM call_charges g WHERE g.client_id = c.id)"
        )).scalar_one()
        live = conn.execute(text("SELECT COUNT(*) FROM calls WHERE state = 'live'")).scalar_one()
    print(f"checks: clients whose ledger is off: {gaps}; calls left live: {live}")
    return gaps == 0 and live == 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=400, help="calls per variant")
    parser.add_argument("--ref", default="14be017", help="revision of `main flat`")
    parser.add_argument("--resellers", type=int, default=1000)
    parser.add_argument("--clients-per-reseller", type=int, default=10)
    parser.add_argument("--threads", type=int, default=8)
    parser.add_argument("--population-calls", type=int, default=4000)
    args = parser.parse_args()

    name = f"ict_bench_resellers_{os.getpid()}"
    url = f"{SERVER_URL}/{name}"
    admin = make_engine(SERVER_URL + "/", pool_size=1)
    with admin.begin() as conn:
        conn.execute(text(f"DROP DATABASE IF EXISTS `{name}`"))
    try:
        migrate.upgrade(url)
        engine = make_engine(url, pool_size=args.threads + 2)
        build_chain(engine)
        old = main_calls_module(args.ref)
        variants = [("main flat", old, "flat"), ("flat", calls, "flat")] + [
            (f"depth {d}", calls, f"d{d}") for d in range(1, 5)]
        for label, module, code in variants:  # warm the pool and the caches
            for _ in range(20):
                one_call(module, engine, code)
        samples: dict[str, list[float]] = {label: [] for label, _, _ in variants}
        for _ in range(args.calls):
            for label, module, code in variants:
                samples[label].append(one_call(module, engine, code))
        print(f"load average before the population phase: {os.getloadavg()}")
        print(f"authorize, one call at a time, {args.calls} calls each (ms; depth k ="
              f" k resellers above the client, master not counted):")
        base = quantiles(samples["main flat"])
        print(f"  {'variant':<10} {'p50':>7} {'p99':>7} {'mean':>7}  p50/main  mean/main")
        for label, _, _ in variants:
            p50, p99, mean = quantiles(samples[label])
            print(f"  {label:<10} {p50:7.3f} {p99:7.3f} {mean:7.3f}  {p50 / base[0]:8.2f}"
                  f"  {mean / base[2]:9.2f}")

        if args.resellers == 0:
            return 0 if check(engine) else 1
        started = time.monotonic()
        nested, flat = build_population(engine, args.resellers, args.clients_per_reseller)
        print(f"population: {len(nested)} clients under {args.resellers} resellers and"
              f" {len(flat)} flat clients, built in {time.monotonic() - started:.0f} s")
        picks = [(random.choice(nested), "nested") if i % 2 else (random.choice(flat), "flat")
                 for i in range(args.population_calls)]
        timed: dict[str, list[float]] = {"nested": [], "flat": []}

        def work(pick):
            code, kind = pick
            timed[kind].append(one_call(calls, engine, code))
        started = time.monotonic()
        with ThreadPoolExecutor(args.threads) as pool:
            list(pool.map(work, picks))
        took = time.monotonic() - started
        print(f"{args.threads} threads, {len(picks)} calls in {took:.1f} s"
              f" (load average {os.getloadavg()}):")
        for kind in ("flat", "nested"):
            p50, p99, mean = quantiles(timed[kind])
            print(f"  {kind:<7} authorize p50 {p50:.3f} ms  p99 {p99:.3f} ms  mean {mean:.3f} ms")
        return 0 if check(engine) else 1
    finally:
        drop_database(name)  # events stopped first, stray trigger backups removed


if __name__ == "__main__":
    sys.exit(main())
