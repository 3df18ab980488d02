"""Trunk routing of calls under resellers (issues 22 + 23), real MariaDB: the route set
and margin protection are the OPERATOR's side, i.e. the top reseller's (the client of
master that pays the operator) plan and rate, never the retail plan its clients are on;
the operator's views count what the top reseller pays; a failover that ends in no-route
is in the call record."""

from __future__ import annotations

import json
from datetime import datetime
from decimal import Decimal

import pytest

from fastagi import reasons
from fastagi.billing.admission import CallRequest
from fastagi.store import calls, trunks
from tests.resellers.world import client_under, plan_of
from tests.routing.carriers import add_buy_rate, add_group, add_route, add_trunk, live_on
from tests.support.sql import execute, rows, scalar

pytestmark = pytest.mark.usefixtures("route_reads")

NOW = datetime(2026, 12, 7, 12, 0, 0)
LIMITS = calls.Limits(max_call_seconds=3600, dial_template="PJSIP/{number}@carrier",
                      stale_grace_seconds=300)
UK = "442071234567"
D = Decimal
MIN = 60, 60     # per-minute increments everywhere below: figures by hand are whole minutes


def out(code: str, number: str = UK) -> CallRequest:
    return CallRequest(client_code=code, number=number, direction="out")


@pytest.fixture
def tree(engine):
    """master -> r1 (operator plan `op`: pays 0.04/min) -> r2 (r1's plan: 0.06) -> leaf
    (r2's plan: 0.10 retail); `flat`, a client of master on `op`; `retail`, a client of
    master on `op-retail` (0.10). Every level has credit enough."""
    op = plan_of(engine, None, "op", {"44": ("0.04", "0", *MIN)})
    op_retail = plan_of(engine, None, "op-retail", {"44": ("0.10", "0", *MIN)})
    client_under(engine, "r1", None, op, balance="10", channel_limit=50)
    r1_sells = plan_of(engine, "r1", "r1-sells", {"44": ("0.06", "0", *MIN)})
    client_under(engine, "r2", "r1", r1_sells, balance="10", channel_limit=50)
    r2_sells = plan_of(engine, "r2", "r2-sells", {"44": ("0.10", "0", *MIN)})
    client_under(engine, "leaf", "r2", r2_sells, balance="10")
    client_under(engine, "flat", None, op, balance="10")
    client_under(engine, "retail", None, op_retail, balance="10")
    return {"op": op, "op_retail": op_retail, "r1_sells": r1_sells, "r2_sells": r2_sells}


@pytest.fixture
def dear_then_cheap(engine, tree):
    """UK: `dear` (buy 0.05: below the 0.10 retail and r2's 0.06, above r1's 0.04) first,
    then `cheap` (0.03)."""
    dear, cheap = add_trunk(engine, "dear"), add_trunk(engine, "cheap")
    add_buy_rate(engine, dear, "44", "0.05")
    add_buy_rate(engine, cheap, "44", "0.03")
    group = add_group(engine, "44")
    add_route(engine, group, dear, 10)
    add_route(engine, group, cheap, 20)
    return dear, cheap


def test_margin_protection_compares_the_buy_cost_with_what_the_top_reseller_pays(
        engine, dear_then_cheap):
    # retail 0.10 and r2's 0.06 are above dear's 0.05, but r1 pays the operator 0.04
    assert calls.authorize(engine, out("leaf"), NOW, LIMITS).trunk == "cheap"
    # the same operator price for a client of master: the same answer
    assert calls.authorize(engine, out("flat"), NOW, LIMITS).trunk == "cheap"
    # a client of master paying 0.10 itself is not protected from dear
    assert calls.authorize(engine, out("retail"), NOW, LIMITS).trunk == "dear"


