"""`agent_login,<client>,<endpoint>`: an agent logs in from a phone of its client (*11).

Interactive: reads the agent number and the PIN with GET DATA (core prompts), at most
agent_login_policy.tries_per_call times, and each try is decided and recorded in one
transaction (fastagi.store.agents.attempt_login). The caller hears the confirmation or the
refusal before the session ends; the dialplan gets ICT_RESULT=ALLOW (logged in) or
REJECT with ICT_REASON (the refusal, as in agent_login_log). Runs under the server's
--interactive-timeout, not the short --session-timeout.
"""

from __future__ import annotations

from fastagi import channel_vars as v
from fastagi.agents import prompts, rules
from fastagi.agi.answers import answer, play, refuse
from fastagi.agi.channel import Channel
from fastagi.arguments.agents import parse_agent_request
from fastagi.clock import utc_now
from fastagi.services import Services
from fastagi.store import agents

DIGIT_TIMEOUT_MS = 5000   # GET DATA: wait for the first key, and between keys
MAX_DIGITS = 10           # login numbers and PINs are at most 10 digits


async def handle(channel: Channel, services: Services) -> None:
    request = parse_agent_request("agent_login", channel.args)
    channel.note(client=request.client_code, endpoint=request.endpoint)
    check = await services.db.run(agents.check_place, request, utc_now(services.clock))
    if check.refusal:
        await refuse(channel, prompts.refusal_sounds(check.refusal), check.refusal)
        return
    prompt, reason = prompts.AGENT_USER, rules.NO_INPUT
    for _ in range(check.policy.tries_per_call):
        number = await channel.get_data(prompt, DIGIT_TIMEOUT_MS, MAX_DIGITS)
        pin = None
        if number.digits and not number.hung_up:
            pin = await channel.get_data(prompts.AGENT_PASS, DIGIT_TIMEOUT_MS, MAX_DIGITS)
        if number.hung_up or (pin is not None and pin.hung_up):
            await answer(channel, v.REJECT, rules.NO_INPUT)
            return
        now = utc_now(services.clock)
        if pin is None or not pin.digits:
            reason = rules.NO_INPUT
            await services.db.run(agents.log_refusal, request, reason, number.digits or None,
                                  now)
            prompt = prompts.AGENT_USER
            continue
        outcome = await services.db.run(agents.attempt_login, request, number.digits,
                                        pin.digits, now)
        reason = outcome.reason
        if outcome.allowed:
            channel.note(session=outcome.session_id, moved=outcome.moved)
            await play(channel, prompts.AGENT_LOGIN_OK)
            await answer(channel, v.ALLOW, "")
            return
        if outcome.now_locked:
            channel.note(locked="yes")
            await refuse(channel, prompts.refusal_sounds(rules.LOCKED), reason)
            return
        if reason not in rules.RETRYABLE:
            await refuse(channel, prompts.refusal_sounds(reason), reason)
            return
        prompt = prompts.AGENT_INCORRECT
    await refuse(channel, prompts.refusal_sounds(reason), reason)
