"""Table-driven FastAGI chats over StringTransport with an injected clock.

Each chat is a list of steps: ("in", bytes) Asterisk sends; ("out", bytes) exactly what the
server wrote since the last "out"; ("wait", s) advances the clock; ("open",) / ("closed",)
the server's side of the connection. Every chat ends closed with no timer left.
"""

from __future__ import annotations

import logging

import pytest
from sqlalchemy.exc import OperationalError
from twisted.internet.defer import Deferred
from twisted.internet.task import Clock
from twisted.internet.testing import StringTransport

from fastagi import channel_vars as v, reasons
from fastagi.agi.errors import BadRequest, Unavailable
from fastagi.agi.protocol import AgiServerProtocol
from fastagi.agi.quoting import command_line
from fastagi.agi.server import AgiServerFactory
from tests.support.chats import connect, finish, play as play_chat
from .helpers import SESSION_TIMEOUT, env_block, make_services, reject_answer, set_var

ALLOW = [("out", set_var(v.RESULT, v.ALLOW)), ("in", b"200 result=1\n")]
OK = b"200 result=1\n"
RAW_SET = f'SET VARIABLE "{v.DIAL}"\n'.encode()  # a value missing: Asterisk answers 520


class Recorder:
    """Routes for the chats; what they observe is kept here and asserted by the tests."""

    def __init__(self):
        self.seen = []

    async def allow(self, channel, services):
        await channel.set_variable(v.RESULT, v.ALLOW)

    async def echo(self, channel, services):
        self.seen.append(await channel.get_variable(v.DIAL))
        await channel.set_variables({v.RESULT: v.ALLOW, v.DIAL: "dial:" + channel.args[0]})

    async def raw(self, channel, services):
        self.seen.append(await channel.command("SET VARIABLE", v.DIAL))
        self.seen.append(channel.hung_up)
        await channel.set_variable(v.RESULT, v.ALLOW)

    async def verbose(self, channel, services):
        await channel.verbose("line one\nline two", 3)
        await channel.set_variable(v.RESULT, v.ALLOW)

    async def bad(self, channel, services):
        raise BadRequest("client code missing")

    async def unavailable(self, channel, services):
        raise Unavailable("database gave no answer")

    async def crash(self, channel, services):
        raise RuntimeError("bug")

    async def db_error(self, channel, services):
        raise OperationalError("SELECT 1", {}, Exception(2003, "Can't connect"))

    async def slow(self, channel, services):
        await Deferred()

    async def silent_handler(self, channel, services):
        channel.note(client="acme")

    async def newline(self, channel, services):
        await channel.set_variable(v.DIAL, "x\nEXEC Dial evil")

    def deferred(self, channel, services):
        self.seen.append(channel.env.query.get("x"))
        return Deferred.fromCoroutine(self.allow(channel, services))

    def plain(self, channel, services):
        return None

    def routes(self):
        return {name: getattr(self, name) for name in (
            "allow", "echo", "raw", "verbose", "bad", "unavailable", "crash", "db_error",
            "slow", "silent_handler", "newline", "deferred", "plain")}


