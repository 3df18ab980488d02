"""Trunk routing transactions (issue 22): pick a call's trunks, take and release capacity,
fail over, count failures and cool-downs.

The functions taking `conn` run inside authorize's transaction; `failover()` is a unit of
work of its own.

The database takes a trunk (schema 177): every INSERT of a live call_attempts row locks
the trunk's trunk_states row and is refused in words (TRUNK_REFUSED) when the trunk is
full, cooling down or over its calls per second, checked under that lock, so takes of one
trunk are serialized across servers and Galera nodes. Python orders the usable trunks
(`choose`) and takes the first one the database accepts (`take_first`). Authorize names
the trunk in its calls INSERT, whose trigger inserts the call's first attempt: a routed
call costs no statement more than an unrouted one. Failover inserts the next attempt.

Lock order: the client's rows first (authorize: clients, then client_accounts) or the
call's row (failover, settle), and trunk_states rows last, one at a time in the call's
order of preference (a call only locks another trunk after the one it holds refused it;
two calls that each hold a refusing trunk the other wants next deadlock, and InnoDB's
deadlock detection makes one of them retry).

Capacity is never stored: it is the count of live attempts on the trunk, read once its
trunk_states row is locked, so a release needs no lock at all: an attempt ending
(failover), or its call leaving 'live' (settle, the stale sweep), whose trigger ends its
live attempt then (schema 179).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, replace
from functools import lru_cache
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Callable, TypeVar

from sqlalchemy import text
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.exc import DBAPIError

from fastagi import reasons
from fastagi.billing import routing
from fastagi.billing.admission import reject
from fastagi.billing.rating import Rate
from fastagi.db.retry import mysql_errno, with_retry
from fastagi.store import route_table

log = logging.getLogger(__name__)
T = TypeVar("T")

MAX_PREFIX_LENGTH = 32
_PREFIXES = ", ".join(f"LEFT(:digits, {n})" for n in range(1, MAX_PREFIX_LENGTH + 1))

# Reads the tables (when the server's copy of the route table is not current): whether any
# route group exists (none: the install has no routing, the plan's dial template is used
# as before), and the trunks of the call's group. The group: the longest prefix of the
# number, a plan's own group before the every-plan group (plan_key 0) at the same prefix,
# `default` last: point lookups on (plan_key, prefix). route_table.RouteTable.group_for()
# picks the same group from the copy.
_CANDIDATES = text(
    "SELECT EXISTS (SELECT 1 FROM route_groups) AS any_group, c.group_id,"
    " c.ordering, c.max_tries, c.trunk_id, c.name, c.endpoint, c.status, c.capacity,"
    " c.calls_per_second, c.priority, c.allow_loss"
    " FROM (SELECT 1 AS one) o"
    " LEFT JOIN ("
    "  SELECT g.id AS group_id, g.ordering, g.max_tries, t.id AS trunk_id, t.name, t.endpoint,"
    "   t.status, t.capacity, t.calls_per_second, r.priority, r.allow_loss"
    "  FROM (SELECT id, ordering, max_tries FROM route_groups"
    "        WHERE plan_key IN (0, :plan_key) AND prefix IN (" + _PREFIXES + ", 'default')"
    "        ORDER BY prefix = 'default', LENGTH(prefix) DESC, plan_key DESC LIMIT 1) g"
    "  LEFT JOIN routes r ON r.route_group_id = g.id"
    "  LEFT JOIN trunks t ON t.id = r.trunk_id"
    " ) c ON 1")
# The buy rates of the group's trunks whose prefix is a leading part of the number (the
# longest per trunk wins, picked in Python). With constant lists they are point lookups on
# (trunk_id, prefix); joined to the candidates query instead, MariaDB used trunk_id alone
# and read every rate of the trunk (0.6 s per call with 100,000 rates over 5 trunks).
_BUY_RATES = ("SELECT trunk_id, prefix, rate_per_min, connection_fee, initial_increment,"
              " subsequent_increment FROM trunk_rates WHERE trunk_id IN ({trunks})"
              " AND prefix IN (" + _PREFIXES + ")")

# ---- what a call reads in a statement it runs anyway -------------------------------------
#
# Authorize's usage query (fastagi.store.calls) also reads the route table's version: with
# a current copy of the route table holding the routed trunks' buy rates, routing a call
# then costs no statement before the trunk's lock. When the copy holds no buy rates (more
# than route_table.MAX_BUY_RATES), the query also reads, for the copy's routed trunks, the
# buy rates for the number, as one string, "<count>#<trunk>|<prefix>|<rate>|<fee>|
# <initial>|<subsequent>;...": GROUP_CONCAT's result is cut at group_concat_max_len, so the
# count tells a whole list from a cut one (then the rates are read on their own).
ROUTE_VERSION_COLUMN = (
    "(SELECT version FROM route_table_version WHERE id = 1) AS route_version")
_BUY_RATES_COLUMN = (
    "(SELECT CONCAT(COUNT(*), '#', COALESCE(GROUP_CONCAT(CONCAT_WS('|', trunk_id, prefix,"
    " rate_per_min, connection_fee, initial_increment, subsequent_increment) SEPARATOR ';'),"
    " '')) FROM trunk_rates WHERE trunk_id IN ({trunks}) AND prefix IN (" + _PREFIXES + "))"
    " AS buy_rates")


@dataclass(frozen=True)
class SeenRoutes:
    """What the call's transaction read of routing in a statement it ran anyway: the route
    table's version, and the buy rates (longest prefix per trunk) of `priced` trunks."""

    version: str | None
    priced: frozenset[int] = frozenset()
    buy: dict[int, Rate] | None = None


