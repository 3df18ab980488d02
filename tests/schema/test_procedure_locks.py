"""Every procedure an admin calls touches only the client it acts on: with EVERY row of one
tenant locked by another transaction (its client row, live call, running campaign, agent,
extension, user, agent session and database login, as admissions, settles, the dialer and
a phone login would hold them), every admin procedure for another tenant commits at once,
triggers included (suspension pauses campaigns, ends agent sessions, logs a change; the
login sync locks the login). The twin test shows the same procedures do wait for the
tenant that is held, so "did not wait" means "did not touch"."""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import datetime, timezone
from decimal import Decimal

import pytest
from sqlalchemy import text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DBAPIError

from fastagi.billing.admission import CallRequest
from fastagi.store import calls
from tests.builders import add_rate, default_plan_id, make_agent, make_client, make_plan
from tests.tenant.helpers import drop_accounts_with_prefix, prefix_for

LOCK_WAIT_TIMEOUT = 1205
PASSWORD = "a long enough passphrase"
NUMBER = "442071234567"


@dataclass
class Tenant:
    code: str
    id: int
    user: str             # users.username of its admin (has a database login)
    spare_user: str       # a second user, without a login (for grant/revoke)
    rows: dict[str, list[int]]   # table -> ids of the tenant's rows in it


def make_tenant(engine, code: str) -> Tenant:
    """A client with everything the system and the admins keep for it."""
    with engine.begin() as conn:
        client = make_client(conn, code, balance=Decimal("10"), channel_limit=5)
        agent = make_agent(conn, client.id)
        campaign = conn.execute(text(
            "INSERT INTO campaigns (client_id, name, status, caller_id) "
            "VALUES (:c, 'spring', 'running', '4420')"), {"c": client.id}).lastrowid
        # Many campaigns per client, few running overall: the shape in which a status
        # index looks cheaper than the client's own rows to pause them (098).
        conn.execute(text("INSERT INTO campaigns (client_id, name) SELECT :c, "
                          "CONCAT('old ', seq) FROM seq_1_to_40"), {"c": client.id})
        extension = conn.execute(text(
            "INSERT INTO extensions (client_id, agent_id, exten, sip_password) "
            "VALUES (:c, :a, '1001', 'sip secret 1')"), {"c": client.id, "a": agent}).lastrowid
        session = conn.execute(text(
            "INSERT INTO agent_sessions (client_id, agent_id, extension_id, started_at) "
            "VALUES (:c, :a, :e, UTC_TIMESTAMP())"),
            {"c": client.id, "a": agent, "e": extension}).lastrowid
        users = []
        for suffix, role in (("a", "admin"), ("s", "agent")):
            users.append(conn.execute(text(
                "INSERT INTO users (client_id, username, password, role) "
                "VALUES (:c, :u, :p, :r)"),
                {"c": client.id, "u": f"{code}{suffix}", "p": PASSWORD, "r": role}).lastrowid)
    with engine.begin() as conn:
        conn.execute(text("CALL grant_db_login(:c, :u, :p)"),
                     {"c": code, "u": f"{code}a", "p": PASSWORD}).all()
    now = datetime.now(timezone.utc).replace(tzinfo=None)
    admitted = calls.authorize(engine, CallRequest(code, NUMBER), now, calls.Limits())
    assert admitted.admission.allowed, admitted.admission
    with engine.connect() as conn:
        logins = [r[0] for r in conn.execute(text(
            "SELECT user_id FROM db_logins WHERE client_id = :c"), {"c": client.id})]
    rows = {"clients": [client.id], "calls": [admitted.call_id], "campaigns": [campaign],
            "agents": [agent], "extensions": [extension], "agent_sessions": [session],
            "users": users}
    tenant = Tenant(code, client.id, f"{code}a", f"{code}s", rows)
    tenant.rows["db_logins"] = logins
    return tenant


@pytest.fixture
def tenants(engine, db_url):
    prefix = prefix_for(make_url(db_url).database)
    with engine.begin() as conn:
        add_rate(conn, default_plan_id(conn), "44", Decimal("0.01"))
        make_plan(conn, "wholesale")
    try:
        yield make_tenant(engine, f"{prefix}h"), make_tenant(engine, f"{prefix}o")
    finally:
        with engine.begin() as conn:
            conn.execute(text("CALL drop_tenant_world()"))
        drop_accounts_with_prefix(engine, prefix)


def hold_everything_of(conn, tenant: Tenant) -> None:
    """Lock every row of `tenant`, by primary key (record locks only, no gaps), plus a
    payment in flight (the balance moving, as a settle or a top-up does)."""
    conn.begin()
    for table, ids in tenant.rows.items():
        key = "user_id" if table == "db_logins" else "id"
        for row_id in ids:
            conn.execute(text(f"SELECT * FROM {table} WHERE {key} = :id FOR UPDATE"),
                         {"id": row_id})
    conn.execute(text("INSERT INTO payments (client_id, amount, kind, reference) "
                      "VALUES (:c, 1, 'topup', 'in flight')"), {"c": tenant.id})


