"""The buy side of settle: what the carrier of a call charges the operator for it.

Rates the call (billing.settlement.buy_charge_for) with the buy rate copied onto the call
when its trunk was taken (calls.buy_*, schema 177: by authorize, and again by each
failover, so it is the rate of the attempt that carried the call: failover stops at an
answer). Run in settle's transaction, on the calls row settle read; calls.buy_cost and
buy_billable_seconds are written with the sell cost, by the same conditional UPDATE, so a
repeated settle changes neither.
"""

from __future__ import annotations

from fastagi.billing.rating import Rate
from fastagi.billing.settlement import BuyCharge, buy_charge_for

# The calls columns carrier_charge reads (settle's select of the call includes them).
COLUMNS = ("trunk_id, buy_prefix, buy_rate_per_min, buy_connection_fee, buy_initial_increment,"
           " buy_subsequent_increment")


def carrier_charge(call, answered_ms: int | None, dial_status: str) -> BuyCharge | None:
    """The carrier's charge for `call` (a calls row with COLUMNS), or None when it is not
    known: the call went through no trunk (the dial template, emergency, inbound), or the
    trunk had no buy rate for the number."""
    if call.trunk_id is None or call.buy_rate_per_min is None:
        return None
    rate = Rate(call.buy_prefix or "", call.buy_rate_per_min, call.buy_connection_fee,
                call.buy_initial_increment, call.buy_subsequent_increment)
    return buy_charge_for(rate, answered_ms, dial_status)
