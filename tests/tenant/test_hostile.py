"""Hostile SQL from a client's own login: every statement fails with the error expected
(or touches no row), and afterwards every row of the product and every grant is as before.

A column the view does not offer is refused by privilege (1143) before the server would
say it is unknown. performance_schema's global_status, session_status and the session's
own connect attributes are readable by every account on the server: no tenant data.
Statements are templates: {db} is the product database, {tdb} the tenant database, {b_*}
client B's ids, {a_id} client A's id, {root_thread} a connection of the operator.
"""

from __future__ import annotations

from dataclasses import dataclass

import pymysql
import pytest
from sqlalchemy import text

from tests.tenant.helpers import error_code, execute, query

DENIED_TABLE = 1142      # SELECT/INSERT/UPDATE command denied ... for table
DENIED_COLUMN = 1143     # ... command denied for column
DENIED_DB = 1044         # access denied ... to database
DENIED_ROUTINE = 1370    # execute command denied ... for routine
NEEDS_PRIVILEGE = 1227   # you need (at least one of) the ... privilege(s)
NOT_OWNER = 1095         # you are not owner of thread
BAD_ROLE = 1959          # invalid role specification
ACCESS_DENIED = 1698
FOREIGN_KEY = 1452
SIGNAL = 1644            # a trigger's SIGNAL


@dataclass(frozen=True)
class Hostile:
    what: str
    sql: str
    error: int | None        # None: must succeed but touch 0 rows / return 0 rows
    role: str = "admin"


CASES = [
    Hostile("read a base table", "SELECT * FROM {db}.campaigns", DENIED_TABLE),
    Hostile("read the clients table", "SELECT balance FROM {db}.clients", DENIED_TABLE),
    Hostile("read the session mapping", "SELECT * FROM {db}.tenant_session", DENIED_TABLE),
    Hostile("read the server's accounts", "SELECT * FROM mysql.user", DENIED_TABLE),
    Hostile("read another client's campaign by id",
            "SELECT * FROM campaigns WHERE id = {b_campaign}", None),
    Hostile("update another client's campaign through the view",
            "UPDATE campaigns SET name = 'pwned' WHERE id = {b_campaign}", None),
    Hostile("delete another client's contact through the view",
            "DELETE FROM contacts WHERE id = {b_contact}", None),
    Hostile("insert a contact into another client's campaign",
            "INSERT INTO contacts (campaign_id, phone) VALUES ({b_campaign}, '4420')", FOREIGN_KEY),
    Hostile("move own contact into another client's campaign",
            "UPDATE contacts SET campaign_id = {b_campaign}", FOREIGN_KEY),
    Hostile("give an extension another client's agent",
            "UPDATE extensions SET agent_id = {b_agent}", FOREIGN_KEY),
    Hostile("write client_id on insert",
            "INSERT INTO campaigns (client_id, name) VALUES ({b_id}, 'x')", DENIED_COLUMN),
    Hostile("write client_id on update", "UPDATE agents SET client_id = {b_id}", DENIED_COLUMN),
    Hostile("change an id", "UPDATE campaigns SET id = id + 1000", DENIED_COLUMN),
    Hostile("set the suspension flag", "UPDATE campaigns SET paused_by_suspension = 1", DENIED_COLUMN),
    Hostile("rename its SIP user", "UPDATE extensions SET sip_username = 'x-1'", DENIED_COLUMN),
    Hostile("change its own balance", "UPDATE client_list SET balance = 1000000", DENIED_TABLE),
    Hostile("change its own status", "UPDATE client_list SET status = 'active'", DENIED_TABLE),
    Hostile("insert a payment", "INSERT INTO payments (amount, reference) VALUES (100, 'free')",
            DENIED_TABLE),
    Hostile("forge the ledger token, then move the balance",
            "SET @ict_ledger_client = {a_id}; UPDATE client_list SET balance = 999", DENIED_TABLE),
    Hostile("change its rates", "UPDATE rates SET rate_per_min = 0", DENIED_TABLE),
    Hostile("delete its calls", "DELETE FROM calls", DENIED_TABLE),
    Hostile("call an admin procedure", "CALL {db}.add_payment('x', 100, 'free')", DENIED_ROUTINE),
    Hostile("reactivate a client", "CALL {db}.activate_client('x')", DENIED_ROUTINE),
    Hostile("grant itself a login", "CALL {db}.grant_db_login('x', 'y', 'zzzzzzzzzzzzzz')",
            DENIED_ROUTINE),
    Hostile("run the dynamic SQL helper", "CALL {db}.tenant_exec('DROP DATABASE {db}')",
            DENIED_ROUTINE),
    Hostile("call the row-owner function", "SELECT {db}.tenant_insert_client({b_id})",
            DENIED_ROUTINE),
    Hostile("read other tenants' objects in information_schema",
            "SELECT table_schema, table_name FROM information_schema.tables "
            "WHERE table_schema NOT IN ('information_schema', 'performance_schema', '{tdb}')",
            None),
    Hostile("read performance_schema beyond the server-wide counters",
            "SELECT * FROM performance_schema.threads", DENIED_TABLE),
    Hostile("read product columns in information_schema",
            "SELECT column_name FROM information_schema.columns WHERE table_schema = '{db}'", None),
    Hostile("read routines and triggers in information_schema (but the tenant procedures)",
            "SELECT routine_name FROM information_schema.routines WHERE routine_schema <> '{tdb}' "
            "UNION ALL SELECT trigger_name FROM information_schema.triggers", None),
    Hostile("a plain client creates a client (tenant procedure, refused in words)",
            "CALL {tdb}.create_my_client('x{a_id}', 'X', 'default', 1)", SIGNAL),
    Hostile("a plain client transfers money", "CALL {tdb}.transfer_to_client('x', 1, 'x')", SIGNAL),
    Hostile("supervisor calls a tenant procedure", "CALL {tdb}.suspend_my_client('x')",
            DENIED_ROUTINE, role="supervisor"),
    Hostile("read events in information_schema",
            "SELECT event_name FROM information_schema.events", None),
    Hostile("read the view definitions", "SHOW CREATE VIEW campaigns", DENIED_TABLE),
    Hostile("list the product's triggers", "SHOW TRIGGERS FROM {db}", DENIED_DB),
    Hostile("see other sessions",
            "SELECT id FROM information_schema.processlist WHERE id <> CONNECTION_ID()", None),
    Hostile("kill the operator's session", "KILL {root_thread}", NOT_OWNER),
    Hostile("grant itself the product database", "GRANT SELECT ON {db}.* TO CURRENT_USER",
            DENIED_DB),
    Hostile("grant itself more on its views", "GRANT DELETE ON {tdb}.payments TO CURRENT_USER",
            DENIED_TABLE),
    Hostile("agent takes the admin role", "SET ROLE {db}_tenant_admin", BAD_ROLE, role="agent"),
    Hostile("agent grants itself the admin role", "GRANT {db}_tenant_admin TO CURRENT_USER",
            ACCESS_DENIED, role="agent"),
    Hostile("unlock or change another account", "ALTER USER CURRENT_USER() ACCOUNT UNLOCK",
            NEEDS_PRIVILEGE),
    Hostile("create an account", "CREATE USER 'x{a_id}'@'%'", NEEDS_PRIVILEGE),
    Hostile("create a view of its own", "CREATE VIEW {tdb}.mine AS SELECT 1", DENIED_TABLE),
    Hostile("write a file", "SELECT 1 INTO OUTFILE '/tmp/ict-tenant-{a_id}'", NEEDS_PRIVILEGE),
    Hostile("agent adds a campaign", "INSERT INTO campaigns (name) VALUES ('x')", DENIED_TABLE,
            role="agent"),
    Hostile("agent edits a contact", "UPDATE contacts SET phone = '4499'", DENIED_TABLE,
            role="agent"),
    Hostile("supervisor promotes a user", "UPDATE users SET role = 'admin'", DENIED_TABLE,
            role="supervisor"),
    Hostile("supervisor adds an extension", "INSERT INTO extensions (exten) VALUES ('1099')",
            DENIED_TABLE, role="supervisor"),
    Hostile("admin deletes a user who has a login", "DELETE FROM users", SIGNAL),
    Hostile("admin sets a weak web password", "UPDATE users SET password = 'x'", DENIED_COLUMN),
]


