"""`failover,<call id>,<DIALSTATUS>,<HANGUPCAUSE>,<trunk>`: the Dial on a trunk failed; the
next trunk, if any (issue 22, docs/contract.md "Failover").

Records the attempt (failed, or ended when the answer is the number's own), releases its
trunk, counts the trunk's failure (N in a row: a cool-down every server sees), and takes
the next usable trunk of the call's route. Answers, setting only what the dialplan reads:
- ICT_RESULT=ALLOW with the new ICT_DIAL and ICT_TRUNK (ICT_CALL_ID is unchanged);
- ICT_RESULT=REJECT, ICT_REASON=no-route, ICT_CAUSE=3: no trunk left (or no tries left);
  ICT_CALL_ID is kept, so the settle handler closes the call at no cost;
- ICT_RESULT=DONE: no failover for this answer (not a trunk failure, or the call is no
  longer live): the Dial's own outcome stands.
A repeat of the same request (AGI retried, hagi) answers the same and changes nothing.
"""

from __future__ import annotations

import logging

from fastagi import channel_vars as v
from fastagi import reasons
from fastagi.agi.channel import Channel
from fastagi.agi.errors import BadRequest
from fastagi.arguments.failover import parse_failover
from fastagi.clock import utc_now
from fastagi.services import Services
from fastagi.store import trunks

log = logging.getLogger(__name__)


async def handle(channel: Channel, services: Services) -> None:
    request = parse_failover(channel.args)
    channel.note(call_id=request.call_id, trunk=request.trunk, dial_status=request.dial_status,
                 cause=request.cause)
    outcome = await services.db.run(trunks.failover, request.call_id, request.dial_status,
                                    request.cause, request.trunk, utc_now(services.clock))
    if not outcome.found:
        raise BadRequest(f"no call with id {request.call_id}")
    if outcome.mismatch:
        raise BadRequest(f"call {request.call_id}: {outcome.mismatch}")
    channel.note(decision=outcome.outcome, next_trunk=outcome.trunk.name if outcome.trunk else "",
                 repeated=outcome.repeated)
    if outcome.outcome == trunks.ALLOW:
        await channel.set_variables({
            v.DIAL: outcome.dial_target(),
            v.TRUNK: outcome.trunk.name,
            v.RESULT: v.ALLOW,
        })
    elif outcome.outcome == trunks.NO_ROUTE:
        await channel.set_variables({
            v.RESULT: v.REJECT,
            v.REASON: reasons.NO_ROUTE,
            v.CAUSE: reasons.cause_for(reasons.NO_ROUTE),
        })
    else:
        await channel.set_variables({v.RESULT: v.DONE})
