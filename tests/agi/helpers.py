"""Shared test pieces: byte builders for chats, services with an injected clock."""

from __future__ import annotations

from typing import Any

from twisted.internet.task import Clock

from fastagi import channel_vars, reasons
from fastagi.testing.fake_asterisk import environment_pairs
from fastagi.agi.quoting import command_line
from fastagi.services import ServeConfig, Services

SESSION_TIMEOUT = 20.0


def env_block(script: str, *args: str, blank_lines: int = 0) -> bytes:
    """The environment block Asterisk sends, closing empty line included."""
    lines = [f"{k}: {v}\n" for k, v in environment_pairs(script, args)]
    return ("".join(lines) + "\n" * (1 + blank_lines)).encode()


def set_var(name: str, value: str) -> bytes:
    return command_line("SET VARIABLE", name, value)


def reject_answer(reason: str) -> list[tuple[str, Any]]:
    """Chat steps of the server's REJECT answer, each command acknowledged in turn."""
    steps: list[tuple[str, Any]] = []
    for name, value in ((channel_vars.RESULT, channel_vars.REJECT),
                        (channel_vars.REASON, reason),
                        (channel_vars.CAUSE, str(reasons.cause_for(reason)))):
        steps += [("out", set_var(name, value)), ("in", b"200 result=1\n")]
    return steps


class NoDatabase:
    """A db runner for tests that must not touch a database."""

    def run(self, fn, *args, **kwargs):
        raise AssertionError("this test uses no database")


def make_services(clock: Clock | None = None, db: Any = None, **config: Any) -> Services:
    config.setdefault("session_timeout", SESSION_TIMEOUT)
    return Services(clock=clock or Clock(), db=db or NoDatabase(),
                    config=ServeConfig(**config))
