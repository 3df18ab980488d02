"""Locks a hostile client holds: locking reads, SERIALIZABLE reads, open write transactions,
prepared XA transactions, named locks, long statements and idle transactions. While the
hostile session holds them, the operator's suspension and top-up go through, the client's
logins are locked out, and another client's calls are admitted (schema 101-103)."""

from __future__ import annotations

import threading
import time
from decimal import Decimal

import pymysql
import pytest
import pytest_twisted
from sqlalchemy import text

from fastagi import channel_vars as v
from fastagi.db import migrate
from tests.builders import add_rate, default_plan_id, top_up
from tests.callcontrol.agi_server import agi_server
from tests.tenant.helpers import can_connect, error_code, execute, is_disconnected, query, seconds_until

# The operator waits this long for a row lock at most: well under MariaDB's default (50 s)
# and the FastAGI's own database deadline, well over the watchdog's period (1 s).
OPERATOR_LOCK_WAIT_S = 5
USER_LIMIT = 1226        # the account has more than max_user_connections active connections
STATEMENT_TIME = 1969    # max_statement_time exceeded
INTERRUPTED = 1317       # KILL QUERY


def operator(world, sql: str, **params) -> float:
    """Run one statement as the operator with a bounded lock wait; return its seconds."""
    start = time.monotonic()
    with world.engine.begin() as conn:
        conn.execute(text(f"SET SESSION innodb_lock_wait_timeout = {OPERATOR_LOCK_WAIT_S}"))
        conn.execute(text(sql), params)
    return time.monotonic() - start


def suspend(world, letter: str) -> float:
    return operator(world, "UPDATE clients SET status = 'suspended' WHERE id = :c",
                    c=world.clients[letter].id)


def read_only_views(world) -> list[str]:
    with world.engine.connect() as conn:
        return [r[0] for r in conn.execute(text("SELECT name FROM tenant_views WHERE writable = 0"))]


def insert_call(world, letter: str) -> None:
    """A live call row of a client, as authorize writes it (bounded lock wait)."""
    c = world.clients[letter]
    operator(world, "INSERT INTO calls (client_id, client_code, number, state, authorized_at)"
                    " VALUES (:c, :code, '442071234567', 'live', UTC_TIMESTAMP(3))", c=c.id, code=c.code)


def ended_sessions(world) -> list[str]:
    with world.engine.connect() as conn:
        return [r[0] for r in conn.execute(text("SELECT reason FROM tenant_sessions_ended ORDER BY id"))]


def ended_by_connection(world) -> dict[int, set[tuple[str, str]]]:
    """What the watchdog recorded, per connection id: {(what, reason)}."""
    ended: dict[int, set[tuple[str, str]]] = {}
    with world.engine.connect() as conn:
        for cid, what, reason in conn.execute(text("SELECT connection_id, what, reason FROM tenant_sessions_ended")):
            ended.setdefault(cid, set()).add((what, reason))
    return ended


def watchdog_problem(world) -> str | None:
    with world.engine.connect() as conn:
        return conn.execute(text("SELECT problem FROM db_login_sync_problems WHERE user_id = 0")).scalar()


def all_locked_out(world, letter: str) -> bool:
    return not any(can_connect(world, letter, role) for role in ("admin", "supervisor", "agent"))


@pytest.mark.parametrize("clause", ["LOCK IN SHARE MODE", "FOR UPDATE"])
def test_locking_reads_of_read_only_views_lock_nothing(world, clause):
    """Held open, no locking read of any read-only view makes the operator or another
    client wait: the watchdog never has to act (nothing is ended)."""
    hostile = world.login("a", "agent")
    execute(hostile, "START TRANSACTION")
    for view in read_only_views(world):
        query(hostile, f"SELECT * FROM {view} {clause}")
    with world.engine.begin() as conn:
        conn.execute(text("SET SESSION innodb_lock_wait_timeout = 1"))
        conn.execute(text("UPDATE clients SET status = 'suspended' WHERE id = :a"),
                     {"a": world.clients["a"].id})
        conn.rollback()
    insert_call(world, "b")
    top_up_now(world, "a")
    assert query(hostile, "SELECT COUNT(*) FROM calls")[0][0] == 0  # still open, still its own
    assert ended_sessions(world) == []
    hostile.close()


