"""Trunk routing in authorize, failover and settle against the real database."""

from __future__ import annotations

from datetime import datetime, timedelta
from decimal import Decimal

import pytest

from fastagi import reasons
from fastagi.billing import routing
from fastagi.billing.admission import CallRequest
from fastagi.store import calls, trunks
from tests.callcontrol.tenants import add_client, add_plan, add_rate, default_plan_id
from tests.routing.carriers import add_buy_rate, add_group, add_route, add_trunk, live_on
from tests.support.sql import execute, rows, scalar

pytestmark = pytest.mark.usefixtures("route_reads")

NOW = datetime(2026, 12, 7, 12, 0, 0)
LIMITS = calls.Limits(max_call_seconds=3600, dial_template="PJSIP/{number}@carrier",
                      stale_grace_seconds=300)
UK = "442071234567"


def out(number: str = UK, code: str = "acme", emergency: bool = False) -> CallRequest:
    return CallRequest(client_code=code, number=number, direction="out", emergency=emergency)


@pytest.fixture
def plan(engine):
    plan_id = default_plan_id(engine)
    add_rate(engine, plan_id, "44", "0.10")
    add_client(engine, "acme", balance="50", channel_limit=50)
    return plan_id


@pytest.fixture
def two_trunks(engine, plan):
    """UK calls: `first` (priority 10) then `second` (20), both cheaper than the sell rate."""
    first, second = add_trunk(engine, "first", capacity=2), add_trunk(engine, "second", capacity=2)
    add_buy_rate(engine, first, "44", "0.05")
    add_buy_rate(engine, second, "44", "0.06")
    group = add_group(engine, "44")
    add_route(engine, group, first, 10)
    add_route(engine, group, second, 20)
    return first, second


def test_without_route_groups_the_dial_template_is_used_as_before(engine, plan):
    add_trunk(engine, "idle")   # trunks alone route nothing
    got = calls.authorize(engine, out(), NOW, LIMITS)
    assert got.admission.allowed and got.admission.dial_target == f"PJSIP/{UK}@carrier"
    assert got.trunk == ""
    assert scalar(engine, "SELECT trunk_id FROM calls WHERE id = :i", i=got.call_id) is None
    assert scalar(engine, "SELECT COUNT(*) FROM call_attempts") == 0


def test_routed_call_takes_the_first_trunk_and_copies_its_buy_rate(engine, two_trunks):
    first, _ = two_trunks
    got = calls.authorize(engine, out(), NOW, LIMITS)
    assert got.admission.allowed
    assert got.admission.dial_target == f"PJSIP/{UK}@ep-first" and got.trunk == "first"
    assert scalar(engine, "SELECT trunk_id FROM calls WHERE id = :i", i=got.call_id) == first
    (attempt,) = rows(engine, "SELECT attempt, trunk_id, state, buy_prefix, buy_rate_per_min,"
                      " buy_initial_increment FROM call_attempts WHERE call_id = :i", i=got.call_id)
    assert tuple(attempt) == (1, first, "live", "44", Decimal("0.050000"), 60)
    assert scalar(engine, "SELECT admitted_attempts FROM trunk_states WHERE trunk_id = :t",
                  t=first) == 1
    # the call carries the same copy (schema 177: its INSERT took the trunk)
    assert scalar(engine, "SELECT JSON_ARRAY(buy_prefix, buy_rate_per_min, buy_initial_increment)"
                  " FROM calls WHERE id = :i", i=got.call_id) == '["44", 0.050000, 60]'


def test_full_trunk_moves_to_the_next_then_no_route(engine, two_trunks):
    first, second = two_trunks
    got = [calls.authorize(engine, out(), NOW, LIMITS) for _ in range(5)]
    assert [g.trunk for g in got[:4]] == ["first", "first", "second", "second"]
    last = got[4].admission
    assert not last.allowed and last.reason == reasons.NO_ROUTE and last.cause == 3
    assert scalar(engine, "SELECT CONCAT(state, '|', reason) FROM calls WHERE id = :i",
                  i=got[4].call_id) == "rejected|no-route"
    assert (live_on(engine, first), live_on(engine, second)) == (2, 2)
    # settling one releases its unit: the next call gets it
    calls.settle(engine, got[0].call_id, 5000, "ANSWER", NOW)
    assert live_on(engine, first) == 1
    assert calls.authorize(engine, out(), NOW, LIMITS).trunk == "first"


