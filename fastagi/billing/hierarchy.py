"""The authorization decision for a client under resellers: pure, on snapshots of every
level taken under their row locks.

A level is the calling client (level 0, decided by `admission.decide` as for any client)
or a reseller above it, master (the operator) excepted. Every level must let the call go:
checks in order client -> status of every reseller -> a rate in every reseller's own plan
-> credit at every reseller -> a channel at every reseller, resellers from the client's
parent upwards, the first refusal naming its level. A reseller's live calls and
reservations are its whole subtree's (its own calls included), each in the reseller's
own price. The call may talk the least that any level's credit allows; each level then
reserves what that talk costs at its own rate.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

from fastagi import reasons
from fastagi.billing.admission import Admission, CallRequest, ClientSnapshot, decide
from fastagi.billing.money import ZERO, round_money
from fastagi.billing.rating import FREE, Rate, affordable_seconds, exact_cost


@dataclass(frozen=True)
class Level:
    """A reseller above the calling client: its state (live calls and reservations of its
    whole subtree), how far above the client it is, and its longest-prefix rate in its
    own plan (what it pays its parent), None if that plan has no rate for the number."""

    snapshot: ClientSnapshot
    depth: int
    rate: Rate | None
    plan_id: int | None = None    # the reseller's own plan (the top one's: an operator plan)


@dataclass(frozen=True)
class LevelCharge:
    """What one reseller holds for an admitted call."""

    client_id: int
    depth: int
    rate: Rate
    reservation: Decimal
    plan_id: int | None = None    # the plan `rate` comes from: routing reads the top one's


@dataclass(frozen=True)
class Decision:
    admission: Admission
    rejected_by: str | None = None        # code of the client whose level refused
    charges: tuple[LevelCharge, ...] = ()


def decide_levels(request: CallRequest, client: ClientSnapshot | None, rate: Rate | None,
                  levels: tuple[Level, ...] | list[Level], max_call_seconds: int,
                  default_dial_template: str) -> Decision:
    """Decide one call of `client` (rated `rate` in its own plan) under `levels`, ordered
    from its parent upwards (empty for a client of master: exactly `decide`)."""
    first = decide(request, client, rate, max_call_seconds, default_dial_template)
    if not first.allowed:
        return Decision(first, client.code if client is not None else None)
    if not levels:
        return Decision(first)
    if request.emergency:  # free at every level; it still takes a channel at each
        return Decision(first, None, tuple(LevelCharge(lv.snapshot.id, lv.depth, FREE, ZERO,
                                                       lv.plan_id) for lv in levels))
    for lv in levels:
        if lv.snapshot.status != "active":
            return _refused(reasons.SUSPENDED, first, lv)
    applied = []
    for lv in levels:
        rated = request.direction == "out" or lv.snapshot.rate_inbound
        if rated and lv.rate is None:
            return _refused(reasons.NO_RATE, first, lv)
        applied.append(lv.rate if rated else FREE)
    max_seconds = first.max_seconds
    for lv, lv_rate in zip(levels, applied):
        affordable = affordable_seconds(lv_rate, lv.snapshot.available_credit, max_call_seconds)
        if affordable == 0:
            return _refused(reasons.NO_CREDIT, first, lv)
        max_seconds = min(max_seconds, affordable)
    for lv in levels:
        if lv.snapshot.live_calls >= lv.snapshot.channel_limit:
            return _refused(reasons.CHANNEL_LIMIT, first, lv)
    # A shorter call than the client alone could afford: each level holds what it costs.
    admission = Admission(allowed=True, rate=first.rate, max_seconds=max_seconds,
                          reservation=_reservation(first.rate, max_seconds),
                          dial_target=first.dial_target)
    charges = tuple(LevelCharge(lv.snapshot.id, lv.depth, lv_rate,
                                _reservation(lv_rate, max_seconds), lv.plan_id)
                    for lv, lv_rate in zip(levels, applied))
    return Decision(admission, None, charges)


def _reservation(rate: Rate, max_seconds: int) -> Decimal:
    return round_money(exact_cost(rate, max_seconds, answered=True))


def _refused(reason: str, first: Admission, level: Level) -> Decision:
    return Decision(Admission(allowed=False, reason=reason, rate=first.rate),
                    level.snapshot.code)
