"""Each server's copy of the route table (issue 22 performance), used only while current.

Authorize needs, for every routed call, the call's route group, its trunks and their buy
rates for the number. Read from route_groups / routes / trunks / trunk_rates, that is a
64-key lookup and a join, and a 32-prefix lookup per trunk, in every call. This module
keeps what those tables say (groups, their routes, the trunks' name, endpoint, status,
capacity and calls-per-second limit, and the buy rates of the trunks routes name) in the
server's memory, together with the route table's version (route_table_version, schema 116
and 119: a new UUID at every change of those tables). Every call reads the version in its
own transaction (authorize: in the query that reads the client's usage and rate; failover:
with the call's row) and uses the copy only when the versions are equal; otherwise it
reads the tables as before and a new copy is made in the background. So the copy never
decides anything the tables would not: a change is seen by the next call on every server.
What changes with every call is not part of it: live counts, the takes of the last second
and cool-downs (read under the trunk's row lock).

Buy rates are copied only while they are few enough (MAX_BUY_TRUNKS routed trunks,
MAX_BUY_RATES rates); above that the copy holds none and every call reads them with its
own rate, as before (fastagi.store.trunks).

A write that fires no trigger (TRUNCATE, a foreign key's cascade) keeps the version: a
copy older than RELOAD_SECONDS is checked again (the version and the size of each table
copied, one cheap statement) and made again when either changed.
"""

from __future__ import annotations

import logging
import threading
import time
import weakref
from dataclasses import dataclass, replace
from decimal import Decimal

from sqlalchemy import text
from sqlalchemy.engine import Engine

from fastagi.billing import routing
from fastagi.billing.rating import Rate

log = logging.getLogger(__name__)

MAX_PREFIX_LENGTH = 32
RELOAD_SECONDS = 60.0
RETRY_SECONDS = 5.0          # after a failed load, the next one is tried this much later
# Between two loads: while an admin changes routes row by row, each load is out of date at
# once; making copies back to back would spend the server's CPU (about 0.5 s for 10,000
# groups) for nothing. Calls read the tables meanwhile.
PAUSE_SECONDS = 2.0
MAX_ROUTES = 500_000         # a larger route table is not copied (read per call instead)
MAX_BUY_TRUNKS = 16          # more routed trunks: their buy rates are read on their own
# More buy rates of the routed trunks than this: none copied (each call reads its own);
# 100,000 rates take about 18 MiB of the server's memory and 1 s to load, so the cap is
# about 360 MiB and 20 s (docs/benchmark.md).
MAX_BUY_RATES = 2_000_000
DEFAULT = "default"


@dataclass(frozen=True)
class Route:
    trunk_id: int
    priority: int
    allow_loss: bool


@dataclass(frozen=True)
class Group:
    id: int
    ordering: str
    max_tries: int
    routes: tuple[Route, ...]


@dataclass(frozen=True)
class Trunk:
    name: str
    endpoint: str
    status: str
    capacity: int
    calls_per_second: Decimal | None


@dataclass(frozen=True)
class RouteTable:
    """The route table as it was at `version`."""

    version: str
    groups: dict[tuple[int, str], Group]       # (plan_key, prefix) -> group
    trunks: dict[int, Trunk]
    routed_trunks: tuple[int, ...]              # trunks named by a route; () if too many
    made_at: float                              # time.monotonic()
    # The routed trunks' buy rates, one entry per prefix for all trunks: prefix -> (trunk_id,
    # rate, fee, initial_increment, subsequent_increment, trunk_id, ...), rate and fee in
    # millionths of a USD (ints: a third of a Decimal's memory; trunk_rates keeps 6
    # decimals). None: not copied (too many trunks or rates); calls read trunk_rates.
    buy: dict[str, tuple] | None = None
    # Rows of route_groups, routes, trunks and trunk_rates at `version`: an old copy whose
    # version and sizes are still the tables' is kept (see RouteTableCopy._load).
    sizes: tuple[int, ...] = ()

    @property
    def any_group(self) -> bool:
        return bool(self.groups)

    def group_for(self, plan_key: int, digits: str) -> Group | None:
        """The call's group, as the candidates query picks it: the longest prefix of the
        digits, the plan's own group before the every-plan group (plan_key 0) at the same
        prefix, `default` last."""
        keys = (plan_key, 0) if plan_key else (0,)
        for n in range(min(len(digits), MAX_PREFIX_LENGTH), 0, -1):
            prefix = digits[:n]
            for key in keys:
                group = self.groups.get((key, prefix))
                if group is not None:
                    return group
        for key in keys:
            group = self.groups.get((key, DEFAULT))
            if group is not None:
                return group
        return None

    def buy_rates(self, digits: str, trunk_ids) -> dict[int, Rate]:
        """Per trunk of `trunk_ids` (routed trunks), its buy rate for the number: the longest
        prefix of the digits it has a rate for (none: left out), as trunks._buy_rates reads
        it from trunk_rates. Only when `buy` is not None."""
        wanted = set(trunk_ids)
        found: dict[int, Rate] = {}
        buy = self.buy
        for n in range(min(len(digits), MAX_PREFIX_LENGTH), 0, -1):
            entry = buy.get(digits[:n])
            if entry is None:
                continue
            for i in range(0, len(entry), 5):
                trunk_id = entry[i]
                if trunk_id in wanted and trunk_id not in found:
                    found[trunk_id] = Rate(digits[:n], _usd(entry[i + 1]), _usd(entry[i + 2]),
                                           entry[i + 3], entry[i + 4])
            if len(found) == len(wanted):
                break
        return found

    def candidates(self, group: Group) -> list[routing.Candidate]:
        """The group's trunks, unpriced (their buy rates come later)."""
        found = []
        for route in group.routes:
            trunk = self.trunks[route.trunk_id]
            found.append(routing.Candidate(
                trunk_id=route.trunk_id, name=trunk.name, endpoint=trunk.endpoint,
                status=trunk.status, capacity=trunk.capacity,
                priority=route.priority, allow_loss=route.allow_loss, buy=None,
                calls_per_second=trunk.calls_per_second))
        return found