def test_disabled_and_zero_capacity_trunks_are_skipped(engine, two_trunks):
    first, second = two_trunks
    execute(engine, "UPDATE trunks SET status = 'disabled' WHERE id = :t", t=first)
    assert calls.authorize(engine, out(), NOW, LIMITS).trunk == "second"
    execute(engine, "UPDATE trunks SET capacity = 0 WHERE id = :t", t=second)
    assert calls.authorize(engine, out(), NOW, LIMITS).admission.reason == reasons.NO_ROUTE


def test_client_checks_come_before_the_route(engine, two_trunks):
    execute(engine, "UPDATE trunks SET status = 'disabled'")
    add_client(engine, "broke", balance="0")
    assert calls.authorize(engine, out(code="broke"), NOW, LIMITS).admission.reason == reasons.NO_CREDIT
    assert calls.authorize(engine, out("33123"), NOW, LIMITS).admission.reason == reasons.NO_RATE
    assert calls.authorize(engine, out(), NOW, LIMITS).admission.reason == reasons.NO_ROUTE


def test_margin_protection_skips_a_trunk_dearer_than_the_sell_rate(engine, plan):
    dear, cheap = add_trunk(engine, "dear"), add_trunk(engine, "cheap")
    add_buy_rate(engine, dear, "44", "0.12")          # above the 0.10 the client pays
    add_buy_rate(engine, cheap, "4420", "0.04", fee="0.10")  # a short call loses the fee
    group = add_group(engine, "44")
    add_route(engine, group, dear, 10)
    add_route(engine, group, cheap, 20)
    assert calls.authorize(engine, out(), NOW, LIMITS).admission.reason == reasons.NO_ROUTE
    execute(engine, "UPDATE routes SET allow_loss = 1 WHERE trunk_id = :t", t=cheap)
    assert calls.authorize(engine, out(), NOW, LIMITS).trunk == "cheap"


def test_trunk_without_a_buy_rate_needs_allow_loss(engine, plan):
    unknown = add_trunk(engine, "unknown")
    add_route(engine, add_group(engine, "default"), unknown, 10)
    assert calls.authorize(engine, out(), NOW, LIMITS).admission.reason == reasons.NO_ROUTE
    execute(engine, "UPDATE routes SET allow_loss = 1")
    got = calls.authorize(engine, out(), NOW, LIMITS)
    assert got.trunk == "unknown"
    assert scalar(engine, "SELECT buy_rate_per_min IS NULL FROM call_attempts WHERE call_id = :i",
                  i=got.call_id) == 1


def test_least_cost_orders_by_the_buy_rate_of_the_number(engine, plan):
    a, b, c = add_trunk(engine, "a"), add_trunk(engine, "b"), add_trunk(engine, "c")
    add_buy_rate(engine, a, "44", "0.03")
    add_buy_rate(engine, a, "4420", "0.09")           # a's longest prefix: dearest for London
    add_buy_rate(engine, b, "44", "0.05")
    add_buy_rate(engine, c, "44", "0.05")
    group = add_group(engine, "44", ordering="least-cost")
    add_route(engine, group, a, 1)
    add_route(engine, group, b, 30)
    add_route(engine, group, c, 20)                  # same cost as b: priority breaks the tie
    assert calls.authorize(engine, out(), NOW, LIMITS).trunk == "c"
    assert calls.authorize(engine, out("441611234567"), NOW, LIMITS).trunk == "a"


def test_route_sets_per_plan_and_longest_prefix(engine, plan):
    premium_plan = add_plan(engine, "premium")
    add_rate(engine, premium_plan, "44", "0.30")
    add_client(engine, "vip", balance="50", plan_id=premium_plan)
    std, prem, mobile = add_trunk(engine, "std"), add_trunk(engine, "prem"), add_trunk(engine, "mobile")
    for t in (std, prem, mobile):
        add_buy_rate(engine, t, "44", "0.01")
    add_route(engine, add_group(engine, "default"), std, 10)
    add_route(engine, add_group(engine, "447"), mobile, 10)
    add_route(engine, add_group(engine, "44", plan_id=premium_plan), prem, 10)
    assert calls.authorize(engine, out(), NOW, LIMITS).trunk == "std"
    assert calls.authorize(engine, out("447700900123"), NOW, LIMITS).trunk == "mobile"
    assert calls.authorize(engine, out(code="vip"), NOW, LIMITS).trunk == "prem"
    # the longer every-plan prefix still wins over the plan's shorter one
    assert calls.authorize(engine, out("447700900123", code="vip"), NOW, LIMITS).trunk == "mobile"


