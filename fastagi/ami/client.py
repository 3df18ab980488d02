"""A long-lived AMI client: connect, log in, reconnect with backoff, deliver events.

`AmiClient` keeps one connection up through `endpoint` on an injected clock: each new
connection gets the greeting and a Login before it is used; a refused login or a broken
connection is closed and retried with exponential backoff (`min_delay` × 1.5 per failed
attempt, up to `max_delay`, plus up to 1 s of jitter: Twisted's `backoffPolicy`; a login
resets it). While no logged-in connection exists every action fails at once with
NotConnected: callers (enforcement, reconciliation, the dialer) decide whether to try
again; nothing ever waits for AMI to come back.

The retry loop is ours, not Twisted's `ClientService`: its state machine is told about the
close of every connection it saw, also one its `prepareConnection` already rejected (a
refused Login), and takes that close only while it thinks the connection is up; every
refused login during an Asterisk restart logged an "Unhandled Error" (NoTransition).

Subscribers: `subscribe(fn)` gets every event no pending action claimed;
`on_connected(fn)` is called with the client after each successful login (reconcile at
(re)connect); `on_state(fn)` with True/False when the logged-in state changes.

ActionIDs start with a prefix unique to this process (`ict-<name>-<pid>-<random>-`): AMI
broadcasts some events with their ActionID (OriginateResponse goes to every session that
reads `call`), so two servers on one Asterisk never take each other's answers.
"""

from __future__ import annotations

import logging
import os
import re
import secrets
from inspect import isawaitable
from typing import Callable

from twisted.application.internet import backoffPolicy
from twisted.internet.defer import CancelledError, Deferred, ensureDeferred, fail, succeed
from twisted.internet.interfaces import IDelayedCall, IReactorTime, IStreamClientEndpoint
from twisted.internet.protocol import Factory
from twisted.python.failure import Failure

from fastagi.ami import DEFAULT_PORT, actions
from fastagi.ami.errors import AmiError, NotConnected
from fastagi.ami.message import AmiMessage, Fields
from fastagi.ami.protocol import AmiProtocol, AmiResult

log = logging.getLogger(__name__)



def id_prefix(name: str) -> str:
    """A per-process ActionID prefix: safe characters of `name`, the pid, a random tag."""
    safe = re.sub(r"[^A-Za-z0-9._-]", "", name)[:24] or "server"
    return f"ict-{safe}-{os.getpid()}-{secrets.token_hex(3)}-"


class _AmiFactory(Factory):
    """Builds each connection's AmiProtocol with the client's clock, timeout and prefix."""

    def __init__(self, client: "AmiClient") -> None:
        self.client = client

    def buildProtocol(self, addr) -> AmiProtocol:
        client = self.client
        protocol = AmiProtocol(client.clock, client.action_timeout, client.id_prefix,
                               on_event=client._event)
        protocol.factory = self
        return protocol


