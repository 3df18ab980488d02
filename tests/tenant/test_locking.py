"""Suspension, reactivation and disabled users lock and unlock the database logins within
the bound (the db_login_sync event runs every second; we allow LOCK_BOUND_S), and sessions
already connected see nothing at once and are then disconnected."""

from __future__ import annotations


import pymysql
import pytest
from sqlalchemy import text

from tests.tenant.helpers import (PASSWORD, can_connect, connect,
                                  error_code, execute, is_disconnected, query, seconds_until)

def admin_sql(world, sql: str, **params) -> None:
    with world.engine.begin() as conn:
        conn.execute(text(sql), params)


def test_suspension_locks_every_login_and_reactivation_restores_them(world):
    a = world.clients["a"]
    session = world.login("a", "supervisor")
    assert len(query(session, "SELECT * FROM campaigns")) == 1
    # Hold the sync's lock so that the session cannot be ended before it is looked at:
    # what it sees right after the suspension is then the views' doing alone.
    with world.engine.connect() as holder:
        lock = f"ict_db_login_sync:{world.database}"
        assert holder.execute(text("SELECT GET_LOCK(:n, 5)"), {"n": lock}).scalar_one() == 1
        admin_sql(world, "UPDATE clients SET status = 'suspended' WHERE id = :a", a=a.id)
        assert query(session, "SELECT * FROM campaigns") == []
        assert query(session, "SELECT * FROM client_list") == []
        assert execute(session, "UPDATE contacts SET first_name = 'X'") == 0
        assert execute(session, "DELETE FROM campaigns") == 0
        with pytest.raises(pymysql.MySQLError) as refused:
            execute(session, "INSERT INTO campaigns (name) VALUES ('during suspension')")
        assert "this login is locked" in str(refused.value)
        holder.execute(text("SELECT RELEASE_LOCK(:n)"), {"n": lock})
    for role in ("admin", "supervisor", "agent"):
        seconds_until(lambda: not can_connect(world, "a", role))
    seconds_until(lambda: is_disconnected(session))
    assert can_connect(world, "b", "admin")  # the other client is untouched
    admin_sql(world, "CALL activate_client(:code)", code=a.code)
    for role in ("admin", "supervisor", "agent"):
        seconds_until(lambda: can_connect(world, "a", role))
    with world.login("a", "agent") as conn:
        assert len(query(conn, "SELECT * FROM campaigns")) == 1
    with world.engine.connect() as conn:
        assert conn.execute(text("SELECT first_name FROM contacts WHERE id = :c"),
                            {"c": a.contact_id}).scalar_one() == "Sam"


def test_a_disabled_user_loses_its_login_and_gets_it_back(world):
    a = world.clients["a"]
    session = world.login("a", "admin")
    admin_sql(world, "UPDATE users SET status = 'disabled' WHERE id = :u", u=a.users["admin"])
    seconds_until(lambda: not can_connect(world, "a", "admin"))
    seconds_until(lambda: is_disconnected(session))
    assert can_connect(world, "a", "supervisor")
    admin_sql(world, "UPDATE users SET status = 'active' WHERE id = :u", u=a.users["admin"])
    seconds_until(lambda: can_connect(world, "a", "admin"))


def test_a_disabled_agent_locks_the_login_of_its_user(world):
    a = world.clients["a"]
    # A supervisor of the client disables the agent through its own view.
    with world.login("a", "supervisor") as conn:
        assert execute(conn, "UPDATE agents SET status = 'disabled' WHERE id = %s", (a.agent_id,)) == 1
    seconds_until(lambda: not can_connect(world, "a", "agent"))
    assert can_connect(world, "a", "supervisor")
    with world.login("a", "supervisor") as conn:
        execute(conn, "UPDATE agents SET status = 'active' WHERE id = %s", (a.agent_id,))
    seconds_until(lambda: can_connect(world, "a", "agent"))


def test_a_tenant_admin_disabling_a_user_locks_that_login(world):
    a = world.clients["a"]
    with world.login("a", "admin") as conn:
        assert execute(conn, "UPDATE users SET status = 'disabled' WHERE id = %s",
                       (a.users["supervisor"],)) == 1
    seconds_until(lambda: not can_connect(world, "a", "supervisor"))


def test_a_role_change_applies_and_ends_sessions_holding_the_old_role(world):
    a = world.clients["a"]
    session = world.login("a", "agent")
    with world.login("a", "admin") as conn:
        execute(conn, "UPDATE users SET role = 'supervisor' WHERE id = %s", (a.users["agent"],))
    seconds_until(lambda: is_disconnected(session))
    with connect(world.url, a.accounts["agent"], PASSWORD, world.tenant_database) as conn:
        execute(conn, "INSERT INTO campaigns (name) VALUES ('promoted')")
    session = world.login("a", "admin")
    with world.login("a", "admin") as other:
        execute(other, "UPDATE users SET role = 'agent' WHERE id = %s", (a.users["admin"],))
    seconds_until(lambda: is_disconnected(session))
    with world.login("a", "admin") as conn:  # the account keeps its name; the role is agent now
        with pytest.raises(pymysql.MySQLError) as refused:
            execute(conn, "INSERT INTO campaigns (name) VALUES ('demoted')")
        assert error_code(refused.value) == 1142


def test_locking_is_recorded_in_db_logins(world):
    a = world.clients["a"]
    admin_sql(world, "UPDATE clients SET status = 'suspended' WHERE id = :a", a=a.id)

    def all_locked() -> bool:
        with world.engine.connect() as conn:
            return conn.execute(text("SELECT MIN(locked) FROM db_logins WHERE client_id = :a"),
                                {"a": a.id}).scalar_one() == 1
    seconds_until(all_locked)
    with world.engine.connect() as conn:
        assert conn.execute(text("SELECT MAX(locked) FROM db_logins WHERE client_id <> :a"),
                            {"a": a.id}).scalar_one() == 0
