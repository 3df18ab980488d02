"""The database side of `ictcontact clients` and `ictcontact payments`: thin calls of the
admin procedures (create_client, add_payment, suspend_client, activate_client) and reads
of the views an admin or a client login already has (`client_list`, `payments`).

The same functions serve two kinds of login:
- the operator's account, connected to the product database;
- a client's own database login, connected to the tenant database (docs/tenant-logins.md),
  whose views of the same names show only that client's rows.

No rule lives here: what may be written, and who may see what, is the database's. A
refusal arrives as the database's error (a SIGNAL message, a key, a missing privilege),
which the command prints in words. Balances are read through `client_list` only.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import text
from sqlalchemy.engine import Connection

OPERATOR = "operator"
TENANT = "tenant"


class NotVisible(LookupError):
    """No client with that code that this login can see; the message says so in words."""


class NoSchema(LookupError):
    """The connected database holds neither the product's tables nor a tenant's views."""


@dataclass(frozen=True)
class Scope:
    """Who is connected: the operator (`kind` OPERATOR) or one client's login (TENANT),
    and for a client login the one client code its views show (None while the login is
    locked or its client suspended: then its views show nothing)."""
    kind: str
    database: str
    login: str
    own_code: str | None = None

    @property
    def is_tenant(self) -> bool:
        return self.kind == TENANT


def scope(conn: Connection) -> Scope:
    """Tell the operator's database from a tenant database by what it holds: the product
    has the base table `clients`, a tenant database only views (`client_list` among them)."""
    row = conn.execute(text(
        "SELECT DATABASE() AS db, SUBSTRING_INDEX(USER(), '@', 1) AS login, "
        " (SELECT COUNT(*) FROM information_schema.tables WHERE table_schema = DATABASE()"
        "   AND table_name = 'clients' AND table_type = 'BASE TABLE') AS product, "
        " (SELECT COUNT(*) FROM information_schema.tables WHERE table_schema = DATABASE()"
        "   AND table_name = 'client_list') AS listed")).one()
    if row.product:
        return Scope(OPERATOR, row.db, row.login)
    if not row.listed:
        raise NoSchema(f"the database {row.db} has no ictcontact schema "
                       f"(`ictcontact db upgrade` creates it)")
    own = conn.execute(text("SELECT code FROM client_list")).scalars().all()
    return Scope(TENANT, row.db, row.login, own[0] if len(own) == 1 else None)


def not_visible(where: Scope, code: str) -> NotVisible:
    if not where.is_tenant:
        return NotVisible(f"no client with code {code!r}: `ictcontact clients list` shows them")
    if where.own_code is None:
        return NotVisible(f"the login {where.login} sees no account: it is locked or its client "
                          f"is suspended (ask the operator)")
    return NotVisible(f"no client with code {code!r} visible to this login: {where.login} sees "
                      f"only its own account, {where.own_code}")


# client_list has these columns in the product database and in every tenant database.
LIST_COLUMNS = ("code", "name", "balance", "plan", "channels", "status", "live_calls",
                "available_credit")
# What `show` adds for the operator: columns people set on the client row.
DETAIL_COLUMNS = ("credit_limit", "email", "contact_name", "phone",
                  "end_calls_without_credit", "suspended_at", "created_at", "notes")
_LIST = "SELECT " + ", ".join(LIST_COLUMNS) + " FROM client_list"


def list_clients(conn: Connection, status: str | None = None) -> list[dict[str, Any]]:
    """Every client the login sees (a client login: its own line), ordered by code."""
    rows = conn.execute(text(_LIST + " WHERE :status IS NULL OR status = :status "
                                     "ORDER BY code"), {"status": status}).mappings()
    return [dict(r) for r in rows]


def show_client(conn: Connection, where: Scope, code: str) -> dict[str, Any]:
    """The client's client_list line, plus (for the operator) the columns people set."""
    row = conn.execute(text(_LIST + " WHERE code = :code"), {"code": code}).mappings().first()
    if row is None:
        raise not_visible(where, code)
    shown = dict(row)
    if not where.is_tenant:
        detail = conn.execute(text(
            "SELECT " + ", ".join(DETAIL_COLUMNS) + " FROM clients WHERE code = :code"),
            {"code": code}).mappings().one()
        shown.update(detail)
        shown["end_calls_without_credit"] = bool(shown["end_calls_without_credit"])
    return shown


