"""`ictcontact routes report`: the trunks' ASR, ACD, minutes, cost, revenue and margin per
UTC day (docs/operator-cli.md, "Trunks"), from the views trunk_daily_stats and
route_destination_daily_stats (docs/admin-sql.md, "Trunk statistics"). Read only; the
operator's login (client logins do not see trunks)."""

from __future__ import annotations

import argparse
import sys
from datetime import date, datetime, timedelta, timezone
from functools import partial

from fastagi.commands import daily
from fastagi.store import trunk_stats

PROG = "ictcontact routes"
HEADERS = [("day", "DAY"), ("trunk", "TRUNK"), ("attempts", "ATTEMPTS"), ("answered", "ANSWERED"),
           ("asr_percent", "ASR%"), ("acd_seconds", "ACD s"), ("minutes", "MINUTES"),
           ("cost", "COST"), ("revenue", "REVENUE"), ("margin", "MARGIN"), ("unpriced", "UNPRICED")]
DESTINATION = ("destination", "DESTINATION")


def _day(text: str) -> date:
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a day: write 2026-11-25 (UTC)") from None


def add_arguments(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="action", required=True, metavar="ACTION")
    report = sub.add_parser("report", help="ASR, ACD, minutes, cost, revenue, margin per trunk and UTC day")
    report.add_argument("--day", type=_day, metavar="YYYY-MM-DD",
                        help="the (last) UTC day to report (default: yesterday, UTC)")
    report.add_argument("--days", type=int, default=1, metavar="N",
                        help="N days ending with --day (default 1)")
    report.add_argument("--trunk", metavar="NAME", help="one trunk only")
    report.add_argument("--by-destination", action="store_true",
                        help="one row per trunk and destination (the carrier's prefix)")
    daily.add_common(report)


def run(args: argparse.Namespace, today: date | None = None) -> int:
    if args.days < 1 or args.days > 366:
        print(f"{PROG} report: --days is 1-366", file=sys.stderr)
        return daily.EXIT_USAGE
    last = args.day or (today or datetime.now(timezone.utc).date()) - timedelta(days=1)
    first = last - timedelta(days=args.days - 1)
    return daily.run_unit(args, f"{PROG} {args.action}", partial(_report, args, first, last))


def _report(args, first: date, last: date, conn, where):
    rows = trunk_stats.daily(conn, first, last, args.trunk, args.by_destination)
    headers = HEADERS[:2] + [DESTINATION] + HEADERS[2:] if args.by_destination else HEADERS

    def report() -> None:
        if args.json:
            daily.print_json([daily.jsonable(r) for r in rows])
        else:
            daily.print_table(rows, headers)
    return report
