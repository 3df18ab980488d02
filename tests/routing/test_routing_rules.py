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


# ---- calls per second: at most floor(cps) takes in any second; below 1, one in 1/cps s --

MS = timedelta(milliseconds=1)


@pytest.mark.parametrize("cps, window_ms, most", [
    ("10", 1000, 10), ("1", 1000, 1), ("1.99", 1000, 1), ("2.5", 1000, 2), ("3", 1000, 3),
    ("9999.99", 1000, 9999),
    # below 1: one take in 1/cps s, whole milliseconds rounded up (never faster)
    ("0.5", 2000, 1), ("0.25", 4000, 1), ("0.33", 3031, 1), ("0.99", 1011, 1),
    ("0.01", 100_000, 1),
])
def test_cps_window(cps, window_ms, most):
    assert routing.cps_window(D(cps)) == (window_ms, most)


def takes(cps, offsets_ms):
    """Replay takes of one trunk at NOW + each offset (ms, or a timedelta): which were
    allowed, each checked against the takes allowed before it as the store reads them
    (under the lock: the count in the last second, or the latest take)."""
    limit = None if cps is None else D(cps)
    made, got = [], []
    for offset in offsets_ms:
        now = NOW + offset * MS if isinstance(offset, int) else NOW + offset
        since = routing.window_start(now)
        recent = sum(1 for s in made if s > since)
        allowed = routing.rate_allows(limit, recent, max(made, default=None), now)
        if allowed:
            made.append(routing.take_instant(now))
        got.append(allowed)
    return got


@pytest.mark.parametrize("cps, offsets_ms, allowed", [
    # 10 at the same instant, the 11th refused until 1 s after the first
    ("10", [0] * 11, [True] * 10 + [False]),
    ("10", [0] * 10 + [1, 500, 999, 1000, 1000],
     [True] * 10 + [False, False, False, True, True]),
    # spread out: the window slides, each take waits for the one 1 s before it to leave
    ("10", [0, 100, 200, 300, 400, 500, 600, 700, 800, 900, 950, 1000, 1050, 1099, 1100],
     [True] * 10 + [False, True, False, False, True]),
    ("2", [0, 0, 0, 499, 500, 999, 1000, 1000, 1000],
     [True, True, False, False, False, False, True, True, False]),
    # decimals above 1 are floored: 2.5 allows 2 in any second
    ("2.5", [0, 0, 0, 400, 999, 1000, 1000, 1000], [True, True] + [False] * 3 + [True, True, False]),
    ("1.99", [0, 0, 999, 1000], [True, False, False, True]),
    # below 1: 0.5 is one per 2 s, 0.25 one per 4 s
    ("0.5", [0, 0, 1999, 2000, 3999, 4000], [True, False, False, True, False, True]),
    ("0.25", [0, 3999, 4000, 4000], [True, False, True, False]),
    # after a quiet spell the whole second's worth is back, never more
    ("2", [0, 0, 10_000, 10_000, 10_000], [True, True, True, True, False]),
    # NULL: no limit
    (None, [0] * 50, [True] * 50),
])
def test_sliding_window(cps, offsets_ms, allowed):
    assert takes(cps, offsets_ms) == allowed


def test_the_window_is_open_at_its_start_and_the_check_cuts_to_the_millisecond():
    """call_attempts.started_at keeps milliseconds: the take is checked at the instant it
    is stored at. 2 cps after two takes at 0: refused through .999, allowed at 1.000 s (in
    (0, 1 s] the takes at 0 are out)."""
    assert takes("2", [0, 0, timedelta(microseconds=999_999)]) == [True, True, False]
    assert takes("2", [0, 0, timedelta(seconds=1)]) == [True, True, True]
    assert takes("2", [0, 0, timedelta(microseconds=1_000_999)]) == [True, True, True]
    # a take at .0005 is stored at .000: in the same millisecond as one at 0
    assert routing.window_start(NOW + timedelta(microseconds=1_000_500)) == NOW
    assert not routing.rate_allows(D("0.5"), None, NOW, NOW + timedelta(microseconds=1_999_999))
    assert routing.rate_allows(D("0.5"), None, NOW, NOW + timedelta(seconds=2))


def test_a_take_stamped_ahead_of_now_counts():
    """A server whose clock is ahead stamps a take later than this server's `now`: it is
    in the count (no upper bound), so the limit still holds."""
    ahead = NOW + timedelta(seconds=5)
    assert not routing.rate_allows(D("0.5"), None, ahead, NOW)
    assert not routing.rate_allows(D(1), 1, None, NOW)


def test_a_rate_limited_trunk_is_skipped_only_with_its_takes_read():
    limited = replace(trunk(1), calls_per_second=D("1.00"), recent=1)
    assert routing.skip_reason(limited, SELL, NOW) == routing.RATE_LIMITED
    assert routing.skip_reason(replace(limited, recent=0), SELL, NOW) is None
    slow = replace(trunk(1), calls_per_second=D("0.5"), last_take=NOW - 1999 * MS)
    assert routing.skip_reason(slow, SELL, NOW) == routing.RATE_LIMITED
    assert routing.skip_reason(replace(slow, last_take=NOW - 2000 * MS), SELL, NOW) is None
    # before its lock the takes are not read: ordered as usable, checked under the lock
    assert routing.skip_reason(replace(trunk(1), calls_per_second=D(1)), SELL, NOW) is None
