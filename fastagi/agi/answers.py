"""How agent_login and agent_logout end a session: the sounds the caller hears, then
ICT_RESULT / ICT_REASON for the dialplan (and the session's log line)."""

from __future__ import annotations

from fastagi import channel_vars as v
from fastagi.agents import prompts
from fastagi.agi.channel import Channel


async def refuse(channel: Channel, reason: str, logged_as: str | None = None) -> None:
    """Play the refusal's sounds, then answer REJECT with the reason as logged."""
    for sound in prompts.refusal_sounds(reason):
        await play(channel, sound)
    await answer(channel, v.REJECT, logged_as or reason)


async def play(channel: Channel, sound: str) -> None:
    if not channel.hung_up:  # a dead channel answers 511 to STREAM FILE
        await channel.stream_file(sound)


async def answer(channel: Channel, result: str, reason: str) -> None:
    channel.note(decision=result, reason=reason or "-")
    await channel.set_variables({v.RESULT: result, v.REASON: reason})
