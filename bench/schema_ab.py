"""A/B benchmark of the schema's cost on the hot path: serial authorize + settle through
fastagi.store.calls against two databases, one built from schema directory A and one from
B, in alternating rounds (so machine load hits both alike); prints ms per call per round
and the ratio of the medians.

    .venv/bin/python bench/schema_ab.py A_SCHEMA_DIR B_SCHEMA_DIR [--rounds 6] [--calls 200]

E.g. A = a checkout of main's schema/, B = this branch's: a trigger added to clients or
calls shows up here, without the noise of bench/calls.py's servers and network. Creates
and drops its own databases `ict_bench_ab{a,b}_<pid>`.
"""

from __future__ import annotations

import argparse
import os
import statistics
import time
from datetime import datetime, timezone
from pathlib import Path

from sqlalchemy import text

from fastagi.billing.admission import CallRequest
from fastagi.db import migrate
from fastagi.db.engine import make_engine
from fastagi.store import calls

SERVER_URL = os.environ.get("ICT_TEST_SERVER", "mysql+pymysql://root@127.0.0.1:3306")


def drop(name: str) -> None:
    admin = make_engine(SERVER_URL + "/", pool_size=1)
    try:
        with admin.begin() as conn:
            conn.execute(text(f"DROP DATABASE IF EXISTS `{name}`"))
    finally:
        admin.dispose()


def make_database(name: str, schema: Path):
    drop(name)
    migrate.upgrade(f"{SERVER_URL}/{name}", directory=schema)
    engine = make_engine(f"{SERVER_URL}/{name}", pool_size=2)
    with engine.begin() as conn:
        plan = conn.execute(text("SELECT id FROM rate_plans WHERE is_default = 1")).scalar_one()
        conn.execute(text("INSERT INTO rates (rate_plan_id, prefix, rate_per_min) "
                          "VALUES (:p, '44', 0.01)"), {"p": plan})
        conn.execute(text("INSERT INTO clients (code, name, opening_balance, channel_limit) "
                          "VALUES ('bench', 'Bench', 1000000, 50)"))
    return engine


def ms_per_call(engine, count: int) -> float:
    started = time.perf_counter()
    for _ in range(count):
        now = datetime.now(timezone.utc).replace(tzinfo=None)
        got = calls.authorize(engine, CallRequest("bench", "442071234567"), now, calls.Limits())
        assert got.admission.allowed, got.admission
        calls.settle(engine, got.call_id, 61, "ANSWER", now)
    return (time.perf_counter() - started) / count * 1000


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("a", type=Path)
    parser.add_argument("b", type=Path)
    parser.add_argument("--rounds", type=int, default=6)
    parser.add_argument("--calls", type=int, default=200)
    args = parser.parse_args()
    names = (f"ict_bench_aba_{os.getpid()}", f"ict_bench_abb_{os.getpid()}")
    engines = [make_database(names[0], args.a), make_database(names[1], args.b)]
    try:
        results: tuple[list[float], list[float]] = ([], [])
        for round_no in range(args.rounds):
            for side, engine in enumerate(engines):
                results[side].append(ms_per_call(engine, args.calls))
            print(f"round {round_no}: A {results[0][-1]:.2f} ms/call, "
                  f"B {results[1][-1]:.2f} ms/call", flush=True)
        a, b = statistics.median(results[0]), statistics.median(results[1])
        print(f"median authorize+settle: A {a:.2f} ms, B {b:.2f} ms, B/A {b / a:.3f}")
    finally:
        for engine, name in zip(engines, names):
            engine.dispose()
            drop(name)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
