"""Each server's copy of the route table (issue 22 performance): used only while the route
table's version (schema 116) is the one the call's transaction read, so a change is seen by
the very next call; the copy saves statements, never changes a decision."""

from __future__ import annotations

import random
import threading
from datetime import datetime
from decimal import Decimal

import pytest
from sqlalchemy import create_engine, event

from fastagi import reasons
from fastagi.billing.admission import CallRequest
from fastagi.billing.rating import Rate
from fastagi.store import calls, route_table, trunks
from tests.callcontrol.tenants import add_client, add_plan, default_plan_id
from tests.routing.carriers import add_buy_rate, add_group, add_route, add_trunk, live_on
from tests.support.sql import execute, scalar

NOW = datetime(2026, 12, 7, 12, 0, 0)
LIMITS = calls.Limits(max_call_seconds=3600, dial_template="PJSIP/{number}@carrier",
                      stale_grace_seconds=300)
UK = "442071234567"


def out(code: str = "acme", number: str = UK) -> CallRequest:
    return CallRequest(client_code=code, number=number, direction="out", emergency=False)


def version(engine) -> str:
    return scalar(engine, "SELECT version FROM route_table_version")


@pytest.fixture
def two_trunks(engine, plan):
    first, second = add_trunk(engine, "first"), add_trunk(engine, "second")
    add_buy_rate(engine, first, "44", "0.05")
    add_buy_rate(engine, second, "44", "0.06")
    group = add_group(engine, "44")
    add_route(engine, group, first, 10)
    add_route(engine, group, second, 20)
    return first, second


class Statements:
    """The SQL an engine sends, as a list (SQLAlchemy's cursor event)."""

    def __init__(self, engine):
        self.sent: list[str] = []
        self.engine = engine
        event.listen(engine, "before_cursor_execute", self._seen)

    def _seen(self, conn, cursor, statement, parameters, context, executemany):
        self.sent.append(statement)

    def close(self):
        event.remove(self.engine, "before_cursor_execute", self._seen)


# ---- every change is seen by the next call ------------------------------------------------

def test_every_change_of_the_route_tables_gives_a_new_version(engine, plan):
    seen = {version(engine)}

    def changed() -> bool:
        now = version(engine)
        new = now not in seen
        seen.add(now)
        return new

    trunk = add_trunk(engine, "first")
    assert not changed()                     # a trunk alone routes nothing
    group = add_group(engine, "44")
    assert changed()
    add_route(engine, group, trunk, 10)
    assert changed()
    for sql in ("UPDATE routes SET priority = 20", "UPDATE route_groups SET max_tries = 2",
                "UPDATE trunks SET capacity = 5", "UPDATE trunks SET status = 'disabled'",
                "DELETE FROM routes", "DELETE FROM route_groups"):
        execute(engine, sql)
        assert changed(), sql
    premium = add_plan(engine, "premium")
    add_group(engine, "44", plan_id=premium)
    assert changed()
    execute(engine, "DELETE FROM rate_plans WHERE id = :p", p=premium)   # cascades its groups
    assert changed()
    assert scalar(engine, "SELECT COUNT(*) FROM route_groups") == 0


def test_first_route_group_routes_the_next_call(engine, plan, copy):
    assert calls.authorize(engine, out(), NOW, LIMITS).trunk == ""
    assert copy.table is not None and not copy.table.any_group      # flat, copied as such
    first = add_trunk(engine, "first")
    add_buy_rate(engine, first, "44", "0.05")
    add_route(engine, add_group(engine, "44"), first, 10)
    assert calls.authorize(engine, out(), NOW, LIMITS).trunk == "first"


def test_removing_every_route_group_takes_effect_at_once(engine, two_trunks, copy):
    assert calls.authorize(engine, out(), NOW, LIMITS).trunk == "first"
    execute(engine, "DELETE FROM route_groups")       # its routes go by cascade
    got = calls.authorize(engine, out(), NOW, LIMITS)
    assert got.admission.allowed and got.trunk == ""


def test_a_disabled_trunk_is_not_chosen_by_the_next_call(engine, two_trunks, copy):
    first, _ = two_trunks
    assert calls.authorize(engine, out(), NOW, LIMITS).trunk == "first"
    execute(engine, "UPDATE trunks SET status = 'disabled' WHERE id = :t", t=first)
    assert calls.authorize(engine, out(), NOW, LIMITS).trunk == "second"


def test_capacity_is_counted_under_the_lock_whatever_the_copy_says(engine, plan, copy):
    only = add_trunk(engine, "only", capacity=3)
    add_buy_rate(engine, only, "44", "0.05")
    add_route(engine, add_group(engine, "44"), only, 10)
    got = [calls.authorize(engine, out(), NOW, LIMITS) for _ in range(3)]
    assert [g.trunk for g in got] == ["only"] * 3
    assert calls.authorize(engine, out(), NOW, LIMITS).admission.reason == reasons.NO_ROUTE
    execute(engine, "UPDATE trunks SET capacity = 2 WHERE id = :t", t=only)
    calls.settle(engine, got[0].call_id, 1000, "ANSWER", NOW)
    assert calls.authorize(engine, out(), NOW, LIMITS).admission.reason == reasons.NO_ROUTE
    assert live_on(engine, only) == 2