def test_no_matching_group_is_no_route(engine, plan):
    t = add_trunk(engine, "fr")
    add_route(engine, add_group(engine, "33"), t, 10)
    assert calls.authorize(engine, out(), NOW, LIMITS).admission.reason == reasons.NO_ROUTE


def test_emergency_is_never_refused_for_capacity_margin_or_cooldown(engine, two_trunks):
    first, second = two_trunks
    execute(engine, "UPDATE trunks SET capacity = 0")
    execute(engine, "UPDATE trunk_states SET cooled_until = :u", u=NOW + timedelta(hours=1))
    got = calls.authorize(engine, out("112", emergency=True), NOW, LIMITS)
    assert got.admission.allowed and got.trunk == ""
    assert got.admission.dial_target == "PJSIP/112@carrier"
    assert scalar(engine, "SELECT COUNT(*) FROM call_attempts") == 0


def failover(engine, call_id, trunk, status="CHANUNAVAIL", cause=20, at=NOW):
    return trunks.failover(engine, call_id, status, cause, trunk, at)


def test_failover_releases_counts_and_takes_the_next(engine, two_trunks):
    first, second = two_trunks
    call = calls.authorize(engine, out(), NOW, LIMITS).call_id
    got = failover(engine, call, "first", "CONGESTION", 34)
    assert got.outcome == trunks.ALLOW and got.trunk.name == "second"
    assert got.dial_target() == f"PJSIP/{UK}@ep-second"
    assert (live_on(engine, first), live_on(engine, second)) == (0, 1)
    assert [tuple(r) for r in rows(engine, "SELECT attempt, trunk_id, state, dial_status,"
                                   " hangup_cause FROM call_attempts WHERE call_id = :i"
                                   " ORDER BY attempt", i=call)] == [
        (1, first, "failed", "CONGESTION", 34), (2, second, "live", None, None)]
    # the call names the second trunk now, with the second's buy rate
    assert scalar(engine, "SELECT JSON_ARRAY(trunk_id, buy_prefix, buy_rate_per_min) FROM calls"
                  " WHERE id = :i", i=call) == f'[{second}, "44", 0.060000]'
    assert scalar(engine, "SELECT consecutive_failures FROM trunk_states WHERE trunk_id = :t",
                  t=first) == 1
    # a repeat of the same request answers the same and takes nothing more
    again = failover(engine, call, "first", "CONGESTION", 34)
    assert again.outcome == trunks.ALLOW and again.trunk.name == "second" and again.repeated
    assert scalar(engine, "SELECT COUNT(*) FROM call_attempts WHERE call_id = :i", i=call) == 2
    # the second fails too: nothing left -> no route; settle closes the call at 0
    last = failover(engine, call, "second")
    assert last.outcome == trunks.NO_ROUTE
    assert failover(engine, call, "second").outcome == trunks.NO_ROUTE   # repeat
    settled = calls.settle(engine, call, None, "CHANUNAVAIL", NOW)
    assert settled.cost == 0
    assert (live_on(engine, first), live_on(engine, second)) == (0, 0)


def test_the_number_s_own_answer_does_not_fail_over_nor_count(engine, two_trunks):
    first, _ = two_trunks
    call = calls.authorize(engine, out(), NOW, LIMITS).call_id
    got = failover(engine, call, "first", "CHANUNAVAIL", 1)   # 404: unallocated number
    assert got.outcome == trunks.DONE
    assert scalar(engine, "SELECT state FROM call_attempts WHERE call_id = :i", i=call) == "ended"
    assert scalar(engine, "SELECT consecutive_failures FROM trunk_states WHERE trunk_id = :t",
                  t=first) == 0
    assert live_on(engine, first) == 0


def test_max_tries_bounds_the_failovers(engine, two_trunks):
    execute(engine, "UPDATE route_groups SET max_tries = 1")
    call = calls.authorize(engine, out(), NOW, LIMITS).call_id
    assert failover(engine, call, "first").outcome == trunks.NO_ROUTE


def test_failover_names_the_wrong_trunk(engine, two_trunks):
    call = calls.authorize(engine, out(), NOW, LIMITS).call_id
    got = failover(engine, call, "second")
    assert got.mismatch and got.outcome == trunks.DONE
    assert failover(engine, 999999, "first").found is False


