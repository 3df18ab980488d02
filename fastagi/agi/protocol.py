"""One FastAGI connection's wire state: the environment block, then one command at a time.

The protocol knows nothing about routes or the database. When the environment block is
complete it hands the session to `on_environment` (the factory's session runner) and closes
the connection when the Deferred that returns fires. Commands go through `send_command`:
one Deferred per command, kept in a FIFO; only the head is on the wire, the next is written
when the head's reply has arrived (Asterisk must never see two commands at once).

Every wait on the peer is bounded by `timeout` (seconds, on the injected clock): the whole
environment block must arrive within it, and so must each reply. A peer that stops
answering, sends a line that is not AGI, or a line over `max_line` bytes breaks the session:
every pending Deferred errbacks and the connection is closed. Nothing here affects any
other connection.
"""

from __future__ import annotations

import logging
from collections import deque
from typing import Callable

from twisted.internet.defer import Deferred, fail, succeed
from twisted.internet.interfaces import IDelayedCall, IReactorTime
from twisted.protocols.basic import LineOnlyReceiver
from twisted.python.failure import Failure

from fastagi.agi.environment import AgiEnvironment, MalformedEnvironment, parse_environment
from fastagi.agi.errors import AgiError, ProtocolViolation, ReplyTimeout, SessionClosed
from fastagi.agi.quoting import ENCODING, ERRORS, MAX_LINE_BYTES
from fastagi.agi.replies import (PROVISIONAL, AgiReply, MalformedReply, closes_block,
                                 is_hangup_event, opens_block, parse_reply)
from fastagi.wire import Waiters, describe_close, fail_each, peer_of

log = logging.getLogger(__name__)

MAX_ENVIRONMENT_LINES = 1000  # Asterisk sends ~25 plus one per AGI() argument
MAX_BLOCK_LINES = 500         # a 520 usage text is a few dozen lines

SessionRunner = Callable[["AgiServerProtocol", AgiEnvironment], Deferred]


