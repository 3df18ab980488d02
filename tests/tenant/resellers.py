"""A small reseller hierarchy with database logins at every kind of level.

    master (operator)
    ├── r1   reseller, balance 100, plan default (the operator's), sells at r1-retail
    │   ├── s    sub-reseller (resells), balance 20, on r1-retail, sells at s-retail
    │   │   └── g    plain client of s, balance 3, on s-retail
    │   └── k1   plain client of r1, balance 5, on r1-retail
    ├── r2   sibling reseller, balance 50, sells at r2-retail
    │   └── k2   plain client of r2, on r2-retail
    └── p    plain client of master, balance 25

Rates for 44: default 0.020000 (what r1, r2 and p pay), r1-retail 0.050000 (what s and k1
pay r1), s-retail 0.090000 (what g pays s), r2-retail 0.070000. Logins: an admin of r1,
s, r2, p, k1 and g, and an agent of r1. Every name derives from the test database's
(tests/tenant/conftest.py), so parallel runs never collide.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

from sqlalchemy import text
from sqlalchemy.engine import Engine, make_url

from tests.tenant.helpers import PASSWORD, connect

# name -> (parent name or None for master, opening balance, plan name or None, resells)
LAYOUT = {
    "r1": (None, Decimal("100"), None, 1),
    "r2": (None, Decimal("50"), None, 1),
    "p": (None, Decimal("25"), None, 0),
    "s": ("r1", Decimal("20"), "r1-retail", 1),
    "k1": ("r1", Decimal("5"), "r1-retail", 0),
    "g": ("s", Decimal("3"), "s-retail", 0),
    "k2": ("r2", Decimal("0"), "r2-retail", 0),
}
PLANS = {"r1-retail": ("r1", "0.050000"), "s-retail": ("s", "0.090000"),
         "r2-retail": ("r2", "0.070000")}
LOGINS = [("r1", "admin"), ("r1", "agent"), ("s", "admin"), ("r2", "admin"), ("p", "admin"),
          ("k1", "admin"), ("g", "admin")]


@dataclass
class Resellers:
    engine: Engine
    url: str
    database: str
    tenant_database: str
    ids: dict[str, int]
    codes: dict[str, str]
    accounts: dict[tuple[str, str], str]

    @classmethod
    def create(cls, engine: Engine, url: str, prefix: str) -> "Resellers":
        database = make_url(url).database
        ids: dict[str, int] = {}
        codes = {name: f"{prefix}{name}" for name in LAYOUT}
        with engine.begin() as conn:
            conn.execute(text("INSERT INTO rates (rate_plan_id, prefix, rate_per_min) "
                              "SELECT id, '44', 0.02 FROM rate_plans WHERE is_default = 1"))
            plan_ids: dict[str, int] = {}
            for name, (parent, opening, plan, resells) in LAYOUT.items():
                parent_id = ids[parent] if parent else None
                ids[name] = conn.execute(text(
                    "INSERT INTO clients (code, name, parent_id, opening_balance, rate_plan_id, resells)"
                    " VALUES (:code, :name, :parent, :opening, :plan, :resells)"),
                    {"code": codes[name], "name": f"Client {codes[name]}", "parent": parent_id,
                     "opening": opening, "plan": plan_ids.get(plan), "resells": resells}).lastrowid
                for plan_name, (owner, rate) in PLANS.items():
                    if owner == name:
                        plan_ids[plan_name] = conn.execute(text(
                            "INSERT INTO rate_plans (name, owner_client_id) VALUES (:n, :o)"),
                            {"n": plan_name, "o": ids[name]}).lastrowid
                        conn.execute(text("INSERT INTO rates (rate_plan_id, prefix, rate_per_min)"
                                          " VALUES (:p, '44', :r)"),
                                     {"p": plan_ids[plan_name], "r": Decimal(rate)})
            for name, role in LOGINS:
                conn.execute(text("INSERT INTO users (client_id, username, role) VALUES (:c, :u, :r)"),
                             {"c": ids[name], "u": f"{role}-{codes[name]}", "r": role})
        accounts = {}
        with engine.begin() as conn:
            for name, role in LOGINS:
                row = conn.execute(text("CALL grant_db_login(:c, :u, :p)"),
                                   {"c": codes[name], "u": f"{role}-{codes[name]}",
                                    "p": PASSWORD}).one()
                accounts[(name, role)] = row.account
        return cls(engine, url, database, f"{database}_tenant", ids, codes, accounts)

    def login(self, name: str, role: str = "admin", **options):
        return connect(self.url, self.accounts[(name, role)], PASSWORD, self.tenant_database,
                       **options)

    def balance(self, name: str) -> Decimal:
        with self.engine.connect() as conn:
            return conn.execute(text("SELECT balance FROM client_accounts WHERE client_id = :c"),
                                {"c": self.ids[name]}).scalar_one()

    def available(self, name: str) -> Decimal:
        with self.engine.connect() as conn:
            return conn.execute(text("SELECT reseller_available_credit(:c)"),
                                {"c": self.ids[name]}).scalar_one()
