"""Channel-variable names of the dialplan contract: the one source of truth.

The server sets these; dialplan/*.conf reads them; tests check both use exactly these names.
"""

RESULT = "ICT_RESULT"        # ALLOW or REJECT
REASON = "ICT_REASON"        # empty when allowed, else a reason from fastagi.reasons
CAUSE = "ICT_CAUSE"          # Q.850 cause for Hangup() when rejected
CALL_ID = "ICT_CALL_ID"      # the live call's id, handed back to `settle`
MAX_MS = "ICT_MAX_MS"        # maximum talk time in ms, for Dial(...,L(...))
DIAL = "ICT_DIAL"            # the dial target for Dial()
TRUNK = "ICT_TRUNK"          # trunks.name of the trunk ICT_DIAL goes through; unset/empty:
                             # no trunk route (a dial template), so no failover
RATE = "ICT_RATE"            # rate per minute applied (USD)
COST = "ICT_COST"            # set by `settle`: what the call cost (USD)
HEALTH = "ICT_HEALTH"        # set by `health`: OK or DOWN

# Asterisk's own function, set by authorize when credit is reserved in slices (AGI SET
# VARIABLE and AMI Setvar write functions too): the channel hangs up that many seconds on.
TIMEOUT_ABSOLUTE = "TIMEOUT(absolute)"

ALLOW = "ALLOW"
REJECT = "REJECT"
DONE = "DONE"                # `failover` only: no failover for this answer, it stands

ALL = (RESULT, REASON, CAUSE, CALL_ID, MAX_MS, DIAL, TRUNK, RATE, COST, HEALTH)

# Set by the dialer (`ictcontact dialer`) on the channel it originates, from the campaign's
# database row: read by [ict-campaign], [ict-campaign-play] and [ict-campaign-queue] in
# dialplan/ictcontact.conf.
# Not ICT_*: the FastAGI server never sets them.
CAMPAIGN_CLIENT = "ICTCONTACT_CAMPAIGN_CLIENT"        # the campaign's client code
CAMPAIGN_NUMBER = "ICTCONTACT_CAMPAIGN_NUMBER"        # the contact's number
CAMPAIGN_ATTEMPT = "ICTCONTACT_CAMPAIGN_ATTEMPT"      # campaign_attempts.id (for the log)
CAMPAIGN_RECORDING = "ICTCONTACT_CAMPAIGN_RECORDING"  # what an answered contact hears
CAMPAIGN_QUEUE = "ICTCONTACT_CAMPAIGN_QUEUE"          # progressive: the queue's Asterisk name
CAMPAIGN_QUEUE_WAIT = "ICTCONTACT_CAMPAIGN_QUEUE_WAIT"  # ... and the longest wait there (s)

ORIGINATE_VARS = (CAMPAIGN_CLIENT, CAMPAIGN_NUMBER, CAMPAIGN_ATTEMPT, CAMPAIGN_RECORDING,
                  CAMPAIGN_QUEUE, CAMPAIGN_QUEUE_WAIT)