CHATS = {
    "allow": [("in", env_block("allow")), *ALLOW, ("closed",)],
    "blank lines after the environment": [("in", env_block("allow", blank_lines=3)), *ALLOW,
                                          ("closed",)],
    "CRLF lines are tolerated": [("in", env_block("allow").replace(b"\n", b"\r\n")),
                                 ("out", set_var(v.RESULT, v.ALLOW)),
                                 ("in", b"200 result=1\r\n"), ("closed",)],
    "environment in small pieces": [("in", env_block("allow")[:7]), ("out", b""),
                                    ("in", env_block("allow")[7:]), *ALLOW, ("closed",)],
    "one command at a time": [
        ("in", env_block("echo", "0044207")),
        ("out", command_line("GET VARIABLE", v.DIAL)),
        ("in", b"200 result=1 (PJSIP/a (b) c)\n"),
        ("out", set_var(v.RESULT, v.ALLOW)), ("in", OK),
        ("out", set_var(v.DIAL, "dial:0044207")), ("open",), ("in", OK), ("closed",)],
    "HANGUP before a reply is an event, not the reply": [
        ("in", env_block("echo", "1")),
        ("out", command_line("GET VARIABLE", v.DIAL)),
        ("in", b"HANGUP\n"), ("out", b""), ("open",),
        ("in", b"200 result=0\n"),
        ("out", set_var(v.RESULT, v.ALLOW)), ("in", b"HANGUP\n" + OK),
        ("out", set_var(v.DIAL, "dial:1")), ("in", OK), ("closed",)],
    "a 520 block is one reply": [
        ("in", env_block("raw")),
        ("out", RAW_SET),
        ("in", b"520-Invalid command syntax.  Proper usage follows:\n"),
        ("in", b"Usage: SET VARIABLE <variablename> <value>\n\n"), ("out", b""),
        ("in", b"520 End of proper usage.\n"), *ALLOW, ("closed",)],
    "provisional 100 waits for the final reply": [
        ("in", env_block("allow")), ("out", set_var(v.RESULT, v.ALLOW)),
        ("in", b"100 result=0 Trying...\n"), ("open",), ("in", OK), ("closed",)],
    "verbose flattens line breaks": [
        ("in", env_block("verbose")),
        ("out", b'VERBOSE "line one line two" "3"\n'), ("in", OK), *ALLOW, ("closed",)],
    "511 on a dead channel fails closed": [
        ("in", env_block("verbose")), ("out", b'VERBOSE "line one line two" "3"\n'),
        ("in", b"HANGUP\n511 Command Not Permitted on a dead channel or intercept routine\n"),
        *reject_answer(reasons.UNAVAILABLE), ("closed",)],
    "510 fails closed": [
        ("in", env_block("verbose")), ("out", b'VERBOSE "line one line two" "3"\n'),
        ("in", b"510 Invalid or unknown command\n"),
        *reject_answer(reasons.UNAVAILABLE), ("closed",)],
    "unknown script": [("in", env_block("nosuch")), *reject_answer(reasons.BAD_REQUEST),
                       ("closed",)],
    "no script at all": [("in", b"agi_network: yes\n\n"),
                         *reject_answer(reasons.BAD_REQUEST), ("closed",)],
    "query string is not part of the script name": [
        ("in", env_block("deferred?x=1")), *ALLOW, ("closed",)],
    "BadRequest": [("in", env_block("bad")), *reject_answer(reasons.BAD_REQUEST),
                   ("closed",)],
    "Unavailable": [("in", env_block("unavailable")), *reject_answer(reasons.UNAVAILABLE),
                    ("closed",)],
    "unexpected exception fails closed": [
        ("in", env_block("crash")), *reject_answer(reasons.UNAVAILABLE), ("closed",)],
    "database error fails closed": [
        ("in", env_block("db_error")), *reject_answer(reasons.UNAVAILABLE), ("closed",)],
    "handler returning without an answer fails closed": [
        ("in", env_block("silent_handler")), *reject_answer(reasons.UNAVAILABLE),
        ("closed",)],
    "plain function without an answer fails closed": [
        ("in", env_block("plain")), *reject_answer(reasons.UNAVAILABLE), ("closed",)],
    "a newline in a value is never sent": [
        ("in", env_block("newline")), *reject_answer(reasons.UNAVAILABLE), ("closed",)],
    "handler past the session deadline fails closed": [
        ("in", env_block("slow")), ("wait", SESSION_TIMEOUT - 0.1), ("out", b""),
        ("wait", 0.1), *reject_answer(reasons.UNAVAILABLE), ("closed",)],
    "answer still given after HANGUP": [
        ("in", env_block("bad")), ("in", b"HANGUP\n"),
        *reject_answer(reasons.BAD_REQUEST), ("closed",)],
    "peer that never sends the environment": [
        ("in", env_block("allow")[:50]), ("wait", SESSION_TIMEOUT - 0.1), ("open",),
        ("wait", 0.1), ("out", b""), ("closed",)],
    "peer that stops answering": [
        ("in", env_block("allow")), ("out", set_var(v.RESULT, v.ALLOW)),
        ("wait", SESSION_TIMEOUT - 0.1), ("open",), ("wait", 0.1), ("closed",)],
    "peer that stops answering the answer": [
        ("in", env_block("bad")), ("out", set_var(v.RESULT, v.REJECT)),
        ("wait", SESSION_TIMEOUT), ("out", b""), ("closed",)],
    "garbage instead of a reply": [
        ("in", env_block("allow")), ("out", set_var(v.RESULT, v.ALLOW)),
        ("in", b"\x16\x03\x01\x00\xa5 garbage\n"), ("out", b""), ("closed",)],
    "garbage instead of the environment": [
        ("in", b"GET / HTTP/1.1\nHost: x\n\n"), ("out", b""), ("closed",)],
    "unsolicited line while the handler works": [
        ("in", env_block("slow")), ("in", b"200 result=1\n"), ("out", b""), ("closed",)],
    "over-long line": [("in", b"agi_network: " + b"x" * 9000), ("out", b""), ("closed",)],
    "over-long reply line": [
        ("in", env_block("allow")), ("out", set_var(v.RESULT, v.ALLOW)),
        ("in", b"200 result=1 (" + b"y" * 9000 + b")\n"), ("out", b""), ("closed",)],
    "unterminated 520 block": [
        ("in", env_block("raw")), ("out", RAW_SET),
        ("in", b"520-Invalid\n" + b"usage\n" * 600), ("closed",)],
}


