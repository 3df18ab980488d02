"""Route choice and failover rules as tables (fastagi.billing.routing): no database."""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime, timedelta
from decimal import Decimal

import pytest

from fastagi.billing import routing
from fastagi.billing.rating import Rate

NOW = datetime(2026, 12, 7, 12, 0, 0)
D = Decimal
SELL = Rate("44", D("0.10"))                     # 0.10/min, 60/60, no fee


def trunk(tid, priority=10, buy="0.05", status="active", capacity=5, live=0, cooled=None,
          allow_loss=False, fee="0", increments=(60, 60)):
    rate = None if buy is None else Rate("44", D(buy), D(fee), *increments)
    return routing.Candidate(trunk_id=tid, name=f"t{tid}", endpoint=f"ep{tid}", status=status,
                             capacity=capacity, live=live, cooled_until=cooled,
                             priority=priority, allow_loss=allow_loss, buy=rate)


@pytest.mark.parametrize("candidate, reason", [
    (trunk(1), None),
    (trunk(1, status="disabled"), routing.DISABLED),
    (trunk(1, capacity=2, live=2), routing.FULL),
    (trunk(1, capacity=0), routing.FULL),
    (trunk(1, cooled=NOW + timedelta(seconds=1)), routing.COOLING),
    (trunk(1, cooled=NOW), None),                          # cool-down over: tried again
    (trunk(1, buy="0.11"), routing.LOSS),                  # dearer per minute
    (trunk(1, buy="0.10"), None),                          # break even is allowed
    (trunk(1, buy="0.05", fee="0.06"), routing.LOSS),      # a 1 s call loses the fee
    (trunk(1, buy="0.05", fee="0.05"), None),              # 0.10 vs 0.10 at 1 s
    (trunk(1, buy="0.11", allow_loss=True), None),
    (trunk(1, buy=None), routing.NO_BUY_RATE),
    (trunk(1, buy=None, allow_loss=True), None),
])
def test_skip_reason(candidate, reason):
    assert routing.skip_reason(candidate, SELL, NOW) == reason


def test_tried_trunks_are_skipped():
    assert routing.skip_reason(trunk(7), SELL, NOW, frozenset({7})) == routing.TRIED


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
    assert (routing.skip_reason(dear, routing.margin_rate(sell), NOW) == routing.LOSS) is checked


def test_priority_order_then_id():
    got = routing.usable_order([trunk(3, 20), trunk(2, 10), trunk(1, 20)], routing.PRIORITY,
                               SELL, NOW)
    assert [c.trunk_id for c in got] == [2, 1, 3]


def test_least_cost_order_priority_breaks_ties_unknown_cost_last():
    got = routing.usable_order(
        [trunk(1, 1, "0.09"), trunk(2, 30, "0.04"), trunk(3, 20, "0.04"),
         trunk(4, 0, None, allow_loss=True)],
        routing.LEAST_COST, SELL, NOW)
    assert [c.trunk_id for c in got] == [3, 2, 1, 4]


def test_unusable_are_left_out_of_the_order():
    got = routing.usable_order([trunk(1, status="disabled"), trunk(2, live=5), trunk(3, buy="1")],
                               routing.PRIORITY, SELL, NOW)
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


# ---- calls per second (GCRA): T = 1/cps in whole µs rounded up, burst max(1, floor(cps)) --

MS = timedelta(milliseconds=1)


@pytest.mark.parametrize("cps, interval_us, burst", [
    ("10", 100_000, 10), ("1", 1_000_000, 1), ("2.5", 400_000, 2), ("3", 333_334, 3),
    ("0.5", 2_000_000, 1), ("1.99", 502_513, 1), ("0.01", 100_000_000, 1),
    ("9999.99", 101, 9999),
    # 10^8 / 729927 = 137.0000013...: a decimal division cut to 4 places would give 137
    ("7299.27", 138, 7299),
])
def test_cps_interval_is_whole_microseconds_rounded_up(cps, interval_us, burst):
    assert routing.cps_interval_us(D(cps)) == interval_us
    assert routing.cps_burst(D(cps)) == burst


def takes(cps, offsets_ms, next_at=None):
    """Replay takes of one trunk at NOW + each offset: which were allowed (each allowed take
    moves the schedule, as the trigger does); and the schedule at the end."""
    got = []
    for offset in offsets_ms:
        now = NOW + offset * MS if isinstance(offset, int) else NOW + offset
        allowed = routing.rate_allows(None if cps is None else D(cps), next_at, now)
        if allowed:
            next_at = routing.cps_after_take(None if cps is None else D(cps), next_at, now)
        got.append(allowed)
    return got, next_at


@pytest.mark.parametrize("cps, offsets_ms, allowed", [
    # a burst of floor(cps) in the same instant, then one every 1/cps s
    ("10", [0] * 11, [True] * 10 + [False]),
    ("10", [0] * 10 + [99, 100, 150, 199, 200], [True] * 10 + [False, True, False, False, True]),
    ("2", [0, 0, 0, 499, 500, 500, 999, 1000], [True, True, False, False, True, False, False, True]),
    # fractional: 0.5 cps is one every 2 s, 2.5 a burst of 2 then one every 400 ms
    ("0.5", [0, 0, 1999, 2000, 3999, 4000], [True, False, False, True, False, True]),
    ("2.5", [0, 0, 0, 399, 400, 799, 800], [True, True, False, False, True, False, True]),
    # after a quiet spell the whole burst is back, never more
    ("2", [0, 0, 10_000, 10_000, 10_000], [True, True, True, True, False]),
    # NULL: no limit
    (None, [0] * 50, [True] * 50),
])
def test_gcra_burst_then_spacing(cps, offsets_ms, allowed):
    assert takes(cps, offsets_ms)[0] == allowed


def test_the_boundary_instant_is_allowed_and_the_check_cuts_to_the_millisecond():
    """call_attempts.started_at keeps milliseconds: the take is checked at the instant the
    trigger moves the schedule from. 2 cps after a burst of 2 at 0: allowed from 500 ms."""
    _, next_at = takes("2", [0, 0])
    assert next_at == NOW + timedelta(seconds=1)
    just_before = NOW + timedelta(microseconds=499_999)     # stored as .499
    at = NOW + timedelta(microseconds=500_000)
    within_the_ms = NOW + timedelta(microseconds=500_999)   # stored as .500
    assert not routing.rate_allows(D(2), next_at, just_before)
    assert routing.rate_allows(D(2), next_at, at)
    assert routing.rate_allows(D(2), next_at, within_the_ms)
    assert routing.cps_after_take(D(2), next_at, within_the_ms) == NOW + timedelta(seconds=1.5)


def test_the_schedule_never_goes_back_and_starts_from_the_take():
    late = NOW + timedelta(seconds=5)
    assert routing.cps_after_take(D(2), late, NOW) == late + timedelta(milliseconds=500)
    assert routing.cps_after_take(D(2), NOW, late) == late + timedelta(milliseconds=500)
    assert routing.cps_after_take(None, late, NOW) is None


def test_a_rate_limited_trunk_is_skipped_only_with_its_schedule_read():
    limited = replace(trunk(1), calls_per_second=D("1.00"), cps_next_at=NOW + MS)
    assert routing.skip_reason(limited, SELL, NOW) == routing.RATE_LIMITED
    assert routing.skip_reason(limited, SELL, NOW + MS) is None
    # before its lock the schedule is not read: ordered as usable, checked under the lock
    assert routing.skip_reason(replace(trunk(1), calls_per_second=D(1)), SELL, NOW) is None
