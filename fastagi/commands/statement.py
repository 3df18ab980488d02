"""`ictcontact statement CLIENT --period YYYY-MM [--format table|csv|json|html]`: a client's
monthly statement from the ledger (docs/admin-sql.md "Statements").

Opening balance, payments (top-ups), corrections, usage by destination (calls, minutes,
cost; emergency calls free), for a reseller its transfers to its clients and what it paid
for its clients' calls (one line per client of its own), and the closing balance, which is always the ledger's balance at
the period's end. Periods are calendar months in UTC; a call belongs to the month it was
settled in (when it ended and was billed). Exit 0 printed, 1 unknown client or database
failure, 2 a usage error (bad --period): each refusal is one line on stderr.
"""

from __future__ import annotations

import argparse
import csv
import io
import json
import sys
from datetime import datetime, timezone

from fastagi.billing.statement import Period, Statement
from fastagi.commands import statement_html
from fastagi.db.engine import describe_failure, make_engine
from fastagi.settings import database_url, source_from_args
from fastagi.store import statements

FORMATS = ("table", "csv", "json", "html")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("client", metavar="CLIENT", help="client code, e.g. acme")
    parser.add_argument("--period", required=True, metavar="YYYY-MM",
                        help="calendar month in UTC, e.g. 2026-11")
    parser.add_argument("--format", choices=FORMATS, default="table",
                        help="table (default), csv, json, or html (a printable page)")
    parser.add_argument("--db", help="SQLAlchemy URL (env ICTCONTACT_DB)")


def run(args: argparse.Namespace) -> int:
    try:
        period = Period.parse(args.period)
    except ValueError as exc:
        print(f"ictcontact statement: {exc}", file=sys.stderr)
        return 2
    url = database_url(source_from_args(args))
    now = datetime.now(timezone.utc).replace(tzinfo=None)
    try:
        engine = make_engine(url, pool_size=1)
        try:
            made = statements.statement(engine, args.client, period, now)
        finally:
            engine.dispose()
    except statements.ClientNotFound as exc:
        print(f"ictcontact statement: {exc}", file=sys.stderr)
        return 1
    except Exception as exc:  # connection refused, missing schema: one line, not a traceback
        print(f"ictcontact statement: {describe_failure(exc)}", file=sys.stderr)
        return 1
    sys.stdout.write(RENDERERS[args.format](made))
    return 0


def money(amount) -> str:
    return f"{amount:.4f}"


def render_table(s: Statement) -> str:
    out = io.StringIO()
    w = out.write
    w(f"Statement   {s.name} ({s.code})\n")
    w(f"Period      {s.period}  ({s.period.start:%Y-%m-%d %H:%M} to "
      f"{s.period.end:%Y-%m-%d %H:%M} UTC)\n")
    if s.is_open:
        w(f"            not over yet: made {s.made_at:%Y-%m-%d %H:%M} UTC, more may come\n")
    w("\n")
    for label, amount in summary(s):
        w(f"{label:<20}{money(amount):>16}\n")
    w("\nPayments, transfers and corrections\n" if s.transfers
      else "\nPayments and corrections\n")
    if s.payment_rows:
        rows = [("DATE (UTC)", "KIND", "REFERENCE", "AMOUNT")]
        rows += [(f"{p.at:%Y-%m-%d %H:%M:%S}", p.kind, p.reference, money(p.amount))
                 for p in s.payment_rows]
        w(columns(rows, right=(3,)))
    else:
        w("  none\n")
    w("\nUsage by destination\n")
    if s.usage:
        rows = [("DESTINATION", "PREFIX", "CALLS", "MINUTES", "COST")]
        rows += [(u.destination, u.prefix or "-", str(u.calls), f"{u.minutes}",
                  money(u.cost) + (" free" if u.emergency else ""))
                 for u in s.usage]
        rows.append(("TOTAL", "", str(s.calls), f"{s.minutes}", money(s.usage_cost)))
        w(columns(rows, right=(2, 3, 4)))
    else:
        w("  no calls\n")
    if s.client_charges:
        w("\nYour clients' calls (what you paid for them)\n")
        rows = [("CLIENT", "CALLS", "MINUTES", "COST", "SOLD", "MARGIN")]
        rows += [(c.code, str(c.calls), f"{c.minutes}", money(c.cost), money(c.sold),
                  money(c.margin)) for c in s.client_charges]
        sold = sum(c.sold for c in s.client_charges)
        rows.append(("TOTAL", str(sum(c.calls for c in s.client_charges)),
                     f"{sum(c.minutes for c in s.client_charges)}",
                     money(s.client_charges_cost), money(sold),
                     money(sold - s.client_charges_cost)))
        w(columns(rows, right=(1, 2, 3, 4, 5)))
    return out.getvalue()


