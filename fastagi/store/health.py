"""The database side of the `health` script: does the database answer, and may this
account do what the server does?"""

from __future__ import annotations

from sqlalchemy import text
from sqlalchemy.engine import Engine

from fastagi.db.retry import with_retry
from fastagi.store.privileges import missing_privilege


def ping(engine: Engine) -> int:
    """Run `SELECT 1` on a pooled connection (in a worker thread); a pooled connection
    that died since its last use is replaced and the query run again."""
    def select_one() -> int:
        with engine.connect() as conn:
            return int(conn.execute(text("SELECT 1")).scalar_one())
    return with_retry(select_one, idempotent=True)


def health_problem(engine: Engine) -> str | None:
    """What stops this server from serving calls, or None: the database must answer and
    the account must hold every privilege the server needs. One unit of work, so the
    `health` script waits for the database once (within one database timeout)."""
    ping(engine)
    return missing_privilege(engine)