def top_up_now(world, letter: str) -> None:
    with world.engine.begin() as conn:
        conn.execute(text(f"SET SESSION innodb_lock_wait_timeout = {OPERATOR_LOCK_WAIT_S}"))
        top_up(conn, world.clients[letter].id, Decimal("5"))


# What a login can hold that makes others wait: each is ended by the watchdog.
BLOCKING = {
    "serializable read": ("agent", ["SET SESSION TRANSACTION ISOLATION LEVEL SERIALIZABLE",
                                    "START TRANSACTION", "SELECT * FROM campaigns",
                                    "SELECT * FROM users", "SELECT * FROM agents"]),
    "open write": ("admin", ["START TRANSACTION", "INSERT INTO agents (name) VALUES ('held')",
                             "UPDATE campaigns SET name = 'held'"]),
    "locking read of writable views": ("supervisor", [
        "START TRANSACTION", "SELECT * FROM campaigns FOR UPDATE",
        "SELECT * FROM contacts LOCK IN SHARE MODE", "SELECT * FROM agents FOR UPDATE"]),
}


@pytest.mark.parametrize("what", sorted(BLOCKING))
def test_a_session_holding_locks_cannot_stop_the_suspension(world, what):
    role, statements = BLOCKING[what]
    hostile = world.login("a", role)
    for sql in statements:
        execute(hostile, sql)
    suspend(world, "a")  # 1205 here if the hostile session could hold it
    top_up_now(world, "a")
    seconds_until(lambda: all_locked_out(world, "a"))
    seconds_until(lambda: is_disconnected(hostile))
    assert can_connect(world, "b", "agent")


def test_a_prepared_xa_transaction_cannot_stop_suspension_or_top_ups(world):
    """XA PREPARE keeps the transaction after its session ends (and KILL, and revoke):
    it releases its shared locks there, and what it keeps exclusively are rows of its own
    client that neither the suspension, the top-up, the sync nor another client needs."""
    xid = f"hostile-{world.prefix}"
    hostile = world.login("a", "admin")
    try:
        for sql in (f"XA START '{xid}'", "INSERT INTO agents (name) VALUES ('xa')",
                    "UPDATE campaigns SET name = 'xa'", "UPDATE users SET status = 'active'",
                    "INSERT INTO contacts (campaign_id, phone) VALUES (%s, '442070000321')",
                    f"XA END '{xid}'", f"XA PREPARE '{xid}'"):
            execute(hostile, sql, (world.clients["a"].campaign_id,) if "%s" in sql else None)
        hostile.close()
        top_up_now(world, "a")
        suspend(world, "a")
        seconds_until(lambda: all_locked_out(world, "a"))
        insert_call(world, "b")
        suspend(world, "b")  # another client's suspension too
        seconds_until(lambda: all_locked_out(world, "b"))
        # its own rows stay locked (residual risk): the operator is told how to end it
        waiting = threading.Thread(target=lambda: pytest.raises(
            Exception, operator, world, "UPDATE campaigns SET name = 'x' WHERE id = :k",
            k=world.clients["a"].campaign_id))
        waiting.start()
        seconds_until(lambda: "XA ROLLBACK" in (watchdog_problem(world) or ""))
        waiting.join()
    finally:
        with world.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            conn.execute(text(f"XA ROLLBACK '{xid}'"))


@pytest.mark.parametrize("hold", [
    ["START TRANSACTION", "SELECT * FROM calls LOCK IN SHARE MODE"],
    ["START TRANSACTION", "SELECT * FROM calls FOR UPDATE"],
    ["SET SESSION TRANSACTION ISOLATION LEVEL SERIALIZABLE", "START TRANSACTION", "SELECT * FROM calls"],
])
@pytest_twisted.ensureDeferred
async def test_another_clients_call_is_admitted_while_a_client_locks_its_calls(world, hold):
    with world.engine.begin() as conn:
        add_rate(conn, default_plan_id(conn), "44", Decimal("0.10"), Decimal("0"), 60, 60)
    hostile = world.login("a", "agent")
    for sql in hold:
        execute(hostile, sql)
    async with agi_server(world.engine) as server:
        got = await server.variables("authorize", world.clients["b"].code, "442071234567")
    assert got[v.RESULT] == v.ALLOW, got
    hostile.close()