class AgiServerProtocol(LineOnlyReceiver):
    """Server side of one FastAGI session.

    `hung_up` becomes True when Asterisk sends the `HANGUP` event; `failure` holds the
    AgiError that broke the session, if any; `environment` is set once the block is read.
    """

    delimiter = b"\n"

    def __init__(self, clock: IReactorTime, timeout: float, on_environment: SessionRunner,
                 max_line: int = MAX_LINE_BYTES) -> None:
        self.MAX_LENGTH = max_line
        self._clock = clock
        self._timeout = timeout
        self._on_environment = on_environment
        self._pending: deque[tuple[bytes, Deferred, float | None]] = deque()
        self._env_lines: list[str] | None = []   # None once the block is complete
        self._block: list[str] = []               # lines of a 520- block being read
        self._timer: IDelayedCall | None = None
        self._closed: Waiters[None] = Waiters()
        self.connected_at: float | None = None
        self.environment: AgiEnvironment | None = None
        self.hung_up = False
        self.failure: AgiError | None = None
        self.is_closed = False
        self.peer = "-"
        self.peer_host = ""   # the Asterisk box's address (calls.asterisk)

    # --- connection events ---------------------------------------------------------
    def connectionMade(self) -> None:
        self.connected_at = self._clock.seconds()
        self.peer, self.peer_host = peer_of(self.transport)
        self._arm("the environment block")

    def connectionLost(self, reason: Failure = None) -> None:
        self.is_closed = True
        self._disarm()
        if self.failure is None:
            self.failure = SessionClosed(f"connection closed: {describe_close(reason)}")
        self._fail_pending(self.failure)
        self._closed.fire(None)

    def when_closed(self) -> Deferred[None]:
        """A Deferred that fires with None once the connection is gone (cancelling it
        just stops waiting)."""
        return succeed(None) if self.is_closed else self._closed.wait()

    def close(self) -> None:
        """Close the connection after what has been written (the session is over)."""
        self._disarm()
        if self.transport is not None and not self.is_closed:
            self.transport.loseConnection()

    def abort(self) -> None:
        """Drop the connection at once (shutdown grace exhausted)."""
        self._break(SessionClosed("aborted by server shutdown"), abort=True)

    # --- incoming lines --------------------------------------------------------------
    def lineReceived(self, data: bytes) -> None:
        line = data.decode(ENCODING, ERRORS)
        if line.endswith("\r"):
            line = line[:-1]
        if self._env_lines is not None:
            self._environment_line(line)
        elif is_hangup_event(line):
            self.hung_up = True
            log.debug("%s: HANGUP event", self.peer)
        elif self._block:
            self._block_line(line)
        elif not line.strip():
            pass  # extra empty lines (after the environment block) are tolerated
        elif not self._pending:
            self._break(ProtocolViolation(f"unexpected line with no command pending: "
                                          f"{line[:80]!r}"))
        elif opens_block(line):
            self._block = [line]
        else:
            self._reply_lines((line,))

    def lineLengthExceeded(self, line: bytes) -> None:
        self._break(ProtocolViolation(f"line longer than {self.MAX_LENGTH} bytes"))

    def _environment_line(self, line: str) -> None:
        assert self._env_lines is not None
        if line.strip():
            self._env_lines.append(line)
            if len(self._env_lines) > MAX_ENVIRONMENT_LINES:
                self._break(ProtocolViolation("environment block too long"))
            return
        if not self._env_lines:
            return  # blank lines before the block: nothing to do yet
        lines, self._env_lines = self._env_lines, None
        self._disarm()
        try:
            self.environment = parse_environment(lines)
        except MalformedEnvironment as exc:
            self._break(ProtocolViolation(str(exc)))
            return
        session = self._on_environment(self, self.environment)
        session.addErrback(self._runner_failed)
        session.addBoth(lambda _: self.close())

    def _block_line(self, line: str) -> None:
        self._block.append(line)
        if closes_block(line):
            lines, self._block = tuple(self._block), []
            self._reply_lines(lines)
        elif len(self._block) > MAX_BLOCK_LINES:
            self._break(ProtocolViolation("520 usage block never ends"))

    def _reply_lines(self, lines: tuple[str, ...]) -> None:
        try:
            reply = parse_reply(lines)
        except MalformedReply as exc:
            self._break(ProtocolViolation(str(exc)))
            return
        if reply.code == PROVISIONAL:
            return  # `100 ... Trying`: the final reply follows
        self._disarm()
        _, deferred, _ = self._pending.popleft()
        self._write_head()
        if not deferred.called:  # a cancelled command's reply is dropped
            deferred.callback(reply)

    # --- commands --------------------------------------------------------------------
    def send_command(self, line: bytes, timeout: float | None = None) -> Deferred[AgiReply]:
        """Queue one command line (from fastagi.agi.quoting.command_line).

        Fires with its AgiReply (any code: the caller judges it), or errbacks with an
        AgiError if the session breaks first. `timeout` bounds the wait for this reply
        (default: the session's timeout); a command that waits for the caller, such as
        GET DATA, needs longer. Cancelling a command not yet written removes it;
        cancelling the one on the wire discards its reply when it comes.
        """
        if self.failure is not None or self.is_closed:
            return fail(self.failure or SessionClosed("connection closed"))
        entry: tuple[bytes, Deferred, float | None] | None = None

        def cancel(deferred: Deferred) -> None:
            if self._pending and self._pending[0] is not entry and entry in self._pending:
                self._pending.remove(entry)

        deferred: Deferred[AgiReply] = Deferred(cancel)
        entry = (line, deferred, timeout)
        self._pending.append(entry)
        if len(self._pending) == 1:
            self._write_head()
        return deferred

    def _write_head(self) -> None:
        if not self._pending:
            return
        line, _, timeout = self._pending[0]
        log.debug("%s: > %r", self.peer, line)
        self.transport.write(line)
        self._arm("the reply", timeout)

    # --- failure and timers ----------------------------------------------------------
    def _arm(self, what: str, timeout: float | None = None) -> None:
        self._disarm()
        seconds = self._timeout if timeout is None else timeout
        self._timer = self._clock.callLater(
            seconds, self._break, ReplyTimeout(f"{what} did not arrive within {seconds:g} s"))

    def _disarm(self) -> None:
        if self._timer is not None and self._timer.active():
            self._timer.cancel()
        self._timer = None

    def _break(self, error: AgiError, abort: bool = False) -> None:
        self._disarm()
        if self.failure is None:
            self.failure = error
        self._fail_pending(self.failure)
        if self.transport is not None and not self.is_closed:
            if abort:
                self.transport.abortConnection()
            else:
                self.transport.loseConnection()

    def _fail_pending(self, error: AgiError) -> None:
        pending, self._pending = self._pending, deque()
        fail_each((deferred for _, deferred, _ in pending), error)

    def _runner_failed(self, failure: Failure) -> None:
        log.error("%s: session runner failed: %s", self.peer, failure.getTraceback())

