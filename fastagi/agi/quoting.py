"""Build AGI command lines Asterisk parses back into exactly the values we meant.

Asterisk splits a command line on spaces; `"` toggles quoting and `\\` escapes the next
character. So every argument is sent as `"..."` with `\\` and `"` escaped — never stripped.
A newline (or CR, or NUL) inside a value would end the command early and let the rest run
as a new command, so such values are refused (`UnsafeValue`), never sent.
"""

from __future__ import annotations

from fastagi.agi.errors import CommandTooLong, UnsafeValue

# Asterisk reads a command into an 8192-byte buffer. We keep the whole line, LF included,
# one byte under it so the C string's terminating NUL always fits.
MAX_LINE_BYTES = 8192
ENCODING = "utf-8"
ERRORS = "surrogateescape"  # bytes that are not UTF-8 round-trip unchanged

_FORBIDDEN = {"\n": "newline", "\r": "carriage return", "\x00": "NUL"}


def quote(value: str) -> str:
    """`value` as one quoted AGI argument. Raises UnsafeValue for newline, CR or NUL."""
    for char, name in _FORBIDDEN.items():
        if char in value:
            raise UnsafeValue(f"value {value[:40]!r} contains a {name}; it cannot be sent")
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def flatten(text: str) -> str:
    """Human text (VERBOSE messages) with newlines, CRs and NULs turned into spaces."""
    for char in _FORBIDDEN:
        text = text.replace(char, " ")
    return text


def command_line(verb: str, *args: str) -> bytes:
    """The bytes of one command: `verb` as is (fixed words), each arg quoted, then LF.

    Raises UnsafeValue (see `quote`) or CommandTooLong when the line would not fit.
    """
    if any(char in verb for char in _FORBIDDEN) or not verb.strip():
        raise UnsafeValue(f"command verb {verb!r} is empty or holds a line break")
    line = " ".join([verb, *(quote(arg) for arg in args)]).encode(ENCODING, ERRORS) + b"\n"
    if len(line) >= MAX_LINE_BYTES:
        raise CommandTooLong(f"{verb} command is {len(line)} bytes; Asterisk accepts at most "
                             f"{MAX_LINE_BYTES - 1} bytes per line (LF included)")
    return line
