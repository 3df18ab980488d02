"""Rating: what a call costs under a rate, and how long available credit lets it talk.

Pure functions on Decimal; no I/O. Talk time comes in milliseconds (Asterisk's
ANSWEREDTIME_MS): billable time is the initial increment, then whole subsequent increments,
rounded UP from the milliseconds (60/60, 30/6, 1/1, 60/1), so 4,568 ms on 1/1 bills 5 s.
An answered call is billed at least its initial increment, even for 0 ms. The connection
fee is charged only when the call was answered. Costs round half-up to 4 places.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

from fastagi.billing.money import ZERO, round_money

SECONDS_PER_MINUTE = Decimal(60)
MS_PER_SECOND = 1000
HALF_TEN_THOUSANDTH = Decimal("0.00005")


@dataclass(frozen=True)
class Rate:
    """The rate applied to one call (copied onto the call record at authorization)."""

    prefix: str
    rate_per_min: Decimal
    connection_fee: Decimal = ZERO
    initial_increment: int = 60
    subsequent_increment: int = 60

    def __post_init__(self) -> None:
        if self.initial_increment < 1 or self.subsequent_increment < 1:
            raise ValueError("billing increments must be at least 1 second")
        if self.rate_per_min < 0 or self.connection_fee < 0:
            raise ValueError("rates and fees cannot be negative")


FREE = Rate(prefix="", rate_per_min=ZERO)


def billable_seconds(answered_ms: int, initial: int, subsequent: int) -> int:
    """Seconds billed for an ANSWERED call that talked `answered_ms` milliseconds: the
    initial increment (also for 0 ms: the call was answered), then as many subsequent
    increments as cover the rest, each started increment counted whole."""
    if answered_ms < 0:
        raise ValueError(f"talk time cannot be negative: {answered_ms} ms")
    extra_ms = answered_ms - initial * MS_PER_SECOND
    if extra_ms <= 0:
        return initial
    steps = -(-extra_ms // (subsequent * MS_PER_SECOND))  # ceiling division
    return initial + steps * subsequent


def exact_cost(rate: Rate, billed_seconds: int, answered: bool) -> Decimal:
    """Unrounded cost of `billed_seconds` of talk (plus the fee if answered)."""
    fee = rate.connection_fee if answered else ZERO
    return fee + rate.rate_per_min * Decimal(billed_seconds) / SECONDS_PER_MINUTE


def call_cost(rate: Rate, answered_ms: int | None, answered: bool) -> tuple[int, Decimal]:
    """(billable seconds, cost rounded to 4 places) of a finished call that talked
    `answered_ms` milliseconds.

    Unanswered calls cost nothing. `answered` is whether the call was answered at all
    (DIALSTATUS ANSWER or talk time above 0): an answered call pays the connection fee
    and at least its initial increment.
    """
    if not answered:
        return 0, ZERO.quantize(Decimal("0.0001"))
    billed = billable_seconds(answered_ms or 0, rate.initial_increment,
                              rate.subsequent_increment)
    return billed, round_money(exact_cost(rate, billed, answered=True))


def increment_aligned(seconds: int, initial: int, subsequent: int) -> int:
    """The longest billable duration (initial + k*subsequent) not above `seconds`, or 0."""
    if seconds < initial:
        return 0
    return initial + (seconds - initial) // subsequent * subsequent


def affordable_seconds(rate: Rate, available: Decimal, cap_seconds: int) -> int:
    """Longest talk time, in whole billing increments, whose answered cost fits `available`.

    Capped by `cap_seconds` (rounded down to whole increments). Returns 0 when not even the
    connection fee and the first increment are covered (the call must be refused).
    """
    initial, subsequent = rate.initial_increment, rate.subsequent_increment
    longest = increment_aligned(cap_seconds, initial, subsequent) or initial
    if rate.rate_per_min == 0 and rate.connection_fee == 0:
        return longest  # a free call needs no credit
    if round_money(rate.connection_fee) > available:
        return 0
    if rate.rate_per_min == 0:
        return longest
    # What is charged is the rounded cost, so credit pays for any exact cost below
    # available + half a ten-thousandth.
    headroom = available + HALF_TEN_THOUSANDTH - rate.connection_fee
    by_credit = int(headroom * SECONDS_PER_MINUTE // rate.rate_per_min)
    longest = min(longest, increment_aligned(by_credit, initial, subsequent))
    # The reservation is the rounded cost: never let rounding lift it above the credit
    # (at most a step or two, since the unrounded cost already fits).
    while longest >= initial and round_money(exact_cost(rate, longest, True)) > available:
        longest = longest - subsequent if longest > initial else 0
    return max(longest, 0)
