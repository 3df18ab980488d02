"""`ictcontact calls export CLIENT --from WHEN --to WHEN`: a client's call records (CDR) as
CSV (or `--json`), read from `calls` or, for a client's own login, its tenant view `calls`
(docs/operator-cli.md). Times are UTC; the window is [from, to) on the time each call was
authorized; money is written exactly as stored."""

from __future__ import annotations

import argparse
import csv
import json
import os
import sys
from datetime import datetime
from functools import partial
from typing import Any, Iterator, TextIO

from fastagi.commands import daily
from fastagi.store import call_export

PROG = "ictcontact calls"

# CSV header names: times say their zone.
CSV_NAMES = {"authorized_at": "authorized_at_utc", "settled_at": "settled_at_utc"}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="action", required=True, metavar="ACTION")
    export = sub.add_parser("export", help="a client's call records as CSV")
    export.add_argument("code", metavar="CLIENT")
    export.add_argument("--from", dest="since", type=daily.when, required=True, metavar="WHEN",
                        help="first moment included (UTC): 2026-11-01 or 2026-11-01T08:00")
    export.add_argument("--to", dest="until", type=daily.when, required=True, metavar="WHEN",
                        help="first moment excluded (UTC): 2026-12-01 ends November")
    export.add_argument("--output", "-o", metavar="FILE",
                        help="write here (complete or not at all) instead of standard output")
    daily.add_common(export, json_help="a JSON array instead of CSV")


def run(args: argparse.Namespace) -> int:
    return daily.run_unit(args, f"{PROG} {args.action}", partial(_export, args))


def csv_value(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, datetime):
        return value.strftime("%Y-%m-%d %H:%M:%S.%f")[:-3]
    return str(value)


def write_csv(rows: Iterator[dict[str, Any]], out: TextIO) -> int:
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow([CSV_NAMES.get(c, c) for c in call_export.COLUMNS])
    count = 0
    for row in rows:
        writer.writerow([csv_value(row[c]) for c in call_export.COLUMNS])
        count += 1
    return count


def write_json(rows: Iterator[dict[str, Any]], out: TextIO) -> int:
    """A JSON array written row by row (a month of calls never sits in memory)."""
    count = 0
    out.write("[")
    for row in rows:
        out.write(",\n" if count else "\n")
        out.write(json.dumps(daily.jsonable(row)))
        count += 1
    out.write("\n]\n" if count else "]\n")
    return count


def _export(args, conn, where):
    daily.window(args.since, args.until)
    rows = call_export.calls(conn, where, args.code, args.since, args.until)
    write = write_json if args.json else write_csv
    if args.output:
        partial_path = args.output + ".partial"
        try:
            out = open(partial_path, "w", encoding="utf-8", newline="")
        except OSError as exc:
            raise daily.UsageError(f"cannot write {partial_path}: {exc.strerror}") from None
        try:
            with out:
                count = write(rows, out)
            os.replace(partial_path, args.output)
        except BaseException:
            os.unlink(partial_path)
            raise
    else:
        count = write(rows, sys.stdout)
        sys.stdout.flush()

    def report() -> None:
        print(f"{PROG} export: {count} calls of {args.code} authorized from "
              f"{args.since:%Y-%m-%d %H:%M:%S} to {args.until:%Y-%m-%d %H:%M:%S} UTC "
              f"(to excluded)" + (f" written to {args.output}" if args.output else ""),
              file=sys.stderr)
    return report
