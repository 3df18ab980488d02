"""Rate decks as files (`ictcontact rates import`): reading a deck's lines into checked rows,
and what importing it changes against the deck in effect. Pure: text in, rows, errors and
differences out; the database side is fastagi/store/rate_decks.py.

A deck is a CSV file whose first line is a header naming its columns (any order):

    prefix          digits, 1-32 (required)
    rate_per_min    USD per minute, at most 6 decimals (required; `rate` is the same)
    description     destination name, at most 128 characters (empty: none)
    connection_fee  USD once per answered call, at most 6 decimals (default 0; `fee`)
    initial_increment, subsequent_increment
                    seconds, 1-3600 (default 60; an empty subsequent is the initial)
    increments      both at once as INITIAL/SUBSEQUENT, e.g. 30/6 (instead of the two above)
    effective_date  when the line takes effect, UTC: YYYY-MM-DD or YYYY-MM-DD HH:MM[:SS]
                    (empty: the deck's time, --effective or now)

A money value with more decimals than the database keeps is refused, never rounded
(0.0120000 is 0.012 and fine; 0.0000004 is refused).
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal, InvalidOperation
from functools import lru_cache
from typing import Iterable, Iterator, NamedTuple

RATE_DECIMALS = 6
MAX_MONEY = Decimal("999999.999999")  # DECIMAL(12,6)
DEFAULT_INCREMENT = 60
MAX_DESCRIPTION = 128
MAX_PREFIX = 32

ALIASES = {"rate": "rate_per_min", "fee": "connection_fee", "effective": "effective_date"}
COLUMNS = ("prefix", "description", "rate_per_min", "connection_fee", "initial_increment",
           "subsequent_increment", "increments", "effective_date")
_QUANTUM = Decimal(1).scaleb(-RATE_DECIMALS)


class DeckError(ValueError):
    """The file as a whole is not a deck (no header, unknown column, no rates)."""


def deck_key(rate: Decimal, fee: Decimal, initial: int, subsequent: int,
             description: str | None) -> str:
    """A prefix's values as one comparable string; the store builds the same in SQL
    (CONCAT_WS of the DECIMAL(12,6) texts), which is far cheaper to read than 6 columns."""
    return (f"{rate:.6f}|{fee:.6f}|{initial}|{subsequent}|"
            + ("" if description is None else "=" + description))


def values_from_key(key: str) -> "Values":
    rate, fee, initial, subsequent, description = key.split("|", 4)
    return Values(description[1:] if description else None, Decimal(rate), Decimal(fee),
                  int(initial), int(subsequent))


class Values(NamedTuple):
    """What a prefix is rated with: compared to tell changed from unchanged."""
    description: str | None
    rate_per_min: Decimal
    connection_fee: Decimal
    initial_increment: int
    subsequent_increment: int

    @property
    def key(self) -> str:
        """The values as one string, as the store reads them (deck_key)."""
        return deck_key(self.rate_per_min, self.connection_fee, self.initial_increment,
                        self.subsequent_increment, self.description)

    def show(self) -> str:
        return (f"{_amount(self.rate_per_min)}/min fee {_amount(self.connection_fee)} "
                f"{self.initial_increment}/{self.subsequent_increment}"
                + (f" {self.description!r}" if self.description else ""))


def _amount(value: Decimal) -> str:
    """An amount with the decimals it needs, at least 4: 0.0120, 0.000125."""
    text = f"{value:.6f}".rstrip("0")
    whole, _, decimals = text.partition(".")
    return f"{whole}.{decimals:0<4}"


class DeckRow(NamedTuple):
    line: int
    prefix: str
    values: Values
    effective: datetime | None


@dataclass(frozen=True)
class LineError:
    line: int
    message: str

    def __str__(self) -> str:
        return f"line {self.line}: {self.message}"


def parse_time(text: str) -> datetime:
    """'YYYY-MM-DD', 'YYYY-MM-DD HH:MM' or 'YYYY-MM-DD HH:MM:SS' (UTC) as a naive datetime."""
    for shape in ("%Y-%m-%d %H:%M:%S", "%Y-%m-%d %H:%M", "%Y-%m-%d"):
        try:
            return datetime.strptime(text.strip(), shape)
        except ValueError:
            continue
    raise ValueError(f"{text!r} is not a time: give YYYY-MM-DD or 'YYYY-MM-DD HH:MM' (UTC)")


# A deck repeats a few hundred distinct amounts over 100,000 lines (and the fee is mostly
# 0): each text is checked once. Decimal is immutable, so sharing the value is safe; a
# refusal raises and is not kept.
@lru_cache(maxsize=65536)
def money(text: str, column: str) -> Decimal:
    """An exact amount of at most RATE_DECIMALS decimals, 0 or more; ValueError in words."""
    try:
        if "_" in text:  # Decimal() reads 1_000 as 1000; a deck never means that
            raise InvalidOperation
        value = Decimal(text)
    except InvalidOperation:
        raise ValueError(f"{column} {text.strip()!r} is not a number: give e.g. 0.0120") from None
    exponent = value.as_tuple().exponent
    if not isinstance(exponent, int):  # NaN, Infinity
        raise ValueError(f"{column} {text.strip()!r} is not a number: give e.g. 0.0120")
    if value < 0:
        raise ValueError(f"{column} {text.strip()!r} is negative: give 0 or more")
    if exponent < -RATE_DECIMALS and value != value.quantize(_QUANTUM, rounding="ROUND_DOWN"):
        raise ValueError(f"{column} {text.strip()!r} has more than {RATE_DECIMALS} decimals and is "
                         f"never rounded: give the exact amount with {RATE_DECIMALS} decimals or fewer")
    if value > MAX_MONEY:
        raise ValueError(f"{column} {text.strip()!r} is more than {MAX_MONEY}: check the column")
    return value if exponent >= -RATE_DECIMALS else value.quantize(_QUANTUM)


def increment(text: str, column: str) -> int:
    if not (text.isdigit() and text.isascii()) or not 1 <= int(text) <= 3600:
        raise ValueError(f"{column} {text.strip()!r} is not 1-3600 seconds")
    return int(text)


def _header(fields: list[str]) -> list[str]:
    names = [ALIASES.get(f.strip().lower(), f.strip().lower()) for f in fields]
    if "prefix" not in names:
        raise DeckError("the first line must be a header naming the columns, e.g. "
                        "prefix,description,rate_per_min,connection_fee,initial_increment,"
                        "subsequent_increment")
    unknown = [n for n in names if n not in COLUMNS]
    if unknown:
        raise DeckError(f"column {unknown[0]!r} is not a deck column: use {', '.join(COLUMNS)}")
    twice = sorted({n for n in names if names.count(n) > 1})
    if twice:
        raise DeckError(f"column {twice[0]!r} is named twice in the header")
    if "rate_per_min" not in names:
        raise DeckError("the header names no rate_per_min column (USD per minute)")
    if "increments" in names and ({"initial_increment", "subsequent_increment"} & set(names)):
        raise DeckError("give increments (e.g. 30/6) or initial_increment/subsequent_increment, not both")
    return names


class _Columns:
    """Where each column is in a line (None: not in the file)."""

    def __init__(self, names: list[str]) -> None:
        at = {name: i for i, name in enumerate(names)}
        self.count = len(names)
        self.prefix, self.rate = at["prefix"], at["rate_per_min"]
        self.description, self.fee = at.get("description"), at.get("connection_fee")
        self.initial, self.subsequent = at.get("initial_increment"), at.get("subsequent_increment")
        self.increments, self.effective = at.get("increments"), at.get("effective_date")


def _field(fields: list[str], index: int | None) -> str:
    return "" if index is None else fields[index].strip()


def _row(line: int, fields: list[str], at: _Columns) -> DeckRow:
    prefix = fields[at.prefix].strip()
    if not prefix.isdigit() or not prefix.isascii() or len(prefix) > MAX_PREFIX:
        raise ValueError(f"bad prefix {prefix!r}: 1-{MAX_PREFIX} digits, no + or spaces")
    description = _field(fields, at.description) or None
    if description is not None and len(description) > MAX_DESCRIPTION:
        raise ValueError(f"description is {len(description)} characters: at most {MAX_DESCRIPTION}")
    rate = money(fields[at.rate], "rate_per_min")
    fee_text = _field(fields, at.fee)
    fee = money(fee_text, "connection_fee") if fee_text else Decimal(0)
    both = _field(fields, at.increments)
    if both:
        first, sep, then = both.partition("/")
        if not sep:
            raise ValueError(f"increments {both!r} is not INITIAL/SUBSEQUENT, e.g. 30/6")
        initial = increment(first.strip(), "initial increment")
        subsequent = increment(then.strip(), "subsequent increment")
    else:
        initial_text = _field(fields, at.initial)
        initial = increment(initial_text, "initial_increment") if initial_text else DEFAULT_INCREMENT
        then_text = _field(fields, at.subsequent)
        subsequent = increment(then_text, "subsequent_increment") if then_text else initial
    when_text = _field(fields, at.effective)
    try:
        effective = parse_time(when_text) if when_text else None
    except ValueError as exc:
        raise ValueError(f"effective_date {exc}") from None
    return DeckRow(line, prefix, Values(description, rate, fee, initial, subsequent), effective)


def read_deck(lines: Iterable[str]) -> tuple[list[DeckRow], list[LineError]]:
    """Every line of the deck checked: the good rows and the bad lines (a line number and
    what is wrong). DeckError when the file is not a deck at all."""
    reader = csv.reader(lines)
    try:
        header = next(reader)
    except StopIteration:
        raise DeckError("the file is empty: a deck has a header line and one line per prefix") from None
    at = _Columns(_header(header))
    rows: list[DeckRow] = []
    errors: list[LineError] = []
    first_line: dict[str, int] = {}
    for fields in reader:
        line = reader.line_num
        if len(fields) != at.count:
            if not "".join(fields).strip():
                continue  # blank lines are no rates
            errors.append(LineError(line, f"{len(fields)} fields where the header names {at.count}"))
            continue
        try:
            row = _row(line, fields, at)
        except ValueError as exc:
            errors.append(LineError(line, str(exc)))
            continue
        if row.prefix in first_line:
            errors.append(LineError(line, f"duplicate prefix {row.prefix}, also on line "
                                          f"{first_line[row.prefix]}"))
            continue
        first_line[row.prefix] = line
        rows.append(row)
    if not rows and not errors:
        raise DeckError("the deck has a header but no rates: an import replaces the whole deck, "
                        "so an empty one would remove every rate; refused")
    return rows, errors


@dataclass(frozen=True)
class Difference:
    kind: str          # added, changed, removed
    prefix: str
    old: Values | None
    new: Values | None
    line: int | None

    def __str__(self) -> str:
        where = f"line {self.line}: " if self.line else ""
        if self.kind == "added":
            return f"{where}+ {self.prefix} {self.new.show()}"
        if self.kind == "removed":
            return f"- {self.prefix} {self.old.show()} (not in the file)"
        return f"{where}~ {self.prefix} {self.old.show()} -> {self.new.show()}"


@dataclass
class Plan:
    """What an import does to a deck: the counts and the differences, in file order
    (removals last, by prefix)."""
    added: int = 0
    changed: int = 0
    removed: int = 0
    unchanged: int = 0
    differences: list[Difference] | None = None

    def counts(self) -> str:
        return (f"{self.added} added, {self.changed} changed, {self.removed} removed, "
                f"{self.unchanged} unchanged")


def compare(current: dict[str, str], rows: list[DeckRow]) -> Plan:
    """`current`: the deck in effect, prefix -> Values.key."""
    plan = Plan(differences=[])
    seen = set()
    for row in rows:
        seen.add(row.prefix)
        old = current.get(row.prefix)
        if old is None:
            plan.added += 1
            plan.differences.append(Difference("added", row.prefix, None, row.values, row.line))
        elif old != row.values.key:
            plan.changed += 1
            plan.differences.append(Difference("changed", row.prefix, values_from_key(old),
                                               row.values, row.line))
        else:
            plan.unchanged += 1
    for prefix in sorted(set(current) - seen):
        plan.removed += 1
        plan.differences.append(Difference("removed", prefix, values_from_key(current[prefix]),
                                           None, None))
    return plan


def chunked(items: list, size: int) -> Iterator[list]:
    for start in range(0, len(items), size):
        yield items[start:start + size]
