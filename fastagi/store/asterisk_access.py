"""Asterisk's own database account in SQL: the statements `ictcontact asterisk grants`
writes (and applies as the operator), and what `ictcontact asterisk check` asks logged in
as Asterisk's account (over PyMySQL, exactly as the DSN connects): who the server matched,
whether an object reads, and which privileges the account holds. What the account needs
is fastagi.asterisk.grants; the check's rules are in fastagi.asterisk.access_check."""

from __future__ import annotations

import pymysql

from sqlalchemy.engine import Engine

from fastagi.asterisk.grants import ASTERISK_NEEDS
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


def grant_statements(database: str, username: str, host: str,
                     password: str) -> list[tuple[str, tuple]]:
    """(SQL, parameters) creating the account if missing and granting exactly what it needs.

    Account names and the password go as bound string literals; identifiers (the database
    and object names) are backquoted with any backquote doubled.
    """
    account = "%s@%s"
    statements: list[tuple[str, tuple]] = [
        # ALTER too: an account that already exists gets the password res_odbc.conf has.
        (f"CREATE USER IF NOT EXISTS {account} IDENTIFIED BY %s", (username, host, password)),
        (f"ALTER USER {account} IDENTIFIED BY %s", (username, host, password)),
    ]
    for name, privileges in ASTERISK_NEEDS.items():
        statements.append((f"GRANT {', '.join(privileges)} ON {quote_identifier(database)}."
                           f"{quote_identifier(name)} TO {account}", (username, host)))
    return statements


def quote_identifier(name: str) -> str:
    return "`" + name.replace("`", "``") + "`"


def shown(sql: str, params: tuple, password: str) -> str:
    """The statement as a reader sees it, with the password masked."""
    def literal(value: str) -> str:
        return "'********'" if value == password else "'" + value.replace("'", "''") + "'"
    return sql % tuple(literal(p) for p in params) + ";"


class GrantsRefused(ValueError):
    """The grants cannot apply as a whole; the message says why and what to do."""


def apply_grants(engine: Engine, database: str, username: str, host: str,
                 statements: list[tuple[str, tuple]]) -> None:
    """Run `statements` (from grant_statements) as the operator, all or nothing.

    CREATE USER and GRANT commit on their own in MariaDB, so a transaction cannot undo
    them: the database and every object are checked first (GrantsRefused, nothing done),
    and an account this call created is dropped again if a later statement fails.
    """
    with engine.connect() as db:
        _check_target(db, database)
        existed = db.exec_driver_sql("SELECT 1 FROM mysql.user WHERE User = %s AND Host = %s",
                                     (username, host)).first() is not None
    try:
        with engine.begin() as db:
            for sql, params in statements:
                db.exec_driver_sql(sql, params)
    except Exception:
        if not existed:
            with engine.begin() as db:
                db.exec_driver_sql("DROP USER IF EXISTS %s@%s", (username, host))
        raise


def _check_target(db, database: str) -> None:
    if db.exec_driver_sql("SELECT 1 FROM information_schema.SCHEMATA WHERE SCHEMA_NAME = %s",
                          (database,)).first() is None:
        raise GrantsRefused(
            f"the DSN's database {database} does not exist on the --db server: create it "
            f"with `ictcontact db upgrade --db URL/{database}` or correct `Database =` in "
            "odbc.ini; no account was created")
    present = {row[0] for row in db.exec_driver_sql(
        "SELECT TABLE_NAME FROM information_schema.TABLES WHERE TABLE_SCHEMA = %s",
        (database,))}
    missing = [name for name in ASTERISK_NEEDS if name not in present]
    if missing:
        raise GrantsRefused(
            f"the DSN's database {database} has no {', '.join(missing)}: run "
            f"`ictcontact db upgrade` on it first; no account was created")
