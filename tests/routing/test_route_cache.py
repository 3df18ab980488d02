"""The per-server route cache (issue 22 performance): what it may keep stale, and what it
never does (change the trunk taken, its buy rate, or let a trunk go over capacity)."""

from __future__ import annotations

import time
from datetime import datetime

import pytest
from sqlalchemy import create_engine

from fastagi import reasons
from fastagi.billing.admission import CallRequest
from fastagi.store import calls, trunks
from tests.callcontrol.tenants import add_client, add_rate, default_plan_id
from tests.routing.carriers import add_buy_rate, add_group, add_route, add_trunk, live_on
from tests.support.sql import execute, scalar

NOW = datetime(2026, 12, 7, 12, 0, 0)
LIMITS = calls.Limits(max_call_seconds=3600, dial_template="PJSIP/{number}@carrier",
                      stale_grace_seconds=300)
UK = "442071234567"
WINDOW = 0.5


def out(code: str = "acme") -> CallRequest:
    return CallRequest(client_code=code, number=UK, direction="out", emergency=False)


@pytest.fixture
def plan(engine, monkeypatch):
    monkeypatch.setattr(trunks, "ROUTE_CACHE_SECONDS", WINDOW)
    trunks.forget_route_cache(engine)
    add_rate(engine, default_plan_id(engine), "44", "0.10")
    add_client(engine, "acme", balance="50", channel_limit=50)
    yield
    trunks.forget_route_cache(engine)


def test_first_route_group_takes_effect_within_the_window(engine, plan):
    assert calls.authorize(engine, out(), NOW, LIMITS).trunk == ""   # flat: cached as such
    first = add_trunk(engine, "first")
    add_buy_rate(engine, first, "44", "0.05")
    add_route(engine, add_group(engine, "44"), first, 10)
    stale = calls.authorize(engine, out(), NOW, LIMITS)
    assert stale.admission.allowed and stale.trunk == ""             # the documented staleness
    assert scalar(engine, "SELECT trunk_id FROM calls WHERE id = :i", i=stale.call_id) is None
    time.sleep(WINDOW + 0.1)
    assert calls.authorize(engine, out(), NOW, LIMITS).trunk == "first"


def test_removing_every_route_group_takes_effect_at_once(engine, plan):
    first = add_trunk(engine, "first")
    add_route(engine, add_group(engine, "44"), first, 10, allow_loss=True)
    assert calls.authorize(engine, out(), NOW, LIMITS).trunk == "first"
    execute(engine, "DELETE FROM routes")
    execute(engine, "DELETE FROM route_groups")
    got = calls.authorize(engine, out(), NOW, LIMITS)
    assert got.admission.allowed and got.trunk == ""


def test_disabled_trunk_is_not_chosen_even_with_a_warm_cache(engine, plan):
    first, second = add_trunk(engine, "first"), add_trunk(engine, "second")
    add_buy_rate(engine, first, "44", "0.05")
    add_buy_rate(engine, second, "44", "0.06")
    group = add_group(engine, "44")
    add_route(engine, group, first, 10)
    add_route(engine, group, second, 20)
    assert calls.authorize(engine, out(), NOW, LIMITS).trunk == "first"   # cache warm
    execute(engine, "UPDATE trunks SET status = 'disabled' WHERE id = :t", t=first)
    assert calls.authorize(engine, out(), NOW, LIMITS).trunk == "second"  # at once
    time.sleep(WINDOW + 0.1)
    assert calls.authorize(engine, out(), NOW, LIMITS).trunk == "second"  # and after


def test_capacity_is_never_exceeded_with_a_warm_cache(engine, plan):
    only = add_trunk(engine, "only", capacity=3)
    add_buy_rate(engine, only, "44", "0.05")
    add_route(engine, add_group(engine, "44"), only, 10)
    got = [calls.authorize(engine, out(), NOW, LIMITS) for _ in range(3)]
    assert [g.trunk for g in got] == ["only"] * 3
    assert calls.authorize(engine, out(), NOW, LIMITS).admission.reason == reasons.NO_ROUTE
    execute(engine, "UPDATE trunks SET capacity = 2 WHERE id = :t", t=only)
    calls.settle(engine, got[0].call_id, 1000, "ANSWER", NOW)
    assert live_on(engine, only) == 2
    assert calls.authorize(engine, out(), NOW, LIMITS).admission.reason == reasons.NO_ROUTE
    assert live_on(engine, only) == 2


def test_a_trunk_added_after_the_cache_was_made_gets_its_own_buy_rate(engine, plan):
    first = add_trunk(engine, "first")
    add_buy_rate(engine, first, "44", "0.05")
    group = add_group(engine, "44")
    add_route(engine, group, first, 20)
    assert calls.authorize(engine, out(), NOW, LIMITS).trunk == "first"   # knows `first` only
    dear, cheap = add_trunk(engine, "dear"), add_trunk(engine, "cheap")
    add_buy_rate(engine, dear, "44", "0.12")     # loses money: must be skipped at once
    add_buy_rate(engine, cheap, "4420", "0.02")
    add_route(engine, group, dear, 5)
    add_route(engine, group, cheap, 10)
    got = calls.authorize(engine, out(), NOW, LIMITS)
    assert got.trunk == "cheap"
    assert scalar(engine, "SELECT CONCAT(buy_prefix, '|', buy_rate_per_min) FROM call_attempts"
                  " WHERE call_id = :i", i=got.call_id) == "4420|0.020000"
    # a buy rate changed under a warm cache is read by the next call
    execute(engine, "UPDATE trunk_rates SET rate_per_min = 0.15 WHERE trunk_id = :t", t=cheap)
    assert calls.authorize(engine, out(), NOW, LIMITS).trunk == "first"


def test_caches_are_per_database(engine, plan):
    cache = trunks.route_cache(engine)
    assert calls.authorize(engine, out(), NOW, LIMITS).trunk == ""
    assert cache.no_groups()
    other = create_engine(engine.url)   # another server's engine: its own cache
    try:
        assert trunks.route_cache(other) is not cache
        assert not trunks.route_cache(other).no_groups()
    finally:
        other.dispose()
