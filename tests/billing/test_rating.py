"""Rating rules: increments, fees, rounding, and how long credit lets a call talk."""

from decimal import ROUND_HALF_UP, Decimal
import math

import pytest
from hypothesis import given, settings, strategies as st

from fastagi.billing.money import round_money
from fastagi.billing.rating import (Rate, affordable_seconds, billable_seconds, call_cost,
                                    exact_cost)

D = Decimal


@pytest.mark.parametrize("answered, initial, subsequent, billed", [
    (1, 60, 60, 60), (60, 60, 60, 60), (61, 60, 60, 120), (119, 60, 60, 120),
    (1, 30, 6, 30), (30, 30, 6, 30), (31, 30, 6, 36), (36, 30, 6, 36), (37, 30, 6, 42),
    (1, 1, 1, 1), (59, 1, 1, 59), (61, 1, 1, 61),
    (1, 60, 1, 60), (60, 60, 1, 60), (61, 60, 1, 61), (95, 60, 1, 95),
])
def test_billable_seconds_rounds_up_by_increment(answered, initial, subsequent, billed):
    assert billable_seconds(answered * 1000, initial, subsequent) == billed


@pytest.mark.parametrize("answered_ms, initial, subsequent, billed", [
    (4568, 1, 1, 5),          # the real call that billed 4 s from ANSWEREDTIME
    (2960, 1, 1, 3),          # every campaign call of the real trial
    (60400, 60, 60, 120),     # 60.4 s on 60/60: two minutes, not one
    (300, 1, 1, 1), (300, 60, 60, 60), (300, 30, 6, 30),   # 0.3 s: the initial increment
    (0, 1, 1, 1), (0, 60, 60, 60),                          # answered under 1 ms
    (1, 1, 1, 1), (999, 1, 1, 1), (1000, 1, 1, 1), (1001, 1, 1, 2),
    (30000, 30, 6, 30), (30001, 30, 6, 36), (36000, 30, 6, 36), (36001, 30, 6, 42),
    (60000, 60, 1, 60), (60001, 60, 1, 61), (94999, 60, 1, 95), (95000, 60, 1, 95),
])
def test_billable_seconds_rounds_milliseconds_up(answered_ms, initial, subsequent, billed):
    assert billable_seconds(answered_ms, initial, subsequent) == billed


def test_negative_talk_time_is_refused():
    with pytest.raises(ValueError):
        billable_seconds(-1, 1, 1)


def test_cost_of_answered_call_includes_fee_and_rounds_half_up():
    rate = Rate("44", D("0.0123"), D("0.0100"), 30, 6)
    # 31 s -> 36 s billed: 0.0100 + 0.0123 * 36 / 60 = 0.01738 -> 0.0174
    assert call_cost(rate, 31000, answered=True) == (36, D("0.0174"))
    # 30.001 s is 31 s started: the same
    assert call_cost(rate, 30001, answered=True) == (36, D("0.0174"))


def test_half_up_at_the_fifth_place():
    rate = Rate("1", D("0.00009"), D("0"), 60, 60)  # 0.00009 per 60 s: 0.00009 -> 0.0001
    assert call_cost(rate, 60000, answered=True) == (60, D("0.0001"))
    rate = Rate("1", D("0.00005"), D("0"), 60, 60)
    assert call_cost(rate, 60000, answered=True) == (60, D("0.0001"))
    rate = Rate("1", D("0.000049"), D("0"), 60, 60)
    assert call_cost(rate, 60000, answered=True) == (60, D("0.0000"))


def test_unanswered_call_costs_nothing_not_even_the_fee():
    rate = Rate("44", D("1.5"), D("0.25"), 60, 60)
    assert call_cost(rate, None, answered=False) == (0, D("0"))
    assert call_cost(rate, 0, answered=False) == (0, D("0"))


def test_answered_under_a_millisecond_pays_the_fee_and_the_initial_increment():
    # Changed by issue 21: an answered call is never billed less than its initial
    # increment (Asterisk reports ANSWEREDTIME_MS 0 for an answer shorter than 1 ms).
    rate = Rate("44", D("1.5"), D("0.25"), 60, 60)
    assert call_cost(rate, 0, answered=True) == (60, D("1.7500"))
    assert call_cost(rate, None, answered=True) == (60, D("1.7500"))


def test_money_must_be_decimal():
    with pytest.raises(TypeError):
        round_money(0.1)  # type: ignore[arg-type]


