"""Statement periods and totals (pure)."""

from datetime import datetime
from decimal import Decimal

import pytest

from fastagi.billing.statement import Payment, Period, Statement, Usage, minutes_of


@pytest.mark.parametrize("text, start, end", [
    ("2026-11", datetime(2026, 11, 1), datetime(2026, 12, 1)),
    ("2026-12", datetime(2026, 12, 1), datetime(2027, 1, 1)),
    ("2027-01", datetime(2027, 1, 1), datetime(2027, 2, 1)),
])
def test_a_period_is_a_utc_calendar_month(text, start, end):
    period = Period.parse(text)
    assert (period.start, period.end, str(period)) == (start, end, text)
    assert period.next().start == end


@pytest.mark.parametrize("text", ["2026-13", "2026-00", "2026-1", "26-11", "2026/11", "",
                                  "2026-11-01", " 2026-11", "1969-12"])
def test_a_bad_period_says_the_form(text):
    with pytest.raises(ValueError, match=r"--period must be a month as YYYY-MM \(e\.g\. 2026-11\)"):
        Period.parse(text)


@pytest.mark.parametrize("seconds, minutes", [(0, "0.00"), (60, "1.00"), (125, "2.08"),
                                               (7, "0.12"), (30, "0.50"), (3, "0.05")])
def test_minutes_are_two_places_half_up(seconds, minutes):
    assert minutes_of(seconds) == Decimal(minutes)


def test_the_closing_balance_is_opening_plus_payments_plus_corrections_minus_usage():
    at = datetime(2026, 11, 5)
    s = Statement("acme", "Acme", Period(2026, 11), Decimal("10.0001"),
                  (Payment(at, "topup", "a", None, Decimal("50")),
                   Payment(at, "correction", "b", None, Decimal("-5.0002")),
                   Payment(at, "opening", "opening balance", None, Decimal("1"))),
                  (Usage("UK", "44", False, False, 3, 180, Decimal("0.0300")),
                   Usage("Emergency calls (free)", None, True, False, 1, 60, Decimal("0"))))
    assert s.payments == Decimal("51")
    assert s.corrections == Decimal("-5.0002")
    assert s.usage_cost == Decimal("0.03")
    assert s.closing_balance == Decimal("55.9699")
    assert (s.calls, s.seconds, s.minutes) == (4, 240, Decimal("4.00"))
