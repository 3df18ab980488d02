"""The FastAGI server factory: the route table, the shared services, and the guarantee that
every session ends with a definite answer for the dialplan.

A handler is `handler(channel, services)` returning a coroutine, a Deferred or nothing. Its
outcome becomes the dialplan's answer:
- it set ICT_RESULT itself: that is the answer;
- unknown script or BadRequest: REJECT / bad-request;
- Unavailable, a database error, the session deadline, or any unexpected exception (or a
  handler that returned without setting ICT_RESULT): REJECT / unavailable (fail closed);
each REJECT with ICT_CAUSE from fastagi.reasons.cause_for. The variables are set even after
a HANGUP (SET VARIABLE works on a dead channel). Then the connection is closed, and one
line is logged: script, client, decision, reason, elapsed ms.
"""

from __future__ import annotations

import logging
from inspect import isawaitable
from typing import Any, Awaitable, Callable, Collection, Mapping

from sqlalchemy.exc import DBAPIError, SQLAlchemyError
from twisted.internet.defer import (CancelledError, Deferred, DeferredList,
                                    TimeoutError as DeferredTimeout, ensureDeferred,
                                    succeed)
from twisted.internet.interfaces import IAddress
from twisted.internet.protocol import ServerFactory

from fastagi import channel_vars, reasons
from fastagi.agi.channel import Channel
from fastagi.agi.environment import AgiEnvironment
from fastagi.agi.errors import AgiError, CommandFailed, RouteError
from fastagi.agi.protocol import AgiServerProtocol
from fastagi.agi.quoting import MAX_LINE_BYTES
from fastagi.services import Services

log = logging.getLogger(__name__)

Handler = Callable[[Channel, Services], Awaitable[Any] | Deferred | None]


