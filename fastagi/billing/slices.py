"""Credit in slices: how far a live call's limit may be extended now. Pure.

With slices a call is admitted for at most one slice (a few minutes) and holds only that
slice's cost; while it talks, the server extends it by up to one more slice at a time,
reserving the extension first, under the client's row lock, from the credit available
then. N concurrent calls thus share the balance, and the no-overdraft rule holds: what a
call may talk is always already reserved.
"""

from __future__ import annotations

from decimal import Decimal

from fastagi.billing.money import round_money
from fastagi.billing.rating import Rate, affordable_seconds, exact_cost


def extension(rate: Rate, max_seconds: int, reserved: Decimal, available: Decimal,
              slice_seconds: int, cap_seconds: int) -> tuple[int, Decimal] | None:
    """(new max_seconds, new reservation) for a live call allowed `max_seconds` holding
    `reserved`, when the client has `available` credit left (its reservations already
    deducted): up to one more slice, in whole billing increments, never beyond
    `cap_seconds`, paid by `available`. None when not even one more increment fits."""
    target = min(cap_seconds, max_seconds + slice_seconds)
    if target <= max_seconds:
        return None
    longest = affordable_seconds(rate, available + reserved, target)
    if longest <= max_seconds:
        return None
    return longest, round_money(exact_cost(rate, longest, answered=True))
