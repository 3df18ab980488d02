"""charge_for: what a finished call is charged, from the milliseconds Asterisk reports.
Expected values computed by hand (the comment on each row shows the sum)."""

from decimal import Decimal

import pytest
from hypothesis import given, settings, strategies as st

from fastagi.billing.rating import Rate
from fastagi.billing.settlement import charge_for

D = Decimal
PER_SECOND = Rate("44", D("0.60"), D("0"), 1, 1)            # 0.01 USD a second
PER_MINUTE = Rate("1", D("0.10"), D("0"), 60, 60)
WITH_FEE = Rate("33", D("0.05"), D("0.01"), 30, 6)
ODD = Rate("49", D("0.0123"), D("0.01"), 30, 6)
MINUTE_THEN_SECONDS = Rate("61", D("0.60"), D("0"), 60, 1)


@pytest.mark.parametrize("rate, max_seconds, answered_ms, status, billed, cost, capped, flagged", [
    # 4,568 ms on 1/1: 5 s x 0.01 = 0.05 (ANSWEREDTIME said 4 and billed 0.04)
    (PER_SECOND, 3600, 4568, "ANSWER", 5, "0.0500", False, False),
    # 59 s exactly stays 59 s; one ms more is 60 s
    (PER_SECOND, 3600, 59000, "ANSWER", 59, "0.5900", False, False),
    (PER_SECOND, 3600, 59001, "ANSWER", 60, "0.6000", False, False),
    # 2.96 s campaign call: 3 s = 0.03
    (PER_SECOND, 3600, 2960, "ANSWER", 3, "0.0300", False, False),
    # 60.4 s on 60/60: 120 s x 0.10 / 60 = 0.20
    (PER_MINUTE, 3600, 60400, "ANSWER", 120, "0.2000", False, False),
    (PER_MINUTE, 3600, 60000, "ANSWER", 60, "0.1000", False, False),
    # 0.3 s answered on 30/6 with a fee: 0.01 + 30 x 0.05 / 60 = 0.035
    (WITH_FEE, 3600, 300, "ANSWER", 30, "0.0350", False, False),
    # answered under 1 ms (ANSWEREDTIME_MS 0), or answered with no talk time reported
    (WITH_FEE, 3600, 0, "ANSWER", 30, "0.0350", False, False),
    (WITH_FEE, 3600, None, "ANSWER", 30, "0.0350", False, False),
    # 30.001 s on 30/6: 36 s, 0.01 + 36 x 0.05 / 60 = 0.04
    (WITH_FEE, 3600, 30001, "ANSWER", 36, "0.0400", False, False),
    # 31 s at 0.0123 with fee: 0.01 + 36 x 0.0123 / 60 = 0.01738 -> 0.0174
    (ODD, 3600, 31000, "ANSWER", 36, "0.0174", False, False),
    # 60/1: 5 s -> the first minute, 0.60; 60.001 s -> 61 s, 0.61
    (MINUTE_THEN_SECONDS, 3600, 5000, "ANSWER", 60, "0.6000", False, False),
    (MINUTE_THEN_SECONDS, 3600, 60001, "ANSWER", 61, "0.6100", False, False),
    # not answered: nothing, not even the fee
    (WITH_FEE, 3600, None, "NOANSWER", 0, "0.0000", False, False),
    (WITH_FEE, 3600, None, "BUSY", 0, "0.0000", False, False),
    (WITH_FEE, 3600, 0, "CANCEL", 0, "0.0000", False, False),
    # talk time without ANSWER (Queue leaves DIALSTATUS empty -> CANCEL): answered
    (PER_SECOND, 3600, 2960, "CANCEL", 3, "0.0300", False, False),
    # L() ended it at 600 s; measured a few ms later: billed 600 s, not flagged
    (PER_MINUTE, 600, 600004, "ANSWER", 600, "1.0000", True, False),
    (PER_MINUTE, 600, 600999, "ANSWER", 600, "1.0000", True, False),
    # a second or more above the limit: billed the limit, flagged for review
    (PER_MINUTE, 600, 601000, "ANSWER", 600, "1.0000", True, True),
    (PER_MINUTE, 600, 9999000, "ANSWER", 600, "1.0000", True, True),
])
def test_charge_for(rate, max_seconds, answered_ms, status, billed, cost, capped, flagged):
    charge = charge_for(rate, max_seconds, answered_ms, status, emergency=False)
    assert (charge.answered_ms, charge.billable_seconds, charge.cost, charge.capped,
            charge.flagged) == (answered_ms, billed, D(cost), capped, flagged)


def test_emergency_calls_cost_nothing():
    charge = charge_for(WITH_FEE, 3600, 65000, "ANSWER", emergency=True)
    assert (charge.billable_seconds, charge.cost) == (0, D("0"))


rates = st.builds(Rate, prefix=st.just("1"),
                  rate_per_min=st.decimals(min_value=0, max_value=20, places=6),
                  connection_fee=st.decimals(min_value=0, max_value=2, places=6),
                  initial_increment=st.integers(1, 120),
                  subsequent_increment=st.integers(1, 120))


@settings(max_examples=300, deadline=None)
@given(rate=rates, limit_steps=st.integers(0, 200), answered_ms=st.integers(0, 50_000_000),
       status=st.sampled_from(["ANSWER", "CANCEL", "NOANSWER"]))
def test_never_billed_past_the_limit_nor_below_the_initial_increment(rate, limit_steps,
                                                                     answered_ms, status):
    # authorize's maximum is always increment-aligned
    max_seconds = rate.initial_increment + limit_steps * rate.subsequent_increment
    charge = charge_for(rate, max_seconds, answered_ms, status, emergency=False)
    assert charge.billable_seconds <= max_seconds
    if status == "ANSWER" or answered_ms > 0:
        assert charge.billable_seconds >= rate.initial_increment
        assert charge.billable_seconds * 1000 >= min(answered_ms, max_seconds * 1000)
    else:
        assert (charge.billable_seconds, charge.cost) == (0, D("0"))