# ---- loading ----------------------------------------------------------------------------

_VERSION = text("SELECT version FROM route_table_version WHERE id = 1")
_COUNT = text("SELECT COUNT(*) FROM routes")
_GROUPS = text("SELECT id, plan_key, prefix, ordering, max_tries FROM route_groups")
_ROUTES = text("SELECT route_group_id, trunk_id, priority, allow_loss FROM routes")
_TRUNKS = text("SELECT id, name, endpoint, status, capacity, calls_per_second FROM trunks")
# What tells an old copy it is still whole (see RouteTableCopy._load): the version, and the
# sizes of the tables copied (a TRUNCATE, or a cascade of a foreign key, changes rows
# without a trigger, so without a new version; each empties or shrinks a table).
_SIZES_SQL = ("(SELECT COUNT(*) FROM route_groups), (SELECT COUNT(*) FROM routes),"
              " (SELECT COUNT(*) FROM trunks), (SELECT COUNT(*) FROM trunk_rates)")
_SIZES = text("SELECT " + _SIZES_SQL)
_VERSION_AND_SIZES = text(
    "SELECT (SELECT version FROM route_table_version WHERE id = 1), " + _SIZES_SQL)
_BUY_COUNT = "SELECT COUNT(*) FROM trunk_rates WHERE trunk_id IN ({trunks})"
_BUY = ("SELECT trunk_id, prefix, rate_per_min, connection_fee, initial_increment,"
        " subsequent_increment FROM trunk_rates WHERE trunk_id IN ({trunks})")


def load(engine: Engine) -> RouteTable | None:
    """Read the route table and its version in one snapshot (REPEATABLE READ: every read of
    the transaction sees the same committed state). None: no version row, or too big."""
    with engine.connect().execution_options(isolation_level="REPEATABLE READ") as conn:
        version = conn.execute(_VERSION).scalar()
        if version is None or conn.execute(_COUNT).scalar() > MAX_ROUTES:
            conn.rollback()
            return None
        routes: dict[int, list[Route]] = {}
        for r in conn.execute(_ROUTES):
            routes.setdefault(r.route_group_id, []).append(
                Route(r.trunk_id, r.priority, bool(r.allow_loss)))
        groups = {(g.plan_key, g.prefix): Group(g.id, g.ordering, g.max_tries,
                                                tuple(routes.get(g.id, ())))
                  for g in conn.execute(_GROUPS)}
        trunks = {t.id: Trunk(t.name, t.endpoint, t.status, t.capacity, t.calls_per_second)
                  for t in conn.execute(_TRUNKS)}
        routed = sorted({r.trunk_id for group in groups.values() for r in group.routes})
        buy = None
        if len(routed) > MAX_BUY_TRUNKS:
            routed = []
        else:
            buy = _load_buy_rates(conn, routed)
        sizes = tuple(conn.execute(_SIZES).one())
        conn.rollback()   # read only
    return RouteTable(version=version, groups=groups, trunks=trunks,
                      routed_trunks=tuple(routed), made_at=time.monotonic(), buy=buy,
                      sizes=sizes)


def still_whole(engine: Engine, table: RouteTable) -> bool:
    """Whether the tables are still what `table` copied, as far as one cheap statement can
    tell: the same version (every write through a trigger makes a new one) and the same
    number of rows in each (what changes rows without a trigger removes some)."""
    with engine.connect() as conn:
        version, *sizes = conn.execute(_VERSION_AND_SIZES).one()
        conn.rollback()
    return version == table.version and tuple(sizes) == table.sizes


