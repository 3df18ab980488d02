"""`authorize,<client>,<number>[,in|out]`: may this call go ahead, and for how long?

Sets ICT_RESULT and, when allowed, ICT_CALL_ID, ICT_MAX_MS, ICT_DIAL, ICT_RATE; when
rejected, ICT_REASON, ICT_CAUSE and an empty ICT_CALL_ID (see docs/contract.md). Only
what the dialplan reads is sent: every SET VARIABLE is one round trip through Asterisk's
AGI thread.
"""

from __future__ import annotations

import logging
import time

from fastagi import channel_vars as v
from fastagi.agi.channel import Channel
from fastagi.agi.errors import Unavailable
from fastagi.arguments.calls import parse_authorize
from fastagi.clock import utc_now
from fastagi.services import Services
from fastagi.store import calls

log = logging.getLogger(__name__)

DEADLINE_SHARE = 0.8  # of --db-timeout: the rest is margin for the commit and the reply


def limits_of(services: Services, sliced: bool = False) -> calls.Limits:
    """The limits of one authorization; `sliced`: admitted for at most one credit slice."""
    config = services.config
    longest = config.max_call_seconds
    if sliced:
        longest = min(longest, config.credit_slice_seconds)
    return calls.Limits(max_call_seconds=longest,
                        dial_template=config.dial_template,
                        stale_grace_seconds=config.stale_grace_seconds)


def storable(value: str) -> str:
    """Asterisk's bytes as valid UTF-8 for the call record (undecodable bytes become U+FFFD):
    an odd channel name must not refuse the call."""
    return value.encode("utf-8", "surrogateescape").decode("utf-8", "replace")


def abandon_check(channel: Channel, services: Services) -> calls.AbandonCheck:
    """Why a commit would now be useless, or None. Called from the database thread just
    before the commit: once the session is gone (peer vanished, or garbage such as a
    line break in caller ID broke the environment) or the deadline has passed, the
    dialplan cannot receive ALLOW, and a committed live call would hold a channel and
    credit until the stale sweep."""
    deadline = time.monotonic() + services.config.db_timeout * DEADLINE_SHARE

    def why() -> str | None:
        if not channel.is_open:
            return "the FastAGI session ended before the decision was committed"
        if time.monotonic() > deadline:
            return "past its deadline"
        return None
    return why


async def handle(channel: Channel, services: Services) -> None:
    request = parse_authorize(channel.args, services.config.emergency_numbers)
    channel.note(client=request.client_code, number=request.number,
                 direction=request.direction)
    context = calls.CallContext(uniqueid=storable(channel.env.uniqueid),
                                channel=storable(channel.env.channel),
                                server=services.config.server_name,
                                asterisk=channel.peer_host)
    sliced = services.config.slicing and not request.emergency
    try:
        outcome = await services.db.run(calls.authorize, request, utc_now(services.clock),
                                        limits_of(services, sliced), context,
                                        abandon_check(channel, services))
    except calls.Abandoned as exc:
        raise Unavailable(str(exc)) from exc
    admission = outcome.admission
    if request.emergency and admission.allowed:
        log.warning("emergency call allowed unbilled: client=%s number=%s call=%s channel=%s",
                    request.client_code, request.number, outcome.call_id, channel.env.channel)
    channel.note(decision=v.ALLOW if admission.allowed else v.REJECT,
                 reason=admission.reason, call_id=outcome.call_id)
    if outcome.rejected_by is not None and outcome.rejected_by != request.client_code:
        channel.note(rejected_by=outcome.rejected_by)  # a reseller above the client refused
    if admission.allowed:
        answer: dict = {}
        max_ms = admission.max_seconds * 1000
        if sliced:
            # the slice is the channel's hang-up time (extended over AMI while credit
            # lasts); L() only bounds the longest call. Set before ICT_RESULT: a channel
            # whose limit could not be set never hears ALLOW.
            answer[v.TIMEOUT_ABSOLUTE] = admission.max_seconds
            max_ms = services.config.max_call_seconds * 1000
        await channel.set_variables({
            **answer,
            v.RESULT: v.ALLOW,
            v.CALL_ID: outcome.call_id,
            v.MAX_MS: max_ms,
            v.DIAL: admission.dial_target,
            v.RATE: f"{admission.rate.rate_per_min:.6f}",
        })
    else:
        # ICT_CALL_ID is cleared so the settle hangup handler never settles an earlier
        # call of this channel again (harmless, but noise for the reviewer).
        await channel.set_variables({
            v.RESULT: v.REJECT,
            v.REASON: admission.reason,
            v.CAUSE: admission.cause,
            v.CALL_ID: "",
        })
