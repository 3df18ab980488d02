"""A suspended reseller locks the database logins of its whole subtree (the reseller's
own too), and only those; reactivation opens them again, except those of a client
suspended by itself. Real accounts on the shared server, the db_login_sync event."""

from __future__ import annotations

from sqlalchemy import text

from tests.support.sql import scalar
from tests.tenant.helpers import can_connect, is_disconnected, query, seconds_until


def admin_sql(world, sql: str, **params) -> None:
    with world.engine.begin() as conn:
        conn.execute(text(sql), params).all()


def under_new_reseller(world) -> str:
    """A reseller `<prefix>r` under master, selling a plan; client a moved under it (b
    stays a client of master, a's sibling one level up). Returns the reseller's code."""
    code = world.prefix + "r"
    with world.engine.begin() as conn:
        reseller = conn.execute(text(
            "INSERT INTO clients (code, name) VALUES (:c, :c)"), {"c": code}).lastrowid
        conn.execute(text("INSERT INTO rate_plans (name, owner_client_id) VALUES (:n, :r)"),
                     {"n": f"plan of {code}", "r": reseller})
    admin_sql(world, "CALL move_client_to_plan(:a, :r, :p)", a=world.clients["a"].code,
              r=code, p=f"plan of {code}")
    return code


def test_a_resellers_suspension_locks_its_subtrees_logins_only(world):
    reseller = under_new_reseller(world)
    session = world.login("a", "supervisor")
    assert len(query(session, "SELECT * FROM campaigns")) == 1
    admin_sql(world, "CALL suspend_client(:r)", r=reseller)
    # the tenant scope is empty at once; the sync locks and disconnects within the bound
    assert query(session, "SELECT * FROM campaigns") == [] or is_disconnected(session)
    for role in ("admin", "supervisor", "agent"):
        seconds_until(lambda: not can_connect(world, "a", role))
    seconds_until(lambda: is_disconnected(session))
    assert can_connect(world, "b", "admin")          # not in the subtree
    # a's own row was not written
    assert scalar(world.engine, "SELECT status FROM clients WHERE code = :a",
                  a=world.clients["a"].code) == "active"
    admin_sql(world, "CALL activate_client(:r)", r=reseller)
    for role in ("admin", "supervisor", "agent"):
        seconds_until(lambda: can_connect(world, "a", role))
    with world.login("a", "agent") as conn:
        assert len(query(conn, "SELECT * FROM campaigns")) == 1


def test_a_client_suspended_by_itself_stays_locked_after_its_resellers_reactivation(world):
    reseller = under_new_reseller(world)
    admin_sql(world, "CALL suspend_client(:a)", a=world.clients["a"].code)
    admin_sql(world, "CALL suspend_client(:r)", r=reseller)
    seconds_until(lambda: not can_connect(world, "a", "admin"))
    admin_sql(world, "CALL activate_client(:r)", r=reseller)
    # two sync rounds later a is still locked: its own suspension stands
    with world.engine.connect() as conn:
        conn.execute(text("DO SLEEP(2.5)"))
    assert not can_connect(world, "a", "admin")
    admin_sql(world, "CALL activate_client(:a)", a=world.clients["a"].code)
    seconds_until(lambda: can_connect(world, "a", "admin"))