def test_buy_rates_are_those_in_effect(engine, plan, copy):
    first = add_trunk(engine, "first")
    add_buy_rate(engine, first, "44", "0.05")
    group = add_group(engine, "44")
    add_route(engine, group, first, 20)
    assert calls.authorize(engine, out(), NOW, LIMITS).trunk == "first"
    dear, cheap = add_trunk(engine, "dear"), add_trunk(engine, "cheap")
    add_buy_rate(engine, dear, "44", "0.12")     # loses money: skipped
    add_buy_rate(engine, cheap, "4420", "0.02")
    add_route(engine, group, dear, 5)
    add_route(engine, group, cheap, 10)
    got = calls.authorize(engine, out(), NOW, LIMITS)
    assert got.trunk == "cheap"
    assert scalar(engine, "SELECT CONCAT(buy_prefix, '|', buy_rate_per_min) FROM call_attempts"
                  " WHERE call_id = :i", i=got.call_id) == "4420|0.020000"
    # a buy rate is part of the copy: changed, a new version (schema 119), the next call
    # uses it (tests/routing/test_route_table_buy_rates.py)
    before = version(engine)
    execute(engine, "UPDATE trunk_rates SET rate_per_min = 0.15 WHERE trunk_id = :t", t=cheap)
    assert version(engine) != before
    assert calls.authorize(engine, out(), NOW, LIMITS).trunk == "first"


# ---- what the copy saves ------------------------------------------------------------------

def test_with_a_current_copy_a_routed_call_reads_no_route_table(engine, two_trunks, copy):
    calls.authorize(engine, out(), NOW, LIMITS)            # makes the copy
    before = version(engine)
    add_client(engine, "flat", balance="50")
    assert version(engine) == before                       # no route change: copy current
    statements = Statements(engine)
    try:
        got = calls.authorize(engine, out(), NOW, LIMITS)
    finally:
        statements.close()
    assert got.trunk == "first"
    sent = "\n".join(statements.sent)
    assert "route_groups" not in sent and "FROM routes" not in sent
    assert "trunk_rates" not in sent                       # the copy holds the buy rates
    # the client's lock, its usage (with the route version), the call (whose trigger
    # takes the trunk: schema 177), the account: nothing else, as many statements as a
    # call that is not routed
    assert len(statements.sent) == 4, statements.sent
    assert scalar(engine, "SELECT COUNT(*) FROM call_attempts WHERE call_id = :c",
                  c=got.call_id) == 1


def test_an_inbound_call_reads_no_buy_rates(engine, two_trunks, copy):
    calls.authorize(engine, out(), NOW, LIMITS)            # makes the copy
    statements = Statements(engine)
    try:
        got = calls.authorize(engine, CallRequest(client_code="acme", number=UK,
                                                  direction="in", emergency=False),
                              NOW, LIMITS)
    finally:
        statements.close()
    assert got.admission.allowed and got.trunk == ""
    assert not any("trunk_rates" in sql for sql in statements.sent)


def test_the_copy_picks_what_the_tables_pick(engine, plan, copy):
    """Many groups (plan's own, every plan's, nested prefixes, default), many numbers: the
    trunk order from the copy equals the order read from the tables."""
    rng = random.Random(7)
    premium = add_plan(engine, "premium")
    ids = [add_trunk(engine, f"t{n}", capacity=5) for n in range(6)]
    for trunk in ids:
        for prefix in ("4", "44", "447", "4420", "1", "33"):
            add_buy_rate(engine, trunk, prefix, f"0.0{rng.randint(1, 9)}")
    for prefix in ("44", "447", "4420", "1", "default"):
        for plan_id in (None, premium):
            if rng.random() < 0.7:
                group = add_group(engine, prefix, plan_id=plan_id,
                                  ordering=rng.choice(("priority", "least-cost")))
                for trunk in rng.sample(ids, rng.randint(0, 4)):
                    add_route(engine, group, trunk, rng.randint(0, 50),
                              allow_loss=rng.random() < 0.3)
    table = copy.load_now(engine)
    seen = trunks.SeenRoutes(version=table.version)
    sell = Rate("4", Decimal("0.05"), Decimal("0"), 60, 60)
    with engine.connect() as conn:
        for number in ("442071234567", "447700900123", "4420", "44", "4", "+15551234567",
                       "33123456", "999", "", "4477", "1"):
            for plan_id in (None, premium, default_plan_id(engine)):
                got = trunks.choose(conn, plan_id, number, sell, seen=seen)
                want = trunks.choose(conn, plan_id, number, sell)
                assert got == want, (number, plan_id)
        conn.rollback()


def test_copies_are_per_database(engine, plan):
    made = route_table.copy_of(engine)
    other = create_engine(engine.url)   # another server's engine: its own copy
    try:
        assert route_table.copy_of(other) is not made
    finally:
        other.dispose()


