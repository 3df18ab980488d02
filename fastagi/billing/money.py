"""Money is Decimal, rounded half-up to 4 places (USD ten-thousandths)."""

from __future__ import annotations

from decimal import ROUND_HALF_UP, Decimal

MONEY_PLACES = Decimal("0.0001")
ZERO = Decimal("0")


def round_money(amount: Decimal) -> Decimal:
    """Round an exact amount to 4 places, half-up (0.00005 -> 0.0001)."""
    if not isinstance(amount, Decimal):
        raise TypeError(f"money must be Decimal, not {type(amount).__name__}")
    return amount.quantize(MONEY_PLACES, rounding=ROUND_HALF_UP)


def format_money(amount: Decimal) -> str:
    """The text form set in channel variables: fixed 4 places, no exponent."""
    return f"{round_money(amount):.4f}"
