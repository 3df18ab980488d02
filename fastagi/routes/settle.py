"""`settle,<call id>,ms=<answered ms>,<dial status>`: rate and close a call.

Run from the dialplan's hangup handler. Sets ICT_COST (and ICT_RESULT=ALLOW). Settling
a call twice changes nothing the second time and answers the first cost again.
"""

from __future__ import annotations

import logging

from fastagi import channel_vars as v
from fastagi.agi.channel import Channel
from fastagi.agi.errors import BadRequest
from fastagi.arguments.calls import parse_settle
from fastagi.billing.money import format_money
from fastagi.clock import utc_now
from fastagi.services import Services
from fastagi.store import calls

log = logging.getLogger(__name__)


async def handle(channel: Channel, services: Services) -> None:
    request = parse_settle(channel.args)
    channel.note(call_id=request.call_id)
    if request.whole_seconds:
        log.warning("call %d settled from whole seconds (ANSWEREDTIME, cut down by Asterisk): "
                    "install the shipped dialplan/ictcontact.conf, which sends "
                    "ms=${ANSWEREDTIME_MS}, to bill every millisecond", request.call_id)
    outcome = await services.db.run(calls.settle, request.call_id, request.answered_ms,
                                    request.dial_status, utc_now(services.clock))
    if not outcome.found:
        raise BadRequest(f"no call with id {request.call_id}")
    if outcome.state == "rejected":
        raise BadRequest(f"call {request.call_id} was rejected: nothing to settle")
    channel.note(decision="SETTLED" if outcome.changed else "ALREADY-SETTLED",
                 cost=format_money(outcome.cost))
    await channel.set_variables({v.RESULT: v.ALLOW, v.COST: format_money(outcome.cost)})