def _load_buy_rates(conn, routed: list[int]) -> dict[str, tuple] | None:
    """The routed trunks' buy rates (RouteTable.buy), read in the load's snapshot; None when
    there are more than MAX_BUY_RATES."""
    if not routed:
        return {}   # no routed trunk: no buy rate is ever looked up
    params = {f"t{i}": trunk_id for i, trunk_id in enumerate(routed)}
    trunks_sql = ", ".join(f":t{i}" for i in range(len(routed)))
    if conn.execute(text(_BUY_COUNT.format(trunks=trunks_sql)), params).scalar() > MAX_BUY_RATES:
        return None
    buy: dict[str, tuple] = {}
    shared: dict[int, int] = {}   # one int object per distinct amount
    share = shared.setdefault
    # streamed (an unbuffered cursor): 100,000 rows held at once would double the peak
    for trunk_id, prefix, rate, fee, initial, subsequent in conn.execute(
            text(_BUY.format(trunks=trunks_sql)), params,
            execution_options={"stream_results": True}):
        rate, fee = _micro(rate), _micro(fee)
        terms = (trunk_id, share(rate, rate), share(fee, fee), initial, subsequent)
        entry = buy.get(prefix)
        buy[prefix] = terms if entry is None else entry + terms
    return buy


def _micro(amount: Decimal) -> int:
    """USD with 6 decimals (DECIMAL(12,6)) as an exact int of millionths."""
    units = amount.scaleb(6)
    if units != units.to_integral_value():   # never: the column keeps 6 decimals
        raise ValueError(f"buy rate amount {amount} has more than 6 decimals")
    return int(units)


def _usd(units: int) -> Decimal:
    """The Decimal trunk_rates gives for `units` millionths (6 decimals, as read by SQL)."""
    return Decimal(units).scaleb(-6)


class RouteTableCopy:
    """One engine's (one server's, one database's) copy, and its background refresh."""

    def __init__(self) -> None:
        self.table: RouteTable | None = None
        self._lock = threading.Lock()
        self._loading: threading.Thread | None = None
        self._not_before = 0.0

    def current(self, version: str | None) -> RouteTable | None:
        """The copy if it was made at `version` (the version the caller's transaction read)."""
        table = self.table
        if table is not None and version is not None and table.version == version:
            return table
        return None

    def needs_refresh(self, version: str | None) -> bool:
        table = self.table
        if table is None or table.version != version:
            return True
        return time.monotonic() - table.made_at > RELOAD_SECONDS

    def refresh(self, engine: Engine) -> None:
        """Start a background load unless one runs (or one failed a moment ago)."""
        with self._lock:
            if self._loading is not None or time.monotonic() < self._not_before:
                return
            thread = threading.Thread(target=self._load, args=(weakref.ref(engine),),
                                      name="route-table-load", daemon=True)
            self._loading = thread
        thread.start()

    def _load(self, engine_ref) -> None:
        pause = RETRY_SECONDS
        try:
            engine = engine_ref()
            if engine is not None:
                started = time.perf_counter()
                old = self.table
                if old is not None and old.sizes and still_whole(engine, old):
                    # only old: kept (a new copy of 100,000 buy rates is a second of this
                    # server's CPU, every RELOAD_SECONDS, for nothing)
                    self.table = replace(old, made_at=time.monotonic())
                    pause = PAUSE_SECONDS
                    return
                table = load(engine)
                self.table = table
                # no version row (someone emptied the table) or too many routes: calls
                # read the tables; look again in a while
                pause = PAUSE_SECONDS if table is not None else RELOAD_SECONDS
                if table is not None:
                    log.info("route table copy made: %d groups, %d trunks, %s buy-rate prefixes in"
                             " %.0f ms (version %s)", len(table.groups), len(table.trunks),
                             "no" if table.buy is None else len(table.buy),
                             (time.perf_counter() - started) * 1000, table.version)
        except Exception:   # the calls go on reading the tables; tried again later
            log.warning("could not copy the route table; calls read it meanwhile",
                        exc_info=True)
        finally:
            with self._lock:
                self._loading = None
                self._not_before = time.monotonic() + pause

    def wait(self, timeout: float = 10.0) -> None:
        """Until no load runs (tests, and a server stopping)."""
        thread = self._loading
        if thread is not None:
            thread.join(timeout)

    def load_now(self, engine: Engine) -> RouteTable | None:
        """Make the copy in this thread (tests; a server warming up)."""
        self.wait()
        self.table = load(engine)
        return self.table


_copies: "weakref.WeakKeyDictionary[Engine, RouteTableCopy]" = weakref.WeakKeyDictionary()
_copies_lock = threading.Lock()


def copy_of(engine: Engine) -> RouteTableCopy:
    copy = _copies.get(engine)
    if copy is None:
        with _copies_lock:
            copy = _copies.setdefault(engine, RouteTableCopy())
    return copy


def forget(engine: Engine | None = None) -> None:
    """Drop the copy (of one engine, or all): calls read the tables until a new one is made."""
    with _copies_lock:
        targets = list(_copies.values()) if engine is None else [_copies.get(engine)]
        for copy in targets:
            if copy is not None:
                copy.wait()
        if engine is None:
            _copies.clear()
        else:
            _copies.pop(engine, None)
