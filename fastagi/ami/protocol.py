"""One AMI connection's wire state: the greeting, then actions matched to answers by ActionID.

The protocol knows nothing about reconnecting or what the actions are for. Asterisk speaks
first (`Asterisk Call Manager/11.0.0`, one line); after it, every message is `Key: Value`
lines ending with an empty line. `send_action` writes one action with a fresh ActionID and
returns one Deferred for it:

- `Response: Success` (or `Goodbye`) fires it with an `AmiResult` (the response, no events);
- `Response: Error` errbacks it with `ActionFailed` (the response is on the exception);
- `EventList: start` collects the item events carrying that ActionID until the event with
  `EventList: Complete`, then fires with the response, the items and the closing event;
- `final_event="OriginateResponse"` waits, after the response, for that event with the
  same ActionID (Originate with `Async: true`), then fires with it as `final`.

Events that belong to no pending action go to `on_event`. Every action is bounded by its
timeout on the injected clock: an action whose response (or list) is not complete in time
means this AMI session is wedged (Asterisk runs one session's actions one after another),
so the connection is dropped and every pending action errbacks at once; a `final_event`
wait that runs out only fails its own action. A peer that sends no greeting in time,
something else than a greeting, a line over `max_line` bytes, a message of more than
`max_headers` lines or a list of more than `max_list_items` items is dropped the same way.
Lines that are not `Key: Value` are counted in `ignored_lines` and skipped. Nothing here
can block the reactor or any other connection.
"""

from __future__ import annotations

import itertools
import logging
from dataclasses import dataclass
from typing import Callable

from twisted.internet.defer import Deferred, fail, succeed
from twisted.internet.interfaces import IDelayedCall, IReactorTime
from twisted.protocols.basic import LineOnlyReceiver
from twisted.python.failure import Failure

from fastagi.ami.errors import (ActionFailed, ActionTimeout, AmiError, ConnectionLost,
                                LoginFailed, ProtocolViolation)
from fastagi.ami.message import ENCODING, ERRORS, AmiMessage, Fields, format_action, parse_header
from fastagi.wire import Waiters, describe_close, fail_each, peer_of

log = logging.getLogger(__name__)

GREETING_PREFIX = "Asterisk Call Manager/"
MAX_LINE = 16384          # one header line from Asterisk (ApplicationData can be long)
MAX_HEADERS = 1000        # one message; a CoreShowChannel has about 25
MAX_LIST_ITEMS = 200_000  # one event list (CoreShowChannels on a very busy box)
LIST_END = ("complete", "cancelled")


@dataclass(frozen=True)
class AmiResult:
    """What a successful action got: `response`, the list `events` (in order) and
    `complete` (the `...Complete` event) for a list, `final` for a final_event wait."""

    response: AmiMessage
    events: tuple[AmiMessage, ...] = ()
    complete: AmiMessage | None = None
    final: AmiMessage | None = None


@dataclass(eq=False)
class _Pending:
    action: str
    deferred: Deferred
    final_event: str | None
    timeout: float
    final_timeout: float
    timer: IDelayedCall | None = None
    response: AmiMessage | None = None
    events: list[AmiMessage] | None = None   # a list being collected
    final: AmiMessage | None = None
    waiting_final: bool = False


