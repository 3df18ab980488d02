"""What a route handler sees of the call: the environment and a few AGI commands.

Each method sends one command, waits for its reply, and raises `CommandFailed` when
Asterisk does not answer with success (510, 511, 520, or an unexpected result), or an
`AgiError` when the session breaks (peer gone, timeout, garbage).
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from typing import Any, Mapping

from fastagi.agi.environment import AgiEnvironment
from fastagi.agi.errors import CommandFailed
from fastagi.agi.protocol import AgiServerProtocol
from fastagi.agi.quoting import command_line, flatten
from fastagi.agi.replies import AgiReply

Value = str | int | Decimal | None

# Seconds allowed for a prompt to play, on top of the digit timeouts (core prompts last a
# few seconds; an unanswered reply after this breaks the session).
REPLY_MARGIN_S = 30.0


@dataclass(frozen=True)
class Digits:
    """What GET DATA read: the keys (without the final #), whether the caller stopped
    typing (timeout) and whether the caller hung up."""

    digits: str
    timed_out: bool = False
    hung_up: bool = False


class Channel:
    """The handler-facing channel of one session.

    `sent` holds every variable this session set successfully (name -> value as sent);
    `notes` the fields added with `note()` for the session's log line.
    """

    def __init__(self, protocol: AgiServerProtocol, environment: AgiEnvironment) -> None:
        self._protocol = protocol
        self.env = environment
        self.sent: dict[str, str] = {}
        self.notes: dict[str, Any] = {}

    @property
    def args(self) -> tuple[str, ...]:
        """The AGI() arguments after the URL (`agi_arg_1` ... in order)."""
        return self.env.args

    @property
    def hung_up(self) -> bool:
        """True once Asterisk reported the caller's hangup (the channel is dead)."""
        return self._protocol.hung_up

    @property
    def peer_host(self) -> str:
        """The address of the Asterisk box on the other end ('' if not an IP peer)."""
        return self._protocol.peer_host

    @property
    def is_open(self) -> bool:
        """True while the session can still deliver answers (not closed, not broken).
        A HANGUP event does not close it: variables can still be set."""
        return not self._protocol.is_closed and self._protocol.failure is None

    def note(self, **fields: Any) -> None:
        """Add fields (client=, decision=, reason=, ...) to this session's log line."""
        self.notes.update(fields)

    async def command(self, verb: str, *args: str, timeout: float | None = None) -> AgiReply:
        """Send `verb` with quoted `args`; return the reply whatever its code. `timeout`
        bounds the wait for the reply (default: the session's)."""
        return await self._protocol.send_command(command_line(verb, *args), timeout)

    async def get_variable(self, name: str) -> str | None:
        """The variable's value, or None when it is not set."""
        reply = await self._checked("GET VARIABLE", name)
        return (reply.data or "") if reply.result == "1" else None

    async def set_variable(self, name: str, value: Value) -> None:
        """Set a channel variable (None is sent as the empty string)."""
        text = "" if value is None else str(value)
        reply = await self._checked("SET VARIABLE", name, text)
        if reply.result != "1":
            raise CommandFailed(f"SET VARIABLE {name}", reply)
        self.sent[name] = text

    async def set_variables(self, values: Mapping[str, Value]) -> None:
        """Set several variables, one command after the other, in the mapping's order."""
        for name, value in values.items():
            await self.set_variable(name, value)

    async def verbose(self, message: str, level: int = 1) -> None:
        """Log `message` on the Asterisk console (line breaks become spaces)."""
        await self._checked("VERBOSE", flatten(message), str(level))

    async def exec(self, app: str, *args: str) -> int | None:
        """Run a dialplan application; its arguments are joined with commas.

        Returns Asterisk's result (the application's return value; -2: no such app).
        """
        reply = await self._checked("EXEC", app, *([",".join(args)] if args else []))
        return reply.result_int

    async def get_data(self, prompt: str, timeout_ms: int, max_digits: int) -> Digits:
        """Play `prompt` (a sound file name) and read up to `max_digits` keys, ended by
        `#` or by `timeout_ms` without a key (GET DATA). The reply may take the prompt's
        length plus a timeout per digit, so the wait is bounded by that, not by the
        session timeout. A hung-up caller (result -1) gives `Digits("", hung_up=True)`."""
        bound = REPLY_MARGIN_S + (timeout_ms / 1000.0) * (max_digits + 1)
        reply = await self._checked("GET DATA", prompt, str(timeout_ms), str(max_digits),
                                    timeout=bound)
        if reply.result == "-1":
            return Digits("", hung_up=True)
        digits = reply.result or ""
        return Digits(digits, timed_out=reply.data == "timeout")

    async def stream_file(self, sound: str) -> None:
        """Play one sound file to the end (STREAM FILE with no escape digits). A missing
        file is not an error (Asterisk logs it and goes on)."""
        await self._checked("STREAM FILE", sound, "", timeout=REPLY_MARGIN_S)

    async def _checked(self, verb: str, *args: str, timeout: float | None = None) -> AgiReply:
        reply = await self.command(verb, *args, timeout=timeout)
        if not reply.ok:
            raise CommandFailed(f"{verb} {args[0] if args else ''}".strip(), reply)
        return reply
