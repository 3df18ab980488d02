"""The authorization decision: pure, on a snapshot of the client taken under its row lock.

Order of checks (DESIGN.md): client exists -> active -> rate found -> credit covers the
connection fee and first increment -> a channel is free. Emergency numbers skip every check
but the client's existence: they are always allowed, take a channel and are never billed.
A rejection is a value, not an exception.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

from fastagi import reasons
from fastagi.billing.money import ZERO, round_money
from fastagi.billing.rating import FREE, Rate, affordable_seconds, exact_cost


# Credit slices are on by default with AMI: a call reserves what 5 minutes cost, not its
# whole maximum duration, so concurrent calls (a campaign's above all) share a modest
# balance instead of the first call holding it (docs/contract.md, Credit in slices).
DEFAULT_CREDIT_SLICE_SECONDS = 300
DEFAULT_MAX_CALL_SECONDS = 10800  # 3 h: longest call ever authorized


@dataclass(frozen=True)
class ClientSnapshot:
    """A client's state read under its row lock, with its live calls counted."""

    id: int
    code: str
    status: str
    balance: Decimal
    credit_limit: Decimal
    channel_limit: int
    live_calls: int
    reserved: Decimal
    dial_template: str | None
    rate_inbound: bool

    @property
    def available_credit(self) -> Decimal:
        return self.balance + self.credit_limit - self.reserved


@dataclass(frozen=True)
class CallRequest:
    client_code: str
    number: str
    direction: str = "out"   # "out" or "in"
    emergency: bool = False


@dataclass(frozen=True)
class Admission:
    """What authorize decided. When allowed, the call may talk `max_seconds` and holds
    `reservation` of the client's credit until settled."""

    allowed: bool
    reason: str = ""
    rate: Rate | None = None
    max_seconds: int = 0
    reservation: Decimal = ZERO
    dial_target: str = ""

    @property
    def cause(self) -> int:
        return reasons.cause_for(self.reason) if not self.allowed else 0


def reject(reason: str, rate: Rate | None = None) -> Admission:
    return Admission(allowed=False, reason=reason, rate=rate)


def dial_target(template: str, number: str) -> str:
    return template.replace("{number}", number)


def decide(request: CallRequest, client: ClientSnapshot | None, rate: Rate | None,
           max_call_seconds: int, default_dial_template: str) -> Admission:
    """Decide one call. `rate` is the longest-prefix rate of the client's plan (or None)."""
    if client is None:
        return reject(reasons.UNKNOWN_CLIENT)
    template = client.dial_template or default_dial_template
    target = dial_target(template, request.number) if request.direction == "out" else ""
    if request.emergency:
        return Admission(allowed=True, rate=FREE, max_seconds=max_call_seconds,
                         dial_target=target)
    if client.status != "active":
        return reject(reasons.SUSPENDED)
    rated = request.direction == "out" or client.rate_inbound
    if rated and rate is None:
        return reject(reasons.NO_RATE)
    applied = rate if rated else FREE
    max_seconds = affordable_seconds(applied, client.available_credit, max_call_seconds)
    if max_seconds == 0:
        return reject(reasons.NO_CREDIT, applied)
    if client.live_calls >= client.channel_limit:
        return reject(reasons.CHANNEL_LIMIT, applied)
    reservation = round_money(exact_cost(applied, max_seconds, answered=True))
    return Admission(allowed=True, rate=applied, max_seconds=max_seconds,
                     reservation=reservation, dial_target=target)
