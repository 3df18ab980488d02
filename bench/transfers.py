"""Benchmark: transfers per second from reseller logins (CALL transfer_to_client).

    .venv/bin/python bench/transfers.py [--connections 1,4,8] [--seconds 10] [--resellers 1]

Creates its own database `ict_bench_transfers_<pid>` with the schema, --resellers resellers
under master, each with 8 clients and an admin user with a database login, and a large
balance. For each number of parallel connections N, N connections (spread over the
resellers' logins round-robin) call `transfer_to_client` of 0.01 to one of their
reseller's clients, one after the other, for --seconds; prints transfers/s, p50 and p99
latency, and the 1-minute load average before and after. With one reseller every
transfer takes that reseller's row locks: the figure is the serial rate of one reseller.
At the end it checks the ledger (each reseller's balance = opening - transfers) and drops
the logins, roles and both databases. Needs event_scheduler=ON.
"""

from __future__ import annotations

import argparse
import os
import statistics
import threading
import time
from decimal import Decimal

import pymysql
from sqlalchemy import text
from sqlalchemy.engine import make_url

from fastagi.db import migrate
from fastagi.db.engine import make_engine

PASSWORD = "bench password 123"
OPENING = Decimal("1000000")
CHILDREN = 8


def connect(url: str, account: str, database: str) -> pymysql.Connection:
    u = make_url(url)
    return pymysql.connect(host=u.host, port=u.port or 3306, user=account, password=PASSWORD,
                           database=database, autocommit=True, connect_timeout=5)


def run(url: str, tenant_db: str, logins: list[tuple[str, list[str]]], connections: int,
        seconds: float, tag: str) -> tuple[int, list[float], int]:
    """`connections` threads transfer until the time is up: (done, latencies, refused)."""
    latencies: list[float] = []
    errors: list[str] = []
    counts = {"done": 0, "refused": 0}
    lock = threading.Lock()
    barrier = threading.Barrier(connections, timeout=30)
    stop_at = [0.0]

    def worker(n: int) -> None:
        account, children = logins[n % len(logins)]
        conn = connect(url, account, tenant_db)
        mine: list[float] = []
        done = refused = 0
        try:
            barrier.wait()
            if n == 0:
                stop_at[0] = time.monotonic() + seconds
            barrier.wait()
            k = 0
            while time.monotonic() < stop_at[0]:
                start = time.perf_counter()
                try:
                    with conn.cursor() as cur:
                        cur.execute("CALL transfer_to_client(%s, 0.01, %s)",
                                    (children[k % len(children)], f"{tag}-{n}-{k}"))
                        cur.fetchall()
                    done += 1
                    mine.append(time.perf_counter() - start)
                except pymysql.MySQLError as exc:
                    refused += 1
                    errors.append(str(exc.args)[:160])
                    if isinstance(exc, pymysql.err.OperationalError) and exc.args[0] in (2006, 2013):
                        break   # the session was ended: counted, not retried
                k += 1
        finally:
            conn.close()
            with lock:
                latencies.extend(mine)
                counts["done"] += done
                counts["refused"] += refused

    threads = [threading.Thread(target=worker, args=(n,)) for n in range(connections)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for message in sorted(set(errors))[:3]:
        print(f"      refused: {message}")
    return counts["done"], latencies, counts["refused"]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--connections", default="1,4,8",
                        help="comma list of parallel connection counts (a login may hold 10)")
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--resellers", type=int, default=1)
    parser.add_argument("--server", default=os.environ.get("ICT_TEST_SERVER",
                                                           "mysql+pymysql://root@127.0.0.1:3306"))
    args = parser.parse_args()
    name = f"ict_bench_transfers_{os.getpid()}"
    url = f"{args.server}/{name}"
    migrate.upgrade(url)
    engine = make_engine(url, pool_size=2)
    prefix = f"bt{os.getpid()}"
    logins: list[tuple[str, list[str]]] = []
    try:
        with engine.begin() as conn:
            for r in range(args.resellers):
                code = f"{prefix}r{r}"
                rid = conn.execute(text(
                    "INSERT INTO clients (code, name, opening_balance, resells)"
                    " VALUES (:c, :c, :o, 1)"), {"c": code, "o": OPENING}).lastrowid
                plan = conn.execute(text("INSERT INTO rate_plans (name, owner_client_id) VALUES (:n, :o)"),
                                    {"n": f"{code}-plan", "o": rid}).lastrowid
                children = []
                for k in range(CHILDREN):
                    conn.execute(text("INSERT INTO clients (code, name, parent_id, rate_plan_id)"
                                      " VALUES (:c, :c, :p, :plan)"),
                                 {"c": f"{code}k{k}", "p": rid, "plan": plan})
                    children.append(f"{code}k{k}")
                conn.execute(text("INSERT INTO users (client_id, username, role) VALUES (:c, 'admin', 'admin')"),
                             {"c": rid})
                logins.append((code, children))
        accounts = []
        with engine.begin() as conn:
            for code, children in logins:
                accounts.append((conn.execute(text("CALL grant_db_login(:c, 'admin', :p)"),
                                              {"c": code, "p": PASSWORD}).one().account, children))
        total = 0
        print(f"{args.resellers} reseller(s), {CHILDREN} clients each, {args.seconds:.0f} s per run, "
              f"transfers of 0.01 (CALL transfer_to_client)")
        for n in (int(x) for x in args.connections.split(",")):
            load_before = os.getloadavg()[0]
            done, latencies, refused = run(url, f"{name}_tenant", accounts, n, args.seconds, f"n{n}")
            total += done
            latencies.sort()
            p99 = latencies[min(len(latencies) - 1, int(len(latencies) * 0.99))] if latencies else 0
            print(f"{n:3d} connections: {done / args.seconds:8.1f} transfers/s  "
                  f"p50 {statistics.median(latencies) * 1000 if latencies else 0:6.1f} ms  "
                  f"p99 {p99 * 1000:6.1f} ms  refused {refused}  "
                  f"load average {load_before:.2f} -> {os.getloadavg()[0]:.2f}")
        with engine.connect() as conn:
            moved = conn.execute(text("SELECT COALESCE(SUM(amount), 0) FROM transfers")).scalar_one()
            balances = conn.execute(text(
                "SELECT SUM(a.balance) FROM client_accounts a JOIN clients c ON c.id = a.client_id"
                " WHERE c.resells = 1")).scalar_one()
            rows = conn.execute(text("SELECT COUNT(*) FROM transfers")).scalar_one()
            for reason, n in conn.execute(text(
                    "SELECT reason, COUNT(*) FROM tenant_sessions_ended GROUP BY reason")).all():
                print(f"sessions ended by the watchdog: {n} ({reason})")
        exact = balances == OPENING * args.resellers - moved and rows == total
        print(f"ledger: {rows} transfers, {moved} moved, resellers' balances "
              f"{'exact' if exact else 'WRONG'}")
    finally:
        with engine.begin() as conn:
            conn.execute(text("CALL drop_tenant_world()"))
            conn.execute(text(f"DROP DATABASE `{name}`"))
        engine.dispose()


if __name__ == "__main__":
    main()