def columns(rows: list[tuple[str, ...]], right: tuple[int, ...] = ()) -> str:
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    lines = []
    for row in rows:
        cells = [cell.rjust(width) if i in right else cell.ljust(width)
                 for i, (cell, width) in enumerate(zip(row, widths))]
        lines.append("  " + "  ".join(cells).rstrip() + "\n")
    return "".join(lines)


def summary(s: Statement) -> list[tuple[str, object]]:
    """The summary lines; a reseller's two (transfers, its clients' calls) only when it has
    any this period, so a plain client's bill is unchanged."""
    lines = [("Opening balance", s.opening_balance), ("Payments", s.payments)]
    if any(p.is_transfer for p in s.payment_rows):
        lines.append(("Transfers to clients", s.transfers))
    lines += [("Corrections", s.corrections), ("Usage", -s.usage_cost)]
    if s.client_charges:
        lines.append(("Clients' calls", -s.client_charges_cost))
    return lines + [("Closing balance", s.closing_balance)]


CSV_HEADER = ("section", "item", "date", "reference", "prefix", "calls", "seconds",
              "minutes", "amount")


def render_csv(s: Statement) -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(CSV_HEADER)
    for key, amount in (("opening_balance", s.opening_balance), ("payments", s.payments),
                        ("transfers", s.transfers), ("corrections", s.corrections),
                        ("usage", s.usage_cost), ("client_charges", s.client_charges_cost),
                        ("closing_balance", s.closing_balance)):
        writer.writerow(("summary", key, "", "", "", "", "", "", money(amount)))
    for p in s.payment_rows:
        section = "transfer" if p.is_transfer else (
            "correction" if p.is_correction else "payment")
        writer.writerow((section, p.kind, p.at.isoformat(sep=" "), p.reference, "", "", "",
                         "", money(p.amount)))
    for u in s.usage:
        writer.writerow(("usage", u.destination, "", "", u.prefix or "", u.calls, u.seconds,
                         u.minutes, money(u.cost)))
    # a reseller's charges: the client's code in `item` (no prefix: all destinations)
    for c in s.client_charges:
        writer.writerow(("client_charges", c.code, "", "", "", c.calls, c.seconds, c.minutes,
                         money(c.cost)))
    return out.getvalue()


def as_dict(s: Statement) -> dict:
    return {
        "client": {"code": s.code, "name": s.name},
        "period": str(s.period),
        "period_start": s.period.start.isoformat() + "Z",
        "period_end": s.period.end.isoformat() + "Z",
        "complete": not s.is_open,
        "opening_balance": money(s.opening_balance),
        "payments": money(s.payments),
        "transfers": money(s.transfers),
        "corrections": money(s.corrections),
        "usage": money(s.usage_cost),
        "client_charges": money(s.client_charges_cost),
        "closing_balance": money(s.closing_balance),
        "calls": s.calls,
        "payment_lines": [{"at": p.at.isoformat() + "Z", "kind": p.kind,
                           "reference": p.reference, "note": p.note, "amount": money(p.amount)}
                          for p in s.payment_rows],
        "usage_lines": [{"destination": u.destination, "prefix": u.prefix,
                         "emergency": u.emergency, "inbound": u.inbound, "calls": u.calls,
                         "seconds": u.seconds, "minutes": str(u.minutes), "cost": money(u.cost)}
                        for u in s.usage],
        "client_charge_lines": [{"client": c.code, "name": c.name, "calls": c.calls,
                                 "seconds": c.seconds, "minutes": str(c.minutes),
                                 "cost": money(c.cost), "sold": money(c.sold),
                                 "margin": money(c.margin)}
                                for c in s.client_charges],
        "current_balance": None if s.current_balance is None else money(s.current_balance),
        "made_at": None if s.made_at is None else s.made_at.isoformat() + "Z",
    }


def render_json(s: Statement) -> str:
    return json.dumps(as_dict(s), indent=2) + "\n"


RENDERERS = {"table": render_table, "csv": render_csv, "json": render_json,
             "html": lambda s: statement_html.render(s, summary(s), money)}
