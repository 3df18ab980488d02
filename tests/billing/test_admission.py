"""`decide`, the authorization rule, as a table: each reject reason, the order of the
checks, the credit boundaries (to the ten-thousandth), channels, increments and the cap.

Every expected value is worked out by hand in the row's comment; the base client is
active with 10.0000 of balance, no credit limit, nothing reserved, 2 channels, none
busy; the base rate is 0.60 per minute (0.01 per second), no fee, 60/60 increments;
the cap (max_call_seconds) is 3600.
"""

from __future__ import annotations

from dataclasses import replace
from decimal import Decimal as D

import pytest

from fastagi import reasons
from fastagi.billing.admission import Admission, CallRequest, ClientSnapshot, decide
from fastagi.billing.rating import FREE, Rate

CAP = 3600
DEFAULT_TEMPLATE = "PJSIP/{number}@carrier"
NUMBER = "442071234567"
TARGET = f"PJSIP/{NUMBER}@carrier"
R = Rate("44", D("0.60"))
WITH_FEE = Rate("44", D("0.60"), connection_fee=D("0.10"))
FEE_ONLY = Rate("44", D("0"), connection_fee=D("0.05"))
BY_6S = Rate("44", D("0.60"), initial_increment=30, subsequent_increment=6)
BY_1S = Rate("44", D("0.60"), initial_increment=1, subsequent_increment=1)
TINY = Rate("44", D("0.0007"), initial_increment=1, subsequent_increment=1)
ZERO_RATE = Rate("44", D("0"))

BASE = ClientSnapshot(id=1, code="acme", status="active", balance=D("10.0000"),
                      credit_limit=D("0"), channel_limit=2, live_calls=0, reserved=D("0"),
                      dial_template=None, rate_inbound=False)
OUT = CallRequest("acme", NUMBER)
IN = CallRequest("acme", NUMBER, direction="in")
EMERGENCY = CallRequest("acme", "112", emergency=True)


def client(**changes) -> ClientSnapshot:
    return replace(BASE, **changes)


def allowed(rate: Rate, seconds: int, reservation: str, target: str = TARGET) -> Admission:
    return Admission(allowed=True, rate=rate, max_seconds=seconds,
                     reservation=D(reservation), dial_target=target)


def refused(reason: str, rate: Rate | None = None) -> Admission:
    return Admission(allowed=False, reason=reason, rate=rate)


