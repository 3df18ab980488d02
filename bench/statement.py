"""Statement benchmark: how long `ictcontact statement` takes for a client with 1,000,000
calls (docs/benchmark.md "bench/statement.py").

Bulk-loads the calls of one client over twelve months of 2026 (INSERT ... SELECT from
MariaDB's sequence engine, 100,000 rows a statement; the ledger trigger debits every cost),
twelve monthly top-ups and a correction, then times the statement of the busiest month:
in-process (the store query alone, best and median of --repeat) and end to end (the
console script as a subprocess, --format json). It checks that the statement reconciles
with the ledger (closing = payments - call charges up to the period end) and that
December's closing balance is client_list's balance. Exit 1 if a check fails.

    .venv/bin/python bench/statement.py                 # about 1-2 minutes
    .venv/bin/python bench/statement.py --without-index # also time it without schema 132's index
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from datetime import datetime
from decimal import Decimal
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from sqlalchemy import text  # noqa: E402

from bench_db import make_database  # noqa: E402
from fastagi.billing.statement import Period  # noqa: E402
from fastagi.store import statements  # noqa: E402

BATCH = 100_000
DESTINATIONS = 20
YEAR_SECONDS = 365 * 24 * 3600


def load(engine, calls: int) -> float:
    """`calls` settled calls of client `bench` spread over 2026; seconds taken."""
    started = time.perf_counter()
    with engine.begin() as conn:
        plan = conn.execute(text("SELECT id FROM rate_plans WHERE is_default = 1")).scalar_one()
        for n in range(DESTINATIONS - 1):       # and bench_db's 44
            conn.execute(text("INSERT INTO rates (rate_plan_id, prefix, description, rate_per_min)"
                              " VALUES (:p, :prefix, :d, 0.02)"),
                         {"p": plan, "prefix": f"{50 + n}", "d": f"Destination {50 + n}"})
        client = conn.execute(text("SELECT id FROM clients WHERE code = 'bench'")).scalar_one()
        for month in range(1, 13):
            conn.execute(text("INSERT INTO payments (client_id, amount, reference, created_at)"
                              " VALUES (:c, 5000, :r, :at)"),
                         {"c": client, "r": f"INV-2026-{month:02d}",
                          "at": datetime(2026, month, 1, 9)})
        conn.execute(text("INSERT INTO payments (client_id, amount, kind, reference, created_at)"
                          " VALUES (:c, -12.5, 'correction', 'INV-2026-03 fix', :at)"),
                     {"c": client, "at": datetime(2026, 3, 15)})
    step = YEAR_SECONDS / calls
    for first in range(1, calls + 1, BATCH):
        last = min(first + BATCH - 1, calls)
        # s.seq % 20 = 1: unanswered (cost 0, not on the statement); % 1000 = 7: emergency
        # (free); else answered, to one of 20 destinations. Identifiers built from integers.
        at = f"(TIMESTAMP'2026-01-01 00:00:00' + INTERVAL FLOOR((s.seq - 1) * {step:.6f}) SECOND)"
        prefix = f"IF(s.seq % {DESTINATIONS} = {DESTINATIONS - 1}, '44', CONCAT(50 + s.seq % {DESTINATIONS}))"
        sql = f"""
            INSERT INTO calls (client_id, client_code, direction, number, state, emergency,
                prefix, rate_per_min, connection_fee, initial_increment, subsequent_increment,
                max_seconds, reserved, server, authorized_at, expires_at, settled_at,
                answered_seconds, dial_status, billable_seconds, cost)
            SELECT {client}, 'bench', 'out',
                IF(s.seq % 1000 = 7, '911', CONCAT({prefix}, LPAD(s.seq, 8, '0'))),
                'settled', s.seq % 1000 = 7, IF(s.seq % 1000 = 7, NULL, {prefix}),
                0.020000, 0, 60, 60, 3600, 0, 'bulk', {at} - INTERVAL 200 SECOND,
                {at} + INTERVAL 3600 SECOND, {at},
                IF(s.seq % 20 = 1, NULL, 30 + s.seq % 170),
                IF(s.seq % 20 = 1, 'NOANSWER', 'ANSWER'),
                IF(s.seq % 20 = 1 OR s.seq % 1000 = 7, 0, 60 + 60 * (s.seq % 3)),
                IF(s.seq % 20 = 1 OR s.seq % 1000 = 7, 0, 0.0200 + 0.0200 * (s.seq % 3))
            FROM seq_{first}_to_{last} s"""
        with engine.begin() as conn:
            conn.execute(text(sql))
        print(f"  {last:,} calls ({time.perf_counter() - started:.0f} s)", flush=True)
    return time.perf_counter() - started


def time_store(engine, period: Period, repeat: int) -> list[float]:
    now = datetime(2027, 1, 2)
    times = []
    for _ in range(repeat):
        started = time.perf_counter()
        statements.statement(engine, "bench", period, now)
        times.append(time.perf_counter() - started)
    return times


def time_cli(url: str, period: Period) -> tuple[float, dict]:
    ictcontact = Path(sys.executable).parent / "ictcontact"
    env = {k: v for k, v in os.environ.items() if not k.startswith("ICTCONTACT_")}
    env["ICTCONTACT_CONFIG"] = os.devnull
    started = time.perf_counter()
    done = subprocess.run([str(ictcontact), "statement", "bench", "--period", str(period),
                           "--format", "json", "--db", url],
                          capture_output=True, text=True, env=env, timeout=600)
    took = time.perf_counter() - started
    if done.returncode != 0:
        raise SystemExit(f"ictcontact statement failed: {done.stderr.strip()}")
    return took, json.loads(done.stdout)


def check(engine, period: Period, data: dict) -> list[str]:
    problems = []
    with engine.connect() as conn:
        client = conn.execute(text("SELECT id FROM clients WHERE code = 'bench'")).scalar_one()
        ledger = conn.execute(text(
            "SELECT (SELECT COALESCE(SUM(amount), 0) FROM payments"
            "        WHERE client_id = :c AND created_at < :end)"
            " - (SELECT COALESCE(SUM(cost), 0) FROM calls WHERE client_id = :c"
            "    AND settled_at < :end)"), {"c": client, "end": period.end}).scalar_one()
        balance = conn.execute(text("SELECT balance FROM client_list WHERE id = :c"),
                               {"c": client}).scalar_one()
    if Decimal(data["closing_balance"]) != ledger:
        problems.append(f"closing {data['closing_balance']} != ledger {ledger}")
    december = statements.statement(engine, "bench", Period(2026, 12), datetime(2027, 1, 2))
    if december.closing_balance != balance:
        problems.append(f"December closing {december.closing_balance} != balance {balance}")
    return problems


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=1_000_000)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--without-index", action="store_true",
                        help="then drop ix_calls_client_settled and time again")
    parser.add_argument("--keep", action="store_true", help="keep the database")
    args = parser.parse_args(argv)

    # bulk statements of 100,000 rows may outlast the default 10 s read timeout
    url, engine, drop = make_database("statement", 0, 10, pool_size=2, timeout_s=900)
    try:
        print(f"loading {args.calls:,} calls of one client over 2026 ...", flush=True)
        load_s = load(engine, args.calls)
        with engine.connect() as conn:
            busiest = conn.execute(text(
                "SELECT period FROM statement_calls WHERE client_id ="
                " (SELECT id FROM clients WHERE code = 'bench')"
                " GROUP BY period ORDER BY COUNT(*) DESC, period LIMIT 1")).scalar_one()
            conn.execute(text("ANALYZE TABLE calls, payments"))
        period = Period.parse(busiest)
        print(f"loaded in {load_s:.1f} s; statement of {period} (warm: one run first)")
        time_store(engine, period, 1)
        store = time_store(engine, period, args.repeat)
        last = time_store(engine, Period(2026, 12), args.repeat)   # opening sums 11 months
        cli_s, data = time_cli(url, period)
        print(f"statement {period}, {data['calls']:,} calls on it, "
              f"{len(data['usage_lines'])} destinations, client with {args.calls:,} calls:")
        print(f"  store query: best {min(store) * 1000:.0f} ms, "
              f"median {statistics.median(store) * 1000:.0f} ms ({args.repeat} runs)")
        print(f"  store query for 2026-12 (its opening balance sums 11 months of calls): "
              f"best {min(last) * 1000:.0f} ms, median {statistics.median(last) * 1000:.0f} ms")
        print(f"  ictcontact statement --format json (subprocess, end to end): "
              f"{cli_s * 1000:.0f} ms")
        with engine.connect() as conn:
            started = time.perf_counter()
            months = conn.execute(text("SELECT * FROM statements WHERE code = 'bench'")).all()
            view_s = time.perf_counter() - started
        print(f"  SELECT * FROM statements WHERE code = 'bench' ({len(months)} months): "
              f"{view_s * 1000:.0f} ms")
        problems = check(engine, period, data)
        by_month = {row.period: row for row in months}
        if by_month[str(period)].closing_balance != Decimal(data["closing_balance"]):
            problems.append(f"statements view closing {by_month[str(period)].closing_balance}"
                            f" != {data['closing_balance']}")
        if args.without_index:
            with engine.begin() as conn:
                conn.execute(text("ALTER TABLE calls DROP INDEX ix_calls_client_settled"))
            time_store(engine, period, 1)
            bare = time_store(engine, period, args.repeat)
            print(f"  without ix_calls_client_settled: best {min(bare) * 1000:.0f} ms, "
                  f"median {statistics.median(bare) * 1000:.0f} ms")
        for problem in problems:
            print(f"CHECK FAILED: {problem}")
        if not problems:
            print("checks: closing balance = ledger at the period end; December closing = "
                  "client_list balance")
        return 1 if problems else 0
    finally:
        if args.keep:
            engine.dispose()
            print(f"kept {url}")
        else:
            drop()


if __name__ == "__main__":
    sys.exit(main())
