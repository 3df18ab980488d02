"""The shared world of the table-driven refusal tests (test_refusals.py,
test_money_exact.py): one database built once per module, the case type, statement
builders, and a runner that always rolls back, so no case sees another's rows or session
variables."""

from __future__ import annotations

import itertools
import os
from dataclasses import dataclass, field
from decimal import Decimal

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.engine import Engine
from sqlalchemy.pool import NullPool

from fastagi.db import migrate
from fastagi.db.engine import make_engine
from tests.builders import (add_rate, default_plan_id, make_agent, make_campaign, make_client,
                            make_plan, top_up)

SERVER_URL = os.environ.get("ICT_TEST_SERVER", "mysql+pymysql://root@127.0.0.1:3306")
CHECK = 4025          # ER_CONSTRAINT_FAILED: CONSTRAINT `name` failed for ...
DUPLICATE = 1062      # ER_DUP_ENTRY: ... for key 'name'
NO_PARENT = 1452      # ER_NO_REFERENCED_ROW_2 (foreign key)
HAS_CHILDREN = 1451   # ER_ROW_IS_REFERENCED_2 (foreign key)
SIGNAL = 1644         # ER_SIGNAL_EXCEPTION: the trigger's MESSAGE_TEXT
TRUNCATED = 1265      # WARN_DATA_TRUNCATED as an error in strict mode (bad ENUM value)
TOO_LONG = 1406       # ER_DATA_TOO_LONG
_names = itertools.count()


@dataclass(frozen=True)
class Refusal:
    id: str
    bad: str | tuple[str, ...]
    good: str | tuple[str, ...]
    errno: int
    message: str                      # regular expression searched in the server's message
    sql_mode: str | None = None       # session sql_mode for both statements, if not default
    params: dict = field(default_factory=dict)


def insert_client(code: str = "newc", name: str = "New client", **columns) -> str:
    names = ["code", "name", *columns]
    values = [repr(code), repr(name), *(str(v) if isinstance(v, (int, Decimal)) else repr(v)
                                       for v in columns.values())]
    return f"INSERT INTO clients ({', '.join(names)}) VALUES ({', '.join(values)})"


def insert_rate(prefix: str = "4499", rate: str = "0.01", fee: str = "0", initial: int = 60,
                subsequent: int = 60, plan: str = ":plan") -> str:
    return ("INSERT INTO rates (rate_plan_id, prefix, rate_per_min, connection_fee, "
            f"initial_increment, subsequent_increment) VALUES ({plan}, '{prefix}', {rate}, "
            f"{fee}, {initial}, {subsequent})")


def insert_payment(amount: str = "10", reference: str = "r-new", client: str = ":a",
                   kind: str = "topup") -> str:
    return ("INSERT INTO payments (client_id, amount, kind, reference) "
            f"VALUES ({client}, {amount}, '{kind}', '{reference}')")


@pytest.fixture(scope="module")
def world() -> tuple[Engine, dict[str, int]]:
    """One database for this module's cases, and the ids of the rows they refer to."""
    name = f"ict_test_{os.getpid()}_refusals_{next(_names)}"
    url = f"{SERVER_URL}/{name}"
    admin = make_engine(SERVER_URL + "/", pool_size=1)
    with admin.begin() as conn:
        conn.execute(text(f"DROP DATABASE IF EXISTS `{name}`"))
    migrate.upgrade(url)
    # NullPool: every case gets a new session (no leftover user variables or sql_mode).
    engine = create_engine(url, poolclass=NullPool, isolation_level="READ COMMITTED",
                           connect_args={"init_command": "SET time_zone = '+00:00'"})
    with engine.begin() as conn:
        plan = make_plan(conn, "intl")
        add_rate(conn, plan, "44", Decimal("0.02"))
        a = make_client(conn, "alpha", name="Alpha", balance=Decimal("100"), plan=plan)
        top_up(conn, a.id, Decimal("5"), "inv-1")
        b = make_client(conn, "beta", name="Beta")
        c = make_client(conn, "gamma", name="Gamma")
        s = make_client(conn, "sus", name="Suspended", status="suspended")
        paid = make_client(conn, "paid", name="Paid", balance=Decimal("10"))  # payments only
        ids = {"plan": plan, "default_plan": default_plan_id(conn),
               "a": a.id, "b": b.id, "c": c.id, "s": s.id, "p": paid.id,
               "a1": make_agent(conn, a.id), "b1": make_agent(conn, b.id),
               "ca": make_campaign(conn, a.id), "cb": make_campaign(conn, b.id),
               "cs": make_campaign(conn, s.id)}
        ids["ua"] = conn.execute(text(
            "INSERT INTO users (client_id, agent_id, username, password) "
            "VALUES (:a, :a1, 'alice', 'pw')"), ids).lastrowid
        ids["ea"] = conn.execute(text(
            "INSERT INTO extensions (client_id, agent_id, exten, sip_password) "
            "VALUES (:a, :a1, '1001', 'pw')"), ids).lastrowid
        call = ("INSERT INTO calls (client_id, client_code, number, state, reason, cost, "
                "authorized_at) VALUES (:client, :code, '4420', :state, :reason, :cost, "
                "UTC_TIMESTAMP(3))")
        ids["charged_call"] = conn.execute(text(call), {
            "client": a.id, "code": "alpha", "state": "settled", "reason": None,
            "cost": Decimal("1.5")}).lastrowid
        ids["rejected_call"] = conn.execute(text(call), {
            "client": None, "code": "nobody", "state": "rejected", "reason": "unknown-client",
            "cost": None}).lastrowid
    yield engine, ids
    engine.dispose()
    with admin.begin() as conn:
        conn.execute(text(f"DROP DATABASE IF EXISTS `{name}`"))
    admin.dispose()


def run_and_roll_back(engine: Engine, statements: str | tuple[str, ...], params: dict,
                      sql_mode: str | None) -> None:
    with engine.connect() as conn:
        if sql_mode is not None:
            conn.execute(text("SET SESSION sql_mode = :mode"), {"mode": sql_mode})
            conn.commit()
        with conn.begin() as transaction:
            try:
                for statement in (statements,) if isinstance(statements, str) else statements:
                    conn.execute(text(statement), params)
            finally:
                transaction.rollback()
