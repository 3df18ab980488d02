"""Benchmark: what the row-owner triggers (schema 071) cost an operator's bulk insert.

    .venv/bin/python bench/tenant_insert_cost.py [--rows 50000] [--server URL]

Creates its own database `ict_bench_owner_<pid>`, inserts --rows contacts in one
INSERT ... SELECT as the operator with contacts_tenant_before_insert in place, then again
after dropping that trigger, and prints both times and the cost per row. Drops the
database at the end.
"""

from __future__ import annotations

import argparse
import os
import time

from sqlalchemy import text

from fastagi.db import migrate
from fastagi.db.engine import make_engine


def timed_insert(engine, client_id: int, rows: int) -> float:
    with engine.begin() as conn:
        start = time.perf_counter()
        conn.execute(text(
            "INSERT INTO contacts (client_id, phone) "
            "SELECT :c, CONCAT('44', seq) FROM seq_1_to_" + str(int(rows))), {"c": client_id})
        return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=50000)
    parser.add_argument("--server", default=os.environ.get("ICT_TEST_SERVER",
                                                           "mysql+pymysql://root@127.0.0.1:3306"))
    args = parser.parse_args()
    name = f"ict_bench_owner_{os.getpid()}"
    url = f"{args.server}/{name}"
    migrate.upgrade(url)
    engine = make_engine(url, pool_size=1)
    try:
        with engine.begin() as conn:
            cid = conn.execute(text("SELECT id FROM clients WHERE code = 'master'")).scalar_one()
        timed_insert(engine, cid, 1000)  # warm up
        with_trigger = min(timed_insert(engine, cid, args.rows) for _ in range(3))
        with engine.begin() as conn:
            conn.execute(text("DROP TRIGGER contacts_tenant_before_insert"))
        without = min(timed_insert(engine, cid, args.rows) for _ in range(3))
        print(f"{args.rows} contacts in one INSERT ... SELECT (best of 3), MariaDB seq engine")
        print(f"with the row-owner trigger    {with_trigger:.3f} s")
        print(f"without it                    {without:.3f} s")
        print(f"cost per row                  {(with_trigger - without) / args.rows * 1e6:.1f} us")
    finally:
        with engine.begin() as conn:
            conn.execute(text(f"DROP DATABASE `{name}`"))
        engine.dispose()


if __name__ == "__main__":
    main()
