"""Stress reproducer: the login sync's watchdog (end_hostile_tenant_sessions, run every
second by the `db_login_sync` event of EVERY database with the schema) under the load the
test suite puts on one server: many databases, their events on, client logins that hold
row locks the operator waits for, idle transactions, and databases being dropped and made.

    .venv/bin/python bench/sweep_crash.py --server mysql+pymysql://root@127.0.0.1:3319 \
        [--databases 8] [--seconds 600] [--callers 2] [--churn]

Run it against a PRIVATE server (it can crash it): it refuses port 3306, the shared one.
With schema 101/102 alone MariaDB 10.11 died with signal 11 in ha_maria::drop_table
(free_tmp_table from close_thread_tables, opening the watchdog's cursor); schema 104 is the
fix. Prints, every --report seconds, the events run and the sessions the watchdog ended;
at the end (or when the server is gone) how long it ran. Exit status 1 when the server
died. Drops its databases and logins at the end when the server is still up.
"""

from __future__ import annotations

import argparse
import os
import random
import threading
import time

import pymysql
from sqlalchemy import text
from sqlalchemy.engine import make_url

from fastagi.db import migrate
from fastagi.db.engine import make_engine

PASSWORD = "sweep password 123"
ROLES = ("admin", "supervisor", "agent")
GONE = {2002, 2003, 2006, 2013}  # cannot connect, server gone away, lost connection


def root(server: str, database: str | None = None) -> pymysql.Connection:
    u = make_url(server)
    return pymysql.connect(host=u.host or "127.0.0.1", port=u.port or 3306, user=u.username or "root",
                           password=u.password or "", database=database, autocommit=True,
                           connect_timeout=5, read_timeout=30, init_command="SET time_zone = '+00:00'")


def login(server: str, account: str, database: str) -> pymysql.Connection:
    u = make_url(server)
    return pymysql.connect(host=u.host or "127.0.0.1", port=u.port or 3306, user=account,
                           password=PASSWORD, database=database, autocommit=True,
                           connect_timeout=5, read_timeout=30)


class Run:
    def __init__(self, server: str):
        self.server = server
        self.stop = threading.Event()
        self.dead_at: float | None = None
        self.dead_error: str | None = None
        self.errors: dict[str, int] = {}

    def gone(self, exc: BaseException) -> bool:
        return isinstance(exc, pymysql.err.OperationalError) and bool(exc.args) and exc.args[0] in GONE

    def note(self, where: str, exc: BaseException) -> None:
        key = f"{where}: {exc.args[0] if exc.args else exc!r}"
        self.errors[key] = self.errors.get(key, 0) + 1


def make_world(server: str, name: str) -> dict:
    """Migrate `name`; one client with an admin, a supervisor and an agent login."""
    url = f"{server}/{name}"
    migrate.upgrade(url)
    engine = make_engine(url, pool_size=1)
    code = "sw" + name.rsplit("_", 2)[-2][-5:] + "x" + name.rsplit("_", 1)[-1]
    with engine.begin() as conn:
        cid = conn.execute(text("INSERT INTO clients (code, name) VALUES (:c, :c)"), {"c": code}).lastrowid
        conn.execute(text("INSERT INTO campaigns (client_id, name) VALUES (:c, 'held')"), {"c": cid})
        for role in ROLES:
            conn.execute(text("INSERT INTO users (client_id, username, role) VALUES (:c, :u, :r)"),
                         {"c": cid, "u": f"{role}-{code}", "r": role})
        # Transactions older than 1 s are ended: the watchdog acts on nearly every run.
        conn.execute(text("UPDATE tenant_login_limits SET max_transaction_seconds = 1, max_statement_seconds = 1"))
    accounts = []
    with engine.begin() as conn:
        for role in ROLES:
            accounts.append(conn.execute(text("CALL grant_db_login(:c, :u, :p)"),
                                         {"c": code, "u": f"{role}-{code}", "p": PASSWORD}).one().account)
    engine.dispose()
    return {"name": name, "client": cid, "accounts": accounts}


def hostile(run: Run, world: dict) -> None:
    """Client sessions holding row locks the operator then waits for, and idle transactions."""
    tenant = f"{world['name']}_tenant"
    while not run.stop.is_set():
        held = []
        try:
            for account, statements in zip(world["accounts"], (
                    ["START TRANSACTION", "SELECT * FROM campaigns FOR UPDATE"],
                    ["SET SESSION TRANSACTION ISOLATION LEVEL SERIALIZABLE", "START TRANSACTION",
                     "SELECT * FROM campaigns", "SELECT * FROM users"],
                    ["START TRANSACTION", "SELECT * FROM agents LOCK IN SHARE MODE"])):
                conn = login(run.server, account, tenant)
                held.append(conn)
                with conn.cursor() as cur:
                    for sql in statements:
                        cur.execute(sql)
            op = root(run.server, world["name"])
            held.append(op)
            with op.cursor() as cur:
                cur.execute("SET SESSION innodb_lock_wait_timeout = 3")
                cur.execute("START TRANSACTION")
                cur.execute("UPDATE campaigns SET name = name WHERE client_id = %s", (world["client"],))
                cur.execute("ROLLBACK")
        except pymysql.MySQLError as exc:
            if run.gone(exc) and not any_alive(run):
                return
            run.note("hostile", exc)
        finally:
            for conn in held:
                try:
                    conn.close()
                except Exception:
                    pass
        time.sleep(random.uniform(0, 0.3))


