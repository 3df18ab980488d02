"""Reseller trees for tests: resellers and their clients inserted as an operator (or a
reseller's tool) would, each with a plan its parent sells."""

from __future__ import annotations

from decimal import Decimal

from sqlalchemy import text
from sqlalchemy.engine import Engine

from tests.support.sql import execute, scalar


def master_id(engine: Engine) -> int:
    return scalar(engine, "SELECT id FROM clients WHERE code = 'master'")


def plan_of(engine: Engine, owner_code: str | None, name: str, rates: dict[str, tuple]) -> int:
    """A plan sold by `owner_code` (None: the operator) with rates
    {prefix: (rate_per_min, connection_fee, initial, subsequent)}."""
    with engine.begin() as conn:
        owner = None if owner_code is None else conn.execute(
            text("SELECT id FROM clients WHERE code = :c"), {"c": owner_code}).scalar_one()
        plan_id = conn.execute(text(
            "INSERT INTO rate_plans (name, owner_client_id) VALUES (:n, :o)"),
            {"n": name, "o": owner}).lastrowid
        for prefix, (rate, fee, initial, subsequent) in rates.items():
            conn.execute(text(
                "INSERT INTO rates (rate_plan_id, prefix, rate_per_min, connection_fee,"
                " initial_increment, subsequent_increment) VALUES (:p, :x, :r, :f, :i, :s)"),
                {"p": plan_id, "x": prefix, "r": Decimal(rate), "f": Decimal(fee),
                 "i": initial, "s": subsequent})
    return int(plan_id)


def client_under(engine: Engine, code: str, parent_code: str | None, plan_id: int,
                 balance: str = "0", channel_limit: int = 10, credit_limit: str = "0",
                 status: str = "active") -> int:
    """A client of `parent_code` (None: master) on `plan_id`, with an opening balance."""
    execute(engine,
            "INSERT INTO clients (code, name, parent_id, rate_plan_id, opening_balance,"
            " channel_limit, credit_limit, status)"
            " VALUES (:code, :name, (SELECT id FROM clients c WHERE c.code = :parent), :plan,"
            " :balance, :channels, :credit, :status)",
            code=code, name=f"Client {code}", parent=parent_code or "master", plan=plan_id,
            balance=Decimal(balance), channels=channel_limit, credit=Decimal(credit_limit),
            status=status)
    return scalar(engine, "SELECT id FROM clients WHERE code = :c", c=code)


def balance(engine: Engine, code: str) -> Decimal:
    return scalar(engine, "SELECT a.balance FROM client_accounts a JOIN clients c"
                  " ON c.id = a.client_id WHERE c.code = :c", c=code)


def ledger_gap(engine: Engine, code: str) -> Decimal:
    """balance - (payments - its calls' costs - its charges as a reseller): 0 when the
    ledger holds at this level."""
    return scalar(engine,
                  "SELECT a.balance - ((SELECT COALESCE(SUM(amount), 0) FROM payments p"
                  "   WHERE p.client_id = c.id)"
                  " - (SELECT COALESCE(SUM(cost), 0) FROM calls k WHERE k.client_id = c.id)"
                  " - (SELECT COALESCE(SUM(cost), 0) FROM call_charges g"
                  "     WHERE g.client_id = c.id))"
                  " FROM clients c JOIN client_accounts a ON a.client_id = c.id"
                  " WHERE c.code = :c", c=code)


def live_at(engine: Engine, code: str) -> tuple[int, Decimal]:
    """A level's live calls and reservations: its own calls and its subtree's charges."""
    row = scalar(engine,
                 "SELECT CONCAT((SELECT COUNT(*) FROM calls k WHERE k.client_id = c.id"
                 "   AND k.state = 'live') + (SELECT COUNT(*) FROM call_charges g"
                 "   WHERE g.client_id = c.id AND g.live = 1), '|',"
                 " (SELECT COALESCE(SUM(reserved), 0) FROM calls k WHERE k.client_id = c.id"
                 "   AND k.state = 'live') + (SELECT COALESCE(SUM(reserved), 0)"
                 "   FROM call_charges g WHERE g.client_id = c.id AND g.live = 1))"
                 " FROM clients c WHERE c.code = :c", c=code)
    live, reserved = row.split("|")
    return int(live), Decimal(reserved)
