"""The reseller levels of a call: locked and read at authorize, charged at admission,
billed at settle. Called by fastagi.store.calls inside its transactions.

Lock order (every transaction that locks rows of several levels follows it, so none
deadlocks against another): level by level from the calling client UP to the topmost
reseller below master (deepest first), at each level its `clients` row and then its
`client_accounts` row. The calling client's pair is locked first by the statement every
authorize starts with (a client of master locks nothing more: master's rows are never
locked by its children's calls); settle moves balances in the same order (the client's
account through calls.cost, then each reseller's through call_charges.cost, by depth).
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal

from sqlalchemy import bindparam, text
from sqlalchemy.engine import Connection

from fastagi.billing.admission import ClientSnapshot
from fastagi.billing.hierarchy import Level, LevelCharge
from fastagi.billing.money import round_money
from fastagi.billing.rating import Rate, affordable_seconds, exact_cost
from fastagi.billing.settlement import Charge, charge_for

MAX_PREFIX_LENGTH = 32

# Read after the client's lock: who is above it (master, the topmost, left out).
_LEVEL_IDS = text(
    "SELECT ancestor_id FROM client_tree"
    " WHERE client_id = :client_id AND depth BETWEEN 1 AND :top ORDER BY depth")
_LEVEL_FOR_UPDATE = text(
    "SELECT c.id, c.code, c.status, c.parent_id, a.balance, c.credit_limit, c.channel_limit,"
    " c.rate_plan_id FROM clients c JOIN client_accounts a ON a.client_id = c.id"
    " WHERE c.id = :id FOR UPDATE")
_COUNT_ADMISSIONS = text(
    "UPDATE client_accounts SET admitted_calls = admitted_calls + 1"
    " WHERE client_id IN :ids").bindparams(bindparam("ids", expanding=True))
_INSERT_CHARGE = text(
    "INSERT INTO call_charges (call_id, client_id, depth, prefix, rate_per_min, connection_fee,"
    " initial_increment, subsequent_increment, reserved, authorized_at)"
    " VALUES (:call_id, :client_id, :depth, :prefix, :rate_per_min, :connection_fee,"
    " :initial_increment, :subsequent_increment, :reserved, :now)")
_CHARGES_OF_CALL = text(
    "SELECT client_id, depth, prefix, rate_per_min, connection_fee, initial_increment,"
    " subsequent_increment FROM call_charges WHERE call_id = :call_id ORDER BY depth")
_BILL_CHARGE = text(
    "UPDATE call_charges SET live = 0, billable_seconds = :billable, cost = :cost,"
    " sell = :sell, settled_at = :now WHERE call_id = :call_id AND client_id = :client_id")


def _usage_and_rate(n: int):
    """One round trip for `n` locked levels: each one's live calls and reservations (its
    own calls, and its charges for its subtree's calls), its plan's rate_inbound, and the
    longest prefix of its plan matching the digits (rate columns NULL if none)."""
    prefixes = ", ".join(f"LEFT(:digits, {k})" for k in range(1, MAX_PREFIX_LENGTH + 1))
    parts = []
    for i in range(n):
        # scalar subqueries: nothing to materialize
        parts.append(
            f"(SELECT {i} AS level,"
            f" (SELECT COUNT(*) FROM calls WHERE client_id = :id{i} AND state = 'live')"
            f" + (SELECT COUNT(*) FROM call_charges WHERE client_id = :id{i} AND live = 1)"
            "   AS live,"
            f" (SELECT COALESCE(SUM(reserved), 0) FROM calls WHERE client_id = :id{i}"
            "   AND state = 'live')"
            f" + (SELECT COALESCE(SUM(reserved), 0) FROM call_charges"
            f"   WHERE client_id = :id{i} AND live = 1) AS reserved,"
            " p.rate_inbound, r.prefix, r.rate_per_min, r.connection_fee,"
            " r.initial_increment, r.subsequent_increment FROM rate_plans p"
            f" LEFT JOIN rates r ON r.rate_plan_id = p.id AND r.prefix IN ({prefixes})"
            f" WHERE p.id = :plan{i} ORDER BY LENGTH(r.prefix) DESC LIMIT 1)")
    return text(" UNION ALL ".join(parts) + " ORDER BY level")


_USAGE_QUERIES = {n: _usage_and_rate(n) for n in range(1, 8)}


_SUBTREE_USAGE = text(
    "SELECT COUNT(*) AS live, COALESCE(SUM(reserved), 0) AS reserved FROM call_charges"
    " WHERE client_id = :id AND live = 1")


def subtree_usage(conn: Connection, client_id: int) -> tuple[int, Decimal]:
    """The live calls of a reseller's subtree (its own not included) and what they hold of
    its credit, in its own price."""
    row = conn.execute(_SUBTREE_USAGE, {"id": client_id}).one()
    return int(row.live), Decimal(row.reserved)


class PathMoved(Exception):
    """A reseller above the client moved between reading the tree and locking it."""


def lock_levels(conn: Connection, client_id: int, parent_id: int | None, above: int,
                digits: str) -> tuple[Level, ...]:
    """Lock and read the resellers above a client whose own rows are locked, `above` being
    its count of ancestors (master included): none when it is master's or master."""
    if above < 2:
        return ()
    ids = [row.ancestor_id for row in conn.execute(
        _LEVEL_IDS, {"client_id": client_id, "top": above - 1})]
    rows = [conn.execute(_LEVEL_FOR_UPDATE, {"id": i}).one() for i in ids]
    expected = parent_id
    for row in rows:  # the chain read under the locks is the one the tree gave
        if row.id != expected:
            raise PathMoved(f"client {client_id}: its resellers changed during authorize")
        expected = row.parent_id
    params: dict = {"digits": digits}
    for i, row in enumerate(rows):
        params[f"id{i}"], params[f"plan{i}"] = row.id, row.rate_plan_id
    usage = conn.execute(_USAGE_QUERIES[len(rows)], params).all()
    levels = []
    for depth, (row, use) in enumerate(zip(rows, usage), start=1):
        snapshot = ClientSnapshot(
            id=row.id, code=row.code, status=row.status, balance=row.balance,
            credit_limit=row.credit_limit, channel_limit=row.channel_limit,
            live_calls=use.live, reserved=Decimal(use.reserved), dial_template=None,
            rate_inbound=bool(use.rate_inbound))
        rate = None
        if use.prefix is not None:
            rate = Rate(use.prefix, use.rate_per_min, use.connection_fee,
                        use.initial_increment, use.subsequent_increment)
        levels.append(Level(snapshot, depth, rate, row.rate_plan_id))
    return tuple(levels)


