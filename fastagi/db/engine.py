"""The one way to open the database: an SQLAlchemy Engine tuned for short transactions.

READ COMMITTED so every statement after a row lock sees what other servers committed;
no reset on return to the pool (every unit of work ends its own transaction);
bounded connect/read/write timeouts so a database outage becomes an error, not a hang;
UTC session time zone so DATETIME columns mean the same on every server;
on a Galera node, causal reads (fastagi.db.galera.on_connect); a table MariaDB cached
with its triggers unparsed is flushed (fastagi.db.table_cache).
"""

from __future__ import annotations

from sqlalchemy import create_engine, event
from sqlalchemy.engine import Engine, make_url

from fastagi.db import galera, table_cache

DEFAULT_POOL_SIZE = 10


def make_engine(url: str, pool_size: int = DEFAULT_POOL_SIZE, timeout_s: int = 5,
                pre_ping: bool = False, statement_timeout_s: int | None = 10,
                **kwargs) -> Engine:
    """An Engine for `url` whose pool holds `pool_size` connections (no overflow).

    `pre_ping` tests each connection on checkout: for callers that do not retry a lost
    connection themselves (the server's transactions do, through fastagi.db.retry).
    `statement_timeout_s`: how long one statement's answer may take before the connection
    is given up (at least `timeout_s`); None waits as long as the statement runs (schema
    migrations: an ALTER TABLE of a big table takes minutes)."""
    engine = create_engine(
        url,
        pool_size=pool_size,
        max_overflow=0,
        pool_timeout=timeout_s,
        # No ping per checkout by default (a round trip per unit of work): a connection
        # found dead invalidates the whole pool and fastagi.db.retry runs the work again
        # when safe.
        pool_pre_ping=pre_ping,
        pool_recycle=1800,
        # Every use ends its transaction (engine.begin() commits or rolls back; a closed
        # Connection rolls back), so the pool's extra ROLLBACK on return is a wasted round
        # trip per unit of work.
        pool_reset_on_return=None,
        isolation_level="READ COMMITTED",
        connect_args={
            "connect_timeout": timeout_s,
            "read_timeout": (None if statement_timeout_s is None
                             else max(timeout_s, statement_timeout_s)),
            "write_timeout": (None if statement_timeout_s is None
                              else max(timeout_s, statement_timeout_s)),
            "charset": "utf8mb4",
            "init_command": "SET time_zone = '+00:00'",
        },
        **kwargs,
    )
    event.listen(engine, "connect", galera.on_connect)
    event.listen(engine, "handle_error", table_cache.Flusher().on_error)
    return engine


def server_url(url: str) -> str:
    """The same URL without its database name (to create or drop the database)."""
    return make_url(url)._replace(database=None).render_as_string(hide_password=False)


def database_name(url: str) -> str:
    name = make_url(url).database
    if not name:
        raise ValueError(f"database URL {make_url(url)!r} names no database")
    return name


def describe_failure(exc: BaseException) -> str:
    """One line for a command that could not use the database (refused connection, bad
    URL, access denied): the driver's message rather than SQLAlchemy's traceback."""
    return f"cannot use database: {exc.__class__.__name__}: {getattr(exc, 'orig', exc)}"
