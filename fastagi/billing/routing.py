"""Route choice and failover rules (issue 22): pure functions on snapshots, no I/O.

A call's route group (longest prefix, a plan's own group before the every-plan group,
`default` last) gives its candidate trunks. `usable_order()` keeps the trunks a call may
take and orders them; the store (fastagi.store.trunks) then takes the first one the
database accepts. `failover_decision()` says what a failed Dial means. The rules, in
docs/admin-sql.md "Trunks and routes" and docs/contract.md "Failover":

- skipped here: a disabled trunk, one with no capacity at all, one already tried by this
  call, and (margin protection) one whose buy cost for the number is above what the client
  pays, unless its route has allow_loss;
- refused when taken, by the database under the trunk's row lock (schema 177,
  call_attempts' BEFORE INSERT trigger): a trunk at capacity (its live attempts), cooling
  down, or over its calls per second; the store then takes the next one;
- order: `priority` (lower first, then the trunk id) or `least-cost` (buy rate per minute,
  then priority, then id; a trunk without a buy rate for the number last).
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

from fastagi.billing.rating import Rate, billable_seconds, exact_cost

PRIORITY = "priority"
LEAST_COST = "least-cost"

# Why a candidate is not usable (for logs and tests).
DISABLED = "disabled"
FULL = "full"
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
    """A trunk of the call's route group, as read (from the tables or the server's copy)."""

    trunk_id: int
    name: str
    endpoint: str
    status: str                   # trunks.status
    capacity: int
    priority: int
    allow_loss: bool
    buy: Rate | None              # the trunk's longest-prefix buy rate for the number
    calls_per_second: Decimal | None = None   # trunks.calls_per_second; None: no limit


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


def skip_reason(c: Candidate, sell: Rate | None,
                tried: frozenset[int] = frozenset()) -> str | None:
    """Why the call may not try to take `c`, or None. `sell` None: the call is not rated
    (nothing to protect: no margin check). Capacity in use, cool-down and calls per second
    are the database's to check when the trunk is taken (schema 177)."""
    if c.trunk_id in tried:
        return TRIED
    if c.status != "active":
        return DISABLED
    if c.capacity <= 0:
        return FULL
    if sell is not None and not c.allow_loss:
        if c.buy is None:
            return NO_BUY_RATE
        if loses_money(c.buy, sell):
            return LOSS
    return None


def sort_key(c: Candidate, ordering: str) -> tuple:
    if ordering == LEAST_COST:
        cost = c.buy.rate_per_min if c.buy is not None else None
        return (cost is None, cost if cost is not None else Decimal(0), c.priority, c.trunk_id)
    return (c.priority, c.trunk_id)


def usable_order(candidates: list[Candidate], ordering: str, sell: Rate | None,
                 tried: frozenset[int] = frozenset()) -> list[Candidate]:
    """The trunks the call may try to take, best first."""
    usable = [c for c in candidates if skip_reason(c, sell, tried) is None]
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
