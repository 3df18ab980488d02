"""Rejection reasons of the dialplan contract and the Q.850 cause each hangs up with.

The cause decides the SIP answer chan_pjsip sends the caller (docs/contract.md): its
hangup_cause2sip() (channels/chan_pjsip.c, Asterisk 22) maps a handful of causes to a
SIP code and every other one to 0, which ast_sip_session_terminate()
(res/res_pjsip_session.c) sends as 603 Decline. So 52 (outgoing call barred) would answer
603, not 403: a suspended client's calls are rejected with 21 (call rejected) instead.
tests/asterisk/test_sip_answers.py holds this table against chan_pjsip's mapping.
"""

UNKNOWN_CLIENT = "unknown-client"
SUSPENDED = "suspended"
NO_RATE = "no-rate"
NO_CREDIT = "no-credit"
CHANNEL_LIMIT = "channel-limit"
BAD_REQUEST = "bad-request"
UNAVAILABLE = "unavailable"
NO_ROUTE = "no-route"          # no usable trunk (issue 22): none routed, all full/cooling/at a loss

# Q.850 causes, with the SIP answer chan_pjsip gives each
CAUSE_UNALLOCATED = 1                  # SIP 404
CAUSE_NO_ROUTE_DESTINATION = 3         # SIP 404 (hangup_cause2sip: 1, 2 and 3 -> 404)
CAUSE_NORMAL_CLEARING = 16             # (normal end of an answered call: BYE)
CAUSE_USER_BUSY = 17                   # SIP 486
CAUSE_CALL_REJECTED = 21               # SIP 403
CAUSE_CONGESTION = 34                  # SIP 503
CAUSE_TEMPORARY_FAILURE = 41           # SIP 603 (no case in hangup_cause2sip)

CAUSE_FOR_REASON = {
    UNKNOWN_CLIENT: CAUSE_CALL_REJECTED,
    SUSPENDED: CAUSE_CALL_REJECTED,
    NO_RATE: CAUSE_UNALLOCATED,
    NO_CREDIT: CAUSE_CALL_REJECTED,
    CHANNEL_LIMIT: CAUSE_CONGESTION,
    BAD_REQUEST: CAUSE_TEMPORARY_FAILURE,
    UNAVAILABLE: CAUSE_TEMPORARY_FAILURE,
    NO_ROUTE: CAUSE_NO_ROUTE_DESTINATION,
}

ALL = tuple(CAUSE_FOR_REASON)


def cause_for(reason: str) -> int:
    """The Q.850 cause for a rejection reason (41, temporary failure, if unknown)."""
    return CAUSE_FOR_REASON.get(reason, CAUSE_TEMPORARY_FAILURE)
