"""What `ictcontact asterisk check` asks the database, logged in as Asterisk's own account
(over PyMySQL, exactly as the DSN connects): who the server matched, whether an object
reads, and which privileges the account holds. The rules are in fastagi.asterisk.access_check."""

from __future__ import annotations

import pymysql

from fastagi.asterisk.grants import quote_identifier
from fastagi.asterisk.odbc import AsteriskConnection


def connect(conn: AsteriskConnection, timeout_s: int = 5):
    options = dict(user=conn.username, password=conn.password, database=conn.database,
                   connect_timeout=timeout_s, read_timeout=timeout_s, autocommit=True)
    if conn.over_socket:
        options["unix_socket"] = conn.socket or "/run/mysqld/mysqld.sock"
    else:
        options.update(host=conn.server, port=conn.port)
    return pymysql.connect(**options)


def current_account(cursor) -> str:
    """The account the server matched for this login, e.g. `asterisk@127.0.0.1`."""
    cursor.execute("SELECT CURRENT_USER()")
    return cursor.fetchone()[0]


def read_nothing(cursor, name: str) -> None:
    """What res_config_odbc sends for a realtime lookup (no row needs to match); raises
    pymysql.MySQLError when the object cannot be read."""
    cursor.execute(f"SELECT * FROM {quote_identifier(name)} WHERE 1 = 0")


def privileges(cursor, database: str) -> set[tuple[str, str]]:
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