def test_a_resellers_client_gets_no_route_when_only_a_loss_making_trunk_is_left(
        engine, dear_then_cheap):
    _, cheap = dear_then_cheap
    execute(engine, "UPDATE trunks SET status = 'disabled' WHERE id = :t", t=cheap)
    got = calls.authorize(engine, out("leaf"), NOW, LIMITS)
    assert not got.admission.allowed and got.admission.reason == reasons.NO_ROUTE
    assert got.rejected_by is None      # the operator's refusal, not a level's
    assert scalar(engine, "SELECT CONCAT(state, '|', reason, '|', reseller_levels)"
                  " FROM calls WHERE id = :i", i=got.call_id) == "rejected|no-route|0"
    assert scalar(engine, "SELECT COUNT(*) FROM call_charges") == 0
    # allow_loss on the route lets it through again
    execute(engine, "UPDATE routes SET allow_loss = 1")
    assert calls.authorize(engine, out("leaf"), NOW, LIMITS).trunk == "dear"


def test_the_route_set_is_the_top_resellers_operator_plan(engine, tree):
    std, prem, own = add_trunk(engine, "std"), add_trunk(engine, "prem"), add_trunk(engine, "own")
    for t in (std, prem, own):
        add_buy_rate(engine, t, "44", "0.01")
    add_route(engine, add_group(engine, "default"), std, 10)
    add_route(engine, add_group(engine, "44", plan_id=tree["op"]), prem, 10)
    # a group on a reseller's own retail plan is not the operator's: never used
    add_route(engine, add_group(engine, "44", plan_id=tree["r2_sells"]), own, 10)
    assert calls.authorize(engine, out("leaf"), NOW, LIMITS).trunk == "prem"
    assert calls.authorize(engine, out("flat"), NOW, LIMITS).trunk == "prem"
    assert calls.authorize(engine, out("retail"), NOW, LIMITS).trunk == "std"


def test_failover_of_a_resellers_call_uses_the_top_resellers_plan_and_rate(engine, tree):
    first, dear, second = (add_trunk(engine, n) for n in ("first", "dear", "second"))
    add_buy_rate(engine, first, "44", "0.02")
    add_buy_rate(engine, dear, "44", "0.05")       # r1 pays 0.04: a loss for the operator
    add_buy_rate(engine, second, "44", "0.035")
    group = add_group(engine, "44", plan_id=tree["op"])
    add_route(engine, group, first, 10)
    add_route(engine, group, dear, 20)
    add_route(engine, group, second, 30)
    add_route(engine, add_group(engine, "default"), dear, 10)   # not op's: never reached
    call = calls.authorize(engine, out("leaf"), NOW, LIMITS)
    assert call.trunk == "first"
    got = trunks.failover(engine, call.call_id, "CONGESTION", 34, "first", NOW)
    assert got.outcome == trunks.ALLOW and got.trunk.name == "second"
    assert scalar(engine, "SELECT route_outcome FROM calls WHERE id = :i", i=call.call_id) is None
    last = trunks.failover(engine, call.call_id, "CHANUNAVAIL", 38, "second", NOW)
    assert last.outcome == trunks.NO_ROUTE      # dear is left, and it loses money on r1
    assert live_on(engine, dear) == 0


def test_a_failover_that_ends_in_no_route_is_in_the_call_record(engine, dear_then_cheap):
    dear, cheap = dear_then_cheap
    call = calls.authorize(engine, out("retail"), NOW, LIMITS).call_id
    assert trunks.failover(engine, call, "CHANUNAVAIL", 38, "dear", NOW).trunk.name == "cheap"
    assert trunks.failover(engine, call, "CONGESTION", 34, "cheap", NOW).outcome == trunks.NO_ROUTE
    assert scalar(engine, "SELECT route_outcome FROM calls WHERE id = :i", i=call) == "no-route"
    settled = calls.settle(engine, call, None, "CONGESTION", NOW)
    assert settled.changed and settled.cost == 0
    # settled, and it says why; a repeated settle and failover change nothing
    assert not calls.settle(engine, call, None, "CONGESTION", NOW).changed
    assert trunks.failover(engine, call, "CONGESTION", 34, "cheap", NOW).outcome == trunks.NO_ROUTE
    assert tuple(rows(engine, "SELECT state, dial_status, route_outcome, reason, review_note"
                      " FROM calls WHERE id = :i", i=call)[0]) == (
        "settled", "CONGESTION", "no-route", None, None)
    # the operator's list of refusals shows it beside rejected attempts
    rejected = calls.authorize(engine, out("nobody"), NOW, LIMITS).call_id
    assert {(r.call_id, r.reason) for r in rows(
        engine, "SELECT call_id, reason FROM call_rejections")} == {
        (call, "no-route"), (rejected, reasons.UNKNOWN_CLIENT)}
    # a call that failed over and then talked is not a refusal
    other = calls.authorize(engine, out("retail"), NOW, LIMITS).call_id
    trunks.failover(engine, other, "CHANUNAVAIL", 38, "dear", NOW)
    calls.settle(engine, other, 61000, "ANSWER", NOW)
    assert scalar(engine, "SELECT route_outcome FROM calls WHERE id = :i", i=other) is None
    assert scalar(engine, "SELECT COUNT(*) FROM call_rejections WHERE call_id = :i", i=other) == 0