def test_failover_uses_the_copy_and_sees_changes(engine, plan, copy):
    first, second, third = (add_trunk(engine, n) for n in ("first", "second", "third"))
    group = add_group(engine, "44")
    for priority, trunk in enumerate((first, second, third)):
        add_buy_rate(engine, trunk, "44", "0.05")
        add_route(engine, group, trunk, priority)
    call = calls.authorize(engine, out(), NOW, LIMITS)
    assert call.trunk == "first"
    execute(engine, "UPDATE trunks SET status = 'disabled' WHERE id = :t", t=second)
    moved = trunks.failover(engine, call.call_id, "CONGESTION", 34, "first", NOW)
    assert moved.outcome == trunks.ALLOW and moved.trunk.name == "third"


# ---- background copies, failures, and the version row ---------------------------------------

def test_a_call_never_waits_for_the_copy(engine, two_trunks, monkeypatch):
    release = threading.Event()
    real = route_table.load

    def slow_load(engine):
        release.wait(10)
        return real(engine)

    monkeypatch.setattr(route_table, "load", slow_load)
    try:
        got = calls.authorize(engine, out(), NOW, LIMITS)   # reads the tables meanwhile
        assert got.trunk == "first"
        assert route_table.copy_of(engine).table is None
    finally:
        release.set()
    route_table.copy_of(engine).wait()
    assert route_table.copy_of(engine).table.version == version(engine)


def test_a_failing_copy_leaves_calls_reading_the_tables(engine, two_trunks, monkeypatch):
    def broken(engine):
        raise RuntimeError("no copy today")

    monkeypatch.setattr(route_table, "load", broken)
    copy = route_table.copy_of(engine)
    for _ in range(3):
        assert calls.authorize(engine, out(), NOW, LIMITS).trunk == "first"
        copy.wait()
    assert copy.table is None


def test_an_old_copy_is_made_again_even_without_a_new_version(engine, two_trunks, copy,
                                                              monkeypatch):
    """TRUNCATE fires no trigger: the version stays, the copy is made again when old."""
    first, _ = two_trunks
    assert calls.authorize(engine, out(), NOW, LIMITS).trunk == "first"
    execute(engine, "TRUNCATE TABLE routes")
    monkeypatch.setattr(route_table, "RELOAD_SECONDS", 0.0)
    got = calls.authorize(engine, out(), NOW, LIMITS)
    assert got.admission.reason == reasons.NO_ROUTE      # the group is there, no trunk
    assert live_on(engine, first) == 1


def test_the_version_row_is_the_system_s(engine, plan):
    before = version(engine)
    with pytest.raises(Exception, match="route_table_version is kept by the system"):
        execute(engine, "DELETE FROM route_table_version")
    # a tool's full-row save writing an old version back gets a new one instead
    execute(engine, "UPDATE route_table_version SET version = :v, changed_at = changed_at",
            v=before)
    assert version(engine) != before
    older = version(engine)
    execute(engine, "UPDATE route_table_version SET version = :v", v=before)
    assert version(engine) not in (before, older)


def test_an_old_copy_of_unchanged_tables_is_kept_not_made_again(engine, two_trunks,
                                                                monkeypatch):
    """A copy a minute old is checked (version, sizes), not loaded again: with 100,000 buy
    rates a load is a second of the server's CPU. A TRUNCATE (no trigger, same version)
    changes a size: then it is made again."""
    first, _ = two_trunks
    copy = route_table.copy_of(engine)
    assert calls.authorize(engine, out(), NOW, LIMITS).trunk == "first"
    copy.wait()
    made = copy.table
    assert made is not None and made.sizes
    loads = []
    real_load = route_table.load
    monkeypatch.setattr(route_table, "load", lambda e: loads.append(1) or real_load(e))
    monkeypatch.setattr(route_table, "RELOAD_SECONDS", 0.0)
    monkeypatch.setattr(route_table, "PAUSE_SECONDS", 0.0)
    monkeypatch.setattr(copy, "_not_before", 0.0)
    assert calls.authorize(engine, out(), NOW, LIMITS).trunk == "first"
    copy.wait()
    assert loads == [] and copy.table.groups is made.groups
    assert copy.table.made_at > made.made_at
    execute(engine, "TRUNCATE TABLE routes")
    calls.authorize(engine, out(), NOW, LIMITS)   # sees the old copy, starts the check
    copy.wait()
    assert loads == [1]
    assert calls.authorize(engine, out(), NOW, LIMITS).admission.reason == reasons.NO_ROUTE


def test_a_server_makes_its_copy_when_it_starts_not_at_its_first_call(db_url, engine,
                                                                       two_trunks):
    """The first calls after a (re)start would otherwise read the tables and share the CPU
    with the load (1-2 s with 100,000 buy rates): the copy is made before any call."""
    import signal

    from tests.serve_process import Server
    server = Server(db_url)
    try:
        made = server.wait_for(r"route table copy made: (\d+) groups, (\d+) trunks")
        assert made.groups() == ("1", "2")
        assert scalar(engine, "SELECT COUNT(*) FROM calls") == 0
    finally:
        server.process.send_signal(signal.SIGTERM)
        server.finish()
