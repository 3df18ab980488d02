"""`health`: can this server reach its database? For monitoring and `hagi://` setups.

Sets ICT_HEALTH=OK and ICT_RESULT=ALLOW when `SELECT 1` answers within the database
timeout and the account holds every privilege the server needs (store.privileges);
otherwise ICT_HEALTH=DOWN and the server's REJECT / unavailable answer.
"""

from __future__ import annotations

from sqlalchemy.exc import SQLAlchemyError

from fastagi import channel_vars
from fastagi.agi.channel import Channel
from fastagi.agi.errors import Unavailable
from fastagi.services import Services
from fastagi.store.health import health_problem

OK = "OK"
DOWN = "DOWN"


async def handle(channel: Channel, services: Services) -> None:
    try:
        missing = await services.db.run(health_problem)
    except (Unavailable, SQLAlchemyError) as exc:
        await channel.set_variable(channel_vars.HEALTH, DOWN)
        raise Unavailable(f"health check failed: {exc}".splitlines()[0]) from exc
    if missing:  # the database answers, but every call would be `unavailable`
        await channel.set_variable(channel_vars.HEALTH, DOWN)
        raise Unavailable(f"health check failed: {missing}")
    await channel.set_variables({channel_vars.HEALTH: OK,
                                 channel_vars.RESULT: channel_vars.ALLOW,
                                 channel_vars.REASON: ""})
