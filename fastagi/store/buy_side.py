"""The buy side of settle: what the carrier of a call charges the operator for it.

Reads the buy rate copied onto the attempt that carried the call (the call's last attempt
in call_attempts: failover stops at an answer, so an answered call's last attempt is the
one that answered) and rates the call with it (billing.settlement.buy_charge_for). Run in
settle's transaction; calls.buy_cost and buy_billable_seconds are written with the sell
cost, by the same conditional UPDATE, so a repeated settle changes neither.
"""

from __future__ import annotations

from sqlalchemy import text
from sqlalchemy.engine import Connection

from fastagi.billing.rating import Rate
from fastagi.billing.settlement import BuyCharge, buy_charge_for

# One row by the (call_id, attempt) unique key.
_CARRYING_ATTEMPT = text(
    "SELECT buy_prefix, buy_rate_per_min, buy_connection_fee, buy_initial_increment,"
    " buy_subsequent_increment FROM call_attempts WHERE call_id = :call_id"
    " ORDER BY attempt DESC LIMIT 1")


def carrier_charge(conn: Connection, call_id: int, trunk_id: int | None,
                   answered_ms: int | None, dial_status: str) -> BuyCharge | None:
    """The carrier's charge for call `call_id`, or None when it is not known: the call
    went through no trunk (`trunk_id` None: the dial template, emergency, inbound; no
    query then), or the trunk had no buy rate for the number."""
    if trunk_id is None:
        return None
    row = conn.execute(_CARRYING_ATTEMPT, {"call_id": call_id}).first()
    if row is None or row.buy_rate_per_min is None:
        return None
    rate = Rate(row.buy_prefix or "", row.buy_rate_per_min, row.buy_connection_fee,
                row.buy_initial_increment, row.buy_subsequent_increment)
    return buy_charge_for(rate, answered_ms, dial_status)
