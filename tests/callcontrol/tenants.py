"""Small typed builders for call-control fixtures (plain parameterized SQL)."""

from __future__ import annotations

from decimal import Decimal

from sqlalchemy import text
from sqlalchemy.engine import Engine


def default_plan_id(engine: Engine) -> int:
    with engine.connect() as conn:
        return conn.execute(text("SELECT id FROM rate_plans WHERE is_default = 1")).scalar_one()


def add_plan(engine: Engine, name: str, dial_template: str | None = None,
             rate_inbound: bool = False) -> int:
    with engine.begin() as conn:
        return conn.execute(
            text("INSERT INTO rate_plans (name, dial_template, rate_inbound) VALUES (:n, :d, :r)"),
            {"n": name, "d": dial_template, "r": int(rate_inbound)}).lastrowid


def add_rate(engine: Engine, plan_id: int, prefix: str, rate_per_min: str,
             connection_fee: str = "0", initial: int = 60, subsequent: int = 60) -> None:
    with engine.begin() as conn:
        conn.execute(text(
            "INSERT INTO rates (rate_plan_id, prefix, rate_per_min, connection_fee,"
            " initial_increment, subsequent_increment) VALUES (:p, :x, :r, :f, :i, :s)"),
            {"p": plan_id, "x": prefix, "r": Decimal(rate_per_min), "f": Decimal(connection_fee),
             "i": initial, "s": subsequent})


def add_client(engine: Engine, code: str, balance: str = "0", channel_limit: int = 10,
               plan_id: int | None = None, status: str = "active",
               credit_limit: str = "0") -> int:
    with engine.begin() as conn:
        return conn.execute(text(
            "INSERT INTO clients (code, name, balance, channel_limit, rate_plan_id, status,"
            " credit_limit) VALUES (:c, :n, :b, :l, :p, :s, :cl)"),
            {"c": code, "n": f"Client {code}", "b": Decimal(balance), "l": channel_limit,
             "p": plan_id, "s": status, "cl": Decimal(credit_limit)}).lastrowid


def pay(engine: Engine, client_id: int, amount: str, reference: str) -> None:
    with engine.begin() as conn:
        conn.execute(text("INSERT INTO payments (client_id, amount, reference)"
                          " VALUES (:c, :a, :r)"),
                     {"c": client_id, "a": Decimal(amount), "r": reference})


def execute(engine: Engine, sql: str, **params) -> None:
    with engine.begin() as conn:
        conn.execute(text(sql), params)


def scalar(engine: Engine, sql: str, **params):
    with engine.connect() as conn:
        return conn.execute(text(sql), params).scalar()


def ledger_gap(engine: Engine, client_id: int) -> Decimal:
    """balance - (sum of payments - sum of call costs): 0 when the ledger holds."""
    return scalar(engine, """
        SELECT c.balance - (COALESCE((SELECT SUM(amount) FROM payments WHERE client_id = c.id), 0)
                          - COALESCE((SELECT SUM(cost) FROM calls WHERE client_id = c.id), 0))
        FROM clients c WHERE c.id = :id""", id=client_id)
