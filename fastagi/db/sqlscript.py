"""Split a .sql file into statements the way the `mysql` client does.

Schema files are written to run unchanged under `mysql < file.sql`, so triggers and
procedures use `DELIMITER //` blocks. This splitter honours DELIMITER lines and ignores
delimiters inside quotes and comments.
"""

from __future__ import annotations


def split_statements(text: str) -> list[str]:
    """Return the statements of `text`, without their delimiters, skipping empty ones."""
    statements: list[str] = []
    delimiter = ";"
    buf: list[str] = []
    i, n = 0, len(text)
    at_line_start = True
    while i < n:
        if at_line_start:
            line_end = text.find("\n", i)
            line_end = n if line_end == -1 else line_end
            line = text[i:line_end].strip()
            if line.upper().startswith("DELIMITER ") and not "".join(buf).strip():
                delimiter = line.split(None, 1)[1].strip()
                i = line_end + 1
                continue
        ch = text[i]
        at_line_start = False
        if text.startswith(delimiter, i):
            _flush(buf, statements)
            i += len(delimiter)
            continue
        if ch in ("'", '"', "`"):
            end = _quoted_end(text, i, ch)
            buf.append(text[i:end])
            i = end
            continue
        if text.startswith("--", i) and (i + 2 >= n or text[i + 2] in " \t\r\n") or ch == "#":
            end = text.find("\n", i)
            i = n if end == -1 else end
            continue
        if text.startswith("/*", i):
            end = text.find("*/", i + 2)
            i = n if end == -1 else end + 2
            continue
        buf.append(ch)
        if ch == "\n":
            at_line_start = True
        i += 1
    _flush(buf, statements)
    return statements


def _quoted_end(text: str, start: int, quote: str) -> int:
    i = start + 1
    while i < len(text):
        if text[i] == "\\" and quote != "`":
            i += 2
            continue
        if text[i] == quote:
            if i + 1 < len(text) and text[i + 1] == quote:  # doubled quote
                i += 2
                continue
            return i + 1
        i += 1
    raise ValueError(f"unterminated {quote} quote starting at offset {start}")


def _flush(buf: list[str], statements: list[str]) -> None:
    statement = "".join(buf).strip()
    buf.clear()
    if statement:
        statements.append(statement)
