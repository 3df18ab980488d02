"""The admin procedures read and lock only the client they act on (schema/091), whatever
the caller's or the database's collation, and work on a database an operator created by
hand with another default collation."""

from __future__ import annotations

from decimal import Decimal

import pytest
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError

from fastagi.db import migrate
from fastagi.db.engine import make_engine
from tests.builders import make_client, make_plan
from tests.support.database import SERVER_URL, drop_database, fresh_database_name

LOCK_WAIT_TIMEOUT = 1205


def procedure_calls(code: str) -> list[tuple[str, dict]]:
    """Every admin procedure, acting on client `code` (create_client on a new one)."""
    return [
        ("CALL create_client('newc', 'New client', 'wholesale', 5, 10)", {}),
        ("CALL create_client('newd', 'New client d', '', NULL, NULL)", {}),
        ("CALL add_payment(:code, 5, 'INV-9')", {"code": code}),
        ("CALL add_payment(:code, -1, 'INV-9 fix')", {"code": code}),
        ("CALL set_client_status(:code, 'suspended')", {"code": code}),
        ("CALL activate_client(:code)", {"code": code}),
        ("CALL suspend_client(:code)", {"code": code}),
        ("CALL set_client_status(:code, 'active')", {"code": code}),
    ]


@pytest.fixture
def two_clients(engine):
    with engine.begin() as conn:
        make_plan(conn, "wholesale")
        held = make_client(conn, "held", balance=Decimal("10"))
        other = make_client(conn, "other", balance=Decimal("10"))
    return held, other


@pytest.mark.parametrize("how", ["select for update", "account for update", "admission",
                                 "settle"])
def test_a_held_client_row_does_not_stall_procedures_for_another_client(engine, two_clients,
                                                                         how):
    held, _ = two_clients
    with engine.connect() as holder, engine.connect() as admin:
        admin.execute(text("SET SESSION innodb_lock_wait_timeout = 1"))
        admin.commit()
        holder.begin()
        if how == "select for update":
            holder.execute(text("SELECT * FROM clients WHERE id = :id FOR UPDATE"), {"id": held.id})
        elif how == "account for update":
            holder.execute(text("SELECT * FROM client_accounts WHERE client_id = :id FOR UPDATE"),
                           {"id": held.id})
        elif how == "admission":   # what authorize does to the client it admits
            holder.execute(text("SELECT c.id FROM clients c JOIN client_accounts a "
                                "ON a.client_id = c.id WHERE c.code = 'held' FOR UPDATE"))
            holder.execute(text("UPDATE client_accounts SET admitted_calls = admitted_calls + 1 "
                                "WHERE client_id = :id"), {"id": held.id})
        else:   # a call charge: the ledger moves the held client's balance
            holder.execute(text("INSERT INTO calls (client_id, client_code, number, state, cost, "
                                "authorized_at) VALUES (:id, 'held', '4420', 'settled', 1, "
                                "UTC_TIMESTAMP(3))"), {"id": held.id})
        try:
            for statement, params in procedure_calls("other"):
                with admin.begin():
                    try:
                        admin.execute(text(statement), params).all()
                    except DBAPIError as exc:
                        pytest.fail(f"{statement} failed (a wait on another client's row "
                                    f"ends in 1205): {exc.orig}")
        finally:
            holder.rollback()
    with engine.connect() as conn:
        assert conn.execute(text("SELECT balance, status FROM client_list WHERE code = 'other'")
                            ).one() == (Decimal("14"), "active")
        assert conn.execute(text("SELECT code, channel_limit FROM clients "
                                 "WHERE code IN ('newc', 'newd') ORDER BY code")).all() == [
            ("newc", 5), ("newd", 10)]


def test_the_same_calls_do_wait_for_the_client_that_is_held(engine, two_clients):
    """The twin of the test above: the lock is real, so not waiting means not touching."""
    held, _ = two_clients
    with engine.connect() as holder, engine.connect() as admin:
        admin.execute(text("SET SESSION innodb_lock_wait_timeout = 1"))
        admin.commit()
        holder.begin()
        holder.execute(text("SELECT * FROM clients WHERE id = :id FOR UPDATE"), {"id": held.id})
        try:
            with pytest.raises(DBAPIError) as waited:
                with admin.begin():
                    admin.execute(text("CALL add_payment('held', 5, 'INV-9')")).all()
            assert waited.value.orig.args[0] == LOCK_WAIT_TIMEOUT
        finally:
            holder.rollback()


def rows_read(conn) -> int:
    return sum(int(value) for name, value in conn.execute(text(
        "SHOW SESSION STATUS WHERE Variable_name IN ('Handler_read_next', "
        "'Handler_read_rnd_next', 'Handler_read_first', 'Handler_read_prev')")))


@pytest.mark.parametrize("collation", ["utf8mb4_unicode_ci", "utf8mb4_general_ci",
                                       "utf8mb4_bin", "latin1_swedish_ci"])
def test_procedures_find_the_client_by_its_key_whatever_the_callers_collation(
        engine, two_clients, collation):
    with engine.begin() as conn:
        conn.execute(text("INSERT INTO clients (code, name, rate_plan_id) SELECT "
                          "CONCAT('bulk', seq), CONCAT('Bulk ', seq), p.id "
                          "FROM seq_1_to_400 JOIN rate_plans p ON p.is_default = 1"))
    charset = collation.split("_", 1)[0]
    with engine.connect() as conn:
        conn.execute(text(f"SET NAMES {charset} COLLATE {collation}"))
        conn.commit()
        for statement, params in procedure_calls("other")[2:]:
            with conn.begin():
                before = rows_read(conn)
                conn.execute(text(statement), params).all()
                read = rows_read(conn) - before
            assert read < 100, f"{statement} read {read} rows of ~400 clients: a scan"