@pytest.fixture
def values(world):
    a, b = world.clients["a"], world.clients["b"]
    with world.engine.connect() as conn:
        root_thread = conn.execute(text("SELECT CONNECTION_ID()")).scalar_one()
        yield {"db": world.database, "tdb": world.tenant_database, "a_id": a.id, "b_id": b.id,
               "b_campaign": b.campaign_id, "b_contact": b.contact_id, "b_agent": b.agent_id,
               "root_thread": root_thread}


def test_hostile_statements_fail_and_change_nothing(world, values):
    """One login per role for the whole table; the snapshot is compared after every case."""
    before = world.snapshot()
    logins = {role: world.login("a", role) for role in ("admin", "supervisor", "agent")}
    failures = []
    try:
        for case in CASES:
            conn = logins[case.role]
            statements = case.sql.format(**values).split("; ")
            try:
                for sql in statements:
                    with conn.cursor() as cur:
                        affected = cur.execute(sql)
                        rows = cur.fetchall()
            except pymysql.MySQLError as exc:
                if error_code(exc) != case.error:
                    failures.append(f"{case.what}: got {exc.args}, expected {case.error}")
            else:
                if case.error is not None:
                    failures.append(f"{case.what}: accepted, expected error {case.error}")
                elif affected or rows:
                    failures.append(f"{case.what}: touched {affected} row(s): {rows!r}")
            if world.snapshot() != before:
                failures.append(f"{case.what}: changed the database")
                before = world.snapshot()
    finally:
        for conn in logins.values():
            conn.close()
    assert failures == [], "\n".join(failures)


def test_the_table_covers_every_role_and_kind_of_attack():
    assert {case.role for case in CASES} == {"admin", "supervisor", "agent"}
    assert len(CASES) >= 40


def test_a_login_still_does_its_own_work_after_the_attacks(world, values):
    """The refusals above are not a login that can do nothing at all."""
    with world.login("a", "admin") as conn:
        execute(conn, "INSERT INTO campaigns (name) VALUES ('Autumn')")
        assert len(query(conn, "SELECT id FROM campaigns")) == 2