@pytest.mark.parametrize("available, rate, cap, expected", [
    # 1.00 USD at 0.10/min, 60/60: 10 minutes
    (D("1.00"), Rate("1", D("0.10")), 10800, 600),
    # just short of the 10th minute: 9 minutes
    (D("0.9999"), Rate("1", D("0.10")), 10800, 540),
    # fee first: 1.00 - 0.20 fee = 0.80 -> 8 minutes
    (D("1.00"), Rate("1", D("0.10"), D("0.20")), 10800, 480),
    # 30/6 at 0.60/min = 0.01 per second: 0.35 USD -> 35 s -> 30 + 0*6 = 30 s
    (D("0.35"), Rate("1", D("0.60"), D("0"), 30, 6), 10800, 30),
    (D("0.36"), Rate("1", D("0.60"), D("0"), 30, 6), 10800, 36),
    # not even the first increment: refuse
    (D("0.29"), Rate("1", D("0.60"), D("0"), 30, 6), 10800, 0),
    (D("0.10"), Rate("1", D("0.10"), D("0.01")), 10800, 0),
    # the cap wins, rounded down to whole increments
    (D("1000"), Rate("1", D("0.01")), 10800, 10800),
    (D("1000"), Rate("1", D("0.01"), D("0"), 60, 7), 100, 95),
    # a free rate needs no credit
    (D("0"), Rate("1", D("0")), 3600, 3600),
    (D("-5"), Rate("1", D("0")), 3600, 3600),
    # a fee-only rate needs the fee
    (D("0.05"), Rate("1", D("0"), D("0.10")), 3600, 0),
    (D("0.10"), Rate("1", D("0"), D("0.10")), 3600, 3600),
    # negative available credit
    (D("-1"), Rate("1", D("0.10")), 10800, 0),
])
def test_affordable_seconds(available, rate, cap, expected):
    assert affordable_seconds(rate, available, cap) == expected


# --- property tests against a plain reference calculation -----------------------------

rates = st.builds(
    Rate,
    prefix=st.just("1"),
    rate_per_min=st.decimals(min_value=0, max_value=20, places=6),
    connection_fee=st.decimals(min_value=0, max_value=2, places=6),
    initial_increment=st.integers(1, 120),
    subsequent_increment=st.integers(1, 120),
)


def reference_cost(rate: Rate, answered_seconds: int | Decimal) -> Decimal:
    """Plain block-by-block reference for an answered call: bill the initial block, then
    whole blocks until the talk time (seconds, fractions allowed) is covered."""
    billed = rate.initial_increment
    while billed < answered_seconds:
        billed += rate.subsequent_increment
    total = rate.connection_fee + rate.rate_per_min * billed / 60
    return total.quantize(D("0.0001"), rounding=ROUND_HALF_UP)


@settings(max_examples=400, deadline=None)
@given(rate=rates, answered_ms=st.integers(0, 20_000_000))
def test_cost_matches_reference(rate, answered_ms):
    billed, cost = call_cost(rate, answered_ms, answered=True)
    assert cost == reference_cost(rate, D(answered_ms) / 1000)
    assert billed * 1000 >= answered_ms
    assert billed >= rate.initial_increment
    if answered_ms > 0:
        assert billed * 1000 - answered_ms < max(rate.initial_increment,
                                                 rate.subsequent_increment) * 1000


increments = st.tuples(st.integers(1, 120), st.integers(1, 120))


@settings(max_examples=400, deadline=None)
@given(increments=increments, steps=st.integers(0, 500))
def test_every_increment_edge(increments, steps):
    """At each edge initial + k * subsequent: exactly on it stays exact, one ms over is
    the next increment, one ms under is still this one."""
    initial, subsequent = increments
    edge = initial + steps * subsequent
    assert billable_seconds(edge * 1000, initial, subsequent) == edge
    assert billable_seconds(edge * 1000 + 1, initial, subsequent) == edge + subsequent
    below = edge if steps > 0 else initial
    assert billable_seconds(edge * 1000 - 1, initial, subsequent) == below


@settings(max_examples=400, deadline=None)
@given(increments=increments, answered_ms=st.integers(0, 100_000_000))
def test_billed_is_the_shortest_increment_aligned_time_covering_the_talk(increments,
                                                                          answered_ms):
    initial, subsequent = increments
    billed = billable_seconds(answered_ms, initial, subsequent)
    assert billed >= initial and (billed - initial) % subsequent == 0
    assert billed * 1000 >= answered_ms                              # never truncated
    assert billed == initial or (billed - subsequent) * 1000 < answered_ms   # shortest


@settings(max_examples=200, deadline=None)
@given(increments=increments, answered_ms=st.integers(0, 999))
def test_under_a_second_is_the_initial_increment(increments, answered_ms):
    initial, subsequent = increments
    assert billable_seconds(answered_ms, initial, subsequent) == initial


@settings(max_examples=400, deadline=None)
@given(rate=rates, available=st.decimals(min_value=-10, max_value=500, places=4),
       cap=st.integers(60, 20000))
def test_affordable_is_the_longest_paid_duration(rate, available, cap):
    longest = affordable_seconds(rate, available, cap)
    if longest == 0:
        # Not even the first increment fits.
        first = round_money(exact_cost(rate, rate.initial_increment, True))
        assert first > available or cap < rate.initial_increment
        return
    assert longest <= max(cap, rate.initial_increment)
    assert (longest - rate.initial_increment) % rate.subsequent_increment == 0
    cost = round_money(exact_cost(rate, longest, True))
    assert cost <= available or (rate.rate_per_min == 0 and rate.connection_fee == 0)
    # One more increment would either break the cap or the credit.
    longer = longest + rate.subsequent_increment
    if longer <= cap and rate.rate_per_min > 0:
        assert round_money(exact_cost(rate, longer, True)) > available
    # Any talk time up to `longest` costs at most the reservation.
    assert reference_cost(rate, longest) == cost
    assert math.isfinite(float(cost))
