"""How long `ictcontact rates import` takes for a 100,000-line rate deck (the target: seconds).
Creates its own database (dropped afterwards), runs the real command in a subprocess on
the deck and on a changed copy of it, and prints one figure per run:

1. the whole deck into an empty plan (100,000 added);
2. the same file again with --dry-run (100,000 unchanged, nothing written);
3. a changed deck: every 10th rate up by 0.0001, 1,000 prefixes gone, 1,000 new;
4. the first deck again, to take effect in 2099 (pending rows; the live deck untouched).

    .venv/bin/python bench/rate_import.py [--deck ratedeck-100k.csv] [--rows 100000] [--server URL]
                                          [--trunk]

--trunk imports into a trunk's buy rates (trunk_rates) instead of a rate plan.

Without --deck the deck is generated (bench/ratedeck.py), so it runs on a fresh clone.
"""

from __future__ import annotations

import argparse
import csv
import os
import resource
import subprocess
import sys
import tempfile
import time
from decimal import Decimal
from pathlib import Path

from sqlalchemy import text

sys.path.insert(0, str(Path(__file__).resolve().parent))
import ratedeck  # noqa: E402  (bench/ is scripts, not a package)

from fastagi.db import migrate  # noqa: E402
from fastagi.db.engine import make_engine  # noqa: E402


def write(rows: list[dict[str, str]], directory: str, name: str) -> str:
    path = os.path.join(directory, name)
    with open(path, "w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=ratedeck.COLUMNS, lineterminator="\n")
        writer.writeheader()
        writer.writerows(rows)
    return path


def changed(deck: list[dict[str, str]]) -> list[dict[str, str]]:
    out = []
    for i, row in enumerate(deck[1000:]):
        row = dict(row)
        if i % 10 == 0:
            row["rate_per_min"] = str(Decimal(row["rate_per_min"]) + Decimal("0.0001"))
        out.append(row)
    taken = {row["prefix"] for row in deck}
    extra = (p for p in (f"99{i:07d}" for i in range(10_000_000)) if p not in taken)
    for _ in range(1000):
        prefix = next(extra)
        out.append({"prefix": prefix, "description": f"New {prefix}", "rate_per_min": "0.0500",
                    "connection_fee": "0.0000", "initial_increment": "60",
                    "subsequent_increment": "60"})
    return out


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--deck", help="deck CSV (default: generated, --rows lines)")
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--server", default="mysql+pymysql://root@127.0.0.1:3306")
    parser.add_argument("--trunk", action="store_true",
                        help="import into a trunk's buy rates (trunk_rates), not a plan")
    args = parser.parse_args()
    database = f"ict_bench_rates_{os.getpid()}"
    url = f"{args.server}/{database}"
    deck = ratedeck.load(args.deck, rows=args.rows)
    migrate.upgrade(url)
    engine = make_engine(url, pool_size=1)
    try:
        with engine.begin() as conn:
            if args.trunk:
                conn.execute(text("INSERT INTO trunks (name, endpoint) VALUES ('bench', 'bench')"))
            else:
                conn.execute(text("INSERT INTO rate_plans (name) VALUES ('bench')"))
        with tempfile.TemporaryDirectory() as directory:
            first = write(deck, directory, "deck.csv")
            second = write(changed(deck), directory, "changed.csv")
            runs = [("import", first, []), ("dry run, same file", first, ["--dry-run"]),
                    ("changed deck, now", second, []),
                    ("first deck again, from 2099", first, ["--effective", "2099-01-01 00:00"])]
            for label, path, extra in runs:
                started = time.monotonic()
                cpu_before = _children_cpu()
                result = subprocess.run(
                    [sys.executable, "-m", "fastagi", "rates", "import",
                     "--trunk" if args.trunk else "--plan", "bench", path,
                     "--db", url, "--progress", "never", "--show", "0", *extra],
                    capture_output=True, text=True, check=False)
                elapsed = time.monotonic() - started
                cpu = _children_cpu() - cpu_before
                if result.returncode != 0:
                    print(result.stderr, file=sys.stderr)
                    return 1
                print(f"{label}: {len(deck):,} lines in {elapsed:.1f} s "
                      f"(the command's own CPU {cpu:.1f} s) -- "
                      f"{result.stdout.splitlines()[0]}")
        tables = (("trunk_rates", "trunk_rate_pending", "trunk_rate_history") if args.trunk
                  else ("rates", "rate_pending", "rate_history"))
        with engine.connect() as conn:
            live, pending, history = (conn.execute(text(f"SELECT COUNT(*) FROM {table}")).scalar_one()
                                      for table in tables)
        print(f"{tables[0]} {live:,}, {tables[1]} {pending:,}, {tables[2]} {history:,}; "
              f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs")
        return 0
    finally:
        with engine.begin() as conn:
            conn.execute(text(f"DROP DATABASE IF EXISTS `{database}`"))
        engine.dispose()


if __name__ == "__main__":
    sys.exit(main())