def test_the_operator_views_count_what_the_top_reseller_pays(engine, dear_then_cheap):
    # leaf (two levels under master) talks 60 s on cheap: retail 0.10, r2 pays r1 0.06,
    # r1 pays the operator 0.04; the carrier charges 0.03
    leaf = calls.authorize(engine, out("leaf"), NOW, LIMITS).call_id
    calls.settle(engine, leaf, 60000, "ANSWER", NOW)
    # flat (client of master on op) talks 120 s on cheap: pays 0.08, carrier 0.06
    flat = calls.authorize(engine, out("flat"), NOW, LIMITS).call_id
    calls.settle(engine, flat, 120000, "ANSWER", NOW)
    assert tuple(rows(engine, "SELECT cost, buy_cost, margin, reseller_levels FROM calls"
                      " WHERE id = :i", i=leaf)[0]) == (D("0.1000"), D("0.0300"), D("0.0700"), 2)
    assert scalar(engine, "SELECT cost FROM call_charges WHERE call_id = :i AND depth = 2",
                  i=leaf) == D("0.0400")
    # revenue 0.04 + 0.08 = 0.12; cost 0.03 + 0.06 = 0.09; margin 0.01 + 0.02 = 0.03
    # (calls.margin would say 0.07 + 0.02 = 0.09: the retail margin, not the operator's)
    expected = (2, D("3.00"), D("0.0900"), D("0.1200"), D("0.0300"))
    for view in ("trunk_daily_stats", "route_destination_daily_stats"):
        got = rows(engine, f"SELECT answered, minutes, cost, revenue, margin FROM {view}"
                           " WHERE day = '2026-12-07' AND trunk = 'cheap'")
        assert [tuple(r) for r in got] == [expected], view
    # a reseller call still talking: in attempts, no money yet
    calls.authorize(engine, out("leaf"), NOW, LIMITS)
    assert tuple(rows(engine, "SELECT attempts, revenue, margin FROM trunk_daily_stats"
                      " WHERE trunk = 'cheap'")[0]) == (3, D("0.1200"), D("0.0300"))


def test_call_rejections_reads_its_two_keys_not_every_call(engine, tree):
    client_id = scalar(engine, "SELECT id FROM clients WHERE code = 'flat'")
    # 20,000 settled calls, 1 in 100 rejected, 1 in 500 ended in no-route
    execute(engine, "INSERT INTO calls (client_id, client_code, number, state, reason,"
                    " route_outcome, authorized_at, settled_at, cost)"
                    " SELECT :cid, 'flat', '442071234567',"
                    "  IF(seq MOD 100 = 0, 'rejected', 'settled'),"
                    "  IF(seq MOD 100 = 0, 'no-credit', NULL),"
                    "  IF(seq MOD 500 = 1, 'no-route', NULL), :now, :now, IF(seq MOD 100 = 0, NULL, 0)"
                    " FROM seq_1_to_20000", cid=client_id, now=NOW)
    execute(engine, "ANALYZE TABLE calls")
    plan = json.loads(scalar(engine, "EXPLAIN FORMAT=JSON SELECT * FROM call_rejections"))
    text = json.dumps(plan)
    assert "ix_calls_route_outcome" in text and "ix_calls_state_expires" in text, plan
    assert '"access_type": "ALL"' not in text, plan
    assert scalar(engine, "SELECT COUNT(*) FROM call_rejections") == 200 + 40
    assert scalar(engine, "SELECT COUNT(*) FROM call_rejections WHERE reason = 'no-route'") == 40
