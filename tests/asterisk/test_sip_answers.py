"""Every reject reason answers the caller with the SIP code docs/contract.md promises,
through the Q.850 cause the server picks and chan_pjsip's own mapping of causes to SIP."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from fastagi import reasons

CONTRACT = Path(__file__).resolve().parents[2] / "docs" / "contract.md"

# Transcribed by hand from Asterisk 22.10.1, channels/chan_pjsip.c, hangup_cause2sip():
# the Q.850 causes it has a case for and the SIP code each returns. Every other cause
# returns 0, and res/res_pjsip_session.c, ast_sip_session_terminate(), sends 0 as 603.
CHAN_PJSIP_CAUSE_TO_SIP = {
    23: 302,                      # REDIRECTED_TO_NEW_DESTINATION
    1: 404, 2: 404, 3: 404,       # UNALLOCATED, NO_ROUTE_TRANSIT_NET, NO_ROUTE_DESTINATION
    34: 503, 42: 503,             # NORMAL_CIRCUIT_CONGESTION, SWITCH_CONGESTION
    18: 408,                      # NO_USER_RESPONSE
    19: 480, 20: 480,             # NO_ANSWER, SUBSCRIBER_ABSENT
    21: 403,                      # CALL_REJECTED
    22: 410,                      # NUMBER_CHANGED
    31: 480,                      # NORMAL_UNSPECIFIED
    28: 484,                      # INVALID_NUMBER_FORMAT
    17: 486,                      # USER_BUSY
    38: 500,                      # FAILURE (NETWORK_OUT_OF_ORDER)
    29: 501,                      # FACILITY_REJECTED
    66: 503,                      # CHAN_NOT_IMPLEMENTED
    27: 502,                      # DESTINATION_OUT_OF_ORDER
    58: 488,                      # BEARERCAPABILITY_NOTAVAIL
    127: 500,                     # INTERWORKING
}
NO_CASE_ANSWER = 603


def sip_answer(cause: int) -> int:
    return CHAN_PJSIP_CAUSE_TO_SIP.get(cause, NO_CASE_ANSWER)


def contract_table() -> dict[str, tuple[int, int]]:
    """reason -> (cause, SIP answer) as docs/contract.md's reasons table states them."""
    rows = {}
    for line in CONTRACT.read_text().splitlines():
        found = re.fullmatch(r"\| `([a-z-]+)` \| [^|]+ \| (\d+) [A-Z_]+ \| (\d{3}) \|", line)
        if found:
            rows[found.group(1)] = (int(found.group(2)), int(found.group(3)))
    return rows


def test_the_contract_lists_every_reason():
    assert sorted(contract_table()) == sorted(reasons.ALL)


@pytest.mark.parametrize("reason", reasons.ALL)
def test_reason_cause_and_sip_answer_match_the_contract(reason):
    cause, answer = contract_table()[reason]
    assert reasons.cause_for(reason) == cause
    assert sip_answer(cause) == answer


def test_a_suspended_client_is_refused_403_not_603():
    # cause 52 (outgoing call barred) has no case in hangup_cause2sip: it would be 603
    assert sip_answer(52) == 603
    assert sip_answer(reasons.cause_for(reasons.SUSPENDED)) == 403


def test_the_comments_in_reasons_py_say_the_real_answer():
    source = Path(reasons.__file__).read_text()
    for name, cause in vars(reasons).items():
        if name.startswith("CAUSE_") and isinstance(cause, int) and cause != 16:
            comment = re.search(rf"^{name} = {cause}\s+# SIP (\d{{3}})", source, re.M)
            assert comment and int(comment.group(1)) == sip_answer(cause), name


# Transcribed by hand from Asterisk 22, ast_sip_hangup_sip2cause() (the SIP answer of the far
# end -> the Q.850 cause the PJSIP channel hangs up with, HANGUPCAUSE after Dial): the
# answers docs/contract.md's after-dial table lists.
SIP_TO_CAUSE = {
    404: 1, 410: 22, 484: 28, 403: 21, 603: 21, 503: 34, 500: 38, 502: 27, 408: 18,
    488: 58, 501: 29, 504: 102, 420: 3,
}


def after_dial_table() -> list[tuple[int, int, int]]:
    """(carrier's SIP answer, HANGUPCAUSE, caller's SIP answer) rows of docs/contract.md."""
    section = CONTRACT.read_text().split("### What the caller gets when no failover follows")[1]
    return [tuple(int(x) for x in found.groups()) for found in
            re.finditer(r"^\| (\d{3}) \| (\d+) \| (\d{3}) \|$", section, re.M)]


def test_after_dial_table_follows_chan_pjsip_both_ways():
    table = after_dial_table()
    assert len(table) == len(SIP_TO_CAUSE)
    for carrier, cause, caller in table:
        assert SIP_TO_CAUSE[carrier] == cause, carrier
        assert 1 <= cause <= 127          # [ict-after-dial] hangs up with it
        assert sip_answer(cause) == caller, carrier


def test_a_carriers_404_reaches_the_caller_as_404_not_480():
    assert sip_answer(SIP_TO_CAUSE[404]) == 404
    assert sip_answer(20) == 480          # the old Hangup(20) for every CHANUNAVAIL
