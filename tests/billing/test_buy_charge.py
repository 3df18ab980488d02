"""buy_charge_for: what the carrier of a call charges the operator, by the carrier's own
increments and connection fee. Expected values computed by hand (the comment on each row
shows the sum)."""

from decimal import Decimal

import pytest
from hypothesis import given, settings, strategies as st

from fastagi.billing.rating import Rate
from fastagi.billing.settlement import buy_charge_for, charge_for

D = Decimal
CARRIER_30_6 = Rate("4420", D("0.0060"), D("0"), 30, 6)
CARRIER_60_60 = Rate("44", D("0.0100"), D("0"), 60, 60)
CARRIER_1_1 = Rate("1", D("0.0030"), D("0"), 1, 1)
CARRIER_FEE = Rate("33", D("0.0200"), D("0.0050"), 30, 6)
CARRIER_ODD = Rate("49", D("0.004567"), D("0.000125"), 1, 1)


@pytest.mark.parametrize("rate, answered_ms, status, billed, cost", [
    # 30/6: 31 s -> 36 s, 36 x 0.006 / 60 = 0.0036
    (CARRIER_30_6, 31000, "ANSWER", 36, "0.0036"),
    # 30/6: 0.3 s answered -> the initial 30 s, 0.003
    (CARRIER_30_6, 300, "ANSWER", 30, "0.0030"),
    # 30/6: 36.001 s -> 42 s, 0.0042
    (CARRIER_30_6, 36001, "ANSWER", 42, "0.0042"),
    # 60/60: 61 s -> 120 s, 0.02; 60.0 s stays 60 s, 0.01
    (CARRIER_60_60, 61000, "ANSWER", 120, "0.0200"),
    (CARRIER_60_60, 60000, "ANSWER", 60, "0.0100"),
    # 1/1: 4,568 ms -> 5 s, 5 x 0.003 / 60 = 0.00025 -> 0.0003 (half-up)
    (CARRIER_1_1, 4568, "ANSWER", 5, "0.0003"),
    # 1/1: 10 s -> 0.0005 exactly
    (CARRIER_1_1, 10000, "ANSWER", 10, "0.0005"),
    # fee: 0.005 + 30 x 0.02 / 60 = 0.015; answered under 1 ms still pays fee + 30 s
    (CARRIER_FEE, 12000, "ANSWER", 30, "0.0150"),
    (CARRIER_FEE, 0, "ANSWER", 30, "0.0150"),
    (CARRIER_FEE, None, "ANSWER", 30, "0.0150"),
    # talk time reported with another status still counts as answered (as the sell side)
    (CARRIER_FEE, 31000, "CANCEL", 36, "0.0170"),
    # 6 places: 0.000125 + 7 x 0.004567 / 60 = 0.000657816.. -> 0.0007
    (CARRIER_ODD, 7000, "ANSWER", 7, "0.0007"),
    # unanswered: 0, the fee is not charged
    (CARRIER_FEE, None, "NOANSWER", 0, "0.0000"),
    (CARRIER_FEE, None, "BUSY", 0, "0.0000"),
    (CARRIER_FEE, None, "CHANUNAVAIL", 0, "0.0000"),
    (CARRIER_FEE, 0, "CONGESTION", 0, "0.0000"),
])
def test_buy_charge_by_the_carriers_increments(rate, answered_ms, status, billed, cost):
    charge = buy_charge_for(rate, answered_ms, status)
    assert charge.billable_seconds == billed
    assert charge.cost == D(cost)
    assert str(charge.cost) == cost          # 4 places, no exponent
    assert isinstance(charge.cost, Decimal)


def test_no_buy_rate_means_the_charge_is_unknown():
    assert buy_charge_for(None, 61000, "ANSWER") is None
    assert buy_charge_for(None, None, "NOANSWER") is None


def test_the_carrier_bills_what_was_talked_the_client_what_was_allowed():
    # The call was allowed 60 s; L() cut it, the bridge came down 400 ms later. The
    # client is billed at the limit, the carrier on 1/1 bills the 61st second it carried.
    sell = Rate("44", D("0.60"), D("0"), 1, 1)
    client = charge_for(sell, 60, 60400, "ANSWER", emergency=False)
    carrier = buy_charge_for(CARRIER_1_1, 60400, "ANSWER")
    assert (client.billable_seconds, client.cost) == (60, D("0.6000"))
    assert (carrier.billable_seconds, carrier.cost) == (61, D("0.0031"))


def test_the_buy_side_follows_the_same_rule_as_the_sell_side():
    # same rate on both sides, talk within the limit: same seconds, same cost
    for ms in (0, 1, 999, 30000, 30001, 61000, 3599999):
        sell = charge_for(CARRIER_FEE, 3600, ms, "ANSWER", emergency=False)
        buy = buy_charge_for(CARRIER_FEE, ms, "ANSWER")
        assert (buy.billable_seconds, buy.cost) == (sell.billable_seconds, sell.cost)


@settings(max_examples=300, deadline=None)
@given(ms=st.integers(min_value=0, max_value=10_800_000),
       initial=st.integers(min_value=1, max_value=120),
       subsequent=st.integers(min_value=1, max_value=120),
       rate=st.decimals(min_value=0, max_value=5, places=6),
       fee=st.decimals(min_value=0, max_value=1, places=6))
def test_buy_charge_properties(ms, initial, subsequent, rate, fee):
    carrier = Rate("9", rate, fee, initial, subsequent)
    charge = buy_charge_for(carrier, ms, "ANSWER")
    # billed at least the initial increment, covering the talk time, in whole steps
    assert charge.billable_seconds >= initial
    assert charge.billable_seconds * 1000 >= ms
    assert (charge.billable_seconds - initial) % subsequent == 0
    # less than one step too much
    assert charge.billable_seconds * 1000 - ms <= max(initial, subsequent) * 1000
    exact = fee + rate * charge.billable_seconds / 60
    assert abs(charge.cost - exact) <= D("0.00005")
    assert charge.cost.as_tuple().exponent == -4