def test_a_client_holding_the_sync_lock_cannot_stop_lock_outs(world):
    hostile = world.login("a", "agent")
    name = f"ict_db_login_sync:{world.database}"[:64]
    assert query(hostile, "SELECT GET_LOCK(%s, 0)", (name,))[0][0] == 1
    suspend(world, "b")
    seconds_until(lambda: all_locked_out(world, "b"))
    seconds_until(lambda: is_disconnected(hostile))
    assert "it held the login sync's named lock" in ended_sessions(world)


def test_a_client_holding_the_upgrade_lock_cannot_stop_db_upgrade(world):
    hostile = world.login("a", "agent")
    assert query(hostile, "SELECT GET_LOCK('ictcontact_schema_upgrade', 30)")[0][0] == 1
    assert migrate.upgrade(world.url) == []  # took the lock (nothing was pending)
    assert is_disconnected(hostile)


def test_one_bad_row_does_not_stop_the_sync_for_others(world):
    """A users row with role '' (stored before schema 100 refused it) and an account
    dropped by hand: each is skipped with its reason, fail closed; the rest syncs."""
    a, b = world.clients["a"], world.clients["b"]
    with world.engine.begin() as conn:
        conn.execute(text("DROP TRIGGER users_before_update"))  # its tenant guard: as before 100
        conn.execute(text("SET SESSION sql_mode = ''"))
        conn.execute(text("UPDATE users SET role = 'bogus' WHERE id = :u"), {"u": a.users["supervisor"]})
        conn.execute(text("DROP USER :u@'%'"), {"u": b.accounts["agent"]})
    suspend(world, "b")  # B's agent cannot be locked (no account): B's others still are
    seconds_until(lambda: not can_connect(world, "b", "admin") and not can_connect(world, "b", "supervisor"))
    seconds_until(lambda: not can_connect(world, "a", "supervisor"))  # fail closed
    assert can_connect(world, "a", "admin") and can_connect(world, "a", "agent")
    with world.engine.connect() as conn:
        problems = dict(conn.execute(text("SELECT user_id, problem FROM db_login_sync_problems")).all())
    assert "users.role is ''" in problems[a.users["supervisor"]]
    assert "the login was locked" in problems[b.users["agent"]]
    with world.engine.begin() as conn:  # the row repaired: the login opens again
        conn.execute(text("UPDATE users SET role = 'supervisor' WHERE id = :u"), {"u": a.users["supervisor"]})
    seconds_until(lambda: can_connect(world, "a", "supervisor"))


def test_a_client_login_cannot_store_a_bad_role(world):
    with world.login("a", "admin") as conn:
        execute(conn, "SET SESSION sql_mode = ''")
        with pytest.raises(pymysql.MySQLError) as refused:
            execute(conn, "UPDATE users SET role = 'bogus'")
        assert "not an empty string" in str(refused.value)


@pytest.fixture
def tight_limits(world):
    with world.engine.begin() as conn:
        conn.execute(text("UPDATE tenant_login_limits SET max_connections = 2,"
                          " max_statement_seconds = 1, max_transaction_seconds = 2"))

    def applied() -> bool:
        with world.engine.connect() as conn:
            return conn.execute(text("SELECT COUNT(*) FROM db_logins WHERE NOT applied_limits <=> '2/1'")
                                ).scalar_one() == 0
    seconds_until(applied)