def play(chat, recorder=None):
    recorder = recorder or Recorder()
    services = make_services()
    factory = AgiServerFactory(recorder.routes(), services)
    return play_chat(chat, factory, services.clock), factory


@pytest.mark.parametrize("chat", CHATS.values(), ids=list(CHATS))
def test_chat(chat):
    play(chat)


def test_observed_values():
    recorder = Recorder()
    play(CHATS["one command at a time"], recorder)
    play(CHATS["HANGUP before a reply is an event, not the reply"], recorder)
    play(CHATS["query string is not part of the script name"], recorder)
    assert recorder.seen == ["PJSIP/a (b) c", None, "1"]
    recorder = Recorder()
    protocol, _ = play(CHATS["a 520 block is one reply"], recorder)
    reply, hung_up = recorder.seen
    assert reply.code == 520 and len(reply.lines) == 4 and hung_up is False


def test_hung_up_is_seen_by_the_handler():
    recorder = Recorder()
    play([("in", env_block("raw")), ("out", RAW_SET),
          ("in", b"HANGUP\n520 Invalid command syntax.  Proper usage not available.\n"),
          *ALLOW, ("closed",)], recorder)
    assert recorder.seen[0].code == 520 and recorder.seen[1] is True


def test_one_log_line_per_session(caplog):
    caplog.set_level(logging.INFO, logger="fastagi")
    play(CHATS["allow"])
    play(CHATS["unknown script"])
    play(CHATS["handler returning without an answer fails closed"])
    play(CHATS["garbage instead of the environment"])
    play(CHATS["peer that stops answering the answer"])
    lines = [r.getMessage() for r in caplog.records if r.name == "fastagi.agi.server"]
    assert len(lines) == 5, lines
    assert lines[0].startswith("session script=allow client=- decision=ALLOW reason=- "
                               "elapsed_ms=0 peer=192.0.2.10:40001")
    assert lines[1].startswith("session script=nosuch client=- decision=REJECT "
                               "reason=bad-request")
    assert "unknown script 'nosuch'" in lines[1]
    assert lines[2].startswith("session script=silent_handler client=acme decision=REJECT "
                               "reason=unavailable")
    assert "script=-" in lines[3] and "ProtocolViolation" in lines[3]
    assert "decision=REJECT reason=bad-request" in lines[4]
    assert "answer not delivered: ReplyTimeout" in lines[4]
    assert f"elapsed_ms={round(SESSION_TIMEOUT * 1000)}" in lines[4]


