"""settle records the buy side on the real database: the carrier's charge by the buy rate
copied onto the attempt that carried the call, and the margin (cost - buy_cost).

The attempts are written here as the routing code writes them (a row per trunk tried,
the buy rate copied); this file tests what settle does with them."""

from __future__ import annotations

from datetime import datetime, timedelta
from decimal import Decimal

import pytest

from fastagi.billing.admission import CallRequest
from fastagi.store import calls
from tests.callcontrol.tenants import add_client, add_rate, default_plan_id, ledger_gap
from tests.support.sql import execute, rows, scalar

NOW = datetime(2026, 11, 25, 12, 0, 0)
LIMITS = calls.Limits(max_call_seconds=3600, dial_template="PJSIP/{number}@carrier",
                      stale_grace_seconds=300)
D = Decimal


@pytest.fixture
def world(engine):
    plan_id = default_plan_id(engine)
    add_rate(engine, plan_id, "44", "0.10")                                  # 60/60
    add_rate(engine, plan_id, "4420", "0.05", connection_fee="0.01", initial=30, subsequent=6)
    add_client(engine, "acme", balance="10.00")
    execute(engine, "INSERT INTO trunks (name, endpoint) VALUES ('carrier1', 'carrier1'),"
                    " ('carrier2', 'carrier2')")
    return {name: scalar(engine, "SELECT id FROM trunks WHERE name = :n", n=name)
            for name in ("carrier1", "carrier2")}


def live_call(engine, number: str = "442071234567", emergency: bool = False) -> int:
    got = calls.authorize(engine, CallRequest("acme", number, "out", emergency=emergency),
                          NOW, LIMITS)
    assert got.admission.allowed
    return got.call_id


def attempt(engine, call_id: int, n: int, trunk_id: int, rate: tuple | None,
            state: str = "live", dial_status: str | None = None) -> None:
    """An attempt as routing writes it; `rate` is (prefix, per min, fee, initial,
    subsequent) copied from the trunk's deck, or None for a trunk without a rate."""
    prefix, per_min, fee, initial, subsequent = rate or (None,) * 5
    execute(engine,
            "INSERT INTO call_attempts (call_id, attempt, trunk_id, state, started_at, ended_at,"
            " dial_status, buy_prefix, buy_rate_per_min, buy_connection_fee,"
            " buy_initial_increment, buy_subsequent_increment)"
            " VALUES (:c, :n, :t, :s, :at, IF(:s = 'live', NULL, :at), :ds, :p, :r, :f, :i, :q)",
            c=call_id, n=n, t=trunk_id, s=state, at=NOW + timedelta(seconds=n), ds=dial_status,
            p=prefix, r=per_min, f=fee, i=initial, q=subsequent)


def buy_side(engine, call_id: int) -> tuple:
    return tuple(rows(engine, "SELECT cost, buy_billable_seconds, buy_cost, margin, trunk_id"
                              " FROM calls WHERE id = :i", i=call_id)[0])


def test_answered_call_records_the_carriers_charge_and_the_margin(engine, world):
    call_id = live_call(engine)
    attempt(engine, call_id, 1, world["carrier1"], ("4420", "0.006", "0", 30, 6))
    settled = calls.settle(engine, call_id, 31000, "ANSWER", NOW + timedelta(minutes=1))
    # sell: 0.01 + 36 x 0.05 / 60 = 0.04; buy: 36 s x 0.006 / 60 = 0.0036
    assert settled.cost == D("0.0400")
    assert buy_side(engine, call_id) == (D("0.0400"), 36, D("0.0036"), D("0.0364"),
                                         world["carrier1"])


def test_the_attempt_that_carried_the_call_is_rated_not_the_one_that_failed(engine, world):
    call_id = live_call(engine)
    attempt(engine, call_id, 1, world["carrier1"], ("44", "0.001", "0", 1, 1),
            state="failed", dial_status="CHANUNAVAIL")
    attempt(engine, call_id, 2, world["carrier2"], ("442", "0.012", "0.002", 60, 60))
    calls.settle(engine, call_id, 61000, "ANSWER", NOW + timedelta(minutes=2))
    # carrier2, 60/60: 61 s -> 120 s, 0.002 + 120 x 0.012 / 60 = 0.026
    # sell 30/6: 61 s -> 66 s, 0.01 + 66 x 0.05 / 60 = 0.065
    assert buy_side(engine, call_id) == (D("0.0650"), 120, D("0.0260"), D("0.0390"),
                                         world["carrier2"])


def test_negative_margin_of_a_route_that_allows_a_loss(engine, world):
    # UK mobile (44, 0.10/min 60/60) bought at 0.15/min 1/1 on a route with allow_loss
    call_id = live_call(engine, "447700900123")
    attempt(engine, call_id, 1, world["carrier2"], ("447", "0.15", "0.01", 1, 1))
    calls.settle(engine, call_id, 90500, "ANSWER", NOW + timedelta(minutes=2))
    # sell: 120 s x 0.10 / 60 = 0.20; buy: 0.01 + 91 x 0.15 / 60 = 0.2375
    assert buy_side(engine, call_id) == (D("0.2000"), 91, D("0.2375"), D("-0.0375"),
                                         world["carrier2"])
    assert scalar(engine, "SELECT SUM(margin) FROM calls") == D("-0.0375")