def usage_columns(engine: Engine, routable: bool = True) -> tuple[str, dict]:
    """The select-list columns (", ..." SQL) and parameters authorize's usage query adds
    for routing; the query binds :digits itself. `routable` False (an inbound or emergency
    call, never routed to a trunk), or a copy holding the buy rates: the version only.
    Decided before the version is read: if the copy is not current for the version the
    query reads, choose() reads the buy rates on their own (_buy_rates)."""
    trunk_ids = ()
    if routable:
        table = route_table.copy_of(engine).table
        if table is not None and table.buy is None:
            trunk_ids = table.routed_trunks
    if not trunk_ids:
        return ", " + ROUTE_VERSION_COLUMN, {}
    return (", " + _usage_columns_sql(len(trunk_ids)),
            {f"rt{i}": trunk_id for i, trunk_id in enumerate(trunk_ids)})


@lru_cache(maxsize=64)
def _usage_columns_sql(count: int) -> str:
    return ROUTE_VERSION_COLUMN + ", " + _BUY_RATES_COLUMN.format(
        trunks=", ".join(f":rt{i}" for i in range(count)))


def seen_routes(row, params: dict) -> SeenRoutes:
    """SeenRoutes from the usage query's row and the parameters usage_columns gave."""
    priced = frozenset(v for k, v in params.items() if k.startswith("rt"))
    buy = None
    packed = getattr(row, "buy_rates", None)
    if packed is not None:
        count, _, body = packed.partition("#")
        entries = body.split(";") if body else []
        if len(entries) == int(count):
            rows = []
            for entry in entries:
                trunk_id, prefix, rate, fee, initial, subsequent = entry.split("|")
                rows.append((int(trunk_id), prefix, Decimal(rate), Decimal(fee), int(initial),
                             int(subsequent)))
            buy = _longest_of(rows)
    return SeenRoutes(version=row.route_version, priced=priced if buy is not None else frozenset(),
                      buy=buy)


# The trunk's take refused by the database (schema 177, call_attempts' BEFORE INSERT
# trigger, under the trunk's row lock): full, cooling down, over its calls per second or
# disabled, the message says which. The statement is undone, the transaction goes on.
TRUNK_REFUSED = 32022
# A failover's take (authorize's is its calls INSERT: schema 177); its trigger copies the
# trunk and its buy rate onto the call.
_INSERT_ATTEMPT = text(
    "INSERT INTO call_attempts (call_id, attempt, trunk_id, state, started_at, buy_prefix,"
    " buy_rate_per_min, buy_connection_fee, buy_initial_increment, buy_subsequent_increment)"
    " VALUES (:call_id, :attempt, :trunk_id, 'live', :now, :prefix, :rate, :fee, :initial,"
    " :subsequent)")


