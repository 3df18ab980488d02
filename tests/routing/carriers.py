"""Test shorthands for trunks, buy rates, route groups and routes (each its own
transaction, committed before a server reads them)."""

from __future__ import annotations

from datetime import datetime, timedelta
from decimal import Decimal

from sqlalchemy.engine import Engine

from tests.support.sql import execute, scalar


def add_trunk(engine: Engine, name: str, capacity: int = 10, status: str = "active",
              failures_before_cooldown: int = 3, cooldown_seconds: int = 60) -> int:
    execute(engine, "INSERT INTO trunks (name, endpoint, status, capacity,"
            " failures_before_cooldown, cooldown_seconds) VALUES (:n, :e, :s, :c, :f, :d)",
            n=name, e=f"ep-{name}", s=status, c=capacity, f=failures_before_cooldown,
            d=cooldown_seconds)
    return scalar(engine, "SELECT id FROM trunks WHERE name = :n", n=name)


def add_buy_rate(engine: Engine, trunk_id: int, prefix: str, rate: str, fee: str = "0",
                 initial: int = 60, subsequent: int = 60) -> None:
    execute(engine, "INSERT INTO trunk_rates (trunk_id, prefix, rate_per_min, connection_fee,"
            " initial_increment, subsequent_increment) VALUES (:t, :p, :r, :f, :i, :s)",
            t=trunk_id, p=prefix, r=rate, f=fee, i=initial, s=subsequent)


def add_group(engine: Engine, prefix: str, plan_id: int | None = None,
              ordering: str = "priority", max_tries: int = 3) -> int:
    execute(engine, "INSERT INTO route_groups (rate_plan_id, prefix, ordering, max_tries)"
            " VALUES (:p, :x, :o, :m)", p=plan_id, x=prefix, o=ordering, m=max_tries)
    return scalar(engine, "SELECT id FROM route_groups WHERE plan_key = :k AND prefix = :x",
                  k=plan_id or 0, x=prefix)


def add_route(engine: Engine, group_id: int, trunk_id: int, priority: int = 10,
              allow_loss: bool = False) -> None:
    execute(engine, "INSERT INTO routes (route_group_id, trunk_id, priority, allow_loss)"
            " VALUES (:g, :t, :p, :a)", g=group_id, t=trunk_id, p=priority, a=int(allow_loss))


def live_on(engine: Engine, trunk_id: int) -> int:
    """Units of the trunk's capacity held: live attempts of live calls."""
    return scalar(engine, "SELECT COUNT(*) FROM call_attempts a JOIN calls c ON c.id = a.call_id"
                  " WHERE a.trunk_id = :t AND a.state = 'live' AND c.state = 'live'", t=trunk_id)


def breaks_rate(starts: list[datetime], cps: Decimal) -> list[str]:
    """The windows of `starts` (take instants, any order) holding more takes than `cps`
    allows: for cps >= 1, more than floor(cps) in any one second (a sliding window
    (t - 1 s, t], checked at each take t, where every window's count peaks); below 1, two
    takes less than 1/cps s apart. Written apart from the rule's code; [] when kept."""
    starts = sorted(starts)
    if cps >= 1:
        window, most = timedelta(seconds=1), int(cps)
    else:
        window, most = timedelta(seconds=1) / float(cps), 1
    broken = []
    for j, end in enumerate(starts):
        inside = [s for s in starts[:j + 1] if s > end - window]
        if len(inside) > most:
            broken.append(f"{len(inside)} takes from {inside[0]} to {end}")
    return broken
