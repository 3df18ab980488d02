"""The AGI reply grammar, parsed by pure functions.

Asterisk answers each command with one line — `200 result=N [(data)] [endpos=N]`, `510 ...`,
`511 ...`, `520 ...` — or with a multi-line usage block `520-...` ... `520 End of proper
usage.`. `HANGUP` is not a reply but an event: it can arrive between a command and its
reply and must never be taken as that reply. `100 ...` is provisional: the final reply
follows.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

HANGUP_EVENT = "HANGUP"

OK = 200
PROVISIONAL = 100
INVALID_COMMAND = 510
DEAD_CHANNEL = 511
USAGE = 520

_STATUS = re.compile(r"^(?P<code>[1-5]\d\d)(?P<sep>[ -]|$)(?P<rest>.*)$", re.DOTALL)
_RESULT = re.compile(r"^result=(?P<result>\S*)\s*(?P<tail>.*)$", re.DOTALL)
_ENDPOS = re.compile(r"(?:^|\s)endpos=(?P<endpos>-?\d+)(?:\s|$)")


class MalformedReply(ValueError):
    """A line that is not part of the AGI reply grammar."""


@dataclass(frozen=True)
class AgiReply:
    """One complete reply. `result`/`data`/`endpos` are None when absent; `result` is ''
    for an empty `result=`; `lines` are the raw lines (several for a 520 block)."""

    code: int
    result: str | None
    data: str | None
    endpos: int | None
    lines: tuple[str, ...]

    @property
    def text(self) -> str:
        return "\n".join(self.lines)

    @property
    def ok(self) -> bool:
        return self.code == OK

    @property
    def result_int(self) -> int | None:
        """`result` as an integer, None when absent, empty or not a number."""
        try:
            return int(self.result) if self.result else None
        except ValueError:
            return None


def is_hangup_event(line: str) -> bool:
    """True for the `HANGUP` event line Asterisk writes when the caller hangs up."""
    return line.strip() == HANGUP_EVENT


def opens_block(line: str) -> bool:
    """True for the first line of a multi-line `520-` usage block."""
    return line.startswith(f"{USAGE}-")


def closes_block(line: str) -> bool:
    """True for the line that ends a `520-` block (it starts with `520 `)."""
    return line.startswith(f"{USAGE} ") or line == str(USAGE)


def parse_reply(lines: tuple[str, ...] | list[str]) -> AgiReply:
    """Parse one complete reply: a single status line, or a whole `520-` block.

    Raises MalformedReply for anything else (garbage, HANGUP, an unterminated block).
    """
    lines = tuple(lines)
    if not lines:
        raise MalformedReply("empty reply")
    first = lines[0]
    match = _STATUS.match(first)
    if not match:
        raise MalformedReply(f"not an AGI reply: {first[:80]!r}")
    code = int(match.group("code"))
    if match.group("sep") == "-":
        if code != USAGE or len(lines) < 2 or not closes_block(lines[-1]):
            raise MalformedReply(f"unterminated or unknown multi-line reply {first[:80]!r}")
        return AgiReply(USAGE, None, None, None, lines)
    if len(lines) != 1:
        raise MalformedReply(f"a one-line reply was given {len(lines)} lines")
    rest = match.group("rest")
    if code not in (OK, PROVISIONAL):
        return AgiReply(code, None, None, None, lines)
    return _parse_result(code, rest, lines)


def _parse_result(code: int, rest: str, lines: tuple[str, ...]) -> AgiReply:
    found = _RESULT.match(rest)
    if not found:
        raise MalformedReply(f"{code} reply without result=: {lines[0][:80]!r}")
    tail = found.group("tail")
    data = None
    after = tail
    if tail.startswith("("):
        close = tail.rfind(")")  # data may itself hold parentheses: up to the LAST one
        if close < 0:
            raise MalformedReply(f"unclosed (data) in {lines[0][:80]!r}")
        data = tail[1:close]
        after = tail[close + 1:]
    endpos = _ENDPOS.search(after)
    return AgiReply(code, found.group("result"), data,
                    int(endpos.group("endpos")) if endpos else None, lines)