@dataclass(frozen=True)
class Route:
    """The routing of one call. `routed` False: no route group exists at all (the dial
    template is used). Otherwise `order` holds the trunks the call may try to take, best
    first, and `trunk` the one taken (None: not yet, or every one refused)."""

    routed: bool
    group_id: int | None = None
    max_tries: int = 0
    order: tuple[routing.Candidate, ...] = ()
    trunk: routing.Candidate | None = None

    def dial_target(self, number: str) -> str:
        return f"PJSIP/{number}@{self.trunk.endpoint}" if self.trunk else ""


LEGACY = Route(routed=False)


def rating_digits(number: str) -> str:
    return number.lstrip("+")


def _candidates_read(conn: Connection, plan_key: int, digits: str):
    """The call's group and trunks read from the tables: (group row or None when no route
    group exists at all, candidates, whether any group exists)."""
    rows = conn.execute(_CANDIDATES, {"digits": digits, "plan_key": plan_key}).all()
    if not rows or not rows[0].any_group:
        return None, []
    group = rows[0]
    found = [routing.Candidate(
        trunk_id=r.trunk_id, name=r.name, endpoint=r.endpoint, status=r.status,
        capacity=r.capacity, priority=r.priority, allow_loss=bool(r.allow_loss), buy=None)
        for r in rows if r.trunk_id is not None]
    return group, found


def _group_and_candidates(conn: Connection, plan_key: int, digits: str,
                          seen: SeenRoutes | None):
    """(group id, ordering, max_tries) or None (no route group exists), the group's
    trunks, and the copy used (None: read from the tables): from the server's copy of the
    route table when it was made at the version this transaction read, else from the
    tables (and a new copy is made meanwhile)."""
    copy = route_table.copy_of(conn.engine)
    if seen is not None:
        if copy.needs_refresh(seen.version):
            copy.refresh(conn.engine)   # in the background: this call reads the tables
        table = copy.current(seen.version)
        if table is not None:
            if not table.any_group:
                return None, [], table
            group = table.group_for(plan_key, digits)
            if group is None:   # no group for this number (and no default): no usable trunk
                return (None, routing.PRIORITY, 0), [], table
            return (group.id, group.ordering, group.max_tries), table.candidates(group), table
    group, found = _candidates_read(conn, plan_key, digits)
    if group is None:
        return None, [], None
    return (group.group_id, group.ordering, group.max_tries or 0), found, None


@lru_cache(maxsize=64)
def _buy_rates_statement(count: int):
    """The buy-rate lookup for `count` trunks, made once (a new text() is compiled again)."""
    return text(_BUY_RATES.format(trunks=", ".join(f":t{i}" for i in range(count))))


def _longest_of(rows) -> dict[int, Rate]:
    """Per trunk, the longest-prefix rate of (trunk_id, prefix, rate, fee, initial,
    subsequent) rows whose prefixes all lead the number."""
    buy: dict[int, Rate] = {}
    for trunk_id, prefix, rate, fee, initial, subsequent in rows:
        if trunk_id not in buy or len(prefix) > len(buy[trunk_id].prefix):
            buy[trunk_id] = Rate(prefix, rate, fee, initial, subsequent)
    return buy


def _buy_rates(conn: Connection, ids: list[int], digits: str) -> dict[int, Rate]:
    params = {f"t{i}": trunk_id for i, trunk_id in enumerate(ids)}
    return _longest_of(conn.execute(_buy_rates_statement(len(ids)),
                                    {**params, "digits": digits}))


