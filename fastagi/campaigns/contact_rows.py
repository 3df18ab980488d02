"""Check the lines of a contacts CSV file: pure functions, no database.

A file has a header line naming its columns (`phone` is required; `first_name`,
`last_name`, `email`, `time_zone` are optional, in any order). Every line is either a
`ContactRow` to insert or a `BadLine` with its line number and reason; nothing stops at a
bad line. An emergency number is refused here, before the database: a campaign must never
dial one (the dialer skips it too, but a contact that can never be called is an error).
"""

from __future__ import annotations

import csv
import re
from dataclasses import dataclass
from typing import Iterable, Iterator, TextIO
from zoneinfo import available_timezones

from fastagi.emergency import DEFAULT_NUMBERS, is_emergency

COLUMNS = ("phone", "first_name", "last_name", "email", "time_zone")
MAX_LENGTHS = {"first_name": 64, "last_name": 64, "email": 254}
PHONE = re.compile(r"\+?[0-9]{2,31}")
# Separators people write in numbers; anything else (letters, ...) makes the number bad.
SEPARATORS = str.maketrans("", "", " -.()/\t")

REASON_BAD_NUMBER = "bad number"
REASON_DUPLICATE = "duplicate"
REASON_DNC = "on the do-not-call list"
REASON_BAD_FIELD = "bad field"
REASON_EMERGENCY = "emergency number"


class HeaderError(ValueError):
    """The file's first line is not a usable header; the message says why."""


@dataclass(frozen=True)
class ContactRow:
    line: int
    phone: str
    first_name: str | None
    last_name: str | None
    email: str | None
    time_zone: str | None

    @property
    def digits(self) -> str:
        return self.phone.lstrip("+")


@dataclass(frozen=True)
class BadLine:
    line: int
    kind: str       # one of the REASON_* constants
    detail: str
    in_campaign: bool = False   # a duplicate of a contact the campaign already holds

    def __str__(self) -> str:
        return f"line {self.line}: {self.kind}: {self.detail}"


def normalize_phone(raw: str) -> str | None:
    """`+44 (20) 7123-4567` -> `+442071234567`; None when it is not a number."""
    phone = raw.strip().translate(SEPARATORS)
    return phone if PHONE.fullmatch(phone) else None


def read_header(reader: Iterator[list[str]]) -> list[str]:
    try:
        header = next(reader)
    except StopIteration:
        raise HeaderError("the file is empty: the first line must name the columns") from None
    names = [h.strip().lower().lstrip("\ufeff") for h in header]
    unknown = [n for n in names if n not in COLUMNS]
    if unknown:
        raise HeaderError(f"unknown column(s) {', '.join(map(repr, unknown))}; "
                          f"columns are {', '.join(COLUMNS)}")
    if "phone" not in names:
        raise HeaderError("the first line must name the columns and include 'phone'")
    if len(set(names)) != len(names):
        raise HeaderError("a column is named twice in the header")
    return names


def check_lines(source: TextIO, zones: frozenset[str] | None = None,
                emergency_numbers: tuple[str, ...] = DEFAULT_NUMBERS
                ) -> Iterator[ContactRow | BadLine]:
    """Every data line of the CSV `source`, checked on its own (bad number, emergency
    number, bad field, duplicate of an earlier line). Raises HeaderError before the first
    line if the header is unusable."""
    zones = zones if zones is not None else frozenset(available_timezones())
    reader = csv.reader(source)
    names = read_header(reader)
    seen: dict[str, int] = {}
    for fields in reader:
        line = reader.line_num
        if not any(f.strip() for f in fields):
            continue  # blank line
        if len(fields) != len(names):
            yield BadLine(line, REASON_BAD_FIELD,
                          f"{len(fields)} fields where the header names {len(names)}")
            continue
        values = dict(zip(names, (f.strip() for f in fields)))
        phone = normalize_phone(values["phone"])
        if phone is None:
            yield BadLine(line, REASON_BAD_NUMBER,
                          f"{values['phone'][:40]!r} is not 2-31 digits with an optional +")
            continue
        if is_emergency(phone, emergency_numbers):
            yield BadLine(line, REASON_EMERGENCY,
                          f"{phone} is an emergency number; a campaign never dials one")
            continue
        problem = _field_problem(values, zones)
        if problem:
            yield BadLine(line, REASON_BAD_FIELD, problem)
            continue
        digits = phone.lstrip("+")
        if digits in seen:
            yield BadLine(line, REASON_DUPLICATE, f"{phone} is also on line {seen[digits]}")
            continue
        seen[digits] = line
        yield ContactRow(line=line, phone=phone, first_name=values.get("first_name") or None,
                         last_name=values.get("last_name") or None,
                         email=values.get("email") or None,
                         time_zone=values.get("time_zone") or None)


def _field_problem(values: dict[str, str], zones: frozenset[str]) -> str | None:
    for name, longest in MAX_LENGTHS.items():
        if len(values.get(name, "")) > longest:
            return f"{name} is longer than {longest} characters"
    zone = values.get("time_zone", "")
    if zone and zone not in zones:
        return f"time_zone {zone[:40]!r} is not an IANA time zone (e.g. Europe/London)"
    return None


def chunks(items: Iterable[ContactRow | BadLine], size: int
           ) -> Iterator[list[ContactRow | BadLine]]:
    chunk: list[ContactRow | BadLine] = []
    for item in items:
        chunk.append(item)
        if len(chunk) >= size:
            yield chunk
            chunk = []
    if chunk:
        yield chunk