def as_a_tool(conn) -> None:
    """The session of a DBA's tool: the server's default REPEATABLE READ (the product's
    engine reads committed, which takes fewer locks), and a lock wait of 1 s ends in 1205."""
    conn.execute(text("SET SESSION TRANSACTION ISOLATION LEVEL REPEATABLE READ"))
    conn.execute(text("SET SESSION innodb_lock_wait_timeout = 1"))
    conn.commit()


def call(conn, statement: str, params: dict) -> None:
    """Run a CALL and read what it answers (a procedure's SELECT), if anything."""
    result = conn.execute(text(statement), params)
    if result.returns_rows:
        result.all()


def admin_calls(t: Tenant, prefix: str) -> list[tuple[str, dict]]:
    """Every procedure docs/admin-sql.md and docs/tenant-logins.md give an admin, acting on
    tenant `t` (create_client on new clients)."""
    code = {"c": t.code}
    return [
        ("CALL create_client(:n, 'New client', 'wholesale', 5, 10)", {"n": f"{prefix}n1"}),
        ("CALL create_client(:n, 'New client 2', '', NULL, NULL)", {"n": f"{prefix}n2"}),
        ("CALL add_payment(:c, 5, 'INV-9')", code),
        ("CALL add_payment(:c, -1, 'INV-9 fix')", code),
        ("CALL user_login(:u, :p)", {"u": t.user, "p": "wrong password"}),
        ("CALL suspend_client(:c)", code),          # pauses, logs out, logs the change
        ("CALL sync_db_logins()", {}),               # locks t's login
        ("CALL activate_client(:c)", code),
        ("CALL sync_db_logins()", {}),               # unlocks it
        ("CALL set_client_status(:c, 'suspended')", code),
        ("CALL set_client_status(:c, 'active')", code),
        ("CALL grant_db_login(:c, :u, :p)", {**code, "u": t.spare_user, "p": PASSWORD}),
        ("CALL revoke_db_login(:c, :u)", {**code, "u": t.spare_user}),
        ("CALL grant_db_login_as(:c, :u, :p, :a, '10.%')",
         {**code, "u": t.spare_user, "p": PASSWORD, "a": f"{t.code}-spare"}),
        ("CALL sync_db_logins()", {}),
    ]


def test_every_admin_procedure_for_one_tenant_ignores_another_tenant_held_whole(
        engine, db_url, tenants):
    held, other = tenants
    prefix = prefix_for(make_url(db_url).database)
    slowest = (0.0, "")
    with engine.connect() as holder, engine.connect() as admin:
        as_a_tool(admin)
        hold_everything_of(holder, held)
        try:
            for statement, params in admin_calls(other, prefix):
                started = time.monotonic()
                try:
                    with admin.begin():
                        call(admin, statement, params)
                except DBAPIError as exc:
                    pytest.fail(f"{statement} failed (a wait on the held tenant's rows ends "
                                f"in 1205): {exc.orig}")
                took = time.monotonic() - started
                slowest = max(slowest, (took, statement))
        finally:
            holder.rollback()
    # sync_db_logins waits up to 2 s for a row lock before it gives up: a wait shows here
    assert slowest[0] < 1.0, slowest
    with engine.connect() as conn:
        listed = conn.execute(text("SELECT balance, status FROM client_list WHERE code = :c"),
                              {"c": other.code}).one()
        assert listed == (Decimal("14"), "active")
        # the triggers did their work on `other`: campaign paused and resumed, agent out
        assert conn.execute(text(
            "SELECT status FROM campaigns WHERE id = :id"),
            {"id": other.rows["campaigns"][0]}).scalar_one() == "running"
        assert conn.execute(text(
            "SELECT end_reason FROM agent_sessions WHERE id = :id"),
            {"id": other.rows["agent_sessions"][0]}).scalar_one() == "suspended"
        assert conn.execute(text(
            "SELECT COUNT(*) FROM client_changes WHERE client_id = :c AND kind = 'suspended'"),
            {"c": other.id}).scalar_one() == 2
        assert conn.execute(text(
            "SELECT account, locked FROM db_logins WHERE client_id = :c ORDER BY account"),
            {"c": other.id}).all() == [(f"{other.code}-spare", 0), (f"{other.code}.{other.user}", 0)]
        # and nothing of the held tenant moved
        assert conn.execute(text("SELECT balance, status FROM client_list WHERE code = :c"),
                            {"c": held.code}).one() == (Decimal("10"), "active")


@pytest.mark.parametrize("statement", [
    "CALL add_payment(:c, 5, 'INV-9')",
    "CALL suspend_client(:c)",
    "CALL set_client_status(:c, 'suspended')",
])
def test_the_same_procedures_wait_for_the_tenant_that_is_held(engine, tenants, statement):
    """The twin: the locks are real, so not waiting above means not touching."""
    held, _ = tenants
    with engine.connect() as holder, engine.connect() as admin:
        as_a_tool(admin)
        hold_everything_of(holder, held)
        try:
            with pytest.raises(DBAPIError) as waited:
                with admin.begin():
                    call(admin, statement, {"c": held.code})
            assert waited.value.orig.args[0] == LOCK_WAIT_TIMEOUT
        finally:
            holder.rollback()
