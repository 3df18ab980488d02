"""Log in exactly as Asterisk will and check everything it needs, failing loudly.

The login uses the server, port (or socket), database, username and password of the shipped
odbc.ini and res_odbc.conf, so MariaDB sees the same account host Asterisk's ODBC
connection will. Each object is then read the way res_config_odbc reads it, and every
privilege of grants.ASTERISK_NEEDS is looked up for the account the server matched.
"""

from __future__ import annotations

from dataclasses import dataclass

import pymysql

from fastagi.asterisk.grants import ASTERISK_NEEDS, quote_identifier
from fastagi.asterisk.odbc import AsteriskConnection

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


def connect(conn: AsteriskConnection, timeout_s: int = 5):
    options = dict(user=conn.username, password=conn.password, database=conn.database,
                   connect_timeout=timeout_s, read_timeout=timeout_s, autocommit=True)
    if conn.over_socket:
        options["unix_socket"] = conn.socket or "/run/mysqld/mysqld.sock"
    else:
        options.update(host=conn.server, port=conn.port)
    return pymysql.connect(**options)


def check(conn: AsteriskConnection, timeout_s: int = 5) -> list[Finding]:
    """Findings in order; the first FAIL of the login stops the rest."""
    where = (f"socket {conn.socket or 'default'}" if conn.over_socket
             else f"{conn.server}:{conn.port}")
    try:
        db = connect(conn, timeout_s)
    except pymysql.err.OperationalError as exc:
        return [Finding(False, f"login {conn.account} to {conn.database} at {where} "
                               f"(DSN {conn.dsn})", _login_hint(conn, exc))]
    findings = [Finding(True, f"login {conn.account} to {conn.database} at {where} "
                              f"(DSN {conn.dsn})")]
    with db:
        with db.cursor() as cursor:
            cursor.execute("SELECT CURRENT_USER()")
            matched = cursor.fetchone()[0]
            findings.append(Finding(True, f"the server matched the account {matched}"))
            granted = _privileges(cursor, conn.database)
            for name, needed in ASTERISK_NEEDS.items():
                findings.append(_read(cursor, name))
                missing = [p for p in needed if (p, name) not in granted and (p, "*") not in granted]
                findings.append(Finding(not missing, f"{', '.join(needed)} on {name}",
                                        f"missing {', '.join(missing)} for {matched}: run "
                                        "`ictcontact asterisk grants --apply`" if missing else ""))
    return findings


def _read(cursor, name: str) -> Finding:
    # What res_config_odbc sends for a realtime lookup (no row needs to match).
    try:
        cursor.execute(f"SELECT * FROM {quote_identifier(name)} WHERE 1 = 0")
    except pymysql.MySQLError as exc:
        return Finding(False, f"read {name}", f"{exc.args[0]} {exc.args[-1]}")
    return Finding(True, f"read {name}")


def _privileges(cursor, database: str) -> set[tuple[str, str]]:
    """(privilege, object or '*') the current account holds on `database`, at any level."""
    cursor.execute(
        "SELECT PRIVILEGE_TYPE, TABLE_NAME FROM information_schema.TABLE_PRIVILEGES"
        " WHERE TABLE_SCHEMA = %s", (database,))
    held = {(row[0], row[1]) for row in cursor.fetchall()}
    cursor.execute("SELECT PRIVILEGE_TYPE FROM information_schema.SCHEMA_PRIVILEGES"
                   " WHERE TABLE_SCHEMA = %s", (database,))
    held |= {(row[0], "*") for row in cursor.fetchall()}
    cursor.execute("SELECT PRIVILEGE_TYPE FROM information_schema.USER_PRIVILEGES")
    held |= {(row[0], "*") for row in cursor.fetchall()}
    return held


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
