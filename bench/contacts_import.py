"""How long `ictcontact contacts import` takes for 100,000 contacts (the target: well
under a minute). Creates its own database (dropped afterwards), writes a CSV with a few
bad lines, runs the real command in a subprocess and prints the figures.

    .venv/bin/python bench/contacts_import.py [--contacts 100000] [--server URL]
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time

from sqlalchemy import text

from fastagi.db import migrate
from fastagi.db.engine import make_engine


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--contacts", type=int, default=100_000)
    parser.add_argument("--server", default="mysql+pymysql://root@127.0.0.1:3306")
    args = parser.parse_args()
    url = f"{args.server}/ict_bench_import_{os.getpid()}"
    migrate.upgrade(url)
    engine = make_engine(url, pool_size=1)
    try:
        with engine.begin() as conn:
            conn.execute(text("INSERT INTO clients (code, name) VALUES ('bench', 'Bench')"))
            client = conn.execute(text("SELECT id FROM clients WHERE code = 'bench'")).scalar_one()
            conn.execute(text("INSERT INTO campaigns (client_id, name) VALUES (:c, 'load')"),
                         {"c": client})
            conn.execute(text("INSERT INTO do_not_call (client_id, phone) VALUES (NULL, :p)"),
                         [{"p": f"4420{i:08d}"} for i in range(0, args.contacts, 1000)])
        with tempfile.NamedTemporaryFile("w", suffix=".csv", delete=False) as handle:
            handle.write("phone,first_name,last_name,time_zone\n")
            for i in range(args.contacts):
                phone = f"4420{i:08d}" if i % 997 else f"4420{i:07d}x"
                handle.write(f"{phone},First{i},Last{i},Europe/London\n")
        started = time.monotonic()
        result = subprocess.run(
            [sys.executable, "-m", "fastagi", "contacts", "import", "--campaign", "bench/load",
             handle.name, "--db", url, "--progress", "never"],
            capture_output=True, text=True, check=False)
        elapsed = time.monotonic() - started
        os.unlink(handle.name)
        if result.returncode != 0:
            print(result.stderr, file=sys.stderr)
            return 1
        with engine.connect() as conn:
            loaded = conn.execute(text("SELECT COUNT(*) FROM contacts")).scalar_one()
        print(result.stdout.splitlines()[-1])
        print(f"{args.contacts:,} lines in {elapsed:.1f} s ({args.contacts / elapsed:,.0f} lines/s), "
              f"{loaded:,} contacts in the table, "
              f"{len(result.stdout.splitlines()) - 1} bad lines reported")
        return 0
    finally:
        with engine.begin() as conn:
            conn.execute(text(f"DROP DATABASE IF EXISTS `ict_bench_import_{os.getpid()}`"))
        engine.dispose()


if __name__ == "__main__":
    sys.exit(main())
