"""AmiClient's reconnect loop on an injected clock: the backoff between failed attempts
(refused Login, refused TCP connect), its reset at a login, `when_connected(fail_after)`,
and nothing left scheduled after `stop()`. Connections are StringTransports; the test
plays Asterisk and the reactor (it delivers connectionLost after an abort)."""

from __future__ import annotations

import re

import pytest
from twisted.internet.defer import CancelledError, fail, succeed
from twisted.internet.error import ConnectionAborted, ConnectionDone, ConnectionRefusedError
from twisted.internet.task import Clock
from twisted.internet.testing import StringTransport
from twisted.python.failure import Failure

from fastagi.ami.client import AmiClient
from fastagi.ami.errors import LoginFailed
from fastagi.testing.fake_ami import message

GREETING = b"Asterisk Call Manager/11.0.0\r\n"


class Endpoint:
    """Connects at once over a StringTransport, or refuses while `refuse` is set."""

    def __init__(self) -> None:
        self.sessions: list[tuple[object, StringTransport]] = []
        self.refuse = False

    def connect(self, factory):
        if self.refuse:
            return fail(ConnectionRefusedError())
        protocol = factory.buildProtocol(None)
        transport = StringTransport()
        protocol.makeConnection(transport)
        self.sessions.append((protocol, transport))
        return succeed(protocol)


def answer_login(endpoint: Endpoint, accept: bool) -> None:
    protocol, transport = endpoint.sessions[-1]
    protocol.dataReceived(GREETING)
    action_id = re.search(rb"ActionID: (\S+)", transport.value()).group(1).decode()
    protocol.dataReceived(message(("Response", "Success" if accept else "Error"),
                                  ("ActionID", action_id),
                                  ("Message", "Authentication accepted" if accept
                                   else "Authentication failed")))


def next_retry(clock: Clock) -> float:
    """The one timer left (the retry): its delay; advances the clock to it."""
    [call] = clock.getDelayedCalls()
    delay = call.getTime() - clock.seconds()
    clock.advance(delay)
    return delay


def test_backoff_grows_per_failed_attempt_and_resets_at_a_login():
    clock, endpoint = Clock(), Endpoint()
    client = AmiClient(endpoint, clock, "ictcontact", "pw", min_delay=1, max_delay=4)
    failed_twice = client.when_connected(fail_after=2)
    client.start()
    delays = []
    for attempt in range(1, 5):
        answer_login(endpoint, accept=False)
        protocol, transport = endpoint.sessions[-1]
        assert transport.disconnected                 # a refused connection is aborted
        protocol.connectionLost(Failure(ConnectionAborted()))   # as the reactor would
        if attempt == 2:
            assert isinstance(failed_twice.result.value, LoginFailed)
            failed_twice.addErrback(lambda _: None)
        delays.append(next_retry(clock))
        assert len(endpoint.sessions) == attempt + 1 and not client.connected
    endpoint.refuse = True          # Asterisk stops: lost before greeting, then TCP refused
    endpoint.sessions.pop()[0].connectionLost(Failure(ConnectionAborted()))
    delays.append(next_retry(clock))
    delays.append(next_retry(clock))
    endpoint.refuse = False
    # Twisted's backoffPolicy: min_delay * 1.5**failures, capped, plus jitter in [0, 1)
    for delay, base in zip(delays, [1.5, 2.25, 3.375, 4, 4, 4], strict=True):
        assert base <= delay < base + 1
    waiting = client.when_connected()
    next_retry(clock)
    answer_login(endpoint, accept=True)
    assert client.connected and client.connections == 1
    assert waiting.result is client.protocol
    assert clock.getDelayedCalls() == []              # no retry while logged in
    protocol, _ = endpoint.sessions[-1]
    protocol.connectionLost(Failure(ConnectionDone()))
    assert not client.connected
    assert 1.5 <= next_retry(clock) < 2.5             # a login reset the backoff
    answer_login(endpoint, accept=True)
    assert client.connections == 2


def test_stop_leaves_nothing_scheduled_and_fails_waiters():
    clock, endpoint = Clock(), Endpoint()
    client = AmiClient(endpoint, clock, "ictcontact", "pw")
    client.start()
    answer_login(endpoint, accept=False)
    endpoint.sessions[-1][0].connectionLost(Failure(ConnectionAborted()))
    waiting = client.when_connected()
    assert len(clock.getDelayedCalls()) == 1          # the retry
    stopped = client.stop()
    assert stopped.called and clock.getDelayedCalls() == []
    assert waiting.result.check(CancelledError)
    waiting.addErrback(lambda _: None)
    with pytest.raises(CancelledError):
        client.when_connected().result.raiseException()
    client.start()                                    # a stopped client stays stopped
    clock.advance(60)
    assert len(endpoint.sessions) == 1


def test_stop_when_logged_in_logs_off_then_closes():
    clock, endpoint = Clock(), Endpoint()
    client = AmiClient(endpoint, clock, "ictcontact", "pw")
    client.start()
    answer_login(endpoint, accept=True)
    protocol, transport = endpoint.sessions[-1]
    transport.clear()
    stopped = client.stop()
    assert b"Action: Logoff" in transport.value() and not stopped.called
    action_id = re.search(rb"ActionID: (\S+)", transport.value()).group(1).decode()
    protocol.dataReceived(message(("Response", "Goodbye"), ("ActionID", action_id)))
    assert transport.disconnecting and not stopped.called
    protocol.connectionLost(Failure(ConnectionDone()))
    assert stopped.called and not client.connected
    assert clock.getDelayedCalls() == []              # no reconnect after stop