def record_charges(conn: Connection, call_id: int, charges: tuple[LevelCharge, ...],
                   now: datetime) -> None:
    """An admitted call's charges at every reseller level, and each level's admission
    count (on Galera, concurrent admissions under one reseller conflict at certification
    on its account row, as a client's do on its own)."""
    if not charges:
        return
    conn.execute(_INSERT_CHARGE, [{
        "call_id": call_id, "client_id": c.client_id, "depth": c.depth,
        "prefix": c.rate.prefix, "rate_per_min": c.rate.rate_per_min,
        "connection_fee": c.rate.connection_fee,
        "initial_increment": c.rate.initial_increment,
        "subsequent_increment": c.rate.subsequent_increment,
        "reserved": c.reservation, "now": now} for c in charges])
    conn.execute(_COUNT_ADMISSIONS, {"ids": [c.client_id for c in charges]})


def bill_levels(conn: Connection, call, client_charge: Charge, answered_ms: int | None,
                dial_status: str, now: datetime) -> None:
    """Settle a call's charges at every reseller level, in the settle's transaction: each
    reseller pays its own rate for the talk time the client was billed for (its own
    increments), and sells at what the level below pays; the cost moves its balance
    (call_charges AFTER UPDATE, through the ledger), deepest level first."""
    sell = client_charge.cost
    for row in conn.execute(_CHARGES_OF_CALL, {"call_id": call.id}).all():
        rate = Rate(row.prefix, row.rate_per_min, row.connection_fee,
                    row.initial_increment, row.subsequent_increment)
        charge = charge_for(rate, call.max_seconds, answered_ms, dial_status,
                            bool(call.emergency))
        conn.execute(_BILL_CHARGE, {"billable": charge.billable_seconds, "cost": charge.cost,
                                    "sell": sell, "now": now, "call_id": call.id,
                                    "client_id": row.client_id})
        sell = charge.cost


_CHARGES_FOR_EXTENSION = text(
    "SELECT client_id, reserved, prefix, rate_per_min, connection_fee, initial_increment,"
    " subsequent_increment FROM call_charges WHERE call_id = :call_id ORDER BY depth")
_ACCOUNT_FOR_UPDATE = text(
    "SELECT balance FROM client_accounts WHERE client_id = :id FOR UPDATE")
# Read without a lock, as the client's own credit limit is (see call_watch).
_LEVEL_FUNDS = text(
    "SELECT c.credit_limit,"
    " (SELECT COALESCE(SUM(reserved), 0) FROM calls WHERE client_id = c.id AND state = 'live')"
    " + (SELECT COALESCE(SUM(reserved), 0) FROM call_charges"
    "    WHERE client_id = c.id AND live = 1) AS reserved"
    " FROM clients c WHERE c.id = :id")
_EXTEND_CHARGE = text(
    "UPDATE call_charges SET reserved = :reserved WHERE call_id = :call_id AND client_id = :id")


def extend_levels(conn: Connection, call_id: int, max_seconds: int, wanted: int) -> int | None:
    """A credit slice for a live call under resellers: the longest talk time up to `wanted`
    that every level's credit pays for, reserved at every level (each account locked in
    the settle's order, deepest first, after the client's); None when some level cannot
    pay one more increment beyond `max_seconds`."""
    levels = []
    longest = wanted
    for row in conn.execute(_CHARGES_FOR_EXTENSION, {"call_id": call_id}).all():
        balance = conn.execute(_ACCOUNT_FOR_UPDATE, {"id": row.client_id}).scalar_one()
        funds = conn.execute(_LEVEL_FUNDS, {"id": row.client_id}).one()
        rate = Rate(row.prefix, row.rate_per_min, row.connection_fee, row.initial_increment,
                    row.subsequent_increment)
        available = balance + funds.credit_limit - Decimal(funds.reserved) + row.reserved
        longest = min(longest, affordable_seconds(rate, available, wanted))
        levels.append((row.client_id, rate))
    if longest <= max_seconds:
        return None
    for client_id, rate in levels:
        conn.execute(_EXTEND_CHARGE, {"reserved": round_money(exact_cost(rate, longest, True)),
                                      "call_id": call_id, "id": client_id})
    return longest
