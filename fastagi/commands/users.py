"""`ictcontact users grant|revoke|list|sync`: database logins of client users.

grant CLIENT/USERNAME   give that users row a MariaDB/MySQL account (docs/tenant-logins.md);
                        the password is read from the terminal (asked twice) or, with
                        --password-stdin, from the first line of standard input; never argv
revoke CLIENT/USERNAME  drop the account and end its sessions
list [CLIENT]           the logins, their roles and whether they are locked
sync                    apply locks and role changes now (the server's event does it every second)
"""

from __future__ import annotations

import argparse
import getpass
import sys

from sqlalchemy.exc import DBAPIError

from fastagi.db.engine import describe_failure, make_engine
from fastagi.settings import database_url, source_from_args
from fastagi.store import db_logins


def add_arguments(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="action", required=True, metavar="ACTION")
    grant = sub.add_parser("grant", help="give a client's user a database login")
    grant.add_argument("who", metavar="CLIENT/USERNAME")
    grant.add_argument("--account", help="account name (default <client>.<username>)")
    grant.add_argument("--host", help="host the account may connect from (default %%)")
    grant.add_argument("--password-stdin", action="store_true",
                       help="read the password from the first line of standard input")
    revoke = sub.add_parser("revoke", help="remove a client user's database login")
    revoke.add_argument("who", metavar="CLIENT/USERNAME")
    listing = sub.add_parser("list", help="list database logins")
    listing.add_argument("client", nargs="?", help="only this client code")
    sub.add_parser("sync", help="apply locks and role changes now")
    for p in (grant, revoke, listing, sub.choices["sync"]):
        p.add_argument("--db", help="SQLAlchemy URL (env ICTCONTACT_DB)")


def split_who(who: str) -> tuple[str, str]:
    """'acme/alice' -> ('acme', 'alice'); the username may itself contain '/'."""
    client, sep, username = who.partition("/")
    if not sep or not client or not username:
        raise ValueError(f"expected CLIENT/USERNAME, got {who!r}")
    return client, username


def read_password(from_stdin: bool) -> str:
    if from_stdin or not sys.stdin.isatty():
        line = sys.stdin.readline()
        return line[:-1] if line.endswith("\n") else line
    first = getpass.getpass("Password for the database login: ")
    if getpass.getpass("Same password again: ") != first:
        raise ValueError("the two passwords differ")
    return first


def run(args: argparse.Namespace) -> int:
    url = database_url(source_from_args(args))
    try:
        if args.action in ("grant", "revoke"):
            client, username = split_who(args.who)
        password = read_password(args.password_stdin) if args.action == "grant" else None
    except ValueError as exc:
        print(f"ictcontact users: {exc}", file=sys.stderr)
        return 2
    engine = make_engine(url, pool_size=1)
    try:
        with engine.begin() as conn:
            if args.action == "grant":
                login = db_logins.grant(conn, client, username, password,
                                        args.account, args.host)
                print(f"granted {client}/{username}: account '{login.account}'@'{login.host}', "
                      f"role {login.role}, {login.state}; "
                      f"it logs in to database {db_logins.tenant_database(conn)}")
            elif args.action == "revoke":
                account = db_logins.revoke(conn, client, username)
                print(f"revoked {client}/{username}: account '{account}' dropped")
            elif args.action == "list":
                print("LOGIN\tACCOUNT\tROLE\tSTATE")
                for login in db_logins.list_logins(conn, args.client):
                    print(f"{login.client}/{login.username}\t'{login.account}'@'{login.host}'"
                          f"\t{login.role}\t{login.state}")
            else:
                db_logins.sync(conn)
                print("database logins in step")
            if not db_logins.event_scheduler_on(conn):
                print("ictcontact users: warning: event_scheduler is OFF, so suspension does "
                      "not lock database logins; SET GLOBAL event_scheduler = ON",
                      file=sys.stderr)
        return 0
    except DBAPIError as exc:
        orig = exc.orig
        if orig is not None and getattr(orig, "args", None) and orig.args[0] == 1644:
            print(f"ictcontact users: {orig.args[1]}", file=sys.stderr)  # the rule's message
            return 1
        print(f"ictcontact: {describe_failure(exc)}", file=sys.stderr)
        return 1
    except Exception as exc:  # connection refused, bad URL: one line, not a traceback
        print(f"ictcontact: {describe_failure(exc)}", file=sys.stderr)
        return 1
    finally:
        engine.dispose()
