"""`ictcontact asterisk grants|check`: Asterisk's own database login, as its files say.

grants  create Asterisk's account for the host its DSN really connects from, with the
        password of res_odbc.conf and exactly the privileges of fastagi.asterisk.grants
        (prints the statements, password masked; --apply runs them as the --db admin,
        all or nothing). The shipped placeholder password CHANGE_ME is refused.
check   log in exactly as Asterisk will (odbc.ini DSN + res_odbc.conf login) and check
        every object and privilege it needs; exit 1 with the reason on the first problem
"""

from __future__ import annotations

import argparse
import sys

from fastagi.asterisk import odbc
from fastagi.settings import database_url, source_from_args


def add_arguments(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="action", required=True, metavar="ACTION")
    grants = sub.add_parser("grants", help="create/align Asterisk's database account")
    check = sub.add_parser("check", help="log in as Asterisk and check what it needs")
    for p in (grants, check):
        p.add_argument("--res-odbc", default=odbc.DEFAULT_RES_ODBC,
                       help=f"res_odbc.conf (default {odbc.DEFAULT_RES_ODBC})")
        p.add_argument("--odbc-ini", default=odbc.DEFAULT_ODBC_INI,
                       help=f"the unixODBC DSN file (default {odbc.DEFAULT_ODBC_INI})")
        p.add_argument("--connection", default=odbc.DEFAULT_CONNECTION,
                       help="the res_odbc.conf section (default asterisk)")
    grants.add_argument("--host", help="account host when the DSN's server is not this "
                                       "machine: Asterisk's address as the database sees it")
    grants.add_argument("--apply", action="store_true",
                        help="run the statements (as the admin of --db / ICTCONTACT_DB)")
    grants.add_argument("--db", help="admin SQLAlchemy URL for --apply (env ICTCONTACT_DB)")


def run(args: argparse.Namespace) -> int:
    try:
        conn = odbc.read_connection(args.res_odbc, args.odbc_ini, args.connection)
    except OSError as exc:
        print(f"ictcontact asterisk {args.action}: cannot read {exc.filename}: "
              f"{exc.strerror}{_where_hint(args)}", file=sys.stderr)
        return 1
    except (odbc.OdbcConfigError, ValueError) as exc:
        print(f"ictcontact asterisk {args.action}: {exc}{_where_hint(args)}", file=sys.stderr)
        return 1
    return _grants(args, conn) if args.action == "grants" else _check(conn)


def _where_hint(args: argparse.Namespace) -> str:
    """Where to point the command when it read a default path (e.g. no /etc/asterisk on
    this machine: the files Asterisk will use are elsewhere)."""
    if (args.res_odbc, args.odbc_ini) == (odbc.DEFAULT_RES_ODBC, odbc.DEFAULT_ODBC_INI):
        return " (the files Asterisk uses are elsewhere? give --res-odbc PATH --odbc-ini PATH)"
    if args.res_odbc == odbc.DEFAULT_RES_ODBC:
        return " (res_odbc.conf is elsewhere? give --res-odbc PATH)"
    if args.odbc_ini == odbc.DEFAULT_ODBC_INI:
        return " (the DSN is in another file? give --odbc-ini PATH)"
    return ""


def _check(conn: odbc.AsteriskConnection) -> int:
    from fastagi.asterisk.access_check import check
    findings = check(conn)
    for finding in findings:
        print(finding.line())
    failed = [f for f in findings if not f.ok]
    print(f"{len(findings) - len(failed)} ok, {len(failed)} failed")
    return 1 if failed else 0


def _grants(args: argparse.Namespace, conn: odbc.AsteriskConnection) -> int:
    from fastagi.store.asterisk_access import grant_statements, shown
    host = args.host or conn.account_host
    if not host:
        print(f"ictcontact asterisk grants: the DSN's server {conn.server} is not this "
              "machine: give --host, Asterisk's address as the database server sees it",
              file=sys.stderr)
        return 1
    placeholder = (f"{args.res_odbc} [{args.connection}] still has the placeholder password "
                   f"{conn.password}: write the real one there as `password => ...` (Asterisk "
                   "logs in with it)")
    if args.apply and conn.has_placeholder_password:
        print(f"ictcontact asterisk grants: {placeholder}, then run this again", file=sys.stderr)
        return 1
    statements = grant_statements(conn.database, conn.username, host, conn.password)
    for sql, params in statements:
        print(shown(sql, params, conn.password))
    if not args.apply:
        if conn.has_placeholder_password:  # a review is fine; --apply will refuse
            print(f"ictcontact asterisk grants: note: {placeholder} before --apply",
                  file=sys.stderr)
        return 0
    return _apply(database_url(source_from_args(args)), conn.database, conn.username, host,
                  statements)


def _apply(admin_url: str, database: str, username: str, host: str, statements) -> int:
    from sqlalchemy.exc import SQLAlchemyError

    from fastagi.db.engine import describe_failure, make_engine, server_url
    from fastagi.store.asterisk_access import GrantsRefused, apply_grants
    engine = make_engine(server_url(admin_url), pool_size=1)
    try:
        apply_grants(engine, database, username, host, statements)
    except GrantsRefused as exc:
        print(f"ictcontact asterisk grants: {exc}", file=sys.stderr)
        return 1
    except SQLAlchemyError as exc:
        print(f"ictcontact asterisk grants: {describe_failure(exc)}", file=sys.stderr)
        return 1
    finally:
        engine.dispose()
    print("applied")
    return 0
