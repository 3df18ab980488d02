"""1,000 simultaneous FastAGI sessions over real TCP against one server."""

from __future__ import annotations

import pytest_twisted
from twisted.internet import reactor
from twisted.internet.defer import Deferred, gatherResults

from fastagi import channel_vars as v
from fastagi.testing.fake_asterisk import run_session
from fastagi.agi.server import AgiServerFactory

from .helpers import make_services

SESSIONS = 1000


@pytest_twisted.ensureDeferred
async def test_thousand_simultaneous_sessions():
    async def trivial(channel, services):
        # hold every session open a moment so they really overlap
        pause = Deferred()
        services.clock.callLater(0.3, pause.callback, None)
        await pause
        await channel.set_variable(v.RESULT, v.ALLOW)
        await channel.set_variable(v.CALL_ID, channel.args[0])

    factory = AgiServerFactory({"trivial": trivial},
                               make_services(reactor, session_timeout=15, db_timeout=1))
    port = reactor.listenTCP(0, factory, backlog=SESSIONS, interface="127.0.0.1")
    try:
        started = reactor.seconds()
        results = await gatherResults([
            run_session(reactor, "127.0.0.1", port.getHost().port, "trivial", (str(n),),
                        timeout=20)
            for n in range(SESSIONS)])
        elapsed = reactor.seconds() - started
    finally:
        await port.stopListening()
    assert [dict(r.set_by_server) for r in results] == [
        {v.RESULT: v.ALLOW, v.CALL_ID: str(n)} for n in range(SESSIONS)]
    assert all(r.server_closed for r in results)
    assert factory.sessions_done == SESSIONS and factory.live == set()
    assert factory.peak_live >= SESSIONS // 2, factory.peak_live
    assert elapsed < 15
