"""What a finished call is charged: pure, from the rate copied at authorization."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

from fastagi.billing.money import ZERO
from fastagi.billing.rating import Rate, call_cost

ANSWER = "ANSWER"


@dataclass(frozen=True)
class Charge:
    answered_seconds: int | None   # as reported (None: never answered / not reported)
    billable_seconds: int
    cost: Decimal
    capped: bool                   # talk time reported above max_seconds was cut to it


def charge_for(rate: Rate, max_seconds: int, answered_seconds: int | None, dial_status: str,
               emergency: bool) -> Charge:
    """Charge for a call that talked `answered_seconds` (ANSWEREDTIME) and ended `dial_status`.

    Talk time is capped at the authorized maximum: Dial's L() limit ends the call there,
    so anything above is clock jitter and must not bill past the reservation.
    """
    talked = answered_seconds or 0
    capped = talked > max_seconds
    talked = min(talked, max_seconds)
    answered = dial_status == ANSWER or talked > 0
    if emergency:
        return Charge(answered_seconds, 0, ZERO, capped)
    billed, cost = call_cost(rate, talked, answered)
    return Charge(answered_seconds, billed, cost, capped)
