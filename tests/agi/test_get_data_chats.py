"""GET DATA and STREAM FILE as StringTransport chats with an injected clock, and the
interactive scripts' longer budget. Steps as in tests/support/chats.py."""

from __future__ import annotations

import pytest
from twisted.internet.defer import Deferred

from fastagi import channel_vars as v, reasons
from fastagi.agi.channel import REPLY_MARGIN_S, Digits
from fastagi.agi.server import AgiServerFactory
from tests.support.chats import play as play_chat
from .helpers import SESSION_TIMEOUT, env_block, make_services, reject_answer, set_var

OK = b"200 result=1\n"
GET = b'GET DATA "agent-user" "5000" "4"\n'
GET_BOUND = REPLY_MARGIN_S + 5 * 5  # margin + timeout x (max digits + 1)
ALLOW = [("out", set_var(v.RESULT, v.ALLOW)), ("in", OK)]
INTERACTIVE_TIMEOUT = 100.0


class Recorder:
    def __init__(self):
        self.seen = []

    async def ask(self, channel, services):
        self.seen.append(await channel.get_data("agent-user", 5000, 4))
        await channel.set_variable(v.RESULT, v.ALLOW)

    async def say(self, channel, services):
        await channel.stream_file("goodbye")
        await channel.set_variable(v.RESULT, v.ALLOW)

    async def slow(self, channel, services):
        await Deferred()

    def routes(self):
        return {"ask": self.ask, "say": self.say, "slow": self.slow, "slow_interactive": self.slow}


CHATS = {
    "digits ended by #": (
        [("in", env_block("ask")), ("out", GET), ("in", b"200 result=1234\n"), *ALLOW,
         ("closed",)], Digits("1234")),
    "nothing typed": (
        [("in", env_block("ask")), ("out", GET), ("in", b"200 result= (timeout)\n"), *ALLOW,
         ("closed",)], Digits("", timed_out=True)),
    "some digits, then silence": (
        [("in", env_block("ask")), ("out", GET), ("in", b"200 result=12 (timeout)\n"), *ALLOW,
         ("closed",)], Digits("12", timed_out=True)),
    "caller hangs up while typing": (
        [("in", env_block("ask")), ("out", GET), ("in", b"200 result=-1\nHANGUP\n"), *ALLOW,
         ("closed",)], Digits("", hung_up=True)),
    "a slow typist outlasts the session timeout": (
        [("in", env_block("ask")), ("out", GET), ("wait", SESSION_TIMEOUT + 10), ("open",),
         ("in", b"200 result=98\n"), *ALLOW, ("closed",)], Digits("98")),
    "but not the GET DATA bound": (
        [("in", env_block("ask")), ("out", GET), ("wait", GET_BOUND - 0.1), ("open",),
         ("wait", 0.1), ("out", b""), ("closed",)], None),
    "stream file waits for the end of the sound": (
        [("in", env_block("say")), ("out", b'STREAM FILE "goodbye" ""\n'),
         ("in", b"200 result=0 endpos=9120\n"), *ALLOW, ("closed",)], None),
    "an interactive script outlasts the session timeout": (
        [("in", env_block("slow_interactive")), ("wait", SESSION_TIMEOUT), ("open",),
         ("wait", INTERACTIVE_TIMEOUT - SESSION_TIMEOUT - 0.1), ("out", b""), ("open",),
         ("wait", 0.1), *reject_answer(reasons.UNAVAILABLE), ("closed",)], None),
    "any other script does not": (
        [("in", env_block("slow")), ("wait", SESSION_TIMEOUT),
         *reject_answer(reasons.UNAVAILABLE), ("closed",)], None),
}


def play(chat, recorder):
    services = make_services(interactive_timeout=INTERACTIVE_TIMEOUT)
    factory = AgiServerFactory(recorder.routes(), services, interactive={"slow_interactive", "ask"})
    play_chat(chat, factory, services.clock)


@pytest.mark.parametrize("chat, digits", CHATS.values(), ids=list(CHATS))
def test_chat(chat, digits):
    recorder = Recorder()
    play(chat, recorder)
    assert recorder.seen == ([digits] if digits is not None else [])