def choose(conn: Connection, plan_id: int | None, number: str, sell: Rate | None,
           tried: frozenset[int] = frozenset(), seen: SeenRoutes | None = None) -> Route:
    """The trunks a call may try to take, best first (none taken: `take_first` takes
    them). `sell`: the rate the client pays (None: not rated, no margin check); `tried`:
    trunks this call already had; `seen`: the route table's version (and buy rates) the
    transaction already read. No lock is taken: the trunks are ordered and margin-checked
    from what was read; capacity, cool-down and calls per second are checked by the
    database when one is taken."""
    digits = rating_digits(number)
    group, candidates, table = _group_and_candidates(conn, plan_id or 0, digits, seen)
    if group is None:
        return LEGACY
    group_id, ordering, max_tries = group
    route = Route(routed=True, group_id=group_id, max_tries=max_tries)
    if len(tried) >= route.max_tries:
        return route
    takable = [c for c in candidates
                if c.status == "active" and c.capacity > 0 and c.trunk_id not in tried]
    if not takable:
        return route
    buy = seen.buy if seen is not None and seen.buy is not None else {}
    priced = seen.priced if seen is not None else frozenset()
    missing = [c.trunk_id for c in takable if c.trunk_id not in priced]
    if missing and table is not None and table.buy is not None:
        # the copy is current for the version this transaction read, and every change of
        # trunk_rates gives a new version (schema 119): its buy rates are the table's
        buy = {**buy, **table.buy_rates(digits, missing)}
    elif missing:  # trunks whose buy rates the usage query did not read
        buy = {**buy, **_buy_rates(conn, missing, digits)}
    offers = [replace(c, buy=buy.get(c.trunk_id)) for c in takable]
    order = routing.usable_order(offers, ordering, routing.margin_rate(sell), tried)
    return replace(route, order=tuple(order))


def take_first(route: Route, insert: Callable[[routing.Candidate], T]
               ) -> tuple[Route, T | None]:
    """Take the first trunk of `route.order` the database accepts: `insert(trunk)` runs the
    INSERT that takes it (authorize: the calls row; failover: the attempt) and returns its
    result. A trunk the database refuses (TRUNK_REFUSED, under its row lock) is left for
    the next one; any other error is raised. Returns the route with the trunk taken, or
    with `trunk` None when every one refused, and the insert's result."""
    for trunk in route.order:
        try:
            result = insert(trunk)
        except DBAPIError as exc:
            if mysql_errno(exc) != TRUNK_REFUSED:
                raise
            log.debug("trunk not taken: %s", exc.orig)
            continue
        return replace(route, trunk=trunk), result
    return route, None


def take(conn: Connection, call_id: int, attempt: int, trunk: routing.Candidate,
         now: datetime) -> None:
    """Record attempt `attempt` of the call on `trunk`: the live attempt holds one unit of
    capacity; the buy rate is copied. Its triggers (schema 177) check the take under the
    trunk's row lock (refused: TRUNK_REFUSED), count it on trunk_states and copy the trunk
    and its buy rate onto the call; its started_at is what later takes count against the
    trunk's calls per second."""
    buy = trunk.buy
    conn.execute(_INSERT_ATTEMPT, {
        "call_id": call_id, "attempt": attempt, "trunk_id": trunk.trunk_id, "now": now,
        "prefix": buy.prefix if buy else None,
        "rate": buy.rate_per_min if buy else None,
        "fee": buy.connection_fee if buy else None,
        "initial": buy.initial_increment if buy else None,
        "subsequent": buy.subsequent_increment if buy else None,
    })


# ---- failover ---------------------------------------------------------------------------

ALLOW = "ALLOW"
NO_ROUTE = "NO_ROUTE"
DONE = "DONE"


@dataclass(frozen=True)
class Failover:
    found: bool
    outcome: str = DONE               # ALLOW (dial `trunk`), NO_ROUTE, DONE (no failover)
    trunk: routing.Candidate | None = None
    number: str = ""
    repeated: bool = False            # a repeat of a request already answered
    mismatch: str = ""                # the request names another trunk than the call's last

    def dial_target(self) -> str:
        return f"PJSIP/{self.number}@{self.trunk.endpoint}" if self.trunk else ""


_CALL_FOR_UPDATE = text(
    "SELECT id, client_id, state, number, emergency, prefix, rate_per_min, connection_fee,"
    " initial_increment, subsequent_increment, reseller_levels, " + ROUTE_VERSION_COLUMN +
    " FROM calls WHERE id = :call_id FOR UPDATE")
# The top reseller of a call under resellers (depth = calls.reseller_levels): the rate it
# pays the operator, copied at authorize, and its plan (the route set's). A PK range.
_TOP_LEVEL = text(
    "SELECT g.prefix, g.rate_per_min, g.connection_fee, g.initial_increment,"
    " g.subsequent_increment, c.rate_plan_id FROM call_charges g"
    " JOIN clients c ON c.id = g.client_id WHERE g.call_id = :call_id AND g.depth = :depth")