class AgiServerFactory(ServerFactory):
    """Builds one AgiServerProtocol per connection; owns routes, services, live sessions.

    `routes` maps a script name (`agi_network_script` without its query string) to its
    handler. `session_timeout` bounds each wait on the peer and the handler's own run;
    the handlers of the `interactive` scripts (they wait for the caller's keys) run for up
    to the config's interactive_timeout instead.
    """

    def __init__(self, routes: Mapping[str, Handler], services: Services,
                 session_timeout: float | None = None,
                 max_line: int = MAX_LINE_BYTES,
                 interactive: Collection[str] = ()) -> None:
        self.routes = dict(routes)
        self.interactive = frozenset(interactive)
        self.services = services
        self.clock = services.clock
        self.session_timeout = (services.config.session_timeout if session_timeout is None
                                else session_timeout)
        self.max_line = max_line
        self.live: set[AgiServerProtocol] = set()
        self.peak_live = 0
        self.sessions_done = 0
        self.draining = False

    def buildProtocol(self, addr: IAddress) -> AgiServerProtocol | None:
        if self.draining:
            return None  # refused: the connection is closed at once
        protocol = AgiServerProtocol(self.clock, self.session_timeout, self._run_session,
                                     self.max_line)
        protocol.factory = self
        self.live.add(protocol)
        self.peak_live = max(self.peak_live, len(self.live))
        protocol.when_closed().addCallback(self._forget, protocol)
        return protocol

    def _forget(self, _: None, protocol: AgiServerProtocol) -> None:
        self.live.discard(protocol)
        if protocol.environment is None:  # never got as far as a session: still log it
            self.sessions_done += 1
            log.warning("session script=- client=- decision=- reason=- elapsed_ms=%d "
                        "peer=%s detail=%s", self._elapsed_ms(protocol), protocol.peer,
                        _one_line(protocol.failure))

    # --- one session -------------------------------------------------------------------
    def _run_session(self, protocol: AgiServerProtocol, env: AgiEnvironment) -> Deferred:
        """Fires with None when the session's answer is given (or cannot be)."""
        return ensureDeferred(self._session(protocol, env))

    async def _session(self, protocol: AgiServerProtocol, env: AgiEnvironment) -> None:
        channel = Channel(protocol, env)
        handler = self.routes.get(env.script)
        reason = detail = None
        crash: Exception | None = None  # an unexpected exception, logged with its traceback
        try:
            if handler is None:
                reason = reasons.BAD_REQUEST
                detail = f"unknown script {env.script!r}"
            else:
                await self._call(handler, protocol, channel, self._budget(env.script))
                if channel_vars.RESULT not in channel.sent:
                    reason = reasons.UNAVAILABLE
                    detail = "handler returned without setting " + channel_vars.RESULT
        except Exception as exc:  # classified below: every outcome gets an answer
            reason, detail, unexpected = _classify(exc, self._budget(env.script))
            if protocol.failure is not None:  # the session broke: that is the cause
                detail, unexpected = _one_line(protocol.failure), False
            crash = exc if unexpected else None
        if reason is not None:
            detail = await self._reject(channel, reason, detail)
        self._log(protocol, channel, reason, detail, crash)

    def _budget(self, script: str) -> float:
        """Seconds the handler of `script` may run."""
        if script in self.interactive:
            return max(self.session_timeout, self.services.config.interactive_timeout)
        return self.session_timeout

    async def _call(self, handler: Handler, protocol: AgiServerProtocol,
                    channel: Channel, budget: float) -> None:
        """Run the handler, bounded by `budget` seconds and cancelled if the connection
        goes away first."""
        outcome = handler(channel, self.services)
        running = ensureDeferred(outcome) if isawaitable(outcome) else succeed(outcome)
        running.addTimeout(budget, self.clock)
        closed = protocol.when_closed()
        closed.addCallbacks(lambda _: running.cancel(), lambda f: f.trap(CancelledError))
        try:
            await running
        finally:
            closed.cancel()

    async def _reject(self, channel: Channel, reason: str, detail: str | None) -> str | None:
        """Give the REJECT answer; returns the detail, extended if it could not be given."""
        answer = {channel_vars.RESULT: channel_vars.REJECT, channel_vars.REASON: reason,
                  channel_vars.CAUSE: str(reasons.cause_for(reason))}
        try:
            await channel.set_variables(answer)
        except Exception as exc:
            why = _one_line(exc)
            return f"{detail}; answer not delivered" + ("" if why in detail else f": {why}")
        return detail

    def _log(self, protocol: AgiServerProtocol, channel: Channel, rejected: str | None,
             detail: str | None, crash: Exception | None) -> None:
        """The session's one log line. `rejected` is the server's own REJECT reason (None
        when the handler answered); decision/reason are what the server decided, whether
        or not the answer reached Asterisk (the detail says when it did not). `crash`, an
        unexpected exception, makes it an ERROR with that exception's traceback."""
        self.sessions_done += 1
        notes = dict(channel.notes)
        client = notes.pop("client", "-")
        noted_decision = notes.pop("decision", "-")
        noted_reason = notes.pop("reason", "-")
        if rejected is not None:
            decision, reason = channel_vars.REJECT, rejected
        else:
            decision = channel.sent.get(channel_vars.RESULT, noted_decision)
            reason = channel.sent.get(channel_vars.REASON) or noted_reason
        extra = "".join(f" {key}={value}" for key, value in notes.items())
        if protocol.hung_up:
            extra += " hangup=yes"
        if detail:
            extra += f" detail={detail}"
        metrics = getattr(self.services, "metrics", None)
        if metrics is not None:
            metrics.session(channel.env.script, decision, reason,
                            self._elapsed_ms(protocol) / 1000)
        level = logging.INFO if detail is None else (
            logging.ERROR if crash is not None else logging.WARNING)
        log.log(level, "session script=%s client=%s decision=%s reason=%s elapsed_ms=%d "
                "peer=%s%s", channel.env.script or "-", client, decision, reason,
                self._elapsed_ms(protocol), protocol.peer, extra,
                exc_info=crash)

    def _elapsed_ms(self, protocol: AgiServerProtocol) -> int:
        started = protocol.connected_at
        return 0 if started is None else round((self.clock.seconds() - started) * 1000)

    # --- shutdown ----------------------------------------------------------------------
    def drain(self, grace: float) -> Deferred[int]:
        """Refuse new connections, let live sessions finish for up to `grace` seconds, then
        abort the rest. Fires with the number of sessions aborted."""
        self.draining = True
        return ensureDeferred(self._drain(grace))

    async def _drain(self, grace: float) -> int:
        live = list(self.live)
        if not live:
            return 0
        aborted: list[AgiServerProtocol] = []

        def give_up() -> None:
            aborted.extend(self.live)
            log.warning("shutdown: aborting %d session(s) still open after %g s",
                        len(aborted), grace)
            for protocol in aborted:
                protocol.abort()

        timer = self.clock.callLater(grace, give_up)
        await DeferredList([p.when_closed() for p in live])
        if timer.active():
            timer.cancel()
        return len(aborted)


def _classify(exc: BaseException, session_timeout: float) -> tuple[str, str, bool]:
    """(reason, detail, unexpected) for why a handler failed. Fail closed: anything that
    is not a bad request is `unavailable`."""
    if isinstance(exc, RouteError):
        return exc.reason, exc.detail, False
    if isinstance(exc, (DeferredTimeout, CancelledError)):
        return reasons.UNAVAILABLE, f"handler gave no answer within {session_timeout:g} s", False
    if isinstance(exc, DBAPIError):
        return reasons.UNAVAILABLE, f"database error: {_one_line(exc.orig)}", False
    if isinstance(exc, SQLAlchemyError):
        return reasons.UNAVAILABLE, f"database error: {_one_line(exc)}", False
    if isinstance(exc, (AgiError, CommandFailed)):
        return reasons.UNAVAILABLE, _one_line(exc), False
    return reasons.UNAVAILABLE, f"unexpected {_one_line(exc)}", True


def _one_line(value: object) -> str:
    if value is None:
        return "-"
    text = str(value).strip().splitlines()
    text = text[0] if text else ""
    if isinstance(value, BaseException):
        text = f"{type(value).__name__}: {text}" if text else type(value).__name__
    return text[:200]

