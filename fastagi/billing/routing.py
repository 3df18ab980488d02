"""Route choice and failover rules (issue 22): pure functions on snapshots, no I/O.

A call's route group (longest prefix, a plan's own group before the every-plan group,
`default` last) gives its candidate trunks. `usable_order()` keeps the trunks a call may
take now and orders them; the store (fastagi.store.trunks) then takes the first one that
still has room under its row lock. `failover_decision()` says what a failed Dial means.
The rules, in docs/admin-sql.md "Trunks and routes" and docs/contract.md "Failover":

- skipped: a disabled trunk, one at capacity (its live attempts of live calls), one
  cooling down, one over its calls per second (`rate_allows`), one already tried by this
  call, and (margin protection) one whose buy cost for the number is above what the client
  pays, unless its route has allow_loss;
- order: `priority` (lower first, then the trunk id) or `least-cost` (buy rate per minute,
  then priority, then id; a trunk without a buy rate for the number last).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal

from fastagi.billing.rating import Rate, billable_seconds, exact_cost

PRIORITY = "priority"
LEAST_COST = "least-cost"

# Why a candidate is not usable (for logs and tests).
DISABLED = "disabled"
FULL = "full"
COOLING = "cooling-down"
RATE_LIMITED = "calls-per-second"
TRIED = "tried"
LOSS = "loss"
NO_BUY_RATE = "no-buy-rate"

# Dial outcomes that are the trunk's own failure, after which the call may move on.
# chan_pjsip/app_dial facts (docs/contract.md "Failover"): 503 and other unknown 5xx ->
# cause 34 -> CONGESTION; 408, 500, 502, 504, a transport failure or an endpoint that
# cannot be dialled -> CHANUNAVAIL; 480 -> cause 19 -> NOANSWER; 486/600 -> BUSY.
FAILOVER_STATUSES = frozenset({"CHANUNAVAIL", "CONGESTION"})
# Causes that are the NUMBER's answer, not the trunk's: another carrier would say the same
# (404/485/604 -> 1 UNALLOCATED, 410 -> 22 NUMBER_CHANGED, 484 -> 28 INVALID_NUMBER_FORMAT).
# app_dial reports them as CHANUNAVAIL, but they neither fail over nor count as failures.
NUMBER_CAUSES = frozenset({1, 22, 28})

# Call lengths (ms) at which buy and sell costs are compared, besides the per-minute rate:
# the shortest answered call, a minute and its next step, 5 min and 1 h; plus the lengths
# just past the buy rate's first two steps (where the carrier's increments bite most).
MARGIN_CHECK_MS = (1, 60_000, 60_001, 300_000, 3_600_000)


@dataclass(frozen=True)
class Candidate:
    """A trunk of the call's route group, as read (capacity counted under its lock)."""

    trunk_id: int
    name: str
    endpoint: str
    status: str                   # trunks.status
    capacity: int
    live: int                     # live attempts of live calls on the trunk
    cooled_until: datetime | None
    priority: int
    allow_loss: bool
    buy: Rate | None              # the trunk's longest-prefix buy rate for the number
    calls_per_second: Decimal | None = None   # trunks.calls_per_second; None: no limit
    # read under the trunk_states row lock (None before: the rate is not checked then)
    recent: int | None = None           # its takes in the last second (cps >= 1)
    last_take: datetime | None = None   # its latest take's started_at (cps < 1)


def loses_money(buy: Rate, sell: Rate) -> bool:
    """True when the carrier charges more than the client pays: a higher per-minute rate
    (long calls lose), or a higher cost at any of the checked call lengths (connection fee,
    coarser increments)."""
    if buy.rate_per_min > sell.rate_per_min:
        return True
    lengths = MARGIN_CHECK_MS + (buy.initial_increment * 1000 + 1,
                                 (buy.initial_increment + buy.subsequent_increment) * 1000 + 1)
    for ms in lengths:
        bought = exact_cost(buy, billable_seconds(ms, buy.initial_increment,
                                                  buy.subsequent_increment), answered=True)
        sold = exact_cost(sell, billable_seconds(ms, sell.initial_increment,
                                                 sell.subsequent_increment), answered=True)
        if bought > sold:
            return True
    return False


def margin_rate(sell: Rate | None) -> Rate | None:
    """The sell rate margin protection compares with, or None for no check: a call the
    client pays nothing for (a free rate, or not rated) is the operator's gift, routed
    whatever it costs."""
    if sell is None or (sell.rate_per_min == 0 and sell.connection_fee == 0):
        return None
    return sell


