"""Admins read the schema in phpMyAdmin-style tools: every table, column and routine says
what it is. Views are exempt from column comments (MariaDB/MySQL cannot store them)."""

from __future__ import annotations

from sqlalchemy import text


def test_every_table_has_a_comment(engine):
    with engine.connect() as conn:
        tables = conn.execute(text(
            "SELECT table_name, table_comment FROM information_schema.tables "
            "WHERE table_schema = DATABASE() AND table_type = 'BASE TABLE'")).all()
    assert len(tables) >= 10
    assert [name for name, comment in tables if not (comment or "").strip()] == []


def test_every_column_of_every_base_table_has_a_comment(engine):
    with engine.connect() as conn:
        columns = conn.execute(text(
            "SELECT c.table_name, c.column_name, c.column_comment "
            "FROM information_schema.columns c JOIN information_schema.tables t "
            "  ON t.table_schema = c.table_schema AND t.table_name = c.table_name "
            "WHERE c.table_schema = DATABASE() AND t.table_type = 'BASE TABLE'")).all()
    assert len(columns) >= 100
    missing = [f"{table}.{column}" for table, column, comment in columns
               if not (comment or "").strip()]
    assert missing == []


def test_every_procedure_and_function_has_a_comment(engine):
    with engine.connect() as conn:
        routines = conn.execute(text(
            "SELECT routine_name, routine_comment FROM information_schema.routines "
            "WHERE routine_schema = DATABASE()")).all()
    assert {"create_client", "add_payment", "suspend_client", "activate_client"} <= {
        name for name, _ in routines}
    assert [name for name, comment in routines if not (comment or "").strip()] == []


def test_client_list_is_a_view(engine):
    with engine.connect() as conn:
        kind = conn.execute(text(
            "SELECT table_type FROM information_schema.tables "
            "WHERE table_schema = DATABASE() AND table_name = 'client_list'")).scalar_one()
    assert kind == "VIEW"
