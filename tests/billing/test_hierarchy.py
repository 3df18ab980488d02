"""`decide_levels`, the rule for a client under resellers, as a table: which level refuses
(and is named), in what order, the least duration any level's credit allows, and what each
level reserves.

Base: the client (acme) has 10.0000, 2 channels, none busy, and rates 0.60/min (60/60);
above it r2 (depth 1) and r1 (depth 2), each active with 10.0000, 5 channels, none busy,
buying at 0.30/min (r2) and 0.12/min (r1), 60/60. The cap is 3600 s. Worked by hand in
each row's comment.
"""

from __future__ import annotations

from dataclasses import replace
from decimal import Decimal as D

import pytest

from fastagi import reasons
from fastagi.billing.admission import CallRequest, ClientSnapshot, decide
from fastagi.billing.hierarchy import Level, decide_levels
from fastagi.billing.rating import FREE, Rate

CAP = 3600
TEMPLATE = "PJSIP/{number}@carrier"
NUMBER = "442071234567"
SELL = Rate("44", D("0.60"))
R2_BUYS = Rate("44", D("0.30"))
R1_BUYS = Rate("44", D("0.12"), connection_fee=D("0.05"), initial_increment=30,
               subsequent_increment=6)


def snap(id_: int, code: str, **changes) -> ClientSnapshot:
    base = ClientSnapshot(id=id_, code=code, status="active", balance=D("10.0000"),
                          credit_limit=D("0"), channel_limit=5, live_calls=0,
                          reserved=D("0"), dial_template=None, rate_inbound=False)
    return replace(base, **changes)


CLIENT = snap(3, "acme", channel_limit=2)
OUT = CallRequest("acme", NUMBER)


def levels(r2: dict | None = None, r1: dict | None = None, r2_rate=R2_BUYS, r1_rate=R1_BUYS):
    return (Level(snap(2, "r2", **(r2 or {})), 1, r2_rate),
            Level(snap(1, "r1", **(r1 or {})), 2, r1_rate))


def test_no_levels_is_exactly_decide():
    for client in (CLIENT, replace(CLIENT, status="suspended"), replace(CLIENT, balance=D(0)),
                   None):
        got = decide_levels(OUT, client, SELL, (), CAP, TEMPLATE)
        assert got.admission == decide(OUT, client, SELL, CAP, TEMPLATE)
        assert got.charges == ()
        assert got.rejected_by == (None if got.admission.allowed or client is None
                                   else "acme")


def test_every_level_allows_and_each_reserves_its_own_price():
    got = decide_levels(OUT, CLIENT, SELL, levels(), CAP, TEMPLATE)
    # client: 10 / 0.60 = 16.67 min -> 960 s (60/60); r2: 10 / 0.30 -> 3600 (cap);
    # r1: (10 - 0.05) / 0.12 -> cap. Least: 960 s.
    assert got.admission.allowed and got.admission.max_seconds == 960
    assert got.admission.reservation == D("9.6000")
    assert [(c.client_id, c.depth, c.reservation) for c in got.charges] == [
        (2, 1, D("4.8000")),              # 16 min x 0.30
        (1, 2, D("1.9700"))]              # 0.05 + 16 min x 0.12
    assert got.rejected_by is None


def test_the_least_credit_of_any_level_bounds_the_call():
    # r1 has 0.29 of credit left (10 - 9.71 reserved): (0.29 - 0.05) / 0.12 = 2 min ->
    # 30 + 15 x 6 = 120 s; its reservation is exactly 0.05 + 0.24 = 0.29
    got = decide_levels(OUT, CLIENT, SELL, levels(r1={"reserved": D("9.71")}), CAP, TEMPLATE)
    assert got.admission.max_seconds == 120
    assert got.admission.reservation == D("1.2000")
    assert [c.reservation for c in got.charges] == [D("0.6000"), D("0.2900")]