_NO_ROUTE = text("UPDATE calls SET route_outcome = 'no-route' WHERE id = :call_id")
_ATTEMPTS = text(
    "SELECT a.id, a.attempt, a.trunk_id, a.state, a.dial_status, a.hangup_cause, t.name,"
    " t.endpoint, t.status, t.capacity, a.buy_prefix, a.buy_rate_per_min, a.buy_connection_fee,"
    " a.buy_initial_increment, a.buy_subsequent_increment"
    " FROM call_attempts a JOIN trunks t ON t.id = a.trunk_id"
    " WHERE a.call_id = :call_id ORDER BY a.attempt")


def failover(engine: Engine, call_id: int, dial_status: str, cause: int | None,
             trunk_name: str, now: datetime) -> Failover:
    """The dialplan's Dial on `trunk_name` ended with `dial_status` / `cause`: record it,
    release the trunk, count its failure, and take the next usable trunk of the call's
    route. A repeat of the same request (same call, same trunk) answers the same."""
    return with_retry(lambda: _failover_once(engine, call_id, dial_status, cause, trunk_name,
                                             now))


def _failover_once(engine: Engine, call_id: int, dial_status: str, cause: int | None,
                   trunk_name: str, now: datetime) -> Failover:
    with engine.begin() as conn:
        call = conn.execute(_CALL_FOR_UPDATE, {"call_id": call_id}).first()
        if call is None:
            return Failover(found=False)
        attempts = conn.execute(_ATTEMPTS, {"call_id": call_id}).all()
        if not attempts:
            return Failover(found=True, number=call.number)   # not routed: nothing to do
        last = attempts[-1]
        if last.name != trunk_name:
            earlier = attempts[-2] if len(attempts) > 1 else None
            if earlier is not None and earlier.name == trunk_name and last.state == "live":
                # the request that took `last` is repeated (its answer was lost)
                return Failover(found=True, outcome=ALLOW, number=call.number,
                                trunk=_candidate_of(last), repeated=True)
            return Failover(found=True, number=call.number,
                            mismatch=f"the call's last trunk is {last.name}, not {trunk_name}")
        if last.state != "live":
            # a repeat of the request that ended `last` and answered NO_ROUTE or DONE
            decision = routing.failover_decision(last.dial_status or "", last.hangup_cause)
            return Failover(found=True, outcome=NO_ROUTE if decision.move_on else DONE,
                            number=call.number, repeated=True)
        decision = routing.failover_decision(dial_status, cause)
        conn.execute(text(
            "UPDATE call_attempts SET state = :state, ended_at = :now, dial_status = :dial_status,"
            " hangup_cause = :cause WHERE id = :id AND state = 'live'"), {
            "state": "failed" if decision.failed else "ended", "now": now,
            "dial_status": dial_status[:16] or None, "cause": cause, "id": last.id})
        if decision.failed:
            _count_failure(conn, last.trunk_id, now)
        if not decision.move_on or call.state != "live":
            return Failover(found=True, outcome=DONE, number=call.number)
        return _next_trunk(conn, call, attempts, now)


def _candidate_of(attempt) -> routing.Candidate:
    buy = None
    if attempt.buy_prefix is not None:
        buy = Rate(attempt.buy_prefix, attempt.buy_rate_per_min, attempt.buy_connection_fee,
                   attempt.buy_initial_increment, attempt.buy_subsequent_increment)
    return routing.Candidate(trunk_id=attempt.trunk_id, name=attempt.name,
                             endpoint=attempt.endpoint, status=attempt.status,
                             capacity=attempt.capacity, priority=0, allow_loss=False, buy=buy)


def _count_failure(conn: Connection, trunk_id: int, now: datetime) -> None:
    """One more failure in a row on the trunk; N in a row cool it down for every server."""
    state = conn.execute(text("SELECT consecutive_failures, cooled_until FROM trunk_states"
                              " WHERE trunk_id = :t FOR UPDATE"), {"t": trunk_id}).first()
    if state is None:
        conn.execute(text("INSERT IGNORE INTO trunk_states (trunk_id) VALUES (:t)"), {"t": trunk_id})
        failures = 0
    else:
        failures = state.consecutive_failures
    settings = conn.execute(text("SELECT failures_before_cooldown, cooldown_seconds FROM trunks"
                                 " WHERE id = :t"), {"t": trunk_id}).one()
    count, cools = routing.after_failure(failures, settings.failures_before_cooldown)
    params = {"t": trunk_id, "count": count, "now": now}
    if cools:
        params["until"] = now + timedelta(seconds=settings.cooldown_seconds)
        conn.execute(text("UPDATE trunk_states SET consecutive_failures = :count,"
                          " cooled_until = :until, last_failure_at = :now WHERE trunk_id = :t"),
                     params)
    else:
        conn.execute(text("UPDATE trunk_states SET consecutive_failures = :count,"
                          " last_failure_at = :now WHERE trunk_id = :t"), params)


