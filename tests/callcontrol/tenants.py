"""Engine-level shorthands over tests/builders.py for call-control tests: each opens its
own transaction, so the rows are committed before a server process reads them."""

from __future__ import annotations

from decimal import Decimal

from sqlalchemy.engine import Engine

from tests import builders


def default_plan_id(engine: Engine) -> int:
    with engine.connect() as conn:
        return builders.default_plan_id(conn)


def add_plan(engine: Engine, name: str, dial_template: str | None = None,
             rate_inbound: bool = False) -> int:
    with engine.begin() as conn:
        return builders.make_plan(conn, name, dial_template=dial_template,
                                  rate_inbound=rate_inbound)


def add_rate(engine: Engine, plan_id: int, prefix: str, rate_per_min: str,
             connection_fee: str = "0", initial: int = 60, subsequent: int = 60) -> None:
    with engine.begin() as conn:
        builders.add_rate(conn, plan_id, prefix, Decimal(rate_per_min), Decimal(connection_fee),
                          initial, subsequent)


def add_client(engine: Engine, code: str, balance: str = "0", channel_limit: int = 10,
               plan_id: int | None = None, status: str = "active",
               credit_limit: str = "0") -> int:
    with engine.begin() as conn:
        return builders.make_client(conn, code, balance=Decimal(balance),
                                    channel_limit=channel_limit, plan=plan_id, status=status,
                                    credit_limit=Decimal(credit_limit)).id


def pay(engine: Engine, client_id: int, amount: str, reference: str) -> None:
    with engine.begin() as conn:
        builders.top_up(conn, client_id, Decimal(amount), reference)


def ledger_gap(engine: Engine, client_id: int) -> Decimal:
    """balance - (sum of payments - sum of call costs): 0 when the ledger holds."""
    with engine.connect() as conn:
        return builders.balance(conn, client_id) - builders.ledger_balance(conn, client_id)
