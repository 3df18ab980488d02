"""Ledger rows at chosen times, for statement tests: payments and calls written as an admin
or the server would write them (the triggers move the balance), and the ledger's balance at
an instant read straight from the base tables (never through the statement views).
"""

from __future__ import annotations

import itertools
from datetime import datetime
from decimal import Decimal

from sqlalchemy import text
from sqlalchemy.engine import Connection

_reference = itertools.count(1)


def pay(conn: Connection, client_id: int, amount: Decimal, at: datetime,
        kind: str = "topup", note: str | None = None) -> None:
    """A payment recorded at `at`; a correction may take the balance below its floor."""
    conn.execute(text(
        "INSERT INTO payments (client_id, amount, kind, reference, note, allow_below_floor,"
        " created_at) VALUES (:client, :amount, :kind, :reference, :note, :below, :at)"),
        {"client": client_id, "amount": Decimal(amount), "kind": kind, "note": note,
         "reference": f"ref-{next(_reference)}", "below": int(kind == "correction"), "at": at})


def call(conn: Connection, client_id: int, code: str, settled_at: datetime | None, *,
         state: str = "settled", cost: Decimal | None = None, answered_seconds: int | None = 0,
         billable_seconds: int = 0, prefix: str | None = "44", emergency: bool = False,
         direction: str = "out", number: str = "442071234567") -> int:
    """A call row as settle (or the stale sweep) leaves it; a cost moves the balance."""
    result = conn.execute(text(
        "INSERT INTO calls (client_id, client_code, direction, number, state, emergency, prefix,"
        " authorized_at, settled_at, answered_seconds, billable_seconds, cost)"
        " VALUES (:client, :code, :direction, :number, :state, :emergency, :prefix,"
        " :authorized, :settled, :answered, :billable, :cost)"),
        {"client": client_id, "code": code, "direction": direction, "number": number,
         "state": state, "emergency": int(emergency), "prefix": prefix,
         "authorized": settled_at or datetime(2026, 1, 1), "settled": settled_at,
         "answered": answered_seconds, "billable": billable_seconds,
         "cost": None if cost is None else Decimal(cost)})
    return int(result.lastrowid)


def ledger_at(conn: Connection, client_id: int, before: datetime) -> Decimal:
    """The ledger's balance just before `before`: payments recorded, calls settled and,
    for a reseller, its charges for its subtree's calls settled earlier (from the base
    tables)."""
    return Decimal(conn.execute(text(
        "SELECT (SELECT COALESCE(SUM(amount), 0) FROM payments"
        "         WHERE client_id = :id AND created_at < :before)"
        " - (SELECT COALESCE(SUM(cost), 0) FROM calls"
        "     WHERE client_id = :id AND settled_at < :before)"
        " - (SELECT COALESCE(SUM(cost), 0) FROM call_charges"
        "     WHERE client_id = :id AND settled_at < :before)"),
        {"id": client_id, "before": before}).scalar_one())
