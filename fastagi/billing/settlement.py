"""What a finished call is charged (sell side) and what its carrier charges for it (buy
side): pure, from the rates copied at authorization."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

from fastagi.billing.money import ZERO
from fastagi.billing.rating import MS_PER_SECOND, Rate, call_cost

ANSWER = "ANSWER"
# Dial's L() ends a call at its limit, but ANSWEREDTIME_MS is measured when the bridge has
# come down, a few milliseconds later. Talk time less than this much above the limit is
# that jitter (billed at the limit, not flagged); a whole second or more is flagged.
LIMIT_JITTER_MS = 1000


@dataclass(frozen=True)
class Charge:
    answered_ms: int | None        # as reported (None: never answered / not reported)
    billable_seconds: int
    cost: Decimal
    capped: bool                   # talk time reported above max_seconds was cut to it
    flagged: bool = False          # ... by more than L() jitter: worth a person's look


def charge_for(rate: Rate, max_seconds: int, answered_ms: int | None, dial_status: str,
               emergency: bool) -> Charge:
    """Charge for a call that talked `answered_ms` milliseconds (ANSWEREDTIME_MS) and
    ended `dial_status`.

    Talk time is capped at the authorized maximum: Dial's L() limit ends the call there,
    so anything above is clock jitter and must not bill past the reservation. An answered
    call (DIALSTATUS ANSWER, or any talk time) is billed at least its initial increment.
    """
    talked = answered_ms or 0
    limit_ms = max_seconds * MS_PER_SECOND
    capped = talked > limit_ms
    flagged = talked >= limit_ms + LIMIT_JITTER_MS
    talked = min(talked, limit_ms)
    answered = dial_status == ANSWER or talked > 0
    if emergency:
        return Charge(answered_ms, 0, ZERO, capped, flagged)
    billed, cost = call_cost(rate, talked, answered)
    return Charge(answered_ms, billed, cost, capped, flagged)


@dataclass(frozen=True)
class BuyCharge:
    """What the carrier of the attempt that carried a call charges the operator for it."""

    billable_seconds: int          # seconds the carrier bills, by its own increments
    cost: Decimal                  # USD, 4 places, half-up (as the sell side)


def buy_charge_for(buy_rate: Rate | None, answered_ms: int | None,
                   dial_status: str) -> BuyCharge | None:
    """The carrier's charge for a call that talked `answered_ms` milliseconds and ended
    `dial_status`, by `buy_rate` (the buy rate copied onto the attempt that carried the
    call; None when that trunk had no rate for the number: the charge is unknown).

    The carrier's own increments and connection fee apply, with the sell side's rules
    (docs/contract.md, "Rating"): an answered call is billed at least the carrier's initial
    increment, then whole subsequent increments rounded up from the milliseconds; an
    unanswered call costs 0. The talk time is NOT capped at the call's limit as the sell
    side is: the carrier bills what was talked, L()'s jitter included. Emergency calls are
    charged too: the operator pays the carrier even though the client pays nothing.
    """
    if buy_rate is None:
        return None
    talked = answered_ms or 0
    answered = dial_status == ANSWER or talked > 0
    billed, cost = call_cost(buy_rate, talked, answered)
    return BuyCharge(billed, cost)
