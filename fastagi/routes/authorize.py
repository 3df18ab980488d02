"""`authorize,<client>,<number>[,in|out]`: may this call go ahead, and for how long?

Sets ICT_RESULT, ICT_REASON, ICT_CAUSE and, when allowed, ICT_CALL_ID, ICT_MAX_MS,
ICT_DIAL, ICT_RATE (see docs/contract.md). Every variable is set on every answer, so a
value from an earlier attempt on the same channel never survives.
"""

from __future__ import annotations

import logging
import time

from fastagi import channel_vars as v
from fastagi.agi.channel import Channel
from fastagi.agi.errors import Unavailable
from fastagi.routes.call_arguments import parse_authorize
from fastagi.routes.clock import utc_now
from fastagi.services import Services
from fastagi.store import calls

log = logging.getLogger(__name__)

DEADLINE_SHARE = 0.8  # of --db-timeout: the rest is margin for the commit and the reply


def limits_of(services: Services) -> calls.Limits:
    config = services.config
    return calls.Limits(max_call_seconds=config.max_call_seconds,
                        dial_template=config.dial_template,
                        stale_grace_seconds=config.stale_grace_seconds)


async def handle(channel: Channel, services: Services) -> None:
    request = parse_authorize(channel.args, services.config.emergency_prefixes)
    channel.note(client=request.client_code, number=request.number,
                 direction=request.direction)
    context = calls.CallContext(uniqueid=channel.env.uniqueid, channel=channel.env.channel,
                                server=services.config.server_name)
    # Commit only while the answer can still reach the dialplan: a late commit would hold
    # a channel and credit for a call the dialplan was told to reject.
    deadline = time.monotonic() + services.config.db_timeout * DEADLINE_SHARE
    try:
        outcome = await services.db.run(calls.authorize, request, utc_now(services.clock),
                                        limits_of(services), context, deadline)
    except calls.DeadlineExceeded as exc:
        raise Unavailable(str(exc)) from exc
    admission = outcome.admission
    if request.emergency and admission.allowed:
        log.warning("emergency call allowed unbilled: client=%s number=%s call=%s channel=%s",
                    request.client_code, request.number, outcome.call_id, channel.env.channel)
    channel.note(decision=v.ALLOW if admission.allowed else v.REJECT,
                 reason=admission.reason, call_id=outcome.call_id)
    if admission.allowed:
        await channel.set_variables({
            v.RESULT: v.ALLOW,
            v.REASON: "",
            v.CAUSE: "",
            v.CALL_ID: outcome.call_id,
            v.MAX_MS: admission.max_seconds * 1000,
            v.DIAL: admission.dial_target,
            v.RATE: f"{admission.rate.rate_per_min:.6f}",
        })
    else:
        await channel.set_variables({
            v.RESULT: v.REJECT,
            v.REASON: admission.reason,
            v.CAUSE: admission.cause,
            v.CALL_ID: "",
            v.MAX_MS: "",
            v.DIAL: "",
            v.RATE: "",
        })
