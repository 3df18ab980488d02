"""AMI messages: parsing the `Key: Value` lines Asterisk sends and formatting actions.

Asterisk (main/manager.c) writes CRLF lines; a message is its header lines followed by one
empty line. A response starts `Response: Success|Error|Goodbye` and echoes the action's
`ActionID`; an event starts `Event: Name` (`Privilege: class,all` for broadcast events,
`ActionID` for the items of a list). A list is `Response: Success` with `EventList: start`,
its item events, then an event with `EventList: Complete` and `ListItems: N`.

Asterisk reads an action line into a 1025-byte buffer and discards a longer one, so a
header line we send is refused here if longer than 1024 bytes with its CRLF; a value with
CR, LF or NUL would start a new header (or action) and is refused too.
"""

from __future__ import annotations

from typing import Iterable, Mapping, Sequence, Union

ENCODING = "utf-8"
ERRORS = "replace"
MAX_ACTION_LINE = 1024  # bytes with CRLF (manager.c: char inbuf[1025])

Fields = Union[Mapping[str, object], Sequence[tuple[str, object]]]


class UnsafeValue(ValueError):
    """A header value holds CR, LF or NUL (it would start another header or action)."""


class ActionTooLong(ValueError):
    """A header line would exceed what Asterisk reads in one line (1024 bytes)."""


class AmiMessage:
    """One message: its headers in order (`headers`), looked up case-insensitively.

    `get(key)` is the first value of that header (None if absent); `get_all(key)` every
    value (e.g. several `ChanVariable` lines).
    """

    __slots__ = ("headers", "_index")

    def __init__(self, headers: Iterable[tuple[str, str]]) -> None:
        self.headers: tuple[tuple[str, str], ...] = tuple(headers)
        index: dict[str, str] = {}
        for key, value in self.headers:
            index.setdefault(key.lower(), value)
        self._index = index

    def get(self, key: str, default: str | None = None) -> str | None:
        return self._index.get(key.lower(), default)

    def get_all(self, key: str) -> list[str]:
        key = key.lower()
        return [value for k, value in self.headers if k.lower() == key]

    def __getitem__(self, key: str) -> str:
        return self._index[key.lower()]

    def __contains__(self, key: object) -> bool:
        return isinstance(key, str) and key.lower() in self._index

    @property
    def response(self) -> str | None:
        return self.get("Response")

    @property
    def event(self) -> str | None:
        return self.get("Event")

    @property
    def action_id(self) -> str | None:
        return self.get("ActionID")

    def as_dict(self) -> dict[str, str]:
        """First value of each header, keys as Asterisk spelled them."""
        out: dict[str, str] = {}
        for key, value in self.headers:
            out.setdefault(key, value)
        return out

    def __repr__(self) -> str:
        return f"AmiMessage({self.as_dict()!r})"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, AmiMessage) and other.headers == self.headers

    def __hash__(self) -> int:
        return hash(self.headers)


def parse_header(line: str) -> tuple[str, str] | None:
    """`Key: Value` -> (key, value); None for a line that is not a header (garbage)."""
    key, sep, value = line.partition(":")
    key = key.strip()
    if not sep or not key or " " in key:
        return None
    return key, value[1:] if value.startswith(" ") else value


def format_action(action: str, action_id: str, fields: Fields = ()) -> bytes:
    """The bytes of one action: `Action`, `ActionID`, then the fields in order, then an
    empty line. A field value of None is left out. Raises UnsafeValue or ActionTooLong."""
    items = fields.items() if isinstance(fields, Mapping) else fields
    pairs = [("Action", action), ("ActionID", action_id)]
    pairs += [(key, value) for key, value in items if value is not None]
    out = []
    for key, value in pairs:
        text = value if isinstance(value, str) else str(value)
        for part in (key, text):
            if any(c in part for c in "\r\n\0"):
                raise UnsafeValue(f"AMI header {key!r} holds CR, LF or NUL")
        if ":" in key or not key.strip():
            raise UnsafeValue(f"bad AMI header name {key!r}")
        line = f"{key}: {text}\r\n".encode(ENCODING)
        if len(line) > MAX_ACTION_LINE:
            raise ActionTooLong(f"AMI header {key!r} is {len(line)} bytes "
                                f"(Asterisk reads at most {MAX_ACTION_LINE})")
        out.append(line)
    out.append(b"\r\n")
    return b"".join(out)
