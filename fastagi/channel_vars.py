"""Channel-variable names of the dialplan contract: the one source of truth.

The server sets these; dialplan/*.conf reads them; tests check both use exactly these names.
"""

RESULT = "ICT_RESULT"        # ALLOW or REJECT
REASON = "ICT_REASON"        # empty when allowed, else a reason from fastagi.reasons
CAUSE = "ICT_CAUSE"          # Q.850 cause for Hangup() when rejected
CALL_ID = "ICT_CALL_ID"      # the live call's id, handed back to `settle`
MAX_MS = "ICT_MAX_MS"        # maximum talk time in ms, for Dial(...,L(...))
DIAL = "ICT_DIAL"            # the dial target for Dial()
RATE = "ICT_RATE"            # rate per minute applied (USD)
COST = "ICT_COST"            # set by `settle`: what the call cost (USD)
HEALTH = "ICT_HEALTH"        # set by `health`: OK or DOWN

# Asterisk's own function, set by authorize when credit is reserved in slices (AGI SET
# VARIABLE and AMI Setvar write functions too): the channel hangs up that many seconds on.
TIMEOUT_ABSOLUTE = "TIMEOUT(absolute)"

ALLOW = "ALLOW"
REJECT = "REJECT"

ALL = (RESULT, REASON, CAUSE, CALL_ID, MAX_MS, DIAL, RATE, COST, HEALTH)
