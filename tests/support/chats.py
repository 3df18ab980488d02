"""Scripted FastAGI conversations over StringTransport, with the server's clock injected.

A chat is a list of steps: ("in", bytes) Asterisk sends; ("out", bytes) exactly what the
server wrote since the last "out"; ("wait", s) advances the clock; ("open",) /
("closed",) the server's side of the connection. `play` runs one and checks that it ended
with nothing unread, no timer left and no session still registered.
"""

from __future__ import annotations

from twisted.internet.address import IPv4Address
from twisted.internet.error import ConnectionDone
from twisted.internet.task import Clock
from twisted.internet.testing import StringTransport
from twisted.python.failure import Failure

from fastagi.agi.protocol import AgiServerProtocol
from fastagi.agi.server import AgiServerFactory


def connect(factory: AgiServerFactory) -> tuple[AgiServerProtocol, StringTransport]:
    """A server protocol on a StringTransport, as if Asterisk had just connected."""
    transport = StringTransport(peerAddress=IPv4Address("TCP", "192.0.2.10", 40001))
    protocol = factory.buildProtocol(transport.getPeer())
    protocol.makeConnection(transport)
    return protocol, transport


def finish(protocol: AgiServerProtocol, transport: StringTransport) -> None:
    """Deliver connectionLost once the server asked to close (StringTransport does not)."""
    if transport.disconnecting and not protocol.is_closed:
        protocol.connectionLost(Failure(ConnectionDone()))


def play(chat: list[tuple], factory: AgiServerFactory, clock: Clock) -> AgiServerProtocol:
    """Run `chat` against a new connection to `factory`, whose timers run on `clock`."""
    protocol, transport = connect(factory)
    for step in chat:
        kind = step[0]
        if kind == "in":
            protocol.dataReceived(step[1])
        elif kind == "out":
            assert transport.value() == step[1]
            transport.clear()
        elif kind == "wait":
            clock.advance(step[1])
        elif kind == "open":
            assert not transport.disconnecting
        elif kind == "closed":
            assert transport.disconnecting
        else:
            raise ValueError(f"unknown chat step {step!r}")
    assert transport.value() == b""
    finish(protocol, transport)
    assert clock.getDelayedCalls() == []
    assert factory.live == set()
    return protocol
