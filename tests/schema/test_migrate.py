"""`ictcontact db upgrade|status` against the real server, run as the admin runs it."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from sqlalchemy import text

from fastagi.db import migrate
from fastagi.db.engine import make_engine

NEWEST = migrate.available_migrations()[-1].version
ALL_VERSIONS = [m.version for m in migrate.available_migrations()]


def ictcontact(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    """Run `python -m fastagi ARGS` with no ICTCONTACT_* settings but those in `env`."""
    clean = {k: v for k, v in os.environ.items() if not k.startswith("ICTCONTACT_")}
    clean.update(env or {})
    return subprocess.run([sys.executable, "-m", "fastagi", "--log-level", "WARNING", *args],
                          capture_output=True, text=True, env=clean, timeout=60)


def query(url: str, sql: str, params: dict | None = None) -> list[tuple]:
    """Run one statement in its own transaction; its rows, or [] for a DML statement."""
    engine = make_engine(url, pool_size=1)
    try:
        with engine.begin() as conn:
            result = conn.execute(text(sql), params or {})
            return [tuple(row) for row in result] if result.returns_rows else []
    finally:
        engine.dispose()


# What the database's own events write every second (the login sync's report of what it
# saw on the server, e.g. another test's prepared XA transaction): not the upgrade's doing.
WRITTEN_BY_EVENTS = {"db_login_sync_problems"}


def snapshot(url: str) -> dict[str, list[tuple]]:
    """Everything an upgrade could change: objects, their definitions, and every row."""
    engine = make_engine(url, pool_size=1)
    try:
        with engine.begin() as conn:
            def rows(sql: str) -> list[tuple]:
                return [tuple(r) for r in conn.execute(text(sql))]
            snap = {
                "tables": rows("SELECT table_name, table_type, engine, table_collation, "
                               "auto_increment, table_comment FROM information_schema.tables "
                               "WHERE table_schema = DATABASE() ORDER BY table_name"),
                "columns": rows("SELECT table_name, column_name, ordinal_position, "
                                "column_default, is_nullable, column_type, collation_name, "
                                "extra, generation_expression, column_comment "
                                "FROM information_schema.columns "
                                "WHERE table_schema = DATABASE() "
                                "ORDER BY table_name, ordinal_position"),
                "constraints": rows("SELECT table_name, constraint_name, constraint_type "
                                    "FROM information_schema.table_constraints "
                                    "WHERE constraint_schema = DATABASE() "
                                    "ORDER BY table_name, constraint_name"),
                "checks": rows("SELECT table_name, constraint_name, check_clause "
                               "FROM information_schema.check_constraints "
                               "WHERE constraint_schema = DATABASE() "
                               "ORDER BY table_name, constraint_name"),
                "triggers": rows("SELECT trigger_name, event_object_table, action_timing, "
                                 "event_manipulation, action_statement, created "
                                 "FROM information_schema.triggers "
                                 "WHERE trigger_schema = DATABASE() ORDER BY trigger_name"),
                "routines": rows("SELECT routine_name, routine_type, routine_definition, "
                                 "created, last_altered, routine_comment "
                                 "FROM information_schema.routines "
                                 "WHERE routine_schema = DATABASE() ORDER BY routine_name"),
                "views": rows("SELECT table_name, view_definition FROM information_schema.views "
                              "WHERE table_schema = DATABASE() ORDER BY table_name"),
            }
            for (name,) in rows("SELECT table_name FROM information_schema.tables WHERE "
                                "table_schema = DATABASE() AND table_type = 'BASE TABLE'"):
                if name in WRITTEN_BY_EVENTS:
                    continue
                snap[f"rows:{name}"] = rows(f"SELECT * FROM `{name}` ORDER BY 1")
            return snap
    finally:
        engine.dispose()


def test_upgrade_on_empty_database_creates_it_with_master_and_client_list(empty_db_url):
    run = ictcontact("db", "upgrade", "--db", empty_db_url)

    assert run.returncode == 0, run.stderr
    assert f"schema upgraded to version {NEWEST}" in run.stdout
    assert [v for (v,) in query(empty_db_url, "SELECT version FROM schema_migrations "
                                              "ORDER BY version")] == ALL_VERSIONS
    assert query(empty_db_url, "SELECT code, channels, plan, status FROM client_list") == [
        ("master", 50, "default", "active")]
    assert query(empty_db_url, "SELECT DEFAULT_CHARACTER_SET_NAME FROM "
                               "information_schema.schemata WHERE schema_name = DATABASE()"
                 ) == [("utf8mb4",)]


def test_second_upgrade_applies_nothing_and_changes_nothing(db_url):
    before = snapshot(db_url)

    run = ictcontact("db", "upgrade", "--db", db_url)

    assert run.returncode == 0, run.stderr
    assert run.stdout.strip() == f"schema is up to date at version {NEWEST}"
    assert snapshot(db_url) == before
    assert migrate.upgrade(db_url) == []
    assert snapshot(db_url) == before


def test_status_shows_current_and_available_versions(db_url):
    run = ictcontact("db", "status", "--db", db_url)

    assert run.returncode == 0, run.stderr
    assert run.stdout.splitlines() == [f"current version: {NEWEST}",
                                       f"available version: {NEWEST}", "pending: none"]


def test_status_of_a_database_not_created_yet_says_it_is_missing(empty_db_url):
    run = ictcontact("db", "status", "--db", empty_db_url)

    assert run.returncode == 1, run.stderr
    assert run.stdout == ""
    name = empty_db_url.rsplit("/", 1)[1]
    assert run.stderr.splitlines() == [
        f"ictcontact: the database {name} does not exist: `ictcontact db upgrade` creates it"]


def test_status_of_an_empty_database_lists_everything_pending(empty_db_url):
    migrate.ensure_database(empty_db_url)
    run = ictcontact("db", "status", "--db", empty_db_url)

    assert run.returncode == 0, run.stderr
    assert run.stdout.splitlines() == [
        "current version: 0", f"available version: {NEWEST}",
        "pending: " + ", ".join(map(str, ALL_VERSIONS))]


def test_upgrade_refuses_a_database_newer_than_the_code(db_url):
    query(db_url, "INSERT INTO schema_migrations (version, name, checksum) "
                  "VALUES (:v, '999_from_the_future.sql', REPEAT('0', 64))", {"v": NEWEST + 1})
    before = snapshot(db_url)

    run = ictcontact("db", "upgrade", "--db", db_url)

    assert run.returncode != 0
    assert run.stdout == ""
    lines = run.stderr.strip().splitlines()
    assert len(lines) == 1, run.stderr
    assert f"version {NEWEST + 1}, newer than this code's {NEWEST}" in lines[0]
    assert snapshot(db_url) == before

    status = ictcontact("db", "status", "--db", db_url)
    assert status.returncode != 0
    assert f"current version: {NEWEST + 1}" in status.stdout
    assert "newer than this code" in status.stderr


def test_unreachable_server_is_one_line_and_non_zero():
    run = ictcontact("db", "upgrade", "--db", "mysql+pymysql://root@127.0.0.1:1/ict_nowhere")

    assert run.returncode != 0
    assert len(run.stderr.strip().splitlines()) == 1, run.stderr
    assert run.stderr.startswith("ictcontact: cannot use database:")


def test_database_url_from_the_environment(empty_db_url):
    run = ictcontact("db", "upgrade", env={"ICTCONTACT_DB": empty_db_url})

    assert run.returncode == 0, run.stderr
    assert query(empty_db_url, "SELECT MAX(version) FROM schema_migrations") == [(NEWEST,)]


@pytest.mark.parametrize("how", ["--config", "ICTCONTACT_CONFIG"])
def test_database_url_from_a_config_file(empty_db_url, tmp_path, how):
    config = tmp_path / "ictcontact.conf"
    config.write_text(f"[ictcontact]\ndb = {empty_db_url}\n", encoding="utf-8")
    if how == "--config":
        run = ictcontact("--config", str(config), "db", "upgrade")
    else:
        run = ictcontact("db", "upgrade", env={"ICTCONTACT_CONFIG": str(config)})

    assert run.returncode == 0, run.stderr
    assert query(empty_db_url, "SELECT MAX(version) FROM schema_migrations") == [(NEWEST,)]


def test_command_line_url_wins_over_environment_and_config(empty_db_url, tmp_path):
    bogus = "mysql+pymysql://root@127.0.0.1:1/ict_nowhere"
    config = tmp_path / "ictcontact.conf"
    config.write_text(f"[ictcontact]\ndb = {bogus}\n", encoding="utf-8")

    run = ictcontact("--config", str(config), "db", "upgrade", "--db", empty_db_url,
                     env={"ICTCONTACT_DB": bogus})

    assert run.returncode == 0, run.stderr


def test_statements_reach_the_server_verbatim(empty_db_url, tmp_path: Path):
    """'%' and ':word' inside literals and bodies are not bind-parameter syntax."""
    (tmp_path / "001_probe.sql").write_text(
        "CREATE TABLE probe (\n"
        "  id INT NOT NULL PRIMARY KEY COMMENT '100% sure: at 10:30 use :name',\n"
        "  pattern VARCHAR(20) NULL COMMENT 'x',\n"
        "  CONSTRAINT ck_probe CHECK (pattern IS NULL OR pattern LIKE '%{n}%')\n"
        ") COMMENT='50%%';\n"
        "DELIMITER //\n"
        "CREATE TRIGGER probe_bi BEFORE INSERT ON probe FOR EACH ROW\n"
        "BEGIN\n"
        "  SET NEW.pattern = CONCAT('%', NEW.pattern, ':x:');\n"
        "END//\n"
        "DELIMITER ;\n", encoding="utf-8")

    assert migrate.upgrade(empty_db_url, directory=tmp_path) == [1]

    assert query(empty_db_url, "SELECT column_comment FROM information_schema.columns "
                               "WHERE table_schema = DATABASE() AND column_name = 'id'"
                 ) == [("100% sure: at 10:30 use :name",)]
    assert query(empty_db_url, "SELECT table_comment FROM information_schema.tables "
                               "WHERE table_schema = DATABASE() AND table_name = 'probe'"
                 ) == [("50%%",)]
    assert query(empty_db_url, "SELECT check_clause FROM information_schema.check_constraints "
                               "WHERE constraint_schema = DATABASE()"
                 ) == [("`pattern` is null or `pattern` like '%{n}%'",)]
    query(empty_db_url, "INSERT INTO probe (id, pattern) VALUES (1, '{n}')")
    assert query(empty_db_url, "SELECT pattern FROM probe") == [("%{n}:x:",)]


def test_upgrade_applies_only_pending_files_in_order(empty_db_url, tmp_path: Path):
    (tmp_path / "001_a.sql").write_text("CREATE TABLE a (id INT PRIMARY KEY);\n")
    assert migrate.upgrade(empty_db_url, directory=tmp_path) == [1]
    (tmp_path / "002_b.sql").write_text("INSERT INTO a VALUES (1);\n")
    (tmp_path / "003_c.sql").write_text("INSERT INTO a SELECT MAX(id) + 1 FROM a;\n")

    assert migrate.upgrade(empty_db_url, directory=tmp_path) == [2, 3]
    assert migrate.upgrade(empty_db_url, directory=tmp_path) == []
    assert query(empty_db_url, "SELECT id FROM a ORDER BY id") == [(1,), (2,)]


def test_a_failed_upgrade_reports_its_own_error_not_the_lock_release():
    """Seen on a busy server: an upgrade whose connection was lost reported the release
    of the schema lock failing (PendingRollbackError) instead of what went wrong."""
    from sqlalchemy.exc import PendingRollbackError

    from fastagi.db.migrate import _server_lock

    class BrokenAfterFailure:
        def __init__(self):
            self.statements = []

        def execute(self, statement, params=None):
            self.statements.append(str(statement))
            if "RELEASE_LOCK" in str(statement):
                raise PendingRollbackError("Can't reconnect until invalid transaction is "
                                           "rolled back")
            return type("Result", (), {"scalar": lambda self: 1})()

        def commit(self):
            pass

        def rollback(self):
            pass

    conn = BrokenAfterFailure()
    with pytest.raises(RuntimeError, match="lost connection during ALTER"):
        with _server_lock(conn):
            raise RuntimeError("lost connection during ALTER")
    assert any("RELEASE_LOCK" in s for s in conn.statements)   # it did try


# ---- a landed migration never changes: its checksum is compared -------------------------

def three_migrations(directory: Path) -> None:
    (directory / "001_a.sql").write_text("CREATE TABLE a (id INT PRIMARY KEY COMMENT 'x') "
                                         "COMMENT 'a';\n")
    (directory / "002_b.sql").write_text("INSERT INTO a VALUES (1);\n")
    (directory / "003_c.sql").write_text("INSERT INTO a VALUES (3);\n")


def edit_second(directory: Path) -> None:
    (directory / "002_b.sql").write_text("INSERT INTO a VALUES (2);\n")


def whitespace_in_second(directory: Path) -> None:
    (directory / "002_b.sql").write_text("INSERT INTO a VALUES (1); \n")


def remove_second(directory: Path) -> None:
    (directory / "002_b.sql").unlink()


CHANGED = r"^schema/002_b\.sql differs from the file applied to this database .*new numbered file$"
MISSING = r"^schema/002_b\.sql was applied to this database but is missing from .*restore it"


@pytest.mark.parametrize("change, expected", [
    (edit_second, CHANGED), (whitespace_in_second, CHANGED), (remove_second, MISSING)],
    ids=["edited", "whitespace only", "removed"])
def test_upgrade_and_serve_refuse_a_migration_changed_after_it_was_applied(
        empty_db_url, tmp_path: Path, change, expected):
    import re

    from fastagi.commands.serve import StartupError, prepare_database

    three_migrations(tmp_path)
    assert migrate.upgrade(empty_db_url, directory=tmp_path) == [1, 2, 3]
    change(tmp_path)
    (tmp_path / "004_d.sql").write_text("INSERT INTO a VALUES (4);\n")    # pending, not applied

    run = ictcontact("db", "upgrade", "--db", empty_db_url,
                     env={"ICTCONTACT_SCHEMA_DIR": str(tmp_path)})
    assert run.returncode != 0
    lines = run.stderr.strip().splitlines()
    assert len(lines) == 1, run.stderr
    assert re.search(expected, lines[0].removeprefix("ictcontact: ")), lines[0]
    assert query(empty_db_url, "SELECT id FROM a ORDER BY id") == [(1,), (3,)]  # 004 not run

    engine = make_engine(empty_db_url, pool_size=1)
    try:
        with pytest.raises(migrate.SchemaError, match=expected):
            migrate.require_current(engine, tmp_path)
        os.environ["ICTCONTACT_SCHEMA_DIR"] = str(tmp_path)
        try:
            (tmp_path / "004_d.sql").unlink()                            # only the change left
            with pytest.raises(StartupError, match=expected):
                prepare_database(empty_db_url, engine)
        finally:
            del os.environ["ICTCONTACT_SCHEMA_DIR"]
    finally:
        engine.dispose()


def test_unchanged_files_pass_the_checksum_check(db_url):
    engine = make_engine(db_url, pool_size=1)
    try:
        assert migrate.require_current(engine).current == NEWEST
    finally:
        engine.dispose()
