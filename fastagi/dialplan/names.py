"""Names the dialplan and the product share, in one place.

Channel-variable names of the AGI contract live in fastagi.channel_vars; this module adds
what only the dialplan uses: the context names, the [globals] it needs, and which
variables each AGI script sets (so a checker can tell a variable read from one never set).
"""

from __future__ import annotations

from fastagi import channel_vars as cv

# Contexts of dialplan/ictcontact.conf that the generated contexts call.
OUTBOUND = "ict-outbound"
INBOUND = "ict-inbound"
INTERNAL = "ict-extension"
EMERGENCY = "ict-emergency"
SETTLE = "ict-settle"
REJECT = "ict-reject"
FAIL_CLOSED = "ict-fail-closed"
AGENT_LOGIN = "ict-agent-login"        # *11 (issue 10: agents and queues)
AGENT_LOGOUT = "ict-agent-logout"      # *12
INBOUND_QUEUE = "ict-inbound-queue"    # a DID that rings a queue

# Feature codes of every generated client context.
AGENT_LOGIN_CODE = "*11"
AGENT_LOGOUT_CODE = "*12"
CAMPAIGN = "ict-campaign"              # the dialer originates Local/s@ict-campaign/n
CAMPAIGN_PLAY = "ict-campaign-play"    # an answered contact of a campaign with a recording
CAMPAIGN_QUEUE = "ict-campaign-queue"  # an answered contact of a progressive campaign

# Generated contexts.
CLIENT_CONTEXT_PREFIX = "client-"
FROM_CARRIER = "ict-from-carrier"      # the carrier trunk's context: DIDs


def client_context(code: str) -> str:
    return CLIENT_CONTEXT_PREFIX + code


# Dialplan-only globals ([globals] of extensions.conf). Deliberately not ICT_*: that prefix
# is reserved for the contract variables of fastagi.channel_vars.
AGI_URL = "ICTCONTACT_AGI"
RING_TIMEOUT = "ICTCONTACT_RING_TIMEOUT"
EMERGENCY_TRUNK = "ICTCONTACT_EMERGENCY_TRUNK"
GLOBALS = (AGI_URL, RING_TIMEOUT, EMERGENCY_TRUNK)
CONTACTS = "ICTCONTACT_CONTACTS"       # channel variable: PJSIP_DIAL_CONTACTS result

# FastAGI scripts the dialplan calls and the contract variables each one sets.
AUTHORIZE = "authorize"
SETTLE_SCRIPT = "settle"
FAILOVER = "failover"
HEALTH = "health"
AGENT_LOGIN_SCRIPT = "agent_login"
AGENT_LOGOUT_SCRIPT = "agent_logout"
SCRIPT_SETS = {
    AUTHORIZE: (cv.RESULT, cv.REASON, cv.CAUSE, cv.CALL_ID, cv.MAX_MS, cv.DIAL, cv.TRUNK,
                cv.RATE),
    FAILOVER: (cv.RESULT, cv.REASON, cv.CAUSE, cv.DIAL, cv.TRUNK),
    SETTLE_SCRIPT: (cv.COST,),
    HEALTH: (cv.HEALTH,),
    AGENT_LOGIN_SCRIPT: (cv.RESULT, cv.REASON),
    AGENT_LOGOUT_SCRIPT: (cv.RESULT, cv.REASON),
}

# Variables the dialer sets on the channels it originates (AMI Originate `Variable:`).
ORIGINATE_SETS = cv.ORIGINATE_VARS
