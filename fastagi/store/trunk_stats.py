"""Read the operator's trunk statistics views (schema 154) for `ictcontact routes report`:
per trunk per day, or per trunk and destination per day, for a range of UTC days (the
views read those days' attempts by their key). Values come back as the views give them
(Decimal money, exact)."""

from __future__ import annotations

from datetime import date
from typing import Any

from sqlalchemy import text
from sqlalchemy.engine import Connection

COLUMNS = ("attempts, answered, asr_percent, acd_seconds, minutes, carrier_minutes, cost,"
           " revenue, margin, unpriced")
# The view and its grouping columns; names from this table only, never from input.
_VIEWS = {
    False: ("trunk_daily_stats", "day, trunk"),
    True: ("route_destination_daily_stats", "day, trunk, destination"),
}


def daily(conn: Connection, first: date, last: date, trunk: str | None = None,
          by_destination: bool = False) -> list[dict[str, Any]]:
    """Rows of days `first`..`last` (inclusive), of one trunk or all, ordered by day,
    trunk (and destination); `day` as 'YYYY-MM-DD'."""
    view, keys = _VIEWS[by_destination]
    sql = (f"SELECT {keys}, {COLUMNS} FROM {view} WHERE day BETWEEN :first AND :last"
           + (" AND trunk = :trunk" if trunk else "") + f" ORDER BY {keys}")
    params = {"first": first, "last": last, "trunk": trunk}
    found = [dict(row) for row in conn.execute(text(sql), params).mappings()]
    for row in found:
        row["day"] = row["day"].isoformat()   # a UTC day, the same in a table and in JSON
    return found