class AmiProtocol(LineOnlyReceiver):
    """Client side of one AMI connection.

    `version` is the greeting's version once read; `failure` the AmiError that broke the
    connection, if any; `ignored_lines` how many non-header lines were skipped.
    """

    delimiter = b"\n"

    def __init__(self, clock: IReactorTime, timeout: float, id_prefix: str = "ict-",
                 on_event: Callable[[AmiMessage], None] | None = None,
                 max_line: int = MAX_LINE, max_headers: int = MAX_HEADERS,
                 max_list_items: int = MAX_LIST_ITEMS) -> None:
        self.MAX_LENGTH = max_line
        self._clock = clock
        self.timeout = timeout
        self._id_prefix = id_prefix
        self._ids = itertools.count(1)
        self.on_event = on_event
        self._max_headers = max_headers
        self._max_list_items = max_list_items
        self._pending: dict[str, _Pending] = {}
        self._lines: list[tuple[str, str]] = []
        self._line_count = 0
        self._greeting_timer: IDelayedCall | None = None
        self._greeted: Waiters[str] = Waiters()
        self._closed: Waiters[None] = Waiters()
        self.version: str | None = None
        self.failure: AmiError | None = None
        self.is_closed = False
        self.ignored_lines = 0
        self.peer = "-"

    # --- connection events ---------------------------------------------------------
    def connectionMade(self) -> None:
        self.peer, _ = peer_of(self.transport)
        self._greeting_timer = self._clock.callLater(
            self.timeout, self._break,
            ActionTimeout(f"no AMI greeting within {self.timeout:g} s"))

    def connectionLost(self, reason: Failure = None) -> None:
        self.is_closed = True
        self._cancel_greeting_timer()
        if self.failure is None:
            self.failure = ConnectionLost(f"AMI connection closed: {describe_close(reason)}")
        self._fail_all(self.failure)
        self._closed.fire(None)

    def when_greeted(self) -> Deferred[str]:
        """Fires with the greeting's version, or errbacks with the AmiError that broke
        the connection first."""
        if self.version is not None:
            return succeed(self.version)
        if self.failure is not None:
            return fail(self.failure)
        return self._greeted.wait()

    def when_closed(self) -> Deferred[None]:
        """Fires with None once the connection is gone."""
        return succeed(None) if self.is_closed else self._closed.wait()

    def close(self) -> None:
        if self.transport is not None and not self.is_closed:
            self.transport.loseConnection()

    # --- actions ---------------------------------------------------------------------
    def send_action(self, action: str, fields: Fields = (), timeout: float | None = None,
                    final_event: str | None = None,
                    final_timeout: float | None = None) -> Deferred[AmiResult]:
        """Write one action; fires with its AmiResult or errbacks with an AmiError
        (ActionFailed for `Response: Error`). `timeout` (default: the protocol's) bounds
        the response and any list; `final_timeout` bounds the wait for `final_event`
        after the response. Raises UnsafeValue/ActionTooLong for a value that cannot be
        sent (nothing is written)."""
        if self.failure is not None or self.is_closed:
            return fail(self.failure or ConnectionLost("AMI connection closed"))
        action_id = f"{self._id_prefix}{next(self._ids)}"
        data = format_action(action, action_id, fields)
        timeout = self.timeout if timeout is None else timeout

        def cancel(_: Deferred) -> None:
            entry = self._pending.pop(action_id, None)
            if entry is not None:
                _cancel_timer(entry)

        entry = _Pending(action, Deferred(cancel), final_event, timeout,
                         timeout if final_timeout is None else final_timeout)
        entry.timer = self._clock.callLater(timeout, self._response_timed_out, action_id)
        self._pending[action_id] = entry
        log.debug("%s: > %s %s", self.peer, action, action_id)
        self.transport.write(data)
        return entry.deferred

    def login(self, username: str, secret: str, events: str = "off") -> Deferred[AmiResult]:
        """Login (plain secret). `events` is the Login `Events` header: `off`, `on`, or a
        comma list of classes (`call`). Errbacks with LoginFailed when refused."""

        def refused(failure: Failure) -> Failure:
            if failure.check(ActionFailed) and not failure.check(LoginFailed):
                error = failure.value
                raise LoginFailed(error.action, error.response)
            return failure

        fields = {"Username": username, "Secret": secret, "Events": events}
        return self.send_action("Login", fields).addErrback(refused)

    @property
    def pending_count(self) -> int:
        return len(self._pending)

    # --- incoming lines --------------------------------------------------------------
    def lineReceived(self, data: bytes) -> None:
        line = data.decode(ENCODING, ERRORS)
        if line.endswith("\r"):
            line = line[:-1]
        if self.version is None:
            self._greeting_line(line)
            return
        if not line:
            if self._lines or self._line_count:
                headers, self._lines, self._line_count = self._lines, [], 0
                if headers:
                    self._message(AmiMessage(headers))
            return
        self._line_count += 1
        if self._line_count > self._max_headers:
            self._break(ProtocolViolation(f"AMI message over {self._max_headers} lines"))
            return
        header = parse_header(line)
        if header is None:
            self.ignored_lines += 1
            log.debug("%s: ignored non-header line %r", self.peer, line[:80])
        else:
            self._lines.append(header)

    def lineLengthExceeded(self, line: bytes) -> None:
        self._break(ProtocolViolation(f"AMI line longer than {self.MAX_LENGTH} bytes"))

    def _greeting_line(self, line: str) -> None:
        if not line.strip():
            return
        if not line.startswith(GREETING_PREFIX):
            self._break(ProtocolViolation(f"not an AMI greeting: {line[:80]!r}"))
            return
        self._cancel_greeting_timer()
        self.version = line[len(GREETING_PREFIX):].strip()
        self._greeted.fire(self.version)

    def _message(self, message: AmiMessage) -> None:
        action_id = message.action_id
        entry = self._pending.get(action_id) if action_id is not None else None
        if message.event is not None:  # before Response: OriginateResponse has both
            if entry is not None and self._event_for(action_id, entry, message):
                return
            if self.on_event is not None:
                try:
                    self.on_event(message)
                except Exception:
                    log.exception("%s: event subscriber failed on %s", self.peer,
                                  message.event)
        elif message.response is not None:
            if entry is None or entry.response is not None:
                log.debug("%s: response for no pending action: %r", self.peer, message)
            else:
                self._response(action_id, entry, message)
        else:
            log.debug("%s: message with neither Response nor Event: %r", self.peer, message)

    def _response(self, action_id: str, entry: _Pending, message: AmiMessage) -> None:
        entry.response = message
        if message.response.lower() == "error":
            self._finish(action_id, error=ActionFailed(entry.action, message))
        elif (message.get("EventList") or "").lower() == "start":
            entry.events = []
        elif entry.final_event is not None:
            if entry.final is not None:
                self._finish(action_id)
            else:  # the response is in: the connection is fine, wait for the event
                _cancel_timer(entry)
                entry.waiting_final = True
                entry.timer = self._clock.callLater(entry.final_timeout,
                                                    self._final_timed_out, action_id)
        else:
            self._finish(action_id)

    def _event_for(self, action_id: str, entry: _Pending, message: AmiMessage) -> bool:
        """Take an event carrying a pending ActionID; False if it is not the action's."""
        if entry.final_event is not None and message.event == entry.final_event:
            entry.final = message
            if entry.response is not None:
                self._finish(action_id)
            return True
        if entry.events is None:
            return False
        if (message.get("EventList") or "").lower() in LIST_END:
            self._finish(action_id, complete=message)
        else:
            entry.events.append(message)
            if len(entry.events) > self._max_list_items:
                self._break(ProtocolViolation(
                    f"{entry.action} list over {self._max_list_items} items"))
        return True

    def _finish(self, action_id: str, complete: AmiMessage | None = None,
                error: AmiError | None = None) -> None:
        entry = self._pending.pop(action_id)
        _cancel_timer(entry)
        if error is not None:
            entry.deferred.errback(Failure(error))
        else:
            entry.deferred.callback(AmiResult(entry.response, tuple(entry.events or ()),
                                              complete, entry.final))

    # --- failure and timers ----------------------------------------------------------
    def _response_timed_out(self, action_id: str) -> None:
        entry = self._pending.get(action_id)
        if entry is None:
            return
        entry.timer = None
        self._break(ActionTimeout(f"{entry.action} not answered within "
                                  f"{entry.timeout:g} s; AMI connection dropped"))

    def _final_timed_out(self, action_id: str) -> None:
        entry = self._pending.get(action_id)
        if entry is None:
            return
        entry.timer = None
        self._finish(action_id, error=ActionTimeout(
            f"{entry.action}: no {entry.final_event} within {entry.final_timeout:g} s"))

    def _break(self, error: AmiError) -> None:
        """Fail everything pending with `error` and drop the connection at once (a peer
        that stopped reading must not hold it open)."""
        if self.failure is None:
            self.failure = error
            log.warning("%s: %s", self.peer, error)
        self._cancel_greeting_timer()
        self._fail_all(self.failure)
        if self.transport is not None and not self.is_closed:
            self.transport.abortConnection()

    def _fail_all(self, error: AmiError) -> None:
        pending, self._pending = self._pending, {}
        for entry in pending.values():
            _cancel_timer(entry)
        fail_each((entry.deferred for entry in pending.values()), error)
        self._greeted.fail(error)

    def _cancel_greeting_timer(self) -> None:
        if self._greeting_timer is not None and self._greeting_timer.active():
            self._greeting_timer.cancel()
        self._greeting_timer = None


def _cancel_timer(entry: _Pending) -> None:
    if entry.timer is not None and entry.timer.active():
        entry.timer.cancel()
    entry.timer = None

