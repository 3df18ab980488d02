"""`ictcontact asterisk grants|check`: Asterisk's own database login, as its files say.

grants  create Asterisk's account for the host its DSN really connects from, with the
        password of res_odbc.conf and exactly the privileges of fastagi.asterisk.grants
        (prints the statements, password masked; --apply runs them as the --db admin)
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
    except (odbc.OdbcConfigError, OSError, ValueError) as exc:
        print(f"ictcontact asterisk {args.action}: {exc}", file=sys.stderr)
        return 1
    return _grants(args, conn) if args.action == "grants" else _check(conn)


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
    statements = grant_statements(conn.database, conn.username, host, conn.password)
    for sql, params in statements:
        print(shown(sql, params, conn.password))
    if not args.apply:
        return 0
    return _apply(database_url(source_from_args(args)), statements)


def _apply(admin_url: str, statements) -> int:
    from sqlalchemy.exc import SQLAlchemyError

    from fastagi.db.engine import describe_failure, make_engine, server_url
    from fastagi.store.asterisk_access import apply_grants
    engine = make_engine(server_url(admin_url), pool_size=1)
    try:
        apply_grants(engine, statements)
    except SQLAlchemyError as exc:
        print(f"ictcontact asterisk grants: {describe_failure(exc)}", file=sys.stderr)
        return 1
    finally:
        engine.dispose()
    print("applied")
    return 0