def test_failures_in_a_row_cool_the_trunk_down_and_success_resets(engine, two_trunks):
    first, second = two_trunks
    execute(engine, "UPDATE trunks SET failures_before_cooldown = 2, cooldown_seconds = 30,"
            " capacity = 10")
    # one failure, then a success on `first`: the count starts again
    call = calls.authorize(engine, out(), NOW, LIMITS).call_id
    failover(engine, call, "first")
    calls.settle(engine, call, 1000, "ANSWER", NOW)
    call = calls.authorize(engine, out(), NOW, LIMITS).call_id
    calls.settle(engine, call, 1000, "ANSWER", NOW)
    assert scalar(engine, "SELECT consecutive_failures FROM trunk_states WHERE trunk_id = :t",
                  t=first) == 0
    # two in a row: cooled down for 30 s, for every caller
    for _ in range(2):
        call = calls.authorize(engine, out(), NOW, LIMITS).call_id
        assert failover(engine, call, "first").trunk.name == "second"
        calls.settle(engine, call, 1000, "ANSWER", NOW)
    assert scalar(engine, "SELECT cooled_until FROM trunk_states WHERE trunk_id = :t",
                  t=first) == NOW + timedelta(seconds=30)
    assert calls.authorize(engine, out(), NOW + timedelta(seconds=29), LIMITS).trunk == "second"
    assert calls.authorize(engine, out(), NOW + timedelta(seconds=31), LIMITS).trunk == "first"


@pytest.mark.parametrize("status, answered_ms", [
    ("ANSWER", 1000), ("BUSY", None), ("NOANSWER", None), ("CANCEL", None), ("", None),
    ("CHANUNAVAIL", None), ("CONGESTION", None)])
def test_settle_ends_the_attempt_and_resets_failures_unless_the_trunk_failed(
        engine, two_trunks, status, answered_ms):
    """Settle's calls UPDATE ends the call's live attempt (calls' AFTER UPDATE trigger,
    schema 177); the trunk's failures in a row start again unless the Dial ended in what
    fails over (routing.FAILOVER_STATUSES, which the trigger names too)."""
    first, _ = two_trunks
    execute(engine, "UPDATE trunk_states SET consecutive_failures = 2 WHERE trunk_id = :t",
            t=first)
    call = calls.authorize(engine, out(), NOW, LIMITS).call_id
    calls.settle(engine, call, answered_ms, status, NOW + timedelta(seconds=5))
    (attempt,) = rows(engine, "SELECT state, dial_status, ended_at FROM call_attempts"
                      " WHERE call_id = :c", c=call)
    assert tuple(attempt) == ("answered" if answered_ms else "ended", status or None,
                              NOW + timedelta(seconds=5))
    failures = scalar(engine, "SELECT consecutive_failures FROM trunk_states WHERE trunk_id = :t",
                      t=first)
    assert failures == (2 if status in routing.FAILOVER_STATUSES else 0)
    assert live_on(engine, first) == 0


def test_a_call_closed_by_hand_ends_its_attempt_and_gives_its_unit_back(engine, two_trunks):
    first, _ = two_trunks
    calls.authorize(engine, out(), NOW, LIMITS)
    held = calls.authorize(engine, out(), NOW, LIMITS).call_id
    assert calls.authorize(engine, out(), NOW, LIMITS).trunk == "second"     # first is full
    execute(engine, "UPDATE calls SET state = 'stale', settled_at = :n WHERE id = :c",
            n=NOW, c=held)
    assert scalar(engine, "SELECT state FROM call_attempts WHERE call_id = :c", c=held) == "ended"
    assert calls.authorize(engine, out(), NOW, LIMITS).trunk == "first"


def test_stale_sweep_releases_and_ends_the_attempts(engine, two_trunks):
    first, _ = two_trunks
    call = calls.authorize(engine, out(), NOW, LIMITS).call_id
    assert live_on(engine, first) == 1
    assert calls.close_stale(engine, NOW + timedelta(days=1)) == 1
    assert live_on(engine, first) == 0
    assert scalar(engine, "SELECT state FROM call_attempts WHERE call_id = :i", i=call) == "ended"


