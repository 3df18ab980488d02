"""Benchmark: what a test's fresh database costs, migrated (before) or cloned (now).

    .venv/bin/python bench/fixture_databases.py [--rounds 5] [--test-seconds 0.3]
                                                [--workers 2] [--no-migrate]

`migrate`: CREATE DATABASE + all schema files (what the `db_url` fixture did per test).
`clone`: replaying the template's snapshot (tests/support/database.py), timed alone.
`drop`: DROP DATABASE of a clone (the fixture's teardown).
`take`: what a test waits for its database with the clone supply of tests/conftest.py
(clones made ahead by `--workers` threads), when each test holds it `--test-seconds`.
Databases are `ict_test_<pid>_*` on ICT_TEST_SERVER (default root@127.0.0.1:3306), all
dropped at the end. Wall-clock figures: run it on a quiet machine, or compare runs made
under the same load.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from fastagi.db import migrate  # noqa: E402
from tests.support.database import (CloneSupply, SchemaSnapshot, connect_server,  # noqa: E402
                                    drop_database, fresh_database_name, migrate_template,
                                    template_database_name, url_for)


def timed(fn) -> float:
    started = time.perf_counter()
    fn()
    return time.perf_counter() - started


def report(name: str, seconds: list[float]) -> None:
    print(f"{name:8} median {statistics.median(seconds):6.3f} s   min {min(seconds):6.3f} s"
          f"   max {max(seconds):6.3f} s   ({len(seconds)} rounds)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--test-seconds", type=float, default=0.3)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--no-migrate", action="store_true", help="skip the `migrate` rounds")
    args = parser.parse_args()
    template = template_database_name()
    drop_database(template)
    try:
        migrated = []
        for _ in range(0 if args.no_migrate else args.rounds):
            name = fresh_database_name()
            try:
                migrated.append(timed(lambda: migrate.upgrade(url_for(name))))
            finally:
                drop_database(name)
        if migrated:
            report("migrate", migrated)
        migrate_template(template)
        connection = connect_server()
        cloned, dropped = [], []
        with connection.cursor() as cursor:
            snapshot = SchemaSnapshot.take(cursor, template)
            for _ in range(args.rounds):
                name = fresh_database_name()
                cloned.append(timed(lambda: snapshot.clone_into(cursor, name)))
                dropped.append(timed(lambda: drop_database(name)))
        connection.close()
        report("clone", cloned)
        report("drop", dropped)
        supply = CloneSupply(snapshot, workers=args.workers)
        waited = []
        try:
            for _ in range(args.rounds):
                name = None

                def take() -> None:
                    nonlocal name
                    name = supply.take()
                waited.append(timed(take))
                time.sleep(args.test_seconds)  # the test using its database
                supply.give_back(name)
        finally:
            supply.close()
        report("take", waited)
    finally:
        drop_database(template)


if __name__ == "__main__":
    main()
