"""`slices.extension`, how far a live call may be extended, as a table: a whole slice,
part of one, not even one increment, the cap, fees, increments and free calls.

Expected values are worked out by hand in each row's comment. The base rate is 0.60 per
minute (0.01 per second), no fee, 60/60 increments; `available` is the client's credit
left once every reservation (this call's included) is deducted, so the call may spend
`available + reserved` in all.
"""

from __future__ import annotations

from decimal import Decimal as D

import pytest

from fastagi.billing.rating import FREE, Rate
from fastagi.billing.slices import extension

R = Rate("44", D("0.60"))
WITH_FEE = Rate("44", D("0.60"), connection_fee=D("0.10"))
BY_6S = Rate("44", D("0.60"), initial_increment=30, subsequent_increment=6)

# (rate, max_seconds, reserved, available, slice_seconds, cap_seconds, expected)
CASES = {
    # 3.00 + 100 pays far beyond 300 + 300 s: one whole slice, 600 s cost 6.00
    "a whole slice": (R, 300, "3.00", "100", 300, 3600, (600, "6.0000")),
    # 3.00 + 1.20 = 4.20 pays 420 s: 7 whole minutes
    "part of a slice, in whole increments": (R, 300, "3.00", "1.20", 300, 3600, (420, "4.2000")),
    # 3.00 + 0.60 = 3.60 pays exactly one more minute
    "exactly one more increment": (R, 300, "3.00", "0.60", 300, 3600, (360, "3.6000")),
    # 3.00 + 0.5999 pays 359.99 s: 300 s in whole minutes, no longer than now
    "a ten-thousandth short of one more increment": (R, 300, "3.00", "0.5999", 300, 3600, None),
    "no credit left": (R, 300, "3.00", "0", 300, 3600, None),
    # other calls overdrew: 3.00 - 1.00 = 2.00 pays 180 s, less than already allowed
    "credit below what is already reserved": (R, 300, "3.00", "-1.00", 300, 3600, None),
    # the cap: 3540 + 300 stops at 3600
    "the last part before the cap": (R, 3540, "35.40", "100", 300, 3600, (3600, "36.0000")),
    "already at the cap": (R, 3600, "36.00", "100", 300, 3600, None),
    "above a cap lowered since": (R, 600, "6.00", "100", 300, 300, None),
    # cap 3630 in whole minutes is 3600, which the call already has
    "a cap not on an increment boundary": (R, 3600, "36.00", "100", 300, 3630, None),
    "a zero slice extends nothing": (R, 300, "3.00", "100", 0, 3600, None),
    # the fee was reserved with the first increment: 0.70 + 0.60 = 1.30 = 0.10 + 2 minutes
    "the fee is counted once": (WITH_FEE, 60, "0.70", "0.60", 60, 3600, (120, "1.3000")),
    # 30/6: 0.30 + 0.10 = 0.40 pays 40 s: 30 + 6 = 36 s
    "30/6 increments": (BY_6S, 30, "0.30", "0.10", 60, 3600, (36, "0.3600")),
    # free calls need no credit: a whole slice
    "a free call": (FREE, 300, "0", "0", 300, 3600, (600, "0.0000")),
}


@pytest.mark.parametrize("rate, max_seconds, reserved, available, slice_s, cap, expected",
                         CASES.values(), ids=list(CASES))
def test_extension(rate, max_seconds, reserved, available, slice_s, cap, expected):
    got = extension(rate, max_seconds, D(reserved), D(available), slice_s, cap)
    if expected is None:
        assert got is None
    else:
        seconds, reservation = got
        assert (seconds, str(reservation)) == expected