def test_cooldown_settings_are_refused_in_words(engine):
    with pytest.raises(Exception, match="failures_before_cooldown is how many"):
        add_trunk(engine, "bad", failures_before_cooldown=0)
    with pytest.raises(Exception, match="cooldown_seconds is how long"):
        add_trunk(engine, "bad", cooldown_seconds=0)
    with pytest.raises(Exception, match="max_tries is how many trunks"):
        add_group(engine, "44", max_tries=11)


def test_a_trunk_that_carried_calls_is_not_deleted(engine, two_trunks):
    first, _ = two_trunks
    calls.authorize(engine, out(), NOW, LIMITS)
    execute(engine, "DELETE FROM routes WHERE trunk_id = :t", t=first)
    with pytest.raises(Exception, match="this trunk carried calls"):
        execute(engine, "DELETE FROM trunks WHERE id = :t", t=first)


def test_cooldown_is_shared_by_servers_on_their_own_connections(engine, db_url, two_trunks):
    """Failures counted through two engines (two servers' pools) add up to one cool-down,
    which both then honour."""
    from fastagi.db.engine import make_engine
    first, second = two_trunks
    execute(engine, "UPDATE trunks SET failures_before_cooldown = 2, cooldown_seconds = 60,"
            " capacity = 10")
    other = make_engine(db_url, pool_size=2)
    try:
        for server in (engine, other):
            call = calls.authorize(server, out(), NOW, LIMITS)
            assert call.trunk == "first"
            assert failover(server, call.call_id, "first").trunk.name == "second"
            calls.settle(server, call.call_id, 1000, "ANSWER", NOW)
        for server in (engine, other):
            assert calls.authorize(server, out(), NOW + timedelta(seconds=59), LIMITS).trunk == "second"
            assert calls.authorize(server, out(), NOW + timedelta(seconds=61), LIMITS).trunk == "first"
    finally:
        other.dispose()


@pytest.mark.parametrize("capacity, cps, refusal", [
    (2, None, "trunk first is full: 2 live calls, capacity 2"),
    (100, 2, "trunk first took 2 calls in the last second: its limit is 2.00 calls a second"),
])
def test_a_take_waiting_on_the_lock_counts_the_take_committed_meanwhile(
        engine, two_trunks, capacity, cps, refusal):
    """A take (here authorize's: a live calls row naming the trunk, whose trigger inserts
    the attempt) waits for a take in progress on the same trunk and then counts it: the
    trigger's read view is made after the trunk's lock is granted (schema 177). If MariaDB
    ever made it at the statement's start, the waiting take would not see the other and
    could go over capacity (or over its calls per second, counted in that same view): this
    test fails then."""
    import threading
    import time
    first, _ = two_trunks
    execute(engine, "UPDATE trunks SET capacity = :c, calls_per_second = :r WHERE id = :t",
            c=capacity, r=cps, t=first)
    calls.authorize(engine, out(), NOW, LIMITS)          # on `first`: 1 live, 1 this second
    holder = engine.connect()
    other = calls.authorize(engine, out(), NOW, LIMITS).call_id
    # a second live call whose take is in progress: its attempt inserted under the lock
    execute(engine, "DELETE FROM call_attempts WHERE call_id = :c", c=other)
    tx = holder.begin()
    holder.execute(trunks.text(
        "INSERT INTO call_attempts (call_id, attempt, trunk_id, state, started_at)"
        " VALUES (:c, 1, :t, 'live', :now)"), {"c": other, "t": first, "now": NOW})
    seen = {}
    client = scalar(engine, "SELECT id FROM clients WHERE code = 'acme'")

    def waiter():
        with engine.connect() as conn:
            try:
                # VALUES, as authorize sends it (an INSERT ... SELECT would make its read
                # view at its SELECT, before the lock: docs/admin-sql.md says so)
                conn.execute(trunks.text(
                    "INSERT INTO calls (client_id, client_code, direction, number, state,"
                    " trunk_id, authorized_at) VALUES (:c, 'acme', 'out', :n, 'live', :t, :now)"),
                    {"c": client, "n": UK, "t": first, "now": NOW})
                seen["refusal"] = None
            except trunks.DBAPIError as exc:
                seen["refusal"] = (trunks.mysql_errno(exc), exc.orig.args[1])
            conn.rollback()
    thread = threading.Thread(target=waiter)
    thread.start()
    time.sleep(1.0)                        # the waiter is blocked on the row lock now
    assert "refusal" not in seen
    tx.commit()
    holder.close()
    thread.join(10)
    assert seen["refusal"] == (trunks.TRUNK_REFUSED, refusal)
