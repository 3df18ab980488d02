"""The database side of the `health` script: does the database answer at all?"""

from __future__ import annotations

from sqlalchemy import text
from sqlalchemy.engine import Engine

from fastagi.db.retry import with_retry


def ping(engine: Engine) -> int:
    """Run `SELECT 1` on a pooled connection (in a worker thread); a pooled connection
    that died since its last use is replaced and the query run again."""
    def select_one() -> int:
        with engine.connect() as conn:
            return int(conn.execute(text("SELECT 1")).scalar_one())
    return with_retry(select_one, idempotent=True)