def caller(run: Run, names: list[str]) -> None:
    """The watchdog called directly too (as `db upgrade` and a client's sync may)."""
    while not run.stop.is_set():
        try:
            conn = root(run.server, random.choice(names))
            with conn.cursor() as cur:
                for _ in range(20):
                    cur.execute("CALL end_hostile_tenant_sessions(@n)")
            conn.close()
        except pymysql.MySQLError as exc:
            if run.gone(exc) and not any_alive(run):
                return
            run.note("caller", exc)


def churn(run: Run, prefix: str) -> None:
    """Databases made and dropped while the events run, as the test clones are: half
    migrated ones too (the migration stopped after 075, the event's first file)."""
    n = 0
    while not run.stop.is_set():
        name = f"{prefix}_churn{n}"
        n += 1
        try:
            migrate.upgrade(f"{run.server}/{name}")
            time.sleep(2)
            conn = root(run.server)
            with conn.cursor() as cur:
                cur.execute(f"DROP DATABASE IF EXISTS `{name}`")
            conn.close()
        except Exception as exc:  # noqa: BLE001 - a dead server shows as any error here
            if isinstance(exc, pymysql.MySQLError) and run.gone(exc) and not any_alive(run):
                return
            if not any_alive(run):
                return
            run.note("churn", exc)


def routine_ddl(run: Run, database: str, n: int) -> None:
    """Stored routines made and replaced elsewhere on the server, as every test clone and
    migration does (each such statement invalidates every session's routine cache)."""
    while not run.stop.is_set():
        try:
            conn = root(run.server, database)
            with conn.cursor() as cur:
                for i in range(50):
                    cur.execute(f"CREATE OR REPLACE FUNCTION f{n}_{i % 5}() RETURNS INT RETURN {i}")
                    cur.execute(f"CREATE OR REPLACE PROCEDURE p{n}_{i % 5}() SELECT {i}")
            conn.close()
        except pymysql.MySQLError as exc:
            if run.gone(exc) and not any_alive(run):
                return
            run.note("routine ddl", exc)


def noise(run: Run, size: int) -> None:
    """Other sessions of the server with long statements in the processlist (the test
    clones' CREATE PROCEDURE texts, big INSERTs), so information_schema.processlist is
    large and has long INFO values."""
    while not run.stop.is_set():
        try:
            conn = root(run.server)
            with conn.cursor() as cur:
                for _ in range(20):
                    cur.execute("SELECT SLEEP(3 * RAND()), LENGTH(%s)", ("x" * random.randint(1, size),))
            conn.close()
        except pymysql.MySQLError as exc:
            if run.gone(exc) and not any_alive(run):
                return
            run.note("noise", exc)


def kill_events(run: Run, prefix: str) -> None:
    """KILL QUERY of event workers in the middle of the sync, as a shutdown or an operator's
    KILL does (the statement then fails while the watchdog's tables are open)."""
    while not run.stop.is_set():
        try:
            conn = root(run.server)
            with conn.cursor() as cur:
                for _ in range(100):
                    cur.execute("SELECT id FROM information_schema.processlist WHERE db LIKE %s"
                                " AND info LIKE 'CALL end_hostile%%' AND id <> CONNECTION_ID()",
                                (prefix.replace("_", "\\_") + "%",))
                    for (victim,) in cur.fetchall():
                        if random.random() < 0.5:
                            try:
                                cur.execute(f"KILL QUERY {int(victim)}")
                            except pymysql.MySQLError:
                                pass
                    time.sleep(random.uniform(0, 0.05))
            conn.close()
        except pymysql.MySQLError as exc:
            if run.gone(exc) and not any_alive(run):
                return
            run.note("kill events", exc)


def any_alive(run: Run) -> bool:
    """Whether the server answers; the first time it does not, the run is over."""
    try:
        root(run.server).close()
        return True
    except pymysql.MySQLError as exc:
        if run.dead_at is None:
            run.dead_at = time.monotonic()
            run.dead_error = repr(exc)
        run.stop.set()
        return False


def status(server: str) -> tuple[int, int]:
    conn = root(server)
    with conn.cursor() as cur:
        cur.execute("SHOW GLOBAL STATUS LIKE 'Executed_events'")
        events = int(cur.fetchone()[1])
        cur.execute("SELECT VARIABLE_VALUE FROM information_schema.global_status WHERE VARIABLE_NAME = 'UPTIME'")
        uptime = int(cur.fetchone()[0])
    conn.close()
    return events, uptime