def test_explain_of_the_code_lookup_uses_the_unique_key(engine):
    with engine.connect() as conn:
        plan = conn.execute(text(
            "EXPLAIN SELECT id FROM clients "
            "WHERE code = CONVERT(_utf8mb4'master' COLLATE utf8mb4_general_ci USING ascii) "
            "COLLATE ascii_bin")).mappings().one()
        scan = conn.execute(text(
            "EXPLAIN SELECT id FROM clients "
            "WHERE code = _utf8mb4'master' COLLATE utf8mb4_general_ci")).mappings().one()
    assert (plan["type"], plan["key"]) == ("const", "uq_clients_code")
    assert scan["type"] != "const"      # what 007's `code = p_code` did


# ---- a database the operator created with another default collation ---------------------

@pytest.fixture
def operator_made_db():
    """`CREATE DATABASE x CHARACTER SET utf8mb4`: the server's utf8mb4_general_ci default."""
    name = fresh_database_name()
    server = make_engine(SERVER_URL + "/", pool_size=1)
    with server.begin() as conn:
        conn.execute(text(f"CREATE DATABASE `{name}` CHARACTER SET utf8mb4 "
                          "COLLATE utf8mb4_general_ci"))
    server.dispose()
    yield f"{SERVER_URL}/{name}"
    drop_database(name)


def test_upgrade_of_an_operator_made_database_makes_every_routine_work(operator_made_db):
    migrate.upgrade(operator_made_db)
    engine = make_engine(operator_made_db, pool_size=1)
    try:
        with engine.begin() as conn:
            make_plan(conn, "wholesale")
            listed = conn.execute(text("CALL create_client('acme', 'Acme', 'wholesale', 5, 10)")
                                  ).mappings().one()
            assert (listed["plan"], listed["balance"]) == ("wholesale", Decimal("10"))
            conn.execute(text("INSERT INTO users (client_id, username, password) "
                              "VALUES (:id, 'alice', 'pw')"), {"id": listed["id"]})
        with engine.begin() as conn:
            login = conn.execute(text("CALL user_login('alice', 'pw')")).mappings().one()
            assert (login["allowed"], login["client"]) == (1, "acme")
        with engine.connect() as conn:
            off = conn.execute(text(
                "SELECT COUNT(*) FROM information_schema.ROUTINES WHERE ROUTINE_SCHEMA = "
                "DATABASE() AND DATABASE_COLLATION <> 'utf8mb4_unicode_ci'")).scalar_one()
            assert off == 0
    finally:
        engine.dispose()


def test_upgrade_refuses_a_database_whose_routines_were_made_under_another_collation(
        operator_made_db):
    engine = make_engine(operator_made_db, pool_size=1)
    try:
        with engine.begin() as conn:    # as an upgrade before this check left it
            conn.execute(text(migrate.CREATE_MIGRATIONS_TABLE))
            conn.execute(text("INSERT INTO schema_migrations (version, name, checksum) "
                              "VALUES (0, '000_old.sql', REPEAT('0', 64))"))
            conn.exec_driver_sql("CREATE PROCEDURE old_one(IN p VARCHAR(8)) SELECT p")
    finally:
        engine.dispose()
    with pytest.raises(migrate.SchemaError) as refused:
        migrate.upgrade(operator_made_db)
    message = str(refused.value)
    assert "\n" not in message
    assert message.startswith(f"database {operator_made_db.rsplit('/', 1)[1]} has routines or "
                              "triggers made under default collation utf8mb4_general_ci")
    assert "docs/admin-sql.md 'Database collation'" in message


# ---- the grants a DBA account needs to call the procedures from a tool -------------------

@pytest.mark.parametrize("may_read_routines", [True, False])
def test_a_dba_account_sees_and_calls_the_procedures_with_the_documented_grants(
        engine, db_url, may_read_routines):
    """docs/admin-sql.md: SELECT, INSERT, UPDATE, DELETE, EXECUTE on the database, plus
    SELECT on mysql.proc, without which MariaDB hides a routine's text (and a tool's Call
    form has no parameters) from anyone but its definer."""
    import pymysql
    from sqlalchemy.engine import make_url

    url = make_url(db_url)
    account = f"{url.database[:24]}_dba"
    with engine.begin() as conn:
        conn.execute(text("DROP USER IF EXISTS :a@'%'"), {"a": account})
        conn.execute(text("CREATE USER :a@'%' IDENTIFIED BY 'dba pw'"), {"a": account})
        conn.exec_driver_sql(f"GRANT SELECT, INSERT, UPDATE, DELETE, EXECUTE ON "
                             f"`{url.database}`.* TO '{account}'@'%%'")
        if may_read_routines:
            conn.exec_driver_sql(f"GRANT SELECT ON mysql.proc TO '{account}'@'%%'")
    try:
        dba = pymysql.connect(host=url.host, port=url.port or 3306, user=account,
                              password="dba pw", database=url.database, autocommit=True)
        with dba.cursor() as cur:
            cur.execute("SHOW CREATE PROCEDURE create_client")
            body = cur.fetchone()[2]
            cur.execute("CALL create_client('acme', 'Acme', NULL, 5, 10)")
            created = cur.fetchone()
        dba.close()
        assert (body is not None and "p_opening_balance" in body) == may_read_routines
        assert created[1:4] == ("acme", "Acme", Decimal("10.0000"))
    finally:
        with engine.begin() as conn:
            conn.execute(text("DROP USER IF EXISTS :a@'%'"), {"a": account})
