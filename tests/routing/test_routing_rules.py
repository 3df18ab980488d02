"""Route choice and failover rules as tables (fastagi.billing.routing): no database. The
rules checked when a trunk is taken (capacity, cool-down, calls per second) are the
database's: tests/routing/test_take_rules.py."""

from __future__ import annotations

from decimal import Decimal

import pytest

from fastagi.billing import routing
from fastagi.billing.rating import Rate

D = Decimal
SELL = Rate("44", D("0.10"))                     # 0.10/min, 60/60, no fee


def trunk(tid, priority=10, buy="0.05", status="active", capacity=5, allow_loss=False,
          fee="0", increments=(60, 60)):
    rate = None if buy is None else Rate("44", D(buy), D(fee), *increments)
    return routing.Candidate(trunk_id=tid, name=f"t{tid}", endpoint=f"ep{tid}", status=status,
                             capacity=capacity, priority=priority, allow_loss=allow_loss,
                             buy=rate)


@pytest.mark.parametrize("candidate, reason", [
    (trunk(1), None),
    (trunk(1, status="disabled"), routing.DISABLED),
    (trunk(1, capacity=0), routing.FULL),                  # capacity in use: the database's
    (trunk(1, buy="0.11"), routing.LOSS),                  # dearer per minute
    (trunk(1, buy="0.10"), None),                          # break even is allowed
    (trunk(1, buy="0.05", fee="0.06"), routing.LOSS),      # a 1 s call loses the fee
    (trunk(1, buy="0.05", fee="0.05"), None),              # 0.10 vs 0.10 at 1 s
    (trunk(1, buy="0.11", allow_loss=True), None),
    (trunk(1, buy=None), routing.NO_BUY_RATE),
    (trunk(1, buy=None, allow_loss=True), None),
])
def test_skip_reason(candidate, reason):
    assert routing.skip_reason(candidate, SELL) == reason


def test_tried_trunks_are_skipped():
    assert routing.skip_reason(trunk(7), SELL, frozenset({7})) == routing.TRIED


@pytest.mark.parametrize("buy, sell, loses", [
    # coarser carrier increments at the same rate: a 1 s call costs 60 s vs 1 s
    (Rate("44", D("0.10"), D(0), 60, 60), Rate("44", D("0.10"), D(0), 1, 1), True),
    (Rate("44", D("0.01"), D(0), 60, 60), Rate("44", D("0.10"), D(0), 1, 1), True),
    (Rate("44", D("0.001"), D(0), 60, 60), Rate("44", D("0.10"), D(0), 1, 1), False),
    # 30/6 carrier under a 60/60 sell rate, same per-minute: never dearer
    (Rate("44", D("0.10"), D(0), 30, 6), Rate("44", D("0.10"), D(0), 60, 60), False),
    # the carrier's second step bites: 60/60 buy vs 30/30 sell at 61 s: 120 s vs 90 s
    (Rate("44", D("0.09"), D(0), 60, 60), Rate("44", D("0.10"), D(0), 30, 30), True),
])
def test_loses_money(buy, sell, loses):
    assert routing.loses_money(buy, sell) is loses


@pytest.mark.parametrize("sell, checked", [
    (None, False), (Rate("", D(0)), False), (Rate("44", D(0), D("0.01")), True), (SELL, True)])
def test_free_calls_have_no_margin_check(sell, checked):
    assert (routing.margin_rate(sell) is not None) is checked
    dear = trunk(1, buy="5.00")
    assert (routing.skip_reason(dear, routing.margin_rate(sell)) == routing.LOSS) is checked


def test_priority_order_then_id():
    got = routing.usable_order([trunk(3, 20), trunk(2, 10), trunk(1, 20)], routing.PRIORITY,
                               SELL)
    assert [c.trunk_id for c in got] == [2, 1, 3]


def test_least_cost_order_priority_breaks_ties_unknown_cost_last():
    got = routing.usable_order(
        [trunk(1, 1, "0.09"), trunk(2, 30, "0.04"), trunk(3, 20, "0.04"),
         trunk(4, 0, None, allow_loss=True)],
        routing.LEAST_COST, SELL)
    assert [c.trunk_id for c in got] == [3, 2, 1, 4]


def test_unusable_are_left_out_of_the_order():
    got = routing.usable_order([trunk(1, status="disabled"), trunk(2, capacity=0),
                                trunk(3, buy="1")], routing.PRIORITY, SELL)
    assert got == []


@pytest.mark.parametrize("status, cause, failed, move_on", [
    ("CHANUNAVAIL", 18, True, True),      # 408 / no answer from the carrier at all
    ("CHANUNAVAIL", 38, True, True),      # 500
    ("CHANUNAVAIL", 27, True, True),      # 502
    ("CHANUNAVAIL", 102, True, True),     # 504
    ("CHANUNAVAIL", 21, True, True),      # 403 (the carrier refuses us) / 603
    ("CHANUNAVAIL", None, True, True),    # no cause reported
    ("CONGESTION", 34, True, True),       # 503 / any other 5xx
    ("CHANUNAVAIL", 1, False, False),     # 404: the number does not exist anywhere
    ("CHANUNAVAIL", 22, False, False),    # 410
    ("CHANUNAVAIL", 28, False, False),    # 484
    ("BUSY", 17, False, False),
    ("NOANSWER", 19, False, False),       # includes a carrier's 480
    ("ANSWER", 16, False, False),
    ("CANCEL", 16, False, False),
    ("", None, False, False),
])
def test_failover_decision(status, cause, failed, move_on):
    assert routing.failover_decision(status, cause) == routing.FailoverDecision(failed, move_on)


@pytest.mark.parametrize("before, limit, after, cools", [
    (0, 3, 1, False), (1, 3, 2, False), (2, 3, 0, True), (0, 1, 0, True)])
def test_after_failure(before, limit, after, cools):
    assert routing.after_failure(before, limit) == (after, cools)
