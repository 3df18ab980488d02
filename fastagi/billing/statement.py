"""A client's statement for one month: what it holds and how its totals add up (pure).

Periods are calendar months in UTC, [first day 00:00, first day of the next month 00:00).
The figures come from the ledger (schema/132_statements.sql, 157 and 176); the closing
balance is opening + payments + transfers + corrections - usage - client charges, exact to
the ten-thousandth. Transfers and client charges are a reseller's: credit it gave its own
clients (transfer_to_client), and what it paid for its clients' calls (call_charges).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime
from decimal import ROUND_HALF_UP, Decimal

from fastagi.billing.money import ZERO

_PERIOD = re.compile(r"^(\d{4})-(\d{2})$")


@dataclass(frozen=True)
class Period:
    """One calendar month in UTC."""

    year: int
    month: int

    @classmethod
    def parse(cls, text: str) -> "Period":
        """'2026-11' -> Period(2026, 11); anything else is a ValueError saying the form."""
        match = _PERIOD.match(text or "")
        if not match or not 1 <= int(match[2]) <= 12 or int(match[1]) < 1970:
            raise ValueError(f"--period must be a month as YYYY-MM (e.g. 2026-11), "
                             f"not {text!r}")
        return cls(int(match[1]), int(match[2]))

    @property
    def start(self) -> datetime:
        """First instant of the month (naive UTC)."""
        return datetime(self.year, self.month, 1)

    @property
    def end(self) -> datetime:
        """First instant of the next month (naive UTC), not part of this period."""
        return datetime(self.year + self.month // 12, self.month % 12 + 1, 1)

    def next(self) -> "Period":
        return Period(self.year + self.month // 12, self.month % 12 + 1)

    def __str__(self) -> str:
        return f"{self.year:04d}-{self.month:02d}"


def minutes_of(seconds: int) -> Decimal:
    """Minutes to two places, half up (the exact figure is the seconds)."""
    return (Decimal(seconds) / 60).quantize(Decimal("0.01"), rounding=ROUND_HALF_UP)


@dataclass(frozen=True)
class Payment:
    """A payments row of the period: a top-up (or the opening payment, or credit from the
    client's reseller), a correction, or credit a reseller gave a client (negative)."""

    at: datetime
    kind: str              # topup, opening, correction, transfer
    reference: str
    note: str | None
    amount: Decimal

    @property
    def is_correction(self) -> bool:
        return self.kind == "correction"

    @property
    def is_transfer(self) -> bool:
        return self.kind == "transfer"


@dataclass(frozen=True)
class Usage:
    """The period's calls to one destination."""

    destination: str
    prefix: str | None
    emergency: bool
    inbound: bool
    calls: int
    seconds: int           # billed seconds; for emergency calls the talk time
    cost: Decimal

    @property
    def minutes(self) -> Decimal:
        return minutes_of(self.seconds)


@dataclass(frozen=True)
class ClientCharge:
    """A reseller's period of calls of one client of its own (and of that client's own
    clients, if it resells): what the reseller paid for them at its own rate."""

    code: str
    name: str
    calls: int
    seconds: int           # billed to the reseller at its own rate's increments
    sold: Decimal          # what the client paid the reseller for them
    cost: Decimal          # what the reseller paid: moved its balance

    @property
    def minutes(self) -> Decimal:
        return minutes_of(self.seconds)

    @property
    def margin(self) -> Decimal:
        return self.sold - self.cost


@dataclass(frozen=True)
class Statement:
    code: str
    name: str
    period: Period
    opening_balance: Decimal
    payment_rows: tuple[Payment, ...]
    usage: tuple[Usage, ...]
    client_charges: tuple[ClientCharge, ...] = ()
    current_balance: Decimal | None = None   # client_list.balance when it was made
    made_at: datetime | None = None

    @property
    def payments(self) -> Decimal:
        """Money received: top-ups and the opening payment."""
        return sum((p.amount for p in self.payment_rows
                    if not p.is_correction and not p.is_transfer), ZERO)

    @property
    def transfers(self) -> Decimal:
        """Credit a reseller gave its clients (negative)."""
        return sum((p.amount for p in self.payment_rows if p.is_transfer), ZERO)

    @property
    def corrections(self) -> Decimal:
        return sum((p.amount for p in self.payment_rows if p.is_correction), ZERO)

    @property
    def usage_cost(self) -> Decimal:
        return sum((u.cost for u in self.usage), ZERO)

    @property
    def client_charges_cost(self) -> Decimal:
        """What a reseller paid for its clients' calls."""
        return sum((c.cost for c in self.client_charges), ZERO)

    @property
    def calls(self) -> int:
        return sum(u.calls for u in self.usage)

    @property
    def seconds(self) -> int:
        return sum(u.seconds for u in self.usage)

    @property
    def minutes(self) -> Decimal:
        return minutes_of(self.seconds)

    @property
    def closing_balance(self) -> Decimal:
        return (self.opening_balance + self.payments + self.transfers + self.corrections
                - self.usage_cost - self.client_charges_cost)

    @property
    def is_open(self) -> bool:
        """The period has not ended yet when the statement was made: more may come."""
        return self.made_at is not None and self.made_at < self.period.end
