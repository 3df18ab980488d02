"""Suspension locks a client's users out at once; reactivation lets them back in."""

from __future__ import annotations

import pytest
from sqlalchemy import text

from tests.builders import make_agent, make_client


def login(engine, username: str, password: str) -> tuple[int, str]:
    with engine.begin() as conn:
        row = conn.execute(text("CALL user_login(:u, :p)"), {"u": username, "p": password}).one()
        return int(row.allowed), row.reason


@pytest.fixture
def bob(engine):
    with engine.begin() as conn:
        client = make_client(conn, "acme")
        agent = make_agent(conn, client.id, "Bob")
        conn.execute(text("INSERT INTO users (client_id, agent_id, username, password)"
                          " VALUES (:c, :a, 'bob', 'S3cret pass')"),
                     {"c": client.id, "a": agent})
    return agent


def test_active_user_logs_in_and_the_login_is_recorded(engine, bob):
    assert login(engine, "bob", "S3cret pass") == (1, "ok")
    with engine.connect() as conn:
        assert conn.execute(text("SELECT last_login_at IS NOT NULL FROM users"
                                 " WHERE username = 'bob'")).scalar() == 1


@pytest.mark.parametrize("username, password", [
    ("bob", "wrong"), ("bob", ""), ("nobody", "S3cret pass"), ("bob", "s3cret pass")])
def test_wrong_credentials_are_refused_alike(engine, bob, username, password):
    assert login(engine, username, password) == (0, "bad-credentials")


def test_suspension_locks_out_and_reactivation_restores(engine, bob):
    with engine.begin() as conn:
        conn.execute(text("UPDATE clients SET status = 'suspended' WHERE code = 'acme'"))
    assert login(engine, "bob", "S3cret pass") == (0, "client-suspended")
    with engine.connect() as conn:
        assert conn.execute(text("SELECT login_state FROM user_login_status"
                                 " WHERE username = 'bob'")).scalar() == "client-suspended"
    with engine.begin() as conn:
        conn.execute(text("CALL activate_client('acme')"))
    assert login(engine, "bob", "S3cret pass") == (1, "ok")


def test_disabled_agent_or_user_cannot_log_in(engine, bob):
    with engine.begin() as conn:
        conn.execute(text("UPDATE agents SET status = 'disabled' WHERE id = :a"), {"a": bob})
    assert login(engine, "bob", "S3cret pass") == (0, "agent-disabled")
    with engine.begin() as conn:
        conn.execute(text("UPDATE agents SET status = 'active' WHERE id = :a"), {"a": bob})
        conn.execute(text("UPDATE users SET status = 'disabled' WHERE username = 'bob'"))
    assert login(engine, "bob", "S3cret pass") == (0, "user-disabled")


def test_a_new_password_replaces_the_old_one(engine, bob):
    with engine.begin() as conn:
        conn.execute(text("UPDATE users SET password = 'n3w' WHERE username = 'bob'"))
    assert login(engine, "bob", "S3cret pass") == (0, "bad-credentials")
    assert login(engine, "bob", "n3w") == (1, "ok")
