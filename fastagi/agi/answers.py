"""How a script that talks to the caller ends its session: the sounds the caller hears,
then ICT_RESULT / ICT_REASON for the dialplan (and the session's log line). The script
chooses the sounds (agent_login and agent_logout: fastagi.agents.prompts)."""

from __future__ import annotations

from typing import Iterable

from fastagi import channel_vars as v
from fastagi.agi.channel import Channel


async def refuse(channel: Channel, sounds: Iterable[str], reason: str) -> None:
    """Play `sounds`, then answer REJECT with `reason`."""
    for sound in sounds:
        await play(channel, sound)
    await answer(channel, v.REJECT, reason)


async def play(channel: Channel, sound: str) -> None:
    if not channel.hung_up:  # a dead channel answers 511 to STREAM FILE
        await channel.stream_file(sound)


async def answer(channel: Channel, result: str, reason: str) -> None:
    channel.note(decision=result, reason=reason or "-")
    await channel.set_variables({v.RESULT: result, v.REASON: reason})