def skip_reason(c: Candidate, sell: Rate | None, now: datetime,
                tried: frozenset[int] = frozenset()) -> str | None:
    """Why the call may not take `c` now, or None. `sell` None: the call is not rated
    (nothing to protect: no margin check)."""
    if c.trunk_id in tried:
        return TRIED
    if c.status != "active":
        return DISABLED
    if c.live >= c.capacity:
        return FULL
    if c.cooled_until is not None and c.cooled_until > now:
        return COOLING
    if not rate_allows(c.calls_per_second, c.recent, c.last_take, now):
        return RATE_LIMITED
    if sell is not None and not c.allow_loss:
        if c.buy is None:
            return NO_BUY_RATE
        if loses_money(c.buy, sell):
            return LOSS
    return None


# ---- calls per second: a sliding window, counted --------------------------------------
#
# At most `most` takes of the trunk in any window of `window_ms` (cps_window): for
# cps >= 1, floor(cps) takes in any one second (2.5 allows 2); below 1, one take in any
# 1/cps s (0.5: one in any 2 s). Nothing is scheduled or stored: the take checks the
# attempts already made (call_attempts.started_at), counted under the trunk_states row
# lock (fastagi/store/trunks.py, _LOCK_AND_COUNT), so takes on one trunk are serialized and
# the count is exact across servers.

def cps_window(cps: Decimal) -> tuple[int, int]:
    """(window_ms, most): at most `most` takes in any `window_ms` milliseconds. 1000 ms and
    floor(cps) from 1 call a second up; below, 1 take in 1/cps s, in whole milliseconds
    rounded up (never faster than the limit: 0.33 is one call in any 3,031 ms). Integer
    arithmetic on hundredths: trunks.calls_per_second is DECIMAL(6,2)."""
    hundredths = int(cps * 100)
    if hundredths <= 0:
        raise ValueError(f"calls per second must be at least 0.01, not {cps}")
    if hundredths >= 100:
        return 1000, hundredths // 100
    return -(-100_000 // hundredths), 1


def take_instant(now: datetime) -> datetime:
    """`now` as call_attempts.started_at stores it (DATETIME(3)): the take is checked at
    the instant it will be stored at. Cut to the millisecond: MariaDB cuts the same way and
    MySQL rounds (to the same millisecond or a later one; a later stamp only keeps the take
    in later windows, which its count already covered)."""
    return now.replace(microsecond=now.microsecond // 1000 * 1000)


def window_start(now: datetime, window_ms: int = 1000) -> datetime:
    """The takes that count against a take at `now` are those with
    started_at > window_start(now): the window (now - window, now] is open at its start, so
    a take exactly one window after another is in a window of its own (10 cps: ten at 0,
    the eleventh at 1.000 s, never at 0.999 s). No upper bound: a take stamped later than
    `now` (a server whose clock is ahead) counts too."""
    return take_instant(now) - timedelta(milliseconds=window_ms)


def rate_allows(cps: Decimal | None, recent: int | None, last_take: datetime | None,
                now: datetime) -> bool:
    """Whether a take at `now` keeps the trunk within `cps` (None: no limit). `recent`:
    its takes with started_at > window_start(now) (the one-second window, read when
    cps >= 1); `last_take`: its latest started_at (read when cps < 1, where at most one
    take is allowed in the window, so the latest one decides). None: not read (before the
    trunk's lock) or no take."""
    if cps is None:
        return True
    window_ms, most = cps_window(cps)
    if window_ms == 1000:
        return recent is None or recent < most
    return last_take is None or last_take <= window_start(now, window_ms)


def sort_key(c: Candidate, ordering: str) -> tuple:
    if ordering == LEAST_COST:
        cost = c.buy.rate_per_min if c.buy is not None else None
        return (cost is None, cost if cost is not None else Decimal(0), c.priority, c.trunk_id)
    return (c.priority, c.trunk_id)


def usable_order(candidates: list[Candidate], ordering: str, sell: Rate | None,
                 now: datetime, tried: frozenset[int] = frozenset()) -> list[Candidate]:
    """The trunks the call may take, best first."""
    usable = [c for c in candidates if skip_reason(c, sell, now, tried) is None]
    return sorted(usable, key=lambda c: sort_key(c, ordering))


@dataclass(frozen=True)
class FailoverDecision:
    failed: bool          # the trunk failed: its failure counts toward its cool-down
    move_on: bool         # try the next trunk (if any and tries are left)


def failover_decision(dial_status: str, cause: int | None) -> FailoverDecision:
    """What a Dial that ended with `dial_status` / HANGUPCAUSE `cause` means for the trunk."""
    if dial_status not in FAILOVER_STATUSES:
        return FailoverDecision(failed=False, move_on=False)
    if cause is not None and cause in NUMBER_CAUSES:
        return FailoverDecision(failed=False, move_on=False)
    return FailoverDecision(failed=True, move_on=True)


def after_failure(consecutive_failures: int, failures_before_cooldown: int) -> tuple[int, bool]:
    """The trunk's failures in a row after one more, and whether it now cools down (the
    count starts again from 0 then)."""
    count = consecutive_failures + 1
    if count >= failures_before_cooldown:
        return 0, True
    return count, False