def bare_protocol():
    """A protocol past its environment block whose session runner does nothing."""
    clock = Clock()
    protocol = AgiServerProtocol(clock, SESSION_TIMEOUT, lambda p, env: Deferred())
    transport = StringTransport()
    protocol.makeConnection(transport)
    protocol.dataReceived(env_block("x"))
    return protocol, transport, clock


def test_cancelled_queued_command_is_never_sent():
    protocol, transport, clock = bare_protocol()
    first = protocol.send_command(b"NOOP\n")
    second = protocol.send_command(b"VERBOSE x\n")
    third = protocol.send_command(b'VERBOSE "y"\n')
    second.cancel()
    second.addErrback(lambda f: None)
    assert transport.value() == b"NOOP\n"
    transport.clear()
    protocol.dataReceived(b"200 result=0\n")
    assert first.result.code == 200
    assert transport.value() == b'VERBOSE "y"\n'
    first.cancel()  # already fired: no effect
    protocol.dataReceived(b"200 result=1\n")
    assert third.result.code == 200
    protocol.close()
    finish(protocol, transport)
    assert clock.getDelayedCalls() == []


def test_cancelled_command_on_the_wire_discards_its_reply():
    protocol, transport, clock = bare_protocol()
    first = protocol.send_command(b"NOOP\n")
    second = protocol.send_command(b"NOOP\n")
    first.cancel()
    first.addErrback(lambda f: None)
    assert transport.value() == b"NOOP\n"  # second waits for first's reply
    protocol.dataReceived(b"200 result=0\n")
    assert transport.value() == b"NOOP\nNOOP\n"
    protocol.dataReceived(b"200 result=7\n")
    assert second.result.result == "7"
    protocol.close()
    finish(protocol, transport)
    assert clock.getDelayedCalls() == []


def test_connection_lost_errbacks_pending_commands():
    protocol, transport, clock = bare_protocol()
    failures = []
    for line in (b"NOOP\n", b"NOOP\n"):
        protocol.send_command(line).addErrback(failures.append)
    protocol.close()
    finish(protocol, transport)
    assert [f.type.__name__ for f in failures] == ["SessionClosed", "SessionClosed"]
    assert protocol.send_command(b"NOOP\n").addErrback(failures.append) is not None
    assert len(failures) == 3
    assert clock.getDelayedCalls() == []


def test_drain_waits_then_aborts():
    recorder = Recorder()
    services = make_services()
    factory = AgiServerFactory(recorder.routes(), services)
    protocol, transport = connect(factory)
    protocol.dataReceived(env_block("allow"))
    aborted = []
    factory.drain(5).addCallback(aborted.append)
    assert factory.buildProtocol(None) is None  # refuses new connections
    services.clock.advance(4.9)
    assert aborted == [] and not transport.disconnecting
    services.clock.advance(0.1)
    assert transport.disconnecting
    finish(protocol, transport)
    assert aborted == [1]
    assert services.clock.getDelayedCalls() == []


def test_drain_finishes_when_sessions_end():
    services = make_services()
    factory = AgiServerFactory(Recorder().routes(), services)
    protocol, transport = connect(factory)
    protocol.dataReceived(env_block("allow"))
    done = []
    factory.drain(5).addCallback(done.append)
    protocol.dataReceived(OK)
    finish(protocol, transport)
    assert done == [0]
    assert services.clock.getDelayedCalls() == []
