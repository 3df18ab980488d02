"""Benchmark: how long after `UPDATE clients SET status = ...` a client's database logins
are locked (a new connection refused, an open session ended) and unlocked again.

    .venv/bin/python bench/tenant_lock.py [--rounds 10] [--logins 20] [--hostile] [--server URL]

Creates its own database `ict_bench_lock_<pid>` with the schema, one client with
--logins users that each get a database login, then suspends and reactivates the client
--rounds times. Prints, per phase, p50 and max seconds until every login is locked (new
connections refused), every open session is gone, and every login connects again.
With --hostile, three of the logins hold locks across each suspension, as a hostile
client would: a SERIALIZABLE transaction that read the views (share locks on the client's
row), a transaction of locking reads (`LOCK IN SHARE MODE`, `FOR UPDATE`), and the login
sync's named lock; the suspension's own statement time is printed too.
Drops the logins, roles and both databases at the end. Needs event_scheduler=ON.
"""

from __future__ import annotations

import argparse
import os
import statistics
import time

import pymysql
from sqlalchemy import text

from fastagi.db import migrate
from fastagi.db.engine import make_engine

PASSWORD = "bench password 123"


def connect(url, account, database=None):
    from sqlalchemy.engine import make_url
    u = make_url(url)
    return pymysql.connect(host=u.host, port=u.port or 3306, user=account,
                           password=PASSWORD, database=database, connect_timeout=5)


def can_connect(url, account) -> bool:
    try:
        connect(url, account).close()
        return True
    except pymysql.MySQLError:
        return False


def alive(conn) -> bool:
    try:
        conn.ping(reconnect=False)
        return True
    except pymysql.MySQLError:
        return False


def hold_locks(url, accounts, database, sync_lock):
    """Three sessions of client logins holding what a hostile client can hold."""
    serializable, locking, named = (connect(url, a, database) for a in accounts[:3])
    for conn, statements in (
            (serializable, ["SET SESSION TRANSACTION ISOLATION LEVEL SERIALIZABLE",
                            "START TRANSACTION", "SELECT * FROM campaigns", "SELECT * FROM client_list"]),
            (locking, ["START TRANSACTION", "SELECT * FROM client_list LOCK IN SHARE MODE",
                       "SELECT * FROM calls FOR UPDATE", "SELECT * FROM campaigns FOR UPDATE"]),
            (named, [f"SELECT GET_LOCK('{sync_lock}', 0)"])):
        with conn.cursor() as cur:
            for sql in statements:
                cur.execute(sql)
    return [serializable, locking, named]


def wait(predicate, bound=30.0) -> float:
    start = time.monotonic()
    while not predicate():
        if time.monotonic() - start > bound:
            raise SystemExit(f"not within {bound} s")
        time.sleep(0.02)
    return time.monotonic() - start


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=10)
    parser.add_argument("--logins", type=int, default=20)
    parser.add_argument("--hostile", action="store_true",
                        help="hold locks in three client sessions across each suspension")
    parser.add_argument("--server", default=os.environ.get("ICT_TEST_SERVER",
                                                           "mysql+pymysql://root@127.0.0.1:3306"))
    args = parser.parse_args()
    name = f"ict_bench_lock_{os.getpid()}"
    url = f"{args.server}/{name}"
    code = f"bl{os.getpid()}"
    migrate.upgrade(url)
    engine = make_engine(url, pool_size=2)
    accounts = []
    try:
        with engine.begin() as conn:
            cid = conn.execute(text("INSERT INTO clients (code, name) VALUES (:c, :c)"),
                               {"c": code}).lastrowid
            for i in range(args.logins):
                conn.execute(text("INSERT INTO users (client_id, username, role) VALUES (:c, :u, 'agent')"),
                             {"c": cid, "u": f"{code}u{i}"})
        with engine.begin() as conn:
            for i in range(args.logins):
                accounts.append(conn.execute(text("CALL grant_db_login(:c, :u, :p)"),
                                             {"c": code, "u": f"{code}u{i}", "p": PASSWORD}).one().account)
        locked, ended, unlocked, statement = [], [], [], []
        for _ in range(args.rounds):
            sessions = [connect(url, a, f"{name}_tenant") for a in accounts]
            if args.hostile:
                sessions += hold_locks(url, accounts, f"{name}_tenant", f"ict_db_login_sync:{name}"[:64])
            start = time.monotonic()
            with engine.begin() as conn:
                conn.execute(text("SET SESSION innodb_lock_wait_timeout = 10"))
                conn.execute(text("UPDATE clients SET status = 'suspended' WHERE id = :c"), {"c": cid})
            statement.append(time.monotonic() - start)
            wait(lambda: not any(can_connect(url, a) for a in accounts))
            locked.append(time.monotonic() - start)
            wait(lambda: not any(alive(s) for s in sessions))
            ended.append(time.monotonic() - start)
            start = time.monotonic()
            with engine.begin() as conn:
                conn.execute(text("UPDATE clients SET status = 'active' WHERE id = :c"), {"c": cid})
            wait(lambda: all(can_connect(url, a) for a in accounts))
            unlocked.append(time.monotonic() - start)
        print(f"{args.logins} logins, {args.rounds} rounds (event every 1 s)"
              + (", 3 sessions holding locks and the sync's named lock" if args.hostile else ""))
        for label, values in (("suspend statement", statement), ("suspend -> all locked", locked), ("suspend -> all sessions ended", ended),
                              ("reactivate -> all unlocked", unlocked)):
            print(f"{label:32s} p50 {statistics.median(values):.2f} s  max {max(values):.2f} s")
    finally:
        with engine.begin() as conn:
            conn.execute(text("CALL drop_tenant_world()"))
            conn.execute(text(f"DROP DATABASE `{name}`"))
        engine.dispose()


if __name__ == "__main__":
    main()