@pytest.mark.parametrize("lv, reason, by", [
    # status is checked at every level before any rate
    (levels(r1={"status": "suspended"}, r2_rate=None), reasons.SUSPENDED, "r1"),
    (levels(r2={"status": "suspended"}), reasons.SUSPENDED, "r2"),
    # the nearest level without a rate is named
    (levels(r2_rate=None, r1_rate=None), reasons.NO_RATE, "r2"),
    (levels(r1_rate=None), reasons.NO_RATE, "r1"),
    # credit before channels: r1 full of channels, r2 without credit -> r2's no-credit
    (levels(r2={"balance": D("0.0049")}, r1={"live_calls": 5}), reasons.NO_CREDIT, "r2"),
    # r1's floor: balance -5 with a credit limit of 5.04 leaves 0.04, under its 0.05 fee
    (levels(r1={"balance": D("-5"), "credit_limit": D("5.04")}), reasons.NO_CREDIT, "r1"),
    (levels(r1={"live_calls": 5}), reasons.CHANNEL_LIMIT, "r1"),
    (levels(r2={"channel_limit": 0}), reasons.CHANNEL_LIMIT, "r2"),
])
def test_the_first_level_that_refuses_is_named(lv, reason, by):
    got = decide_levels(OUT, CLIENT, SELL, lv, CAP, TEMPLATE)
    assert (got.admission.allowed, got.admission.reason, got.rejected_by) == (False, reason, by)
    assert got.charges == ()


def test_the_client_is_decided_before_any_reseller():
    got = decide_levels(OUT, replace(CLIENT, live_calls=2), SELL,
                        levels(r1={"status": "suspended"}), CAP, TEMPLATE)
    assert (got.admission.reason, got.rejected_by) == (reasons.CHANNEL_LIMIT, "acme")


def test_a_reseller_with_exactly_enough_credit_admits_and_one_ten_thousandth_less_refuses():
    # r2 pays 0.30/min, 60/60: its first minute costs 0.3000
    enough = decide_levels(OUT, CLIENT, SELL, levels(r2={"balance": D("0.3000")}), CAP, TEMPLATE)
    assert enough.admission.allowed and enough.admission.max_seconds == 60
    assert enough.charges[0].reservation == D("0.3000")
    short = decide_levels(OUT, CLIENT, SELL, levels(r2={"balance": D("0.2999")}), CAP, TEMPLATE)
    assert (short.admission.reason, short.rejected_by) == (reasons.NO_CREDIT, "r2")


def test_emergency_is_free_at_every_level_whatever_their_state():
    lv = levels(r2={"status": "suspended", "balance": D(0), "channel_limit": 0}, r1_rate=None)
    got = decide_levels(CallRequest("acme", "112", emergency=True), CLIENT, None, lv, CAP,
                        TEMPLATE)
    assert got.admission.allowed and got.admission.reservation == 0
    assert [(c.client_id, c.rate, c.reservation) for c in got.charges] == [
        (2, FREE, 0), (1, FREE, 0)]


def test_inbound_is_free_at_a_level_whose_plan_does_not_rate_it():
    inbound = CallRequest("acme", NUMBER, direction="in")
    lv = (Level(snap(2, "r2", rate_inbound=True), 1, R2_BUYS), Level(snap(1, "r1"), 2, None))
    got = decide_levels(inbound, replace(CLIENT, rate_inbound=False), None, lv, CAP, TEMPLATE)
    # the client is free (3600 s), r2 rates inbound: 10 / 0.30 = 33.3 min -> 1980 s; r1 free
    assert got.admission.allowed and got.admission.max_seconds == 1980
    assert got.admission.reservation == 0
    assert [c.reservation for c in got.charges] == [D("9.9000"), 0]


def test_each_charge_names_its_levels_plan_for_routing():
    # routing reads the top level's plan (charges[-1]): the plan its rate comes from
    with_plans = (replace(levels()[0], plan_id=22), replace(levels()[1], plan_id=11))
    got = decide_levels(OUT, CLIENT, SELL, with_plans, CAP, TEMPLATE)
    assert [(c.client_id, c.plan_id, c.rate) for c in got.charges] == [
        (2, 22, R2_BUYS), (1, 11, R1_BUYS)]
    emergency = decide_levels(CallRequest("acme", "112", emergency=True), CLIENT, SELL,
                              with_plans, CAP, TEMPLATE)
    assert [c.plan_id for c in emergency.charges] == [22, 11]