def test_resource_limits_bound_connections_statements_and_transactions(world, tight_limits):
    first, second = world.login("a", "agent"), world.login("a", "agent")
    with pytest.raises(pymysql.MySQLError) as refused:
        world.login("a", "agent")
    assert error_code(refused.value) == USER_LIMIT
    with pytest.raises(pymysql.MySQLError) as refused:
        query(first, "SELECT SLEEP(3) FROM client_list")  # the account's MAX_STATEMENT_TIME
    assert error_code(refused.value) == STATEMENT_TIME
    # the session may lift its own limit: the watchdog still ends the statement
    execute(first, "SET SESSION max_statement_time = 0")
    start = time.monotonic()
    with pytest.raises(pymysql.MySQLError) as refused:
        query(first, "SELECT SLEEP(6) FROM client_list")
    assert error_code(refused.value) == INTERRUPTED
    assert time.monotonic() - start < 6
    # an open transaction left idle is ended with its session
    execute(second, "START TRANSACTION")
    query(second, "SELECT * FROM campaigns")
    seconds_until(lambda: is_disconnected(second))
    # both reasons are there as soon as the session is seen ended (174: recorded first).
    # Not per session: a read-only transaction (trx_id 0) can be taken for the blocker of
    # another database's wait (docs/tenant-logins.md, "known imprecision")
    reasons = ended_sessions(world)
    assert "its statement ran longer than 1 s" in reasons
    assert "its transaction was open longer than 2 s" in reasons
    first.close()


def recording_waits(world) -> bool:
    """A session of this database waits to add a row to tenant_sessions_ended."""
    with world.engine.connect() as conn:
        return conn.execute(text("SELECT COUNT(*) FROM information_schema.processlist WHERE db = DATABASE()"
                                 " AND info LIKE 'INSERT INTO tenant_sessions_ended%'")).scalar_one() > 0


def test_a_session_is_ended_only_once_its_reason_is_recorded(world):
    """The reason is written, then the session ended: while the operator holds
    tenant_sessions_ended so that no row can be added, a login holding the sync's named
    lock is not ended (the sync waits to record why); released, it is ended, its reason
    already there. (The named lock, not a rule on transactions: it needs no InnoDB cache.)"""
    hostile = world.login("a", "agent")
    name = f"ict_db_login_sync:{world.database}"[:64]
    with world.engine.connect().execution_options(isolation_level="REPEATABLE READ") as holder:
        holder.execute(text("SELECT id FROM tenant_sessions_ended FOR UPDATE"))  # gap locked: no INSERT
        assert query(hostile, "SELECT GET_LOCK(%s, 5)", (name,))[0][0] == 1
        seconds_until(lambda: recording_waits(world))
        assert not is_disconnected(hostile), "ended while its reason could not be recorded"
        holder.rollback()
    seconds_until(lambda: is_disconnected(hostile))
    assert ended_by_connection(world) == {hostile.thread_id(): {("connection", "it held the login sync's named lock")}}


def lock_wait_shown(engine) -> bool:
    # InnoDB refreshes this view only after 100 ms without a reader: poll slower than that
    time.sleep(0.25)
    with engine.connect() as conn:
        return conn.execute(text("SELECT COUNT(*) FROM information_schema.innodb_lock_waits"
                                 " WHERE blocking_trx_id = 0")).scalar_one() > 0


def test_a_read_only_wait_in_another_database_ends_no_client_session(world):
    """InnoDB shows every read-only transaction with trx_id 0, blockers too: a SERIALIZABLE
    read in another database on the server that makes an UPDATE wait must not make a
    client login's open read-only transaction look like the blocker (it was ended so)."""
    reader = world.login("a", "agent")
    execute(reader, "START TRANSACTION")
    query(reader, "SELECT * FROM campaigns")
    other = f"{world.database}_other"[:64]
    with world.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        conn.execute(text(f"CREATE DATABASE `{other}`"))
        conn.execute(text(f"CREATE TABLE `{other}`.t (id INT PRIMARY KEY, v INT) ENGINE=InnoDB"))
        conn.execute(text(f"INSERT INTO `{other}`.t VALUES (1, 1)"))
    holder = world.engine.connect()
    waits = []
    try:
        holder.execute(text("SET TRANSACTION ISOLATION LEVEL SERIALIZABLE"))
        holder.execute(text(f"SELECT v FROM `{other}`.t WHERE id = 1")).all()   # share lock

        def wait() -> None:
            with world.engine.connect() as conn:
                conn.execute(text("SET SESSION innodb_lock_wait_timeout = 10"))
                try:
                    conn.execute(text(f"UPDATE `{other}`.t SET v = 2 WHERE id = 1"))
                except Exception as exc:  # noqa: BLE001 - only the wait matters here
                    waits.append(exc)
        waiter = threading.Thread(target=wait)
        waiter.start()
        seconds_until(lambda: lock_wait_shown(world.engine))
        time.sleep(1.1)   # the reader idle over 1 s: a blocker then is ended at once (173)
        with world.engine.connect() as conn:
            conn.execute(text("CALL end_hostile_tenant_sessions(@ended)"))
            ended = conn.execute(text("SELECT @ended")).scalar_one()
        time.sleep(1.2)   # and a round of the event
        assert ended == 0 and not is_disconnected(reader), ended_sessions(world)
    finally:
        holder.rollback()
        holder.close()
        waiter.join(30)
        with world.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            conn.execute(text(f"DROP DATABASE IF EXISTS `{other}`"))
    assert ended_sessions(world) == []


