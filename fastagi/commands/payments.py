"""`ictcontact payments add|list`: the payments ledger through the same procedure an admin
calls in SQL (add_payment: a top-up, or a correction when negative) and the `payments`
table or, for a client's own login, its tenant view (docs/operator-cli.md)."""

from __future__ import annotations

import argparse
from functools import partial

from fastagi.commands import daily
from fastagi.commands.clients import LABELS
from fastagi.store import accounts

PROG = "ictcontact payments"

HEADERS = [("id", "ID"), ("created_at", "RECORDED (UTC)"), ("amount", "AMOUNT (USD)"),
           ("kind", "KIND"), ("reference", "REFERENCE"), ("note", "NOTE")]


def add_arguments(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="action", required=True, metavar="ACTION")
    add = sub.add_parser("add", help="record a payment (CALL add_payment); negative: a correction")
    add.add_argument("code", metavar="CLIENT")
    add.add_argument("amount", type=daily.money, metavar="AMOUNT",
                     help="USD, at most 4 decimals; negative (e.g. -45) for a correction")
    add.add_argument("reference", metavar="REFERENCE",
                     help="receipt, invoice or bank reference; unique per client")
    listing = sub.add_parser("list", help="a client's payments, oldest first")
    listing.add_argument("code", metavar="CLIENT")
    listing.add_argument("--from", dest="since", type=daily.when, metavar="WHEN",
                         help="recorded at or after (UTC date or time)")
    listing.add_argument("--to", dest="until", type=daily.when, metavar="WHEN",
                         help="recorded before (UTC date or time; excluded)")
    for p in sub.choices.values():
        daily.add_common(p)


def run(args: argparse.Namespace) -> int:
    return daily.run_unit(args, f"{PROG} {args.action}", partial(ACTIONS[args.action], args))


def _add(args, conn, where):
    accounts.add_payment(conn, args.code, args.amount, args.reference)
    row = accounts.show_client(conn, where, args.code)

    def report() -> None:
        if args.json:
            daily.print_json(daily.jsonable(row))
        else:
            print(f"recorded {args.amount} USD for {args.code} ({args.reference})")
            daily.print_record(row, LABELS)
    return report


def _list(args, conn, where):
    daily.window(args.since, args.until)
    rows = accounts.list_payments(conn, where, args.code, args.since, args.until)
    headers = HEADERS + ([("created_by", "BY")] if not where.is_tenant else [])

    def report() -> None:
        if args.json:
            daily.print_json([daily.jsonable(r) for r in rows])
        else:
            daily.print_table(rows, headers)
    return report


ACTIONS = {"add": _add, "list": _list}
