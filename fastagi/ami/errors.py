"""Why an AMI action got no usable answer, as exceptions with one job each. (A value the
product refuses to send is refused by fastagi.ami.message: UnsafeValue, ActionTooLong.)"""

from __future__ import annotations

from fastagi.ami.message import AmiMessage


class AmiError(Exception):
    """An AMI action did not succeed."""


class NotConnected(AmiError):
    """No logged-in AMI connection right now; the action was not sent."""


class ConnectionLost(AmiError):
    """The connection went away before the action was answered."""


class ActionTimeout(AmiError):
    """No (complete) answer within the action's timeout."""


class ProtocolViolation(AmiError):
    """The peer sent something that is not AMI (no greeting, an over-long message)."""


class ActionFailed(AmiError):
    """Asterisk answered `Response: Error`; `response` is its message, `message` its text."""

    def __init__(self, action: str, response: AmiMessage) -> None:
        self.action = action
        self.response = response
        self.message = response.get("Message") or ""
        super().__init__(f"{action}: {self.message or 'Error'}")


class LoginFailed(ActionFailed):
    """Login refused (bad user or secret, or `Login Already In Use`)."""
