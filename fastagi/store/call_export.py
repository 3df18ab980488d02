"""The database side of `ictcontact calls export`: one client's call records in a time
window, streamed (a month of a busy client does not sit in memory).

The operator reads the product's `calls`; a client's login reads its tenant view `calls`,
which holds only its own calls, with the same columns. Rejected attempts are records too
(state `rejected`, with their reason); live calls have no cost yet.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Iterator

from sqlalchemy import text
from sqlalchemy.engine import Connection

from fastagi.store.accounts import Scope, not_visible

# Columns of the product's calls that the tenant view `calls` shows too (schema 072).
COLUMNS = ("id", "authorized_at", "settled_at", "direction", "number", "state", "reason",
           "emergency", "prefix", "rate_per_min", "connection_fee", "initial_increment",
           "subsequent_increment", "answered_seconds", "billable_seconds", "dial_status",
           "cost")
_WINDOW = "authorized_at >= :since AND authorized_at < :until"


def calls(conn: Connection, where: Scope, code: str, since: datetime, until: datetime,
          batch: int = 2000) -> Iterator[dict[str, Any]]:
    """The client's calls authorized in [since, until) (naive UTC), by time then id, read
    through a server-side cursor. Raises NotVisible before the first row when the login
    cannot see a client with that code."""
    params: dict[str, Any] = {"since": since, "until": until}
    if where.is_tenant:
        if code != where.own_code:
            raise not_visible(where, code)
        sql = f"SELECT {', '.join(COLUMNS)} FROM calls WHERE {_WINDOW} ORDER BY authorized_at, id"
    else:
        client_id = conn.execute(text("SELECT id FROM clients WHERE code = :code"),
                                 {"code": code}).scalar()
        if client_id is None:
            raise not_visible(where, code)
        sql = (f"SELECT {', '.join(COLUMNS)} FROM calls WHERE client_id = :client AND {_WINDOW} "
               f"ORDER BY authorized_at, id")
        params["client"] = client_id
    result = conn.execution_options(stream_results=True, yield_per=batch).execute(
        text(sql), params)
    return _rows(result)


def _rows(result) -> Iterator[dict[str, Any]]:
    with result:
        for row in result.mappings():
            yield dict(row)
