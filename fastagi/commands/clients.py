"""`ictcontact clients list|show|create|update|suspend|resume`: the client accounts, through
the same view (`client_list`) and procedures (create_client, suspend_client,
activate_client) an admin uses in SQL (docs/operator-cli.md). A client's own database
login sees and may show only its own account."""

from __future__ import annotations

import argparse
from functools import partial

from fastagi.commands import daily
from fastagi.store import accounts

PROG = "ictcontact clients"

LIST_HEADERS = [("code", "CODE"), ("name", "NAME"), ("balance", "BALANCE"), ("plan", "PLAN"),
                ("channels", "CHANNELS"), ("status", "STATUS"), ("live_calls", "LIVE"),
                ("available_credit", "AVAILABLE")]
LABELS = {"code": "code", "name": "name", "balance": "balance (USD)", "plan": "plan",
          "channels": "channels", "status": "status", "live_calls": "live calls",
          "available_credit": "available credit (USD)", "credit_limit": "credit limit (USD)",
          "email": "email", "contact_name": "contact", "phone": "phone",
          "end_calls_without_credit": "end calls without credit",
          "suspended_at": "suspended at (UTC)", "created_at": "created at (UTC)",
          "notes": "notes"}


def _yes_no(text: str) -> bool:
    if text.lower() in ("yes", "1", "on", "true"):
        return True
    if text.lower() in ("no", "0", "off", "false"):
        return False
    raise argparse.ArgumentTypeError(f"{text!r}: say yes or no")


def _people_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--credit-limit", type=daily.money,
                        help="USD a postpaid client may spend below zero (0: prepaid)")
    parser.add_argument("--email", help="billing/contact e-mail ('' clears it)")
    parser.add_argument("--contact-name", help="contact person ('' clears it)")
    parser.add_argument("--phone", help="contact phone number ('' clears it)")
    parser.add_argument("--notes", help="free text for admins ('' clears it)")
    parser.add_argument("--end-calls-without-credit", type=_yes_no, metavar="yes|no",
                        help="hang up live calls when the credit runs out during them")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="action", required=True, metavar="ACTION")
    listing = sub.add_parser("list", help="every client: balance, plan, channels, status")
    listing.add_argument("--status", choices=("active", "suspended"), help="only these")
    show = sub.add_parser("show", help="one client's account in full")
    show.add_argument("code", metavar="CLIENT")
    create = sub.add_parser("create", help="create a client (CALL create_client)")
    create.add_argument("code", metavar="CLIENT", help="code: 1-32 of a-z 0-9 _ -; never changes")
    create.add_argument("name", help="unique display name")
    create.add_argument("--plan", help="rate plan name (default: the default plan)")
    create.add_argument("--channels", type=int, help="channel limit (default 10)")
    create.add_argument("--opening-balance", type=daily.money,
                        help="USD, recorded as the opening payment (default 0)")
    _people_options(create)
    update = sub.add_parser("update", help="change what people set on a client")
    update.add_argument("code", metavar="CLIENT")
    update.add_argument("--name", help="new display name")
    update.add_argument("--plan", help="rate plan name")
    update.add_argument("--channels", type=int, help="channel limit")
    _people_options(update)
    for name, help_text in (("suspend", "suspend: calls rejected, campaigns paused, agents "
                                        "locked out (CALL suspend_client)"),
                            ("resume", "reactivate a suspended client as it was "
                                       "(CALL activate_client)")):
        sub.add_parser(name, help=help_text).add_argument("code", metavar="CLIENT")
    for p in sub.choices.values():
        daily.add_common(p)


def run(args: argparse.Namespace) -> int:
    return daily.run_unit(args, f"{PROG} {args.action}", partial(ACTIONS[args.action], args))


def _changes(args: argparse.Namespace) -> dict[str, object]:
    changes: dict[str, object] = {}
    for key in accounts.UPDATABLE:
        value = getattr(args, key, None)
        if value is None:
            continue
        if isinstance(value, str) and value == "" and key in ("email", "contact_name",
                                                              "phone", "notes"):
            value = None  # '' clears an optional field
        changes[key] = value
    return changes


def _list(args, conn, where):
    rows = accounts.list_clients(conn, args.status)

    def report() -> None:
        if args.json:
            daily.print_json([daily.jsonable(r) for r in rows])
        else:
            daily.print_table(rows, LIST_HEADERS)
    return report


def _shown(args, conn, where, code: str):
    row = accounts.show_client(conn, where, code)

    def report() -> None:
        if args.json:
            daily.print_json(daily.jsonable(row))
        else:
            daily.print_record(row, LABELS)
    return report


def _show(args, conn, where):
    return _shown(args, conn, where, args.code)


def _create(args, conn, where):
    accounts.create_client(conn, args.code, args.name, args.plan, args.channels,
                           args.opening_balance)
    changes = _changes(args)
    changes.pop("name", None)       # given to create_client already
    changes.pop("channels", None)
    if changes:
        accounts.update_client(conn, where, args.code, changes)
    return _shown(args, conn, where, args.code)


def _update(args, conn, where):
    changes = _changes(args)
    if not changes and args.plan is None:
        raise daily.UsageError("nothing to change: give at least one of --name, --plan, "
                               "--channels, --credit-limit, --email, --contact-name, --phone, "
                               "--notes, --end-calls-without-credit")
    accounts.update_client(conn, where, args.code, changes, plan=args.plan)
    return _shown(args, conn, where, args.code)


def _status(status: str, args, conn, where):
    accounts.set_status(conn, args.code, status)
    return _shown(args, conn, where, args.code)


ACTIONS = {"list": _list, "show": _show, "create": _create, "update": _update,
           "suspend": partial(_status, "suspended"), "resume": partial(_status, "active")}
