"""What the daily-work commands (`clients`, `payments`, `calls`) share: one database unit
of work per command, the login's scope, refusals as one line in words, and output as an
aligned table or as JSON.

Exit codes (README "Commands"): 0 done; 1 refused by the database or no such client
visible to the login (one line on stderr); 2 usage; 4 the database could not be used
(unreachable, login refused, connection lost): retry later; 130 interrupted (Ctrl-C),
with one line saying whether the change was made.

Output: money exactly as stored (Decimal; in JSON a string such as "25.0000", never a
float); times in UTC (tables "2026-11-03 10:00:00", JSON "2026-11-03T10:00:00Z").
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from datetime import date, datetime, time, timezone
from decimal import Decimal
from typing import Any, Callable, Iterable, Sequence, TextIO

from sqlalchemy.exc import DBAPIError

from fastagi.db.engine import describe_failure, make_engine
from fastagi.settings import database_url, source_from_args
from fastagi.store import accounts

EXIT_OK, EXIT_REFUSED, EXIT_USAGE, EXIT_DATABASE, EXIT_INTERRUPTED = 0, 1, 2, 4, 130

# Ctrl-C: what happened to the unit of work, by how far it had gone.
INTERRUPTED = {
    "working": "nothing was changed (the transaction was rolled back)",
    "committing": "during the commit: `ictcontact clients show` or `payments list` tells "
                  "whether it took effect (a payment's reference makes posting it again safe)",
    "committed": "after the commit: the change is made, only its report was cut short",
}


class UsageError(ValueError):
    """An argument that cannot be used (exit 2); the message names it."""


def add_common(parser: argparse.ArgumentParser, json_help: str = "print JSON for scripts"
               ) -> None:
    parser.add_argument("--db", help="SQLAlchemy URL (env ICTCONTACT_DB); a client's own "
                                     "login connects to the tenant database")
    parser.add_argument("--json", action="store_true", help=json_help)


# ---- input ----------------------------------------------------------------------------

_MONEY = re.compile(r"-?[0-9]+(\.[0-9]+)?")


def money(text: str) -> Decimal:
    """A plain decimal number (no exponent, no thousands separator); the database decides
    how many decimals it keeps and refuses more."""
    if not _MONEY.fullmatch(text.strip()):
        raise argparse.ArgumentTypeError(f"{text!r} is not an amount: write it like 50 or "
                                         f"-12.5 (USD, a dot for decimals)")
    return Decimal(text.strip())


def when(text: str) -> datetime:
    """A UTC time as naive datetime: `2026-11-01`, `2026-11-01T08:30`, `2026-11-01 08:30:00`;
    an explicit offset (`Z`, `+02:00`) is converted to UTC."""
    try:
        if re.fullmatch(r"\d{4}-\d{2}-\d{2}", text):
            return datetime.combine(date.fromisoformat(text), time())
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"{text!r} is not a date or time: write 2026-11-01 or 2026-11-01T08:30 (UTC)") from None
    if moment.tzinfo is not None:
        moment = moment.astimezone(timezone.utc).replace(tzinfo=None)
    return moment


def window(since: datetime | None, until: datetime | None) -> None:
    if since is not None and until is not None and until <= since:
        raise UsageError(f"--to ({until:%Y-%m-%d %H:%M:%S}) must be after --from "
                         f"({since:%Y-%m-%d %H:%M:%S}): the window is [from, to) in UTC")


# ---- the unit of work -----------------------------------------------------------------

def run_unit(args: argparse.Namespace, prog: str,
             work: Callable[[Any, accounts.Scope], Callable[[], None]]) -> int:
    """Run `work(conn, scope)` in one transaction, commit, then call what it returned (the
    printing: nothing is reported done before the commit); every failure becomes one line
    on stderr and an exit code."""
    url = database_url(source_from_args(args))
    try:
        engine = make_engine(url, pool_size=1)
    except Exception as exc:  # a URL SQLAlchemy cannot use
        print(f"{prog}: {describe_failure(exc)}", file=sys.stderr)
        return EXIT_USAGE
    where: accounts.Scope | None = None
    stage = "working"
    try:
        with engine.begin() as conn:
            where = accounts.scope(conn)
            report = work(conn, where)
            stage = "committing"
        stage = "committed"
        report()
        return EXIT_OK
    except KeyboardInterrupt:
        print(f"{prog}: interrupted: " + INTERRUPTED[stage], file=sys.stderr)
        return EXIT_INTERRUPTED
    except UsageError as exc:
        print(f"{prog}: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except (accounts.NotVisible, accounts.NoSchema) as exc:
        print(f"{prog}: {exc}", file=sys.stderr)
        return EXIT_REFUSED
    except DBAPIError as exc:
        line, code = refusal(exc, where)
        print(f"{prog}: {line}", file=sys.stderr)
        return code
    except Exception as exc:  # connection refused, bad URL: one line, not a traceback
        print(f"{prog}: {describe_failure(exc)}", file=sys.stderr)
        return EXIT_DATABASE
    finally:
        engine.dispose()


# Unique keys and CHECK constraints the daily commands can run into, in words.
KEYS = {
    "uq_clients_code": "a client with that code already exists: pick another code",
    "uq_clients_name": "a client with that name already exists: pick another name",
    "uq_payments_client_reference": "this client already has a payment with that reference: "
                                    "a payment is posted once (see `ictcontact payments list`); "
                                    "a correction needs a reference of its own",
}
CHECKS = {
    "ck_clients_code_slug": "a client code is 1-32 characters a-z, 0-9, _ or -",
    "ck_clients_name_not_blank": "a client name cannot be blank",
    "ck_clients_channel_limit": "the channel limit cannot be negative",
    "ck_clients_credit_limit": "the credit limit cannot be negative",
    "ck_payments_amount_not_zero": "a payment of 0 changes nothing: give a non-zero amount",
    "ck_payments_reference_not_blank": "a payment needs a reference (receipt, invoice)",
}
PRIVILEGE_ERRORS = {1044, 1142, 1143, 1227, 1370}
MISSING_ERRORS = {1146, 1305}
CONNECT_ERRORS = {1045, 1049, 2002, 2003, 2005, 2006, 2013, 4151}


def refusal(exc: DBAPIError, where: accounts.Scope | None) -> tuple[str, int]:
    """The database's refusal as one line in words, and the exit code."""
    orig = exc.orig
    args = getattr(orig, "args", ())
    number = args[0] if args and isinstance(args[0], int) else None
    message = str(args[1]) if len(args) > 1 else str(orig)
    if number == 1644:  # SIGNAL SQLSTATE '45000': the rule's own words
        return message, EXIT_REFUSED
    if number == 1062:
        for key, words in KEYS.items():
            if key in message:
                return words, EXIT_REFUSED
        return message, EXIT_REFUSED
    if number == 4025:
        for check, words in CHECKS.items():
            if check in message:
                return words, EXIT_REFUSED
        return message, EXIT_REFUSED
    if where is None and number in (1044, 1045):  # the login may not use this database
        return describe_failure(exc), EXIT_DATABASE
    tenant = where is not None and where.is_tenant
    if number in PRIVILEGE_ERRORS or (tenant and number in MISSING_ERRORS):
        if tenant:
            return (f"refused: {where.login} is a client login, which reads its own "
                    f"account, payments and calls; creating, changing, suspending clients "
                    f"and recording payments is the operator's (the database said: "
                    f"{message})"), EXIT_REFUSED
        return f"refused by the database: {message}", EXIT_REFUSED
    if number in MISSING_ERRORS:
        return (f"the database's schema lacks what this command needs ({message}): "
                f"`ictcontact db upgrade`"), EXIT_DATABASE
    if number == 4151:
        return ("this login is locked (its client is suspended or its user disabled): "
                "ask the operator"), EXIT_DATABASE
    if number in CONNECT_ERRORS or number is None:
        return describe_failure(exc), EXIT_DATABASE
    return message, EXIT_REFUSED


