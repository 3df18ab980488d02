"""`agent_logout,<client>,<endpoint>`: whoever is logged in at the calling phone logs out
(*12). No PIN: the phone is where the session is. Sets ICT_RESULT=ALLOW (logged out) or
REJECT with ICT_REASON (not-logged-in, client-suspended, foreign-extension, ...); the
caller hears "agent logged off" or the refusal.
"""

from __future__ import annotations

from fastagi import channel_vars as v
from fastagi.agents import prompts
from fastagi.agi.answers import answer, play, refuse
from fastagi.agi.channel import Channel
from fastagi.arguments.agents import parse_agent_request
from fastagi.clock import utc_now
from fastagi.services import Services
from fastagi.store import agents


async def handle(channel: Channel, services: Services) -> None:
    request = parse_agent_request("agent_logout", channel.args)
    channel.note(client=request.client_code, endpoint=request.endpoint)
    outcome = await services.db.run(agents.logout, request, utc_now(services.clock))
    if outcome.session_id is None:
        await refuse(channel, prompts.refusal_sounds(outcome.reason), outcome.reason)
        return
    channel.note(session=outcome.session_id)
    await play(channel, prompts.AGENT_LOGGED_OFF)
    await answer(channel, v.ALLOW, "")