def test_an_open_transaction_cannot_stall_a_schema_change(world):
    """ALTER TABLE waits for every open transaction that read the table, and every later
    statement on it waits behind the ALTER: a login's idle transaction is ended instead."""
    hostile = world.login("a", "agent")
    execute(hostile, "START TRANSACTION")
    query(hostile, "SELECT * FROM contacts")
    start = time.monotonic()
    with world.engine.begin() as conn:
        conn.execute(text(f"SET SESSION lock_wait_timeout = {OPERATOR_LOCK_WAIT_S}"))
        conn.execute(text("ALTER TABLE contacts COMMENT = 'Contacts (altered while a client held a transaction)'"))
    assert time.monotonic() - start < OPERATOR_LOCK_WAIT_S
    assert is_disconnected(hostile)


def test_suspension_locks_out_within_the_bound_while_every_kind_of_lock_is_held(world):
    """All at once: the measured figure is bench/tenant_lock.py --hostile."""
    held = []
    for what in sorted(BLOCKING):
        role, statements = BLOCKING[what]
        conn = world.login("a", role)
        for sql in statements:
            execute(conn, sql)
        held.append(conn)
    name = f"ict_db_login_sync:{world.database}"[:64]
    locker = world.login("a", "agent")
    query(locker, "SELECT GET_LOCK(%s, 0)", (name,))
    held.append(locker)
    suspend(world, "a")
    seconds_until(lambda: all_locked_out(world, "a"))
    for conn in held:
        seconds_until(lambda: is_disconnected(conn))


def test_lock_outs_go_on_when_the_watchdog_fails(world):
    """As on MySQL 8, where the watchdog's information_schema tables do not exist."""
    with world.engine.begin() as conn:
        conn.execute(text("DROP PROCEDURE end_hostile_tenant_sessions"))
    suspend(world, "a")
    seconds_until(lambda: all_locked_out(world, "a"))
    with world.engine.connect() as conn:
        problem = conn.execute(text("SELECT problem FROM db_login_sync_problems WHERE user_id = 0")).scalar()
    assert problem.startswith("watchdog: ")


def test_an_operator_holding_a_named_lock_is_never_ended(world):
    """The operator who created the tenant roles holds them (with admin option): it is no
    client login, and `db upgrade` waits for it rather than ending it."""
    name = f"ict_test_lock:{world.database}"
    with world.engine.connect() as holder, world.engine.connect() as upgrader:
        assert holder.execute(text("SELECT GET_LOCK(:n, 0)"), {"n": name}).scalar() == 1
        migrate._end_client_login_holding(upgrader, name)
        assert holder.execute(text("SELECT IS_USED_LOCK(:n) = CONNECTION_ID()"), {"n": name}).scalar() == 1
        hostile = world.login("a", "agent")
        holder.execute(text("SELECT RELEASE_LOCK(:n)"), {"n": name})
        assert query(hostile, "SELECT GET_LOCK(%s, 0)", (name,))[0][0] == 1
        migrate._end_client_login_holding(upgrader, name)
        seconds_until(lambda: is_disconnected(hostile))
