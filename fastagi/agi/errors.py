"""Why a FastAGI session could not be served, as exceptions with one job each.

Handlers raise `BadRequest` or `Unavailable`; the server turns them into the dialplan's
REJECT answer. The others come from the wire: the peer went away, stopped answering, sent
something that is not AGI, or refused a command.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from fastagi import reasons

if TYPE_CHECKING:
    from fastagi.agi.replies import AgiReply


class RouteError(Exception):
    """A request the server cannot serve; `reason` is a fastagi.reasons value."""

    reason = reasons.UNAVAILABLE

    def __init__(self, detail: str) -> None:
        super().__init__(detail)
        self.detail = detail


class BadRequest(RouteError):
    """The request itself is wrong: missing or malformed arguments (reason bad-request)."""

    reason = reasons.BAD_REQUEST


class Unavailable(RouteError):
    """The server cannot decide now: database down or slow (reason unavailable)."""

    reason = reasons.UNAVAILABLE


class AgiError(Exception):
    """The AGI conversation itself failed; no answer can be trusted to arrive."""


class SessionClosed(AgiError):
    """The connection is gone (or closing); the command was never answered."""


class ReplyTimeout(AgiError):
    """The peer did not answer within the session timeout; the session was closed."""


class ProtocolViolation(AgiError):
    """The peer sent something that is not AGI (garbage, an over-long line)."""


class UnsafeValue(ValueError):
    """A value cannot be sent: it holds a newline, carriage return or NUL."""


class CommandTooLong(ValueError):
    """A command line would exceed Asterisk's line limit."""


class CommandFailed(Exception):
    """Asterisk answered a command with something other than success (510, 511, 520...)."""

    def __init__(self, command: str, reply: "AgiReply") -> None:
        super().__init__(f"{command!r} answered {reply.text!r}")
        self.command = command
        self.reply = reply