class AmiClient:
    """One AMI session kept up against `endpoint` as `username`.

    `protocol` is the logged-in AmiProtocol or None; `connected` says which. Start with
    `start()`, stop with `stop()` (a Deferred that fires when closed)."""

    def __init__(self, endpoint: IStreamClientEndpoint, clock: IReactorTime, username: str,
                 secret: str, *, name: str = "server", action_timeout: float = 5.0,
                 events: str = "call", min_delay: float = 1.0, max_delay: float = 30.0,
                 login_logoff: bool = True) -> None:
        self.clock = clock
        self.action_timeout = action_timeout
        self.id_prefix = id_prefix(name)
        self._username = username
        self._secret = secret
        self._events = events
        self._logoff = login_logoff
        self.protocol: AmiProtocol | None = None
        self.version: str | None = None
        self.peer_host: str | None = None   # the address of the Asterisk logged in to
        self.connections = 0           # successful logins so far
        self._stopping: Deferred | None = None
        self._event_subscribers: list[Callable[[AmiMessage], None]] = []
        self._connected_subscribers: list[Callable[["AmiClient"], object]] = []
        self._state_subscribers: list[Callable[[bool], None]] = []
        self._factory = _AmiFactory(self)
        self._endpoint = endpoint
        self._retry_delay = backoffPolicy(initialDelay=min_delay, maxDelay=max_delay)
        self._running = False
        self._failures = 0                      # attempts failed in a row
        self._attempt: Deferred | None = None   # connecting or logging in
        self._in_hand: AmiProtocol | None = None  # the connection of the latest attempt
        self._retry: IDelayedCall | None = None
        self._waiting: list[tuple[Deferred, int | None]] = []

    # --- lifecycle -------------------------------------------------------------------
    def start(self) -> None:
        """Connect now, and again after every failure or loss until `stop()`. A stopped
        client stays stopped."""
        if self._running or self._stopping is not None:
            return
        self._running = True
        self._connect()

    def stop(self) -> Deferred[None]:
        """Log off (best effort, bounded) and close; stop reconnecting. Fires once the
        connection is closed. Idempotent."""
        if self._stopping is not None:
            return self._stopping
        self._stopping = Deferred()
        self._stop().chainDeferred(self._stopping)
        return self._stopping

    def _stop(self) -> Deferred[None]:
        self._running = False
        if self._retry is not None and self._retry.active():
            self._retry.cancel()
        self._retry = None
        if self._attempt is not None:
            self._attempt.cancel()   # a login waiting is refused: its connection aborted
        waiting, self._waiting = self._waiting, []
        for waiter, _ in waiting:
            waiter.errback(Failure(CancelledError("AMI client stopped")))
        protocol = self._in_hand
        if protocol is None or protocol.is_closed:
            return succeed(None)
        closed = protocol.when_closed()
        if protocol is self.protocol and self._logoff:
            done = protocol.send_action("Logoff", timeout=min(self.action_timeout, 1.0))
            done.addErrback(lambda _: None)
            done.addCallback(lambda _: protocol.close())
        elif protocol is self.protocol:
            protocol.close()
        return closed

    @property
    def connected(self) -> bool:
        return self.protocol is not None and not self.protocol.is_closed

    def when_connected(self, fail_after: int | None = None) -> Deferred[AmiProtocol]:
        """Fires with the logged-in protocol (now or at the next successful login);
        errbacks with the failure of the `fail_after`-th attempt that fails from now,
        or CancelledError when the client stops."""
        if self.connected:
            return succeed(self.protocol)
        if self._stopping is not None:
            return fail(CancelledError("AMI client stopped"))
        waiter: Deferred[AmiProtocol] = Deferred()
        self._waiting.append((waiter, fail_after))
        return waiter

    def _connect(self) -> None:
        self._retry = None
        attempt = self._attempt = self._endpoint.connect(self._factory)
        attempt.addCallback(self._log_in).addCallbacks(self._logged_in, self._failed)

    def _log_in(self, protocol: AmiProtocol) -> Deferred[AmiProtocol]:
        self._in_hand = protocol

        def greeted(version: str) -> Deferred[AmiResult]:
            self.version = version
            return protocol.login(self._username, self._secret, self._events)

        def refused(failure: Failure) -> Failure:
            if self._running:   # else stop() cancelled the login
                log.warning("AMI: connection to %s not usable: %s", protocol.peer,
                            failure.getErrorMessage())
            if not protocol.is_closed and protocol.transport is not None:
                protocol.transport.abortConnection()
            return failure

        return (protocol.when_greeted().addCallback(greeted)
                .addCallbacks(lambda _: protocol, refused))

    def _logged_in(self, protocol: AmiProtocol) -> None:
        self._attempt = None
        self._failures = 0
        self.protocol = protocol
        self.peer_host = str(getattr(protocol.transport.getPeer(), "host", "")) or None
        self.connections += 1
        log.info("AMI: logged in to %s as %s (Asterisk Call Manager/%s)", protocol.peer,
                 self._username, self.version)
        protocol.when_closed().addCallback(self._closed, protocol)
        self._notify_state(True)
        for subscriber in list(self._connected_subscribers):
            try:
                result = subscriber(self)
                if isawaitable(result):
                    ensureDeferred(result).addErrback(self._subscriber_failed)
            except Exception:
                log.exception("AMI: on_connected subscriber failed")
        waiting, self._waiting = self._waiting, []
        for waiter, _ in waiting:
            waiter.callback(protocol)

    def _failed(self, failure: Failure) -> None:
        """An attempt failed: TCP connect, greeting or Login (its connection is closed)."""
        self._attempt = None
        if not self._running:
            return
        if not failure.check(AmiError):   # an AMI failure was logged with its peer
            log.warning("AMI: cannot connect: %s", failure.getErrorMessage())
        self._failures += 1
        waiting, self._waiting = self._waiting, []
        for waiter, remaining in waiting:
            if remaining is not None and remaining <= 1:
                waiter.errback(failure)
            else:
                self._waiting.append((waiter, None if remaining is None else remaining - 1))
        self._schedule_retry()

    def _closed(self, _: None, protocol: AmiProtocol) -> None:
        if self.protocol is protocol:
            self.protocol = None
            log.warning("AMI: connection to %s lost (%s); reconnecting with backoff",
                        protocol.peer, protocol.failure)
            self._notify_state(False)
            if self._running:
                self._failures += 1
                self._schedule_retry()

    def _schedule_retry(self) -> None:
        delay = self._retry_delay(self._failures)
        log.info("AMI: reconnect attempt %d in %.1f s", self._failures, delay)
        self._retry = self.clock.callLater(delay, self._connect)

    def _notify_state(self, up: bool) -> None:
        for subscriber in list(self._state_subscribers):
            try:
                subscriber(up)
            except Exception:
                log.exception("AMI: state subscriber failed")

    @staticmethod
    def _subscriber_failed(failure: Failure) -> None:
        log.error("AMI: on_connected subscriber failed: %s", failure.getTraceback())

    # --- subscribers -----------------------------------------------------------------
    def subscribe(self, fn: Callable[[AmiMessage], None]) -> None:
        self._event_subscribers.append(fn)

    def on_connected(self, fn: Callable[["AmiClient"], object]) -> None:
        self._connected_subscribers.append(fn)

    def on_state(self, fn: Callable[[bool], None]) -> None:
        self._state_subscribers.append(fn)

    def _event(self, message: AmiMessage) -> None:
        for subscriber in list(self._event_subscribers):
            try:
                subscriber(message)
            except Exception:
                log.exception("AMI: event subscriber failed on %s", message.event)

    # --- actions ---------------------------------------------------------------------
    def send(self, action: str, fields: Fields = (), **kwargs) -> Deferred[AmiResult]:
        """`AmiProtocol.send_action` on the current connection; NotConnected at once
        when there is none."""
        protocol = self.protocol
        if protocol is None or protocol.is_closed:
            return fail(NotConnected(f"{action}: no AMI connection"))
        return protocol.send_action(action, fields, **kwargs)

    def hangup(self, channel: str, cause: int) -> Deferred[AmiResult]:
        """Hang up one channel (name or uniqueid) with a Q.850 cause. Errbacks with
        ActionFailed (message `No such channel`) when it is already gone."""
        return self.send("Hangup", actions.hangup_fields(channel, cause))

    def core_show_channels(self, timeout: float | None = None
                           ) -> Deferred[list[actions.ChannelInfo]]:
        """Fires with every channel Asterisk has now (one CoreShowChannel each); the
        whole list must come within `timeout` (default: the action timeout)."""
        return self.send("CoreShowChannels", timeout=timeout).addCallback(
            lambda result: [actions.ChannelInfo.from_event(e) for e in result.events])

    def setvar(self, channel: str, variable: str, value: str) -> Deferred[AmiResult]:
        return self.send("Setvar", actions.setvar_fields(channel, variable, value))

    def originate(self, fields: Fields, *, response_timeout: float = 60.0
                  ) -> Deferred[actions.OriginateResult]:
        """Send an async Originate (`fields` from actions.originate_fields). Fires with the
        OriginateResult from the `OriginateResponse` event with this ActionID, which
        must come within `response_timeout` s after `Originate successfully queued`."""
        return self.send("Originate", fields, final_event="OriginateResponse",
                         final_timeout=response_timeout).addCallback(
            lambda result: actions.OriginateResult.from_event(result.final))

    def logoff(self) -> Deferred[AmiResult]:
        return self.send("Logoff")


def client_from_settings(reactor, address: str, username: str, secret: str,
                         **options: object) -> AmiClient:
    """An AmiClient for `HOST:PORT` (port default DEFAULT_PORT) on `reactor`."""
    from twisted.internet.endpoints import HostnameEndpoint

    host, port = parse_address(address)
    endpoint = HostnameEndpoint(reactor, host, port, timeout=5)
    return AmiClient(endpoint, reactor, username, secret, **options)  # type: ignore[arg-type]


def parse_address(address: str) -> tuple[str, int]:
    """`HOST[:PORT]` -> (host, port); port defaults to DEFAULT_PORT. Raises ValueError."""
    host, sep, port_text = address.rpartition(":")
    if not sep:
        host, port_text = address, str(DEFAULT_PORT)
    if not host or not port_text.isdigit() or not 0 < int(port_text) < 65536:
        raise ValueError(f"AMI address must be HOST:PORT, not {address!r}")
    return host.strip("[]"), int(port_text)

