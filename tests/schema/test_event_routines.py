"""What the db_login_sync event runs every second in every database must not crash or
flood the server (schema 104): MariaDB 10.11 segfaulted opening a stored-procedure cursor
over information_schema (ha_maria::drop_table from free_tmp_table); the event's comment is
kept whole; in an incomplete database the event does nothing instead of failing."""

from __future__ import annotations

import re

import pytest
from sqlalchemy import text
from sqlalchemy.exc import OperationalError

CURSOR = re.compile(r"\bCURSOR\s+FOR\b(.*?);", re.IGNORECASE | re.DOTALL)


def test_no_routine_opens_a_cursor_over_information_schema(engine):
    with engine.connect() as conn:
        routines = conn.execute(text(
            "SELECT routine_name, routine_definition FROM information_schema.routines "
            "WHERE routine_schema = DATABASE()")).all()
    assert any(name == "end_hostile_tenant_sessions" for name, _ in routines)
    offending = [name for name, body in routines
                 for cursor in CURSOR.findall(body or "")
                 if "information_schema" in cursor.lower()]
    assert offending == []


def test_the_event_comment_is_whole(engine):
    with engine.connect() as conn:
        comment = conn.execute(text(
            "SELECT event_comment FROM information_schema.events "
            "WHERE event_schema = DATABASE() AND event_name = 'db_login_sync'")).scalar_one()
    assert 0 < len(comment) < 64 and comment.endswith("ended")


def test_the_event_does_nothing_in_an_incomplete_database(engine):
    """While the sync's tables are gone (a DROP DATABASE under way) a run ends without an
    error; a complete database's sync still fails loudly (the hostile case)."""
    body = "CALL sync_db_logins()"
    with engine.begin() as conn:
        definition = conn.execute(text(
            "SELECT event_definition FROM information_schema.events "
            "WHERE event_schema = DATABASE() AND event_name = 'db_login_sync'")).scalar_one()
        assert body in definition
        conn.execute(text("ALTER EVENT db_login_sync DISABLE"))
        conn.execute(text("DROP TABLE tenant_login_limits"))
        # The event's body, run as a procedure: the event itself logs only to the error log.
        conn.execute(text(f"CREATE PROCEDURE event_body_now() COMMENT 'test' {definition}"))
        conn.execute(text("CALL event_body_now()"))  # no error: incomplete, quiet
        conn.execute(text("CREATE TABLE tenant_login_limits (id INT) COMMENT 't'"))
    with engine.begin() as conn, pytest.raises(OperationalError, match="max_connections"):
        conn.execute(text("CALL event_body_now()"))
