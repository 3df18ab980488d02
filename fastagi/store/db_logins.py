"""Client database logins (schema 070-075): thin calls of the procedures that own them.

Each function takes an open SQLAlchemy Connection inside the caller's transaction. The
rules (name patterns, password length, what the login may see) live in the database; a
refusal arrives as the procedure's SIGNAL message.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import text
from sqlalchemy.engine import Connection


@dataclass(frozen=True)
class DbLogin:
    client: str
    username: str
    account: str
    host: str
    role: str
    state: str          # open | locked


def grant(conn: Connection, client: str, username: str, password: str,
          account: str | None = None, host: str | None = None) -> DbLogin:
    """Create the login; fires nothing, returns what was created."""
    row = conn.execute(text("CALL grant_db_login_as(:c, :u, :p, :a, :h)"),
                       {"c": client, "u": username, "p": password, "a": account,
                        "h": host}).one()
    return DbLogin(client, username, row.account, row.host, row.role, row.state)


def revoke(conn: Connection, client: str, username: str) -> str:
    """Drop the login; returns the account name that was dropped."""
    return conn.execute(text("CALL revoke_db_login(:c, :u)"),
                        {"c": client, "u": username}).one().account


def sync(conn: Connection) -> None:
    """Apply role changes and locks now (the db_login_sync event does it every second)."""
    conn.execute(text("CALL sync_db_logins()"))


def list_logins(conn: Connection, client: str | None = None) -> list[DbLogin]:
    rows = conn.execute(text(
        "SELECT c.code, u.username, l.account, l.host, u.role, "
        "       IF(l.locked, 'locked', 'open') AS state "
        "FROM db_logins l JOIN users u ON u.id = l.user_id JOIN clients c ON c.id = l.client_id "
        "WHERE :client IS NULL OR c.code = :client ORDER BY c.code, u.username"),
        {"client": client})
    return [DbLogin(*row) for row in rows]


def tenant_database(conn: Connection) -> str:
    return conn.execute(text("SELECT tenant_database_name()")).scalar_one()


def event_scheduler_on(conn: Connection) -> bool:
    """False when the server's event scheduler is off: suspension would not lock logins."""
    return conn.execute(text("SELECT @@GLOBAL.event_scheduler")).scalar_one() == "ON"
