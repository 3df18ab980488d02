"""Small typed builders for fixture rows, shared by every database test.

Each builder takes an open SQLAlchemy Connection (the caller owns the transaction, e.g.
`with engine.begin() as conn:`), runs parameterized Core `text()` statements, and returns
ids or a frozen row. Money is `Decimal`, never float. Names and codes not given are made
unique so two builders in one test never collide.

Import as `from tests.builders import make_client, top_up`.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from decimal import Decimal

from sqlalchemy import text
from sqlalchemy.engine import Connection

_sequence = itertools.count(1)


def unique(prefix: str) -> str:
    """`prefix` plus a number unique in this test process (valid as a client code)."""
    return f"{prefix}{next(_sequence)}"


@dataclass(frozen=True)
class Client:
    id: int
    code: str
    name: str
    rate_plan_id: int


def default_plan_id(conn: Connection) -> int:
    """Id of the plan marked is_default (seeded as `default`)."""
    return int(conn.execute(text("SELECT id FROM rate_plans WHERE is_default = 1")).scalar_one())


def make_plan(conn: Connection, name: str | None = None, *, dial_template: str | None = None,
              rate_inbound: bool = False) -> int:
    """Insert a (non-default) rate plan; return its id."""
    result = conn.execute(
        text("INSERT INTO rate_plans (name, dial_template, rate_inbound) "
             "VALUES (:name, :dial_template, :rate_inbound)"),
        {"name": name or unique("plan-"), "dial_template": dial_template,
         "rate_inbound": int(rate_inbound)})
    return int(result.lastrowid)


def add_rate(conn: Connection, plan_id: int, prefix: str, rate_per_min: Decimal,
             connection_fee: Decimal = Decimal("0"), initial: int = 60, subsequent: int = 60,
             description: str | None = None) -> int:
    """Insert one rate into a plan; return its id."""
    result = conn.execute(
        text("INSERT INTO rates (rate_plan_id, prefix, description, rate_per_min, "
             "connection_fee, initial_increment, subsequent_increment) "
             "VALUES (:plan, :prefix, :description, :rate, :fee, :initial, :subsequent)"),
        {"plan": plan_id, "prefix": prefix, "description": description,
         "rate": Decimal(rate_per_min), "fee": Decimal(connection_fee),
         "initial": initial, "subsequent": subsequent})
    return int(result.lastrowid)


def make_client(conn: Connection, code: str | None = None, *, name: str | None = None,
                balance: Decimal = Decimal("0"), channel_limit: int = 10,
                plan: int | None = None, credit_limit: Decimal = Decimal("0"),
                status: str = "active") -> Client:
    """Insert a client the way an admin does (plain INSERT); `plan=None` means the default
    plan. A non-zero `balance` is given as `opening_balance`: the client's opening payment."""
    code = code or unique("c")
    name = name or f"Client {code}"
    result = conn.execute(
        text("INSERT INTO clients (code, name, opening_balance, channel_limit, rate_plan_id, "
             "credit_limit, status) "
             "VALUES (:code, :name, :balance, :channel_limit, :plan, :credit_limit, :status)"),
        {"code": code, "name": name, "balance": Decimal(balance),
         "channel_limit": channel_limit, "plan": plan, "credit_limit": Decimal(credit_limit),
         "status": status})
    client_id = int(result.lastrowid)
    plan_id = conn.execute(text("SELECT rate_plan_id FROM clients WHERE id = :id"),
                           {"id": client_id}).scalar_one()
    return Client(id=client_id, code=code, name=name, rate_plan_id=int(plan_id))


def top_up(conn: Connection, client_id: int, amount: Decimal, reference: str | None = None,
           kind: str = "topup") -> int:
    """Insert a payment (the balance moves by trigger); return the payment id."""
    result = conn.execute(
        text("INSERT INTO payments (client_id, amount, kind, reference) "
             "VALUES (:client, :amount, :kind, :reference)"),
        {"client": client_id, "amount": Decimal(amount), "kind": kind,
         "reference": reference or unique("ref-")})
    return int(result.lastrowid)


def balance(conn: Connection, client_id: int) -> Decimal:
    """The client's stored balance (kept in client_accounts)."""
    return conn.execute(text("SELECT balance FROM client_accounts WHERE client_id = :id"),
                        {"id": client_id}).scalar_one()


def ledger_balance(conn: Connection, client_id: int) -> Decimal:
    """What the ledger says the balance is: payments minus charged calls."""
    return conn.execute(
        text("SELECT (SELECT COALESCE(SUM(amount), 0) FROM payments WHERE client_id = :id)"
             " - (SELECT COALESCE(SUM(cost), 0) FROM calls WHERE client_id = :id)"),
        {"id": client_id}).scalar_one()


def make_agent(conn: Connection, client_id: int, name: str | None = None) -> int:
    result = conn.execute(text("INSERT INTO agents (client_id, name) VALUES (:client, :name)"),
                          {"client": client_id, "name": name or unique("agent ")})
    return int(result.lastrowid)


def make_campaign(conn: Connection, client_id: int, name: str | None = None,
                  status: str = "draft") -> int:
    result = conn.execute(
        text("INSERT INTO campaigns (client_id, name, status) VALUES (:client, :name, :status)"),
        {"client": client_id, "name": name or unique("campaign "), "status": status})
    return int(result.lastrowid)


def make_settled_call(conn: Connection, client: Client, number: str, authorized_at,
                      cost: Decimal, answered_seconds: int = 60,
                      prefix: str = "44", rate_per_min: Decimal = Decimal("0.02")) -> int:
    """A finished, billed call record as settle leaves it (the balance moves by trigger);
    `authorized_at` is a naive UTC datetime."""
    result = conn.execute(
        text("INSERT INTO calls (client_id, client_code, number, state, prefix, rate_per_min,"
             " connection_fee, initial_increment, subsequent_increment, max_seconds,"
             " authorized_at, settled_at, answered_seconds, dial_status, billable_seconds,"
             " cost) VALUES (:client, :code, :number, 'settled', :prefix, :rate, 0, 1, 1,"
             " 3600, :at, :at + INTERVAL :answered SECOND, :answered, 'ANSWER', :answered,"
             " :cost)"),
        {"client": client.id, "code": client.code, "number": number, "prefix": prefix,
         "rate": Decimal(rate_per_min), "at": authorized_at, "answered": answered_seconds,
         "cost": Decimal(cost)})
    return int(result.lastrowid)