# ---- output ---------------------------------------------------------------------------

def text_value(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, datetime):
        return value.strftime("%Y-%m-%d %H:%M:%S")
    return str(value)


def json_value(value: Any) -> Any:
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, datetime):
        return value.isoformat(timespec="milliseconds" if value.microsecond else "seconds") + "Z"
    return value


def print_json(value: Any, out: TextIO | None = None) -> None:
    json.dump(value, out or sys.stdout, default=json_value, indent=2)
    (out or sys.stdout).write("\n")


def jsonable(row: dict[str, Any]) -> dict[str, Any]:
    return {key: json_value(value) for key, value in row.items()}


def print_table(rows: Sequence[dict[str, Any]], columns: Sequence[tuple[str, str]],
                out: TextIO | None = None) -> None:
    """An aligned table with a header line; numbers right-aligned. `columns` are
    (key, header) pairs."""
    out = out or sys.stdout
    cells = [[text_value(row[key]) for key, _ in columns] for row in rows]
    numeric = [bool(rows) and all(isinstance(row[key], (int, Decimal)) and
                                  not isinstance(row[key], bool)
                                  for row in rows if row[key] is not None)
               for key, _ in columns]
    widths = [max([len(header)] + [len(line[i]) for line in cells])
              for i, (_, header) in enumerate(columns)]

    def line(values: Iterable[str]) -> str:
        return "  ".join(v.rjust(w) if right else v.ljust(w)
                         for v, w, right in zip(values, widths, numeric)).rstrip()

    print(line(header for _, header in columns), file=out)
    for values in cells:
        print(line(values), file=out)


def print_record(row: dict[str, Any], labels: dict[str, str], out: TextIO | None = None
                 ) -> None:
    """One record as `label: value` lines."""
    width = max(len(labels.get(key, key)) for key in row)
    for key, value in row.items():
        print(f"{labels.get(key, key) + ':':<{width + 1}} {text_value(value)}", file=out)