def _next_trunk(conn: Connection, call, attempts, now: datetime) -> Failover:
    # The operator's side, as at authorize: a client of master's own plan and price; under
    # resellers the top reseller's plan and the rate copied onto its charge (what it pays).
    if call.reseller_levels:
        plan = conn.execute(_TOP_LEVEL, {"call_id": call.id,
                                         "depth": call.reseller_levels}).first()
        priced = plan
    else:
        plan = conn.execute(text("SELECT rate_plan_id FROM clients WHERE id = :id"),
                            {"id": call.client_id}).first()
        priced = call
    sell = None
    if priced is not None and priced.rate_per_min is not None and not call.emergency:
        sell = Rate(priced.prefix or "", priced.rate_per_min, priced.connection_fee,
                    priced.initial_increment, priced.subsequent_increment)
    tried = frozenset(a.trunk_id for a in attempts)
    route = choose(conn, plan.rate_plan_id if plan else None, call.number, sell, tried,
                   SeenRoutes(version=call.route_version))
    route, _ = take_first(route, lambda trunk: take(conn, call.id, len(attempts) + 1, trunk,
                                                    now))
    if route.trunk is None:
        # the call record says so (calls.route_outcome; call_rejections shows it): written
        # under the call's row lock, while it is live; settle and the sweep leave it alone
        conn.execute(_NO_ROUTE, {"call_id": call.id})
        return Failover(found=True, outcome=NO_ROUTE, number=call.number)
    return Failover(found=True, outcome=ALLOW, trunk=route.trunk, number=call.number)


# ---- authorize's hooks ------------------------------------------------------------------

def route_admission(conn: Connection, request, client_row, admission,
                    top=None, seen: SeenRoutes | None = None):
    """Authorize's part, after every client check passed: the call's trunks, best first
    (`record_routed` takes one). Returns the admission (unchanged, or rejected `no-route`
    when no trunk is usable) and the Route. Not routed: refusals, inbound calls, emergency
    numbers (their own route, never refused for capacity, margin or cool-down), installs
    without route groups.

    `top`: for a client under resellers, the top reseller's LevelCharge (the client of
    master that pays the operator). Routing is the operator's side: the route set of the
    top reseller's plan (an operator plan; the client's own plan is its reseller's) and
    margin protection against what the top reseller pays (its rate), not the retail price.
    `seen`: what the usage query read of routing (fastagi.store.calls)."""
    if not admission.allowed or request.direction != "out" or request.emergency:
        return admission, LEGACY
    plan_id, sell = client_row.rate_plan_id, admission.rate
    if top is not None:
        plan_id, sell = top.plan_id, top.rate
    route = choose(conn, plan_id, request.number, sell, seen=seen)
    if route.routed and not route.order:
        return reject(reasons.NO_ROUTE, admission.rate), route
    return admission, route


def record_routed(route: Route, admission, number: str,
                  record: Callable[..., int]) -> tuple[object, Route, int]:
    """Authorize's record of the call: `record(admission, trunk)` INSERTs the calls row
    and returns its id. A routed call names its trunk (and its buy rate) there, and the row's trigger takes
    it (schema 177): the first of `route.order` the database accepts, whose dial target the
    admission then gets; every one refused: the call is recorded rejected, no-route. Returns the
    admission recorded, the route (with the trunk taken) and the call id."""
    if not admission.allowed or not route.order:
        return admission, route, record(admission, None)
    route, call_id = take_first(route, lambda trunk: record(admission, trunk))
    if route.trunk is not None:
        return replace(admission, dial_target=route.dial_target(number)), route, call_id
    refused = reject(reasons.NO_ROUTE, admission.rate)
    return refused, route, record(refused, None)
