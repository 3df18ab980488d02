"""A scripted fake Asterisk over real TCP: every fault ends in a definite answer or a
clean close of that session only, and the server keeps serving everyone else."""

from __future__ import annotations

import pytest
import pytest_twisted
from twisted.internet import reactor
from twisted.internet.defer import gatherResults

from fastagi import channel_vars as v, reasons
from fastagi.agi.errors import CommandFailed
from fastagi.testing.fake_asterisk import GARBAGE, Faults, run_session, usage_block
from fastagi.agi.quoting import command_line
from fastagi.agi.server import AgiServerFactory

from .helpers import make_services

TIMEOUT = 0.5  # the server's session timeout in these tests


async def allow(channel, services):
    value = await channel.get_variable(v.DIAL)
    await channel.set_variables({v.RESULT: v.ALLOW, v.DIAL: "|".join([value or "", *channel.args])})


async def answer_first(channel, services):
    reply = await channel.command("ANSWER")
    if not reply.ok:
        raise CommandFailed("ANSWER", reply)
    await channel.set_variable(v.RESULT, v.ALLOW)


ROUTES = {"allow": allow, "answer": answer_first}


def rejected(reason):
    return {v.RESULT: v.REJECT, v.REASON: reason, v.CAUSE: str(reasons.cause_for(reason))}


@pytest_twisted.async_yield_fixture
async def server():
    factory = AgiServerFactory(ROUTES, make_services(reactor, session_timeout=TIMEOUT,
                                                     db_timeout=0.2))
    port = reactor.listenTCP(0, factory, backlog=1024, interface="127.0.0.1")
    yield factory, port.getHost().port
    await port.stopListening()


def session(port, script, *args, **kwargs):
    kwargs.setdefault("timeout", 5.0)
    return run_session(reactor, "127.0.0.1", port, script, args, **kwargs)


@pytest_twisted.ensureDeferred
async def test_normal_session_with_query_string_and_quoting(server):
    factory, port = server
    result = await session(port, "allow?x=1", "acme", 'say "hi" \\ bye',
                           variables={v.DIAL: "PJSIP/a b"})
    assert result.server_closed
    assert result.commands == (
        f'GET VARIABLE "{v.DIAL}"',
        f'SET VARIABLE "{v.RESULT}" "{v.ALLOW}"',
        f'SET VARIABLE "{v.DIAL}" ' + r'"PJSIP/a b|acme|say \"hi\" \\ bye"')
    assert dict(result.set_by_server) == {v.RESULT: v.ALLOW,
                                          v.DIAL: r'PJSIP/a b|acme|say "hi" \ bye'}
    assert result.received == b"".join(c.encode() + b"\n" for c in result.commands)


FAULTS = {
    "extra blank lines": (Faults(blank_lines=3), "allow", {v.RESULT: v.ALLOW, v.DIAL: ""}),
    "HANGUP before the first reply": (Faults(hangup_at=1), "allow",
                                      {v.RESULT: v.ALLOW, v.DIAL: ""}),
    "HANGUP before the last reply": (Faults(hangup_at=3), "allow",
                                     {v.RESULT: v.ALLOW, v.DIAL: ""}),
    "dead channel: 511, answer still set": (Faults(dead=True), "answer",
                                            rejected(reasons.UNAVAILABLE)),
    "HANGUP then 511": (Faults(hangup_at=1), "answer", rejected(reasons.UNAVAILABLE)),
    "520 usage block": (Faults(scripted={2: usage_block("Usage: SET VARIABLE <n> <v>")}),
                        "allow", rejected(reasons.UNAVAILABLE)),
    "510": (Faults(scripted={1: b"510 Invalid or unknown command\n"}), "allow",
            rejected(reasons.UNAVAILABLE)),
    "unknown script": (Faults(), "nosuch", rejected(reasons.BAD_REQUEST)),
    "never answers": (Faults(silent_from=1), "allow", {}),
    "never answers the rejection": (Faults(silent_from=2), "nosuch", {v.RESULT: v.REJECT}),
    "environment never completes": (Faults(env_stall=True), "allow", {}),
    "garbage instead of the environment": (Faults(env_garbage=GARBAGE), "allow", {}),
    "garbage instead of a reply": (Faults(scripted={1: GARBAGE}), "allow", {}),
    "over-long line": (Faults(scripted={1: b"200 result=1 (" + b"x" * 10000 + b")\n"}),
                       "allow", {}),
}


@pytest.mark.parametrize("faults, script, expected", FAULTS.values(), ids=list(FAULTS))
@pytest_twisted.ensureDeferred
async def test_fault_ends_definitely_and_server_survives(server, faults, script, expected):
    factory, port = server
    started = reactor.seconds()
    result = await session(port, script, faults=faults)
    assert result.server_closed, "the server must close every session itself"
    assert dict(result.set_by_server) == expected
    assert reactor.seconds() - started < TIMEOUT * 5
    # one command at a time: the server never wrote more than it had answers for + 1
    answered = len(result.commands) - (0 if faults.silent_from is None else
                                       len(result.commands) - faults.silent_from + 1)
    assert len(result.commands) <= answered + 1
    after = await session(port, "allow")
    assert after.server_closed and after.set_by_server[v.RESULT] == v.ALLOW
    assert factory.live == set()


@pytest_twisted.ensureDeferred
async def test_faults_do_not_disturb_concurrent_sessions(server):
    factory, port = server
    faulty = [session(port, script, faults=faults) for faults, script, _ in FAULTS.values()]
    good = [session(port, "allow", str(n)) for n in range(100)]
    results = await gatherResults(good + faulty)
    for n, result in enumerate(results[:len(good)]):
        assert result.server_closed
        assert dict(result.set_by_server) == {v.RESULT: v.ALLOW, v.DIAL: f"|{n}"}
    assert all(r.server_closed for r in results[len(good):])
    assert factory.sessions_done >= len(results)


@pytest_twisted.ensureDeferred
async def test_silent_peer_is_closed_after_the_session_timeout(server):
    factory, port = server
    result = await session(port, "allow", faults=Faults(silent_from=1))
    assert result.server_closed
    assert result.commands == (command_line("GET VARIABLE", v.DIAL).decode()[:-1],)
    assert TIMEOUT * 0.9 <= result.elapsed < TIMEOUT * 3
