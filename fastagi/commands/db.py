"""`ictcontact db upgrade|status|snapshot`: apply and inspect the forward-only schema, and
write the current schema as readable files (schema/current/, see fastagi/db/snapshot.py)."""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from fastagi.db import migrate, snapshot
from fastagi.db.engine import database_name, describe_failure, make_engine
from fastagi.settings import database_url, source_from_args


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("action", choices=("upgrade", "status", "snapshot"))
    parser.add_argument("--db", help="SQLAlchemy URL (env ICTCONTACT_DB); for snapshot: read "
                        "this database instead of migrating a scratch one on the configured "
                        "server")
    parser.add_argument("--out", help="snapshot: the folder to write (default schema/current)")


def run(args: argparse.Namespace) -> int:
    url = database_url(source_from_args(args))
    try:
        if args.action == "snapshot":
            return _snapshot(url, given=args.db is not None, out=args.out)
        if args.action == "upgrade":
            applied = migrate.upgrade(url)
            engine = make_engine(url, pool_size=1)
            try:
                state = migrate.status(engine)
            finally:
                engine.dispose()
            if applied:
                print(f"schema upgraded to version {state.current} "
                      f"(applied {', '.join(map(str, applied))})")
            else:
                print(f"schema is up to date at version {state.current}")
            return 0
        engine = make_engine(url, pool_size=1)
        try:
            state = migrate.status(engine)
        finally:
            engine.dispose()
        if not state.database_exists:
            print(f"ictcontact: the database {database_name(url)} does not exist: "
                  f"`ictcontact db upgrade` creates it", file=sys.stderr)
            return 1
        print(f"current version: {state.current}")
        print(f"available version: {state.available}")
        print("pending: " + (", ".join(map(str, state.pending)) or "none"))
        if state.newer_than_code:
            print("the database is newer than this code", file=sys.stderr)
            return 1
        return 0
    except migrate.SchemaError as exc:
        print(f"ictcontact: {exc}", file=sys.stderr)
        return 1
    except Exception as exc:  # connection refused, bad URL: one line, not a traceback
        print(f"ictcontact: {describe_failure(exc)}", file=sys.stderr)
        return 1


def _snapshot(url: str, given: bool, out: str | None) -> int:
    """Write the snapshot of the database given with --db, or of a scratch database freshly
    migrated on the configured server (and dropped)."""
    started = time.monotonic()
    folder = Path(out) if out else migrate.schema_dir() / "current"
    if given:
        source, files = database_name(url), snapshot.of_database(url)
    else:
        scratch, files = snapshot.of_fresh_upgrade(url)
        source = f"a fresh upgrade ({scratch}, dropped)"
    changed = snapshot.write(files, folder)
    print(f"schema snapshot of {source}: {len(files)} files in {folder}, "
          f"{len(changed)} changed ({time.monotonic() - started:.1f} s)")
    for path in changed:
        print(f"  {path}")
    return 0
