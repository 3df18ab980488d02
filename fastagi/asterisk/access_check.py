"""Log in exactly as Asterisk will and check everything it needs, failing loudly.

The login uses the server, port (or socket), database, username and password of the shipped
odbc.ini and res_odbc.conf, so MariaDB sees the same account host Asterisk's ODBC
connection will. Each object is then read the way res_config_odbc reads it, and every
privilege of grants.ASTERISK_NEEDS is looked up for the account the server matched. The
statements are in fastagi.store.asterisk_access.
"""

from __future__ import annotations

from dataclasses import dataclass

import pymysql

from fastagi.asterisk.grants import ASTERISK_NEEDS
from fastagi.asterisk.odbc import AsteriskConnection
from fastagi.store import asterisk_access

ER_ACCESS_DENIED = 1045
ER_BAD_DB = 1049
ER_DB_ACCESS_DENIED = 1044


@dataclass(frozen=True)
class Finding:
    ok: bool
    what: str
    detail: str = ""

    def line(self) -> str:
        return f"{'OK  ' if self.ok else 'FAIL'} {self.what}" + (f": {self.detail}" if self.detail else "")


def check(conn: AsteriskConnection, timeout_s: int = 5) -> list[Finding]:
    """Findings in order; the first FAIL of the login stops the rest."""
    where = (f"socket {conn.socket or 'default'}" if conn.over_socket
             else f"{conn.server}:{conn.port}")
    try:
        db = asterisk_access.connect(conn, timeout_s)
    except pymysql.err.OperationalError as exc:
        return [Finding(False, f"login {conn.account} to {conn.database} at {where} "
                               f"(DSN {conn.dsn})", _login_hint(conn, exc))]
    findings = [Finding(True, f"login {conn.account} to {conn.database} at {where} "
                              f"(DSN {conn.dsn})")]
    with db:
        with db.cursor() as cursor:
            matched = asterisk_access.current_account(cursor)
            findings.append(Finding(True, f"the server matched the account {matched}"))
            granted = asterisk_access.privileges(cursor, conn.database)
            for name, needed in ASTERISK_NEEDS.items():
                findings.append(_read(cursor, name))
                missing = [p for p in needed if (p, name) not in granted and (p, "*") not in granted]
                findings.append(Finding(not missing, f"{', '.join(needed)} on {name}",
                                        f"missing {', '.join(missing)} for {matched}: run "
                                        "`ictcontact asterisk grants --apply`" if missing else ""))
    return findings


def _read(cursor, name: str) -> Finding:
    try:
        asterisk_access.read_nothing(cursor, name)
    except pymysql.MySQLError as exc:
        return Finding(False, f"read {name}", f"{exc.args[0]} {exc.args[-1]}")
    return Finding(True, f"read {name}")


def _login_hint(conn: AsteriskConnection, exc: pymysql.err.OperationalError) -> str:
    code, message = exc.args[0], exc.args[-1]
    if code == ER_ACCESS_DENIED:
        return (f"{message}. MariaDB matches the account by the host the connection comes "
                f"from: this DSN needs {conn.account} with the password of res_odbc.conf "
                "(`ictcontact asterisk grants --apply`); an account for another host, such "
                "as 'localhost' for a TCP DSN, does not count")
    if code in (ER_BAD_DB, ER_DB_ACCESS_DENIED):
        return f"{message}: run `ictcontact db upgrade`, then `ictcontact asterisk grants --apply`"
    return f"{code} {message}"
