"""`db upgrade` waits for a long statement: an ALTER TABLE of a table with millions of rows
runs for minutes. With the engine's usual 10 s read timeout the upgrade gave its
connection up after 10 s ("Lost connection ... (timed out)", seen on schema 083 with 100,000
calls on a busy server by bench/upgrade.py), and a file could be left half applied. The
same timeout cut short the 60 s wait for another upgrade's lock."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import text

from fastagi.db import migrate
from fastagi.db.engine import make_engine


def test_a_migration_statement_longer_than_the_usual_read_timeout_completes(
        empty_db_url, tmp_path: Path):
    (tmp_path / "001_slow.sql").write_text(
        "CREATE TABLE slow_one (id INT PRIMARY KEY) COMMENT 'test';\n"
        "DO SLEEP(11);\n"
        "INSERT INTO slow_one VALUES (1);\n")
    assert migrate.upgrade(empty_db_url, directory=tmp_path) == [1]
    engine = make_engine(empty_db_url, pool_size=1)
    try:
        with engine.connect() as conn:
            assert conn.execute(text("SELECT id FROM slow_one")).all() == [(1,)]
    finally:
        engine.dispose()