def test_unanswered_call_costs_nothing_either_side(engine, world):
    call_id = live_call(engine)
    attempt(engine, call_id, 1, world["carrier1"], ("4420", "0.006", "0.005", 30, 6))
    calls.settle(engine, call_id, None, "NOANSWER", NOW + timedelta(seconds=30))
    assert buy_side(engine, call_id) == (D("0.0000"), 0, D("0.0000"), D("0.0000"),
                                         world["carrier1"])


def test_trunk_without_a_buy_rate_leaves_the_buy_side_unknown(engine, world):
    call_id = live_call(engine)
    attempt(engine, call_id, 1, world["carrier1"], None)
    calls.settle(engine, call_id, 10000, "ANSWER", NOW + timedelta(seconds=30))
    # sell 30/6: 10 s -> 30 s, 0.01 + 30 x 0.05 / 60 = 0.035
    assert buy_side(engine, call_id) == (D("0.0350"), None, None, None, world["carrier1"])


def test_legacy_call_without_a_trunk_has_no_buy_side(engine, world):
    call_id = live_call(engine)
    settled = calls.settle(engine, call_id, 10000, "ANSWER", NOW + timedelta(seconds=30))
    assert settled.cost == D("0.0350")
    assert buy_side(engine, call_id) == (D("0.0350"), None, None, None, None)


def test_emergency_call_through_a_trunk_costs_the_operator_not_the_client(engine, world):
    cid = scalar(engine, "SELECT id FROM clients WHERE code = 'acme'")
    call_id = live_call(engine, "112", emergency=True)
    attempt(engine, call_id, 1, world["carrier1"], ("112", "0.02", "0", 60, 60))
    calls.settle(engine, call_id, 125000, "ANSWER", NOW + timedelta(minutes=3))
    # buy: 180 s x 0.02 / 60 = 0.06, sell 0: the margin is the operator's loss
    assert buy_side(engine, call_id) == (D("0.0000"), 180, D("0.0600"), D("-0.0600"),
                                         world["carrier1"])
    assert scalar(engine, "SELECT balance FROM client_accounts WHERE client_id = :i",
                  i=cid) == D("10.0000")


def test_emergency_call_on_the_emergency_trunk_has_no_buy_side(engine, world):
    call_id = live_call(engine, "112", emergency=True)
    calls.settle(engine, call_id, 60000, "ANSWER", NOW + timedelta(minutes=1))
    assert buy_side(engine, call_id) == (D("0.0000"), None, None, None, None)


def test_settling_again_changes_nothing_even_if_the_attempt_changed(engine, world):
    cid = scalar(engine, "SELECT id FROM clients WHERE code = 'acme'")
    call_id = live_call(engine)
    attempt(engine, call_id, 1, world["carrier1"], ("4420", "0.006", "0", 30, 6))
    calls.settle(engine, call_id, 31000, "ANSWER", NOW + timedelta(minutes=1))
    first = buy_side(engine, call_id)
    # a hostile repeat with other figures, after someone changed the copied rate
    execute(engine, "UPDATE call_attempts SET buy_rate_per_min = 9 WHERE call_id = :i", i=call_id)
    again = calls.settle(engine, call_id, 999000, "ANSWER", NOW + timedelta(minutes=20))
    assert not again.changed and again.cost == D("0.0400")
    assert buy_side(engine, call_id) == first
    assert ledger_gap(engine, cid) == 0


def test_a_stale_call_settled_late_gets_its_buy_side(engine, world):
    call_id = live_call(engine)
    attempt(engine, call_id, 1, world["carrier1"], ("4420", "0.006", "0", 30, 6))
    assert calls.close_stale(engine, NOW + timedelta(days=1)) == 1
    assert buy_side(engine, call_id)[2] is None
    calls.settle(engine, call_id, 31000, "ANSWER", NOW + timedelta(days=1, minutes=1))
    assert buy_side(engine, call_id)[1:4] == (36, D("0.0036"), D("0.0364"))


def test_an_admin_rerating_a_call_moves_its_margin(engine, world):
    call_id = live_call(engine)
    attempt(engine, call_id, 1, world["carrier1"], ("4420", "0.006", "0", 30, 6))
    calls.settle(engine, call_id, 31000, "ANSWER", NOW + timedelta(minutes=1))
    execute(engine, "UPDATE calls SET cost = 0.0100 WHERE id = :i", i=call_id)
    assert buy_side(engine, call_id)[3] == D("0.0064")


def test_margin_is_derived_and_buy_cost_not_negative(engine, world):
    call_id = live_call(engine)
    calls.settle(engine, call_id, 31000, "ANSWER", NOW + timedelta(minutes=1))
    with pytest.raises(Exception, match="margin"):
        execute(engine, "UPDATE calls SET margin = 5 WHERE id = :i", i=call_id)
    with pytest.raises(Exception, match="ck_calls_buy_cost"):
        execute(engine, "UPDATE calls SET buy_cost = -1 WHERE id = :i", i=call_id)