def ended_total(server: str, names: list[str]) -> int:
    conn = root(server)
    total = 0
    with conn.cursor() as cur:
        for name in names:
            cur.execute(f"SELECT COUNT(*) FROM `{name}`.tenant_sessions_ended")
            total += cur.fetchone()[0]
    conn.close()
    return total


def cleanup(server: str, prefix: str) -> None:
    conn = root(server)
    with conn.cursor() as cur:
        cur.execute("SELECT schema_name FROM information_schema.schemata WHERE schema_name LIKE %s",
                    (prefix.replace("_", "\\_") + "\\_%",))
        names = sorted(r[0] for r in cur.fetchall())
        for name in names:
            if not name.endswith("_tenant"):
                try:
                    cur.execute(f"CALL `{name}`.drop_tenant_world()")
                except pymysql.MySQLError:
                    pass
        for name in names:
            cur.execute(f"DROP DATABASE IF EXISTS `{name}`")
    conn.close()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--server", required=True, help="a PRIVATE server: mysql+pymysql://root@127.0.0.1:PORT")
    parser.add_argument("--databases", type=int, default=8)
    parser.add_argument("--seconds", type=float, default=600)
    parser.add_argument("--callers", type=int, default=2, help="threads calling the watchdog directly")
    parser.add_argument("--churn", action="store_true", help="also make and drop databases")
    parser.add_argument("--noise", type=int, default=0, help="sessions with long statements running")
    parser.add_argument("--noise-bytes", type=int, default=200000)
    parser.add_argument("--kill-events", action="store_true", help="KILL QUERY event workers running the watchdog")
    parser.add_argument("--ddl", type=int, default=0, help="threads creating stored routines elsewhere")
    parser.add_argument("--report", type=float, default=30)
    args = parser.parse_args()
    if (make_url(args.server).port or 3306) == 3306:
        parser.error("refusing port 3306 (the shared server): start a private mariadbd")
    prefix = f"ict_sweep_{os.getpid()}"
    names = [f"{prefix}_{n}" for n in range(args.databases)]
    run = Run(args.server)
    t0 = time.monotonic()
    worlds: list[dict] = []
    lock = threading.Lock()

    def build(todo: list[str]) -> None:
        for name in todo:
            world = make_world(args.server, name)
            with lock:
                worlds.append(world)

    builders = [threading.Thread(target=build, args=(names[i::2],)) for i in range(2)]
    for t in builders:
        t.start()
    for t in builders:
        t.join()
    print(f"{len(worlds)} databases migrated with logins in {time.monotonic() - t0:.0f} s", flush=True)
    events0, uptime0 = status(args.server)
    threads = [threading.Thread(target=hostile, args=(run, w), daemon=True) for w in worlds]
    threads += [threading.Thread(target=caller, args=(run, names), daemon=True) for _ in range(args.callers)]
    if args.churn:
        threads.append(threading.Thread(target=churn, args=(run, prefix), daemon=True))
    threads += [threading.Thread(target=noise, args=(run, args.noise_bytes), daemon=True)
                for _ in range(args.noise)]
    if args.kill_events:
        threads.append(threading.Thread(target=kill_events, args=(run, prefix), daemon=True))
    if args.ddl:
        with root(args.server) as conn, conn.cursor() as cur:
            cur.execute(f"CREATE DATABASE IF NOT EXISTS `{prefix}_ddl`")
        threads += [threading.Thread(target=routine_ddl, args=(run, f"{prefix}_ddl", n), daemon=True)
                    for n in range(args.ddl)]
    start = time.monotonic()
    for t in threads:
        t.start()
    events = events0
    next_report = start + args.report
    while not run.stop.is_set() and time.monotonic() - start < args.seconds:
        time.sleep(1)
        if not any_alive(run):
            break
        try:
            events_now, uptime = status(args.server)
        except pymysql.MySQLError:
            continue
        if uptime < uptime0:  # restarted behind our back: it died
            run.dead_at = time.monotonic()
            run.dead_error = "server restarted"
            break
        events = events_now
        if time.monotonic() >= next_report:
            next_report += args.report
            print(f"{time.monotonic() - start:6.0f} s  events run {events - events0}  "
                  f"sessions ended {ended_total(args.server, names)}", flush=True)
    run.stop.set()
    elapsed = (run.dead_at or time.monotonic()) - start
    for t in threads:
        t.join(timeout=10)
    if run.dead_at is not None:
        print(f"SERVER DIED after {elapsed:.0f} s of load, about {events - events0} event runs "
              f"before it ({run.dead_error})")
    else:
        print(f"survived {elapsed:.0f} s of load: {events - events0} event runs, "
              f"{ended_total(args.server, names)} sessions ended by the watchdog")
        cleanup(args.server, prefix)
    for key, count in sorted(run.errors.items()):
        print(f"  client-side errors {key}: {count}")
    return 1 if run.dead_at is not None else 0


if __name__ == "__main__":
    raise SystemExit(main())
