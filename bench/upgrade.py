"""How long `ictcontact db upgrade` takes on a database made at schema 083 with data.

    .venv/bin/python bench/upgrade.py [--calls 100000] [--clients 1000] [--payments 3]
                                      [--rounds 1] [--keep]

Each round:
1. drops and recreates its own database (`ict_bench_upgrade`; the name must start with
   `ict_bench`), applies schema files 001-083 only (a copy of them in a temporary
   directory), and fills it through the 083 schema's own triggers: --clients clients
   (opening balance 1000), --payments payments each (top-ups and corrections), one draft
   campaign, one agent and one user each, and --calls finished call records (INSERT ...
   SELECT from the sequence engine; each charged call debits its client by trigger), 10%
   of them rejected attempts without a cost;
2. runs the real `ictcontact db upgrade` as a subprocess (INFO log) and times it: the
   whole command, and each file from its "applying schema" log line to the next;
3. checks what the upgrade must keep: the same number of clients, payments and calls, and
   for every client the balance `client_list` shows equals its payments minus its charged
   calls (exit 1 if not).

Prints the sizes, the load time, the upgrade's total and its five slowest files. The
figures in docs/benchmark.md come from this script.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from datetime import datetime
from pathlib import Path

from sqlalchemy import text

from fastagi.db import migrate
from fastagi.db.engine import make_engine

HERE = Path(__file__).resolve().parent
APPLYING = re.compile(r"^(\S+ \S+) INFO fastagi\.db\.migrate: applying schema (\S+)")
LAST_BEFORE = 83


def server_engine(server_url: str):
    return make_engine(server_url.rstrip("/") + "/", pool_size=1)


def drop(server_url: str, database: str) -> None:
    engine = server_engine(server_url)
    try:
        with engine.begin() as conn:
            conn.execute(text(f"DROP DATABASE IF EXISTS `{database}`"))
    finally:
        engine.dispose()


def build_083(url: str) -> None:
    with tempfile.TemporaryDirectory(prefix="ict-schema-083-") as directory:
        for path in migrate.schema_dir().glob("*.sql"):
            if int(path.name[:3]) <= LAST_BEFORE:
                shutil.copy(path, Path(directory) / path.name)
        migrate.upgrade(url, directory=Path(directory))


def fill(url: str, clients: int, payments: int, calls: int) -> dict[str, int]:
    """The data, through the 083 schema (its triggers keep the ledger)."""
    engine = make_engine(url, pool_size=1, timeout_s=600)   # big statements on a busy server
    try:
        with engine.begin() as conn:
            conn.execute(text("INSERT INTO rates (rate_plan_id, prefix, rate_per_min) "
                              "SELECT id, '44', 0.012345 FROM rate_plans WHERE is_default = 1"))
            conn.execute(text(
                "INSERT INTO clients (code, name, balance, credit_limit, channel_limit, "
                "rate_plan_id) SELECT CONCAT('c', seq), CONCAT('Client ', seq), 1000, seq % 5, "
                f"10, p.id FROM seq_1_to_{clients} JOIN rate_plans p ON p.is_default = 1"))
            first = conn.execute(text("SELECT MIN(id) FROM clients")).scalar_one() - 1
            # (a statement that moves balances may not read `clients` itself: 1442)
            for n in range(payments):
                amount, kind = ("25.5", "topup") if n % 3 != 2 else ("-0.25", "correction")
                conn.execute(text(
                    "INSERT INTO payments (client_id, amount, kind, reference) "
                    f"SELECT seq + :first, {amount}, '{kind}', CONCAT('INV-', :n, '-', seq) "
                    f"FROM seq_1_to_{clients}"), {"first": first, "n": n})
            conn.execute(text("INSERT INTO campaigns (client_id, name, status, max_channels) "
                              f"SELECT seq + :first, 'spring', 'draft', 3 "
                              f"FROM seq_1_to_{clients}"), {"first": first})
            conn.execute(text("INSERT INTO agents (client_id, name) "
                              f"SELECT seq + :first, 'Agent' FROM seq_1_to_{clients}"),
                         {"first": first})
            conn.execute(text("INSERT INTO users (client_id, username, password) "
                              "SELECT seq + :first, CONCAT('user', seq), 'a password' "
                              f"FROM seq_1_to_{clients}"), {"first": first})
        batch = 10_000
        for start in range(0, calls, batch):
            size = min(batch, calls - start)
            with engine.begin() as conn:
                conn.execute(text(
                    "INSERT INTO calls (client_id, client_code, number, state, reason, cost, "
                    "prefix, authorized_at, settled_at) "
                    "SELECT (s % :clients) + 1 + :first, CONCAT('c', (s % :clients) + 1), "
                    "CONCAT('4420', s), IF(s % 10 = 0, 'rejected', 'settled'), "
                    "IF(s % 10 = 0, 'no-credit', NULL), IF(s % 10 = 0, NULL, 0.0123), "
                    "IF(s % 10 = 0, NULL, '44'), "
                    "UTC_TIMESTAMP(3) - INTERVAL (s % 86400) SECOND, "
                    "IF(s % 10 = 0, NULL, UTC_TIMESTAMP(3) - INTERVAL (s % 86400) SECOND "
                    "  + INTERVAL 30 SECOND) "
                    f"FROM (SELECT seq + :start AS s FROM seq_1_to_{size}) x"),
                    {"clients": clients, "first": first, "start": start})
        return counts(engine)
    finally:
        engine.dispose()


def counts(engine) -> dict[str, int]:
    with engine.connect() as conn:
        return {table: conn.execute(text(f"SELECT COUNT(*) FROM {table}")).scalar_one()
                for table in ("clients", "payments", "calls", "campaigns", "users")}


def ledger_mismatches(engine) -> int:
    """Clients whose balance (as client_list shows it) is not payments - charged calls."""
    with engine.connect() as conn:
        return conn.execute(text(
            "SELECT COUNT(*) FROM client_list l WHERE l.balance <> "
            "(SELECT COALESCE(SUM(amount), 0) FROM payments p WHERE p.client_id = l.id) - "
            "(SELECT COALESCE(SUM(cost), 0) FROM calls k WHERE k.client_id = l.id)")
        ).scalar_one()


def environ() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("ICTCONTACT_")}
    env["ICTCONTACT_CONFIG"] = os.devnull
    return env


def timed_upgrade(url: str) -> tuple[float, list[tuple[float, str]], str]:
    """(seconds, [(seconds, file)], output) of one `ictcontact db upgrade`."""
    started = time.perf_counter()
    result = subprocess.run([sys.executable, "-m", "fastagi", "--log-level", "INFO", "db",
                             "upgrade", "--db", url], env=environ(), capture_output=True,
                            text=True, timeout=3600)
    ended = time.perf_counter()
    wall_end = datetime.now()          # the log's asctime is local time too
    if result.returncode != 0:
        raise SystemExit(f"db upgrade failed ({result.returncode}):\n{result.stderr[-3000:]}")
    marks = []
    for line in result.stderr.splitlines():
        if match := APPLYING.match(line):
            stamp = datetime.strptime(match.group(1), "%Y-%m-%d %H:%M:%S,%f")
            marks.append((stamp, match.group(2)))
    files = []
    for (at, name), following in zip(marks, [*[m[0] for m in marks[1:]], wall_end]):
        files.append(((following - at).total_seconds(), name))   # the last: to the exit
    return ended - started, files, result.stdout.strip()


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=100_000)
    parser.add_argument("--clients", type=int, default=1000)
    parser.add_argument("--payments", type=int, default=3, help="payments per client")
    parser.add_argument("--rounds", type=int, default=1)
    parser.add_argument("--server-url", default=os.environ.get(
        "ICT_BENCH_SERVER", "mysql+pymysql://root@127.0.0.1:3306"))
    parser.add_argument("--database", default="ict_bench_upgrade")
    parser.add_argument("--keep", action="store_true", help="keep the database afterwards")
    args = parser.parse_args(argv)
    if not args.database.startswith("ict_bench"):
        raise SystemExit("the database name must start with ict_bench (it is dropped)")
    url = f"{args.server_url.rstrip('/')}/{args.database}"
    failed = False
    totals = []
    try:
        for round_no in range(1, args.rounds + 1):
            drop(args.server_url, args.database)
            started = time.perf_counter()
            build_083(url)
            before = fill(url, args.clients, args.payments, args.calls)
            loaded = time.perf_counter() - started
            seconds, files, said = timed_upgrade(url)
            totals.append(seconds)
            engine = make_engine(url, pool_size=1)
            try:
                after = counts(engine)
                mismatched = ledger_mismatches(engine)
            finally:
                engine.dispose()
            print(f"round {round_no}: schema 083 with {before['clients']:,} clients, "
                  f"{before['payments']:,} payments, {before['calls']:,} calls, "
                  f"{before['campaigns']:,} campaigns, {before['users']:,} users "
                  f"(built and filled in {loaded:.1f} s)")
            print(f"  db upgrade: {seconds:.1f} s for {len(files)} files ({said})")
            slowest = sorted(files, reverse=True)[:5]
            print("  slowest files: " + ", ".join(f"{name} {took:.1f} s"
                                                    for took, name in slowest))
            print(f"  kept: rows {'the same' if after == before else f'{before} -> {after}'}"
                  f"; clients whose client_list balance != payments - charges: {mismatched}")
            failed |= after != before or mismatched != 0
        if len(totals) > 1:
            print("db upgrade seconds per round: " + ", ".join(f"{t:.1f}" for t in totals))
    finally:
        if not args.keep:
            drop(args.server_url, args.database)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