def create_client(conn: Connection, code: str, name: str, plan: str | None,
                  channels: int | None, opening_balance: Decimal | None) -> None:
    """CALL create_client; the procedure refuses an unknown plan, the table a bad code."""
    conn.execute(text("CALL create_client(:code, :name, :plan, :channels, :opening)"),
                 {"code": code, "name": name, "plan": plan, "channels": channels,
                  "opening": opening_balance})


# option name -> column of clients that people set (and a command may write)
UPDATABLE = {"name": "name", "channels": "channel_limit", "credit_limit": "credit_limit",
             "email": "email", "contact_name": "contact_name", "phone": "phone",
             "notes": "notes", "end_calls_without_credit": "end_calls_without_credit"}


def update_client(conn: Connection, where: Scope, code: str, changes: dict[str, Any],
                  plan: str | None = None) -> None:
    """UPDATE the columns people set (`changes`: keys of UPDATABLE) and, by name, the plan.
    The table's own constraints and triggers judge the values."""
    values = {UPDATABLE[key]: value for key, value in changes.items()}
    if plan is not None:
        plan_id = conn.execute(text("SELECT id FROM rate_plans WHERE name = :plan"),
                               {"plan": plan}).scalar()
        if plan_id is None:
            raise NotVisible(f"no rate plan named {plan!r}: see SELECT name FROM rate_plans")
        values["rate_plan_id"] = plan_id
    assignments = ", ".join(f"{column} = :v_{column}" for column in values)
    params = {f"v_{column}": value for column, value in values.items()}
    result = conn.execute(text(f"UPDATE clients SET {assignments} WHERE code = :code"),
                          {**params, "code": code})
    if result.rowcount == 0 and conn.execute(
            text("SELECT COUNT(*) FROM clients WHERE code = :code"), {"code": code}).scalar() == 0:
        raise not_visible(where, code)


def set_status(conn: Connection, code: str, status: str) -> None:
    """CALL suspend_client / activate_client (status 'suspended' / 'active')."""
    procedure = {"suspended": "suspend_client", "active": "activate_client"}[status]
    conn.execute(text(f"CALL {procedure}(:code)"), {"code": code})


def add_payment(conn: Connection, code: str, amount: Decimal, reference: str) -> None:
    """CALL add_payment: a top-up, or a correction when negative (never below the floor)."""
    conn.execute(text("CALL add_payment(:code, :amount, :reference)"),
                 {"code": code, "amount": amount, "reference": reference})


PAYMENT_COLUMNS = ("id", "created_at", "amount", "kind", "reference", "note")


def list_payments(conn: Connection, where: Scope, code: str, since: datetime | None,
                  until: datetime | None) -> list[dict[str, Any]]:
    """The client's payments in [since, until) (UTC), oldest first. The operator also sees
    who recorded each (`created_by`); a client login's `payments` view has only its own."""
    window = ("(:since IS NULL OR created_at >= :since) "
              "AND (:until IS NULL OR created_at < :until)")
    params: dict[str, Any] = {"since": since, "until": until}
    if where.is_tenant:
        if code != where.own_code:
            raise not_visible(where, code)
        sql = ("SELECT " + ", ".join(PAYMENT_COLUMNS) + " FROM payments WHERE " + window
               + " ORDER BY created_at, id")
    else:
        client_id = conn.execute(text("SELECT id FROM clients WHERE code = :code"),
                                 {"code": code}).scalar()
        if client_id is None:
            raise not_visible(where, code)
        sql = ("SELECT " + ", ".join(PAYMENT_COLUMNS) + ", created_by FROM payments "
               "WHERE client_id = :client AND " + window + " ORDER BY created_at, id")
        params["client"] = client_id
    return [dict(r) for r in conn.execute(text(sql), params).mappings()]
