"""`ictcontact db upgrade|status`: apply and inspect the forward-only schema."""

from __future__ import annotations

import argparse
import sys

from fastagi.db import migrate
from fastagi.db.engine import database_name, describe_failure, make_engine
from fastagi.settings import database_url, source_from_args


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("action", choices=("upgrade", "status"))
    parser.add_argument("--db", help="SQLAlchemy URL (env ICTCONTACT_DB)")


def run(args: argparse.Namespace) -> int:
    url = database_url(source_from_args(args))
    try:
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
