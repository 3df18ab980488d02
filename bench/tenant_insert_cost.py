"""Benchmark: what the row-owner triggers (schema 071) and the tenant write guards (schema
100) cost an operator's bulk insert and a client login's insert.

    .venv/bin/python bench/tenant_insert_cost.py [--rows 50000] [--tenant-rows 5000] [--server URL]

Creates its own database `ict_bench_owner_<pid>` and one client with a database login
(needs event_scheduler=ON). The operator inserts --rows contacts in one INSERT ... SELECT
(MariaDB seq engine); the client login inserts --tenant-rows contacts through its view in
INSERTs of 500 rows. Both run with the whole trigger in place, then with the trigger
without its guard block (`tenant_guard` of contacts_before_insert, schema 149), and the
operator's again without its row-owner block (`row_owner`) too. Prints the times (best of
3) and the cost per row of each block.
Drops the login, the roles and the databases at the end.
"""

from __future__ import annotations

import argparse
import os
import re
import time

import pymysql
from sqlalchemy import text
from sqlalchemy.engine import make_url

from fastagi.db import migrate
from fastagi.db.engine import make_engine

PASSWORD = "bench password 123"
BATCH = 500


def operator_insert(engine, client_id: int, rows: int) -> float:
    with engine.begin() as conn:
        start = time.perf_counter()
        conn.execute(text(
            "INSERT INTO contacts (client_id, phone) "
            "SELECT :c, CONCAT('44', seq) FROM seq_1_to_" + str(int(rows))), {"c": client_id})
        return time.perf_counter() - start


def tenant_insert(login, campaign_id: int, rows: int) -> float:
    statement = ("INSERT INTO contacts (campaign_id, phone) VALUES "
                 + ", ".join(["(%s, %s)"] * BATCH))
    start = time.perf_counter()
    with login.cursor() as cur:
        for first in range(0, rows, BATCH):
            args = []
            for n in range(first, first + BATCH):
                args += [campaign_id, f"4470{n:08d}"]
            cur.execute(statement, args)
    return time.perf_counter() - start


def drop_block(engine, trigger: str, label: str) -> None:
    """Replace `trigger` by its own text without the labelled block `label: BEGIN ... END label;`."""
    with engine.begin() as conn:
        create = conn.exec_driver_sql(f"SHOW CREATE TRIGGER `{trigger}`").one()[2]
        without = re.sub(rf"\n\s*{label}: BEGIN\n.*?\n\s*END {label};", "", create, count=1,
                         flags=re.S)
        if without == create:
            raise SystemExit(f"{trigger} has no block {label}: update this benchmark")
        conn.exec_driver_sql(without.replace("CREATE ", "CREATE OR REPLACE ", 1),
                             execution_options={"no_parameters": True})


def best(measure, repeat: int = 3) -> float:
    return min(measure() for _ in range(repeat))


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=50000)
    parser.add_argument("--tenant-rows", type=int, default=5000)
    parser.add_argument("--server", default=os.environ.get("ICT_TEST_SERVER",
                                                           "mysql+pymysql://root@127.0.0.1:3306"))
    args = parser.parse_args()
    tenant_rows = max(BATCH, args.tenant_rows // BATCH * BATCH)
    name = f"ict_bench_owner_{os.getpid()}"
    url = f"{args.server}/{name}"
    code = f"bo{os.getpid()}"
    migrate.upgrade(url)
    engine = make_engine(url, pool_size=1)
    login = None
    try:
        with engine.begin() as conn:
            master = conn.execute(text("SELECT id FROM clients WHERE code = 'master'")).scalar_one()
            cid = conn.execute(text("INSERT INTO clients (code, name) VALUES (:c, :c)"),
                               {"c": code}).lastrowid
            campaign = conn.execute(text("INSERT INTO campaigns (client_id, name) VALUES (:c, 'bench')"),
                                    {"c": cid}).lastrowid
            conn.execute(text("INSERT INTO users (client_id, username, role) VALUES (:c, :u, 'supervisor')"),
                         {"c": cid, "u": f"{code}-sup"})
        with engine.begin() as conn:
            account = conn.execute(text("CALL grant_db_login(:c, :u, :p)"),
                                   {"c": code, "u": f"{code}-sup", "p": PASSWORD}).one().account
        u = make_url(url)
        login = pymysql.connect(host=u.host, port=u.port or 3306, user=account, password=PASSWORD,
                                database=f"{name}_tenant", autocommit=True)
        operator_insert(engine, master, 1000)  # warm up
        tenant_insert(login, campaign, BATCH)
        op_all = best(lambda: operator_insert(engine, master, args.rows))
        tenant_all = best(lambda: tenant_insert(login, campaign, tenant_rows))
        drop_block(engine, "contacts_before_insert", "tenant_guard")
        op_owner = best(lambda: operator_insert(engine, master, args.rows))
        tenant_owner = best(lambda: tenant_insert(login, campaign, tenant_rows))
        drop_block(engine, "contacts_before_insert", "row_owner")
        op_none = best(lambda: operator_insert(engine, master, args.rows))

        def per_row(slow: float, fast: float, rows: int) -> str:
            return f"{(slow - fast) / rows * 1e6:.1f} us/row"
        print(f"operator: {args.rows} contacts in one INSERT ... SELECT (best of 3)")
        print(f"  every trigger                 {op_all:.3f} s")
        print(f"  without the guard             {op_owner:.3f} s   guard {per_row(op_all, op_owner, args.rows)}")
        print(f"  without guard and row owner   {op_none:.3f} s   row owner {per_row(op_owner, op_none, args.rows)}")
        print(f"client login: {tenant_rows} contacts through its view, INSERTs of {BATCH} rows (best of 3)")
        print(f"  every trigger                 {tenant_all:.3f} s")
        print(f"  without the guard             {tenant_owner:.3f} s   guard {per_row(tenant_all, tenant_owner, tenant_rows)}")
    finally:
        if login is not None:
            login.close()
        with engine.begin() as conn:
            conn.execute(text("CALL drop_tenant_world()"))
            conn.execute(text(f"DROP DATABASE `{name}`"))
        engine.dispose()


if __name__ == "__main__":
    main()