# (request, client, rate, cap, expected)
CASES = {
    # --- who may call --------------------------------------------------------------------
    "unknown client": (OUT, None, R, CAP, refused(reasons.UNKNOWN_CLIENT)),
    "unknown client, even for an emergency number": (
        EMERGENCY, None, None, CAP, refused(reasons.UNKNOWN_CLIENT)),
    "suspended client": (OUT, client(status="suspended"), R, CAP, refused(reasons.SUSPENDED)),
    # emergency skips status, rate, credit and channels: free, the whole cap, no reservation
    "emergency from a suspended client with no credit and no channel": (
        EMERGENCY, client(status="suspended", balance=D("-5"), live_calls=2), None, CAP,
        allowed(FREE, 3600, "0", "PJSIP/112@carrier")),
    "emergency inbound has no dial target": (
        CallRequest("acme", "112", direction="in", emergency=True), client(), None, CAP,
        allowed(FREE, 3600, "0", "")),
    # --- rates ----------------------------------------------------------------------------
    "no rate for an outbound number": (OUT, client(), None, CAP, refused(reasons.NO_RATE)),
    "inbound is free when the plan does not rate it (no rate needed)": (
        IN, client(), None, CAP, allowed(FREE, 3600, "0.0000", "")),
    "inbound rated: no rate refuses": (
        IN, client(rate_inbound=True), None, CAP, refused(reasons.NO_RATE)),
    # 10.0000 at 0.01/s: 1000 s, whole minutes: 960 s costing 9.60
    "inbound rated: priced like outbound, no dial target": (
        IN, client(rate_inbound=True), R, CAP, allowed(R, 960, "9.6000", "")),
    "outbound with credit for 16 minutes": (OUT, client(), R, CAP, allowed(R, 960, "9.6000")),
    "the client's own dial template wins": (
        OUT, client(dial_template="SIP/trunk/{number}"), R, CAP,
        allowed(R, 960, "9.6000", f"SIP/trunk/{NUMBER}")),
    # --- credit boundaries: balance + credit limit - reserved ---------------------------------
    "exactly the first minute (0.60)": (OUT, client(balance=D("0.60")), R, CAP,
                                        allowed(R, 60, "0.6000")),
    "a ten-thousandth short of the first minute": (
        OUT, client(balance=D("0.5999")), R, CAP, refused(reasons.NO_CREDIT, R)),
    "zero balance": (OUT, client(balance=D("0")), R, CAP, refused(reasons.NO_CREDIT, R)),
    "overdrawn balance": (OUT, client(balance=D("-1")), R, CAP, refused(reasons.NO_CREDIT, R)),
    "the credit limit pays (balance 0, limit 0.60)": (
        OUT, client(balance=D("0"), credit_limit=D("0.60")), R, CAP, allowed(R, 60, "0.6000")),
    "the credit limit covers an overdraft up to it (-0.40 + 1.00)": (
        OUT, client(balance=D("-0.40"), credit_limit=D("1.00")), R, CAP,
        allowed(R, 60, "0.6000")),
    "reservations of live calls are deducted (1.20 - 0.60)": (
        OUT, client(balance=D("1.20"), reserved=D("0.60"), live_calls=1), R, CAP,
        allowed(R, 60, "0.6000")),
    "reservations leave a ten-thousandth too little (1.20 - 0.6001)": (
        OUT, client(balance=D("1.20"), reserved=D("0.6001"), live_calls=1), R, CAP,
        refused(reasons.NO_CREDIT, R)),
    # --- connection fee: needed once, on top of the first increment ---------------------------
    "fee + first minute exactly (0.10 + 0.60)": (
        OUT, client(balance=D("0.70")), WITH_FEE, CAP, allowed(WITH_FEE, 60, "0.7000")),
    "fee + first minute a ten-thousandth short": (
        OUT, client(balance=D("0.6999")), WITH_FEE, CAP, refused(reasons.NO_CREDIT, WITH_FEE)),
    "a fee-only rate: the fee exactly buys the whole cap": (
        OUT, client(balance=D("0.05")), FEE_ONLY, CAP, allowed(FEE_ONLY, 3600, "0.0500")),
    "a fee-only rate: a cent short of the fee": (
        OUT, client(balance=D("0.04")), FEE_ONLY, CAP, refused(reasons.NO_CREDIT, FEE_ONLY)),
    "a zero rate needs no credit": (
        OUT, client(balance=D("0")), ZERO_RATE, CAP, allowed(ZERO_RATE, 3600, "0.0000")),
    # --- increments ---------------------------------------------------------------------
    # 30/6: 0.35 buys 35 s, whole increments: 30 s (0.30); 0.36 buys 36 s = 30 + 6
    "30/6 increments: credit for 35 s gives 30 s": (
        OUT, client(balance=D("0.35")), BY_6S, CAP, allowed(BY_6S, 30, "0.3000")),
    "30/6 increments: credit for 36 s gives 36 s": (
        OUT, client(balance=D("0.36")), BY_6S, CAP, allowed(BY_6S, 36, "0.3600")),
    "30/6 increments: less than the initial 30 s": (
        OUT, client(balance=D("0.29")), BY_6S, CAP, refused(reasons.NO_CREDIT, BY_6S)),
    # 1/1: 0.0599 buys 5.99 s: 5 s costing 0.05
    "per-second billing": (OUT, client(balance=D("0.0599")), BY_1S, CAP,
                           allowed(BY_1S, 5, "0.0500")),
    # 0.0007/min, 4 s cost 0.0000467, which rounds to 0.0000: paid by nothing; 5 s would
    # round to 0.0001
    "what rounds to 0.0000 needs no credit": (
        OUT, client(balance=D("0")), TINY, CAP, allowed(TINY, 4, "0.0000")),
    # --- the cap --------------------------------------------------------------------------
    "the cap in whole increments (90 s cap, 60/60: 60 s)": (
        OUT, client(), R, 90, allowed(R, 60, "0.6000")),
    "a cap under the first increment still allows that increment": (
        OUT, client(), R, 30, allowed(R, 60, "0.6000")),
    "plenty of credit stops at the cap": (
        OUT, client(balance=D("1000")), R, CAP, allowed(R, 3600, "36.0000")),
    # --- channels ---------------------------------------------------------------------------
    "one channel of two busy": (OUT, client(live_calls=1), R, CAP, allowed(R, 960, "9.6000")),
    "every channel busy": (OUT, client(live_calls=2), R, CAP, refused(reasons.CHANNEL_LIMIT, R)),
    "more live calls than channels (limit lowered)": (
        OUT, client(live_calls=3), R, CAP, refused(reasons.CHANNEL_LIMIT, R)),
    "no channel at all": (OUT, client(channel_limit=0), R, CAP,
                          refused(reasons.CHANNEL_LIMIT, R)),
    "inbound takes a channel too": (
        IN, client(live_calls=2), None, CAP, refused(reasons.CHANNEL_LIMIT, FREE)),
    # --- order of the checks: the first failing rule is the reason ------------------------
    "suspended before no rate": (OUT, client(status="suspended"), None, CAP,
                                 refused(reasons.SUSPENDED)),
    "no rate before no credit": (OUT, client(balance=D("0")), None, CAP,
                                 refused(reasons.NO_RATE)),
    "no credit before channels": (OUT, client(balance=D("0"), live_calls=2), R, CAP,
                                  refused(reasons.NO_CREDIT, R)),
}


@pytest.mark.parametrize("request_, snapshot, rate, cap, expected", CASES.values(),
                         ids=list(CASES))
def test_decide(request_, snapshot, rate, cap, expected):
    got = decide(request_, snapshot, rate, cap, DEFAULT_TEMPLATE)
    assert got == expected
    if got.allowed:  # money is written with its 4 places
        assert str(got.reservation) == str(expected.reservation)
