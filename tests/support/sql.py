"""One statement, one call: for tests that set up or look at rows (parameters by name).

Each takes an Engine (and runs in its own transaction) or an open Connection (and runs in
the caller's).
"""

from __future__ import annotations

from contextlib import contextmanager
from typing import Any

from sqlalchemy import text
from sqlalchemy.engine import Connection, Engine, Row


@contextmanager
def _connection(where: Engine | Connection):
    if isinstance(where, Connection):
        yield where
    else:
        with where.begin() as conn:
            yield conn


def execute(where: Engine | Connection, sql: str, **params: Any) -> int:
    """Run one statement; return the number of rows it changed."""
    with _connection(where) as conn:
        return conn.execute(text(sql), params).rowcount


def scalar(where: Engine | Connection, sql: str, **params: Any) -> Any:
    """The first column of the only row (None when there is no row; more rows fail)."""
    with _connection(where) as conn:
        return conn.execute(text(sql), params).scalar_one_or_none()


def rows(where: Engine | Connection, sql: str, **params: Any) -> list[Row]:
    """Every row (a Row equals the tuple of its values and has its columns as attributes)."""
    with _connection(where) as conn:
        return list(conn.execute(text(sql), params))
