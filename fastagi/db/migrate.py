"""Forward-only schema migrations: schema/NNN_name.sql applied in order, each recorded.

`schema_migrations` holds one row per applied file. The code knows the highest version it
ships; a database above that is newer than the code and is refused, never downgraded.
"""

from __future__ import annotations

import hashlib
import logging
import os
import re
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import text
from sqlalchemy.engine import Engine
from sqlalchemy.exc import OperationalError, ProgrammingError

from fastagi.db.engine import database_name, make_engine, server_url
from fastagi.db.sqlscript import split_statements

log = logging.getLogger(__name__)

FILE_PATTERN = re.compile(r"^(\d{3})_([a-z0-9_]+)\.sql$")
LOCK_NAME = "ictcontact_schema_upgrade"

CREATE_MIGRATIONS_TABLE = """
CREATE TABLE IF NOT EXISTS schema_migrations (
  version INT UNSIGNED NOT NULL PRIMARY KEY COMMENT 'Number of the applied schema/NNN_*.sql file',
  name VARCHAR(128) NOT NULL COMMENT 'File name of the migration',
  checksum CHAR(64) NOT NULL COMMENT 'SHA-256 of the file as applied',
  applied_at DATETIME NOT NULL DEFAULT CURRENT_TIMESTAMP COMMENT 'When it was applied (UTC)'
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci
  COMMENT='Schema version: one row per applied migration file (managed by ictcontact db upgrade)'
"""


class SchemaError(RuntimeError):
    """The database schema cannot be used or upgraded; the message is one line."""


@dataclass(frozen=True)
class Migration:
    version: int
    name: str
    path: Path

    @property
    def checksum(self) -> str:
        return hashlib.sha256(self.path.read_bytes()).hexdigest()


@dataclass(frozen=True)
class SchemaStatus:
    current: int          # highest applied version (0: empty database)
    available: int        # highest version this code ships
    pending: tuple[int, ...]

    @property
    def newer_than_code(self) -> bool:
        return self.current > self.available


def schema_dir() -> Path:
    """schema/ at the repository root, or ICTCONTACT_SCHEMA_DIR."""
    override = os.environ.get("ICTCONTACT_SCHEMA_DIR")
    if override:
        return Path(override)
    return Path(__file__).resolve().parent.parent.parent / "schema"


def available_migrations(directory: Path | None = None) -> list[Migration]:
    directory = directory or schema_dir()
    found = []
    for path in sorted(directory.glob("*.sql")):
        match = FILE_PATTERN.match(path.name)
        if not match:
            raise SchemaError(f"schema file {path.name} is not named NNN_name.sql")
        found.append(Migration(int(match.group(1)), path.name, path))
    versions = [m.version for m in found]
    if len(set(versions)) != len(versions):
        raise SchemaError(f"two schema files share a version number in {directory}")
    if not found:
        raise SchemaError(f"no schema files in {directory}")
    return found


ER_BAD_DB_ERROR = 1049  # the database named in the URL does not exist yet


def applied_versions(engine: Engine) -> set[int]:
    try:
        conn = engine.connect()
    except OperationalError as exc:
        if exc.orig is not None and exc.orig.args and exc.orig.args[0] == ER_BAD_DB_ERROR:
            return set()  # no database yet: nothing applied (`db upgrade` creates it)
        raise
    with conn:
        try:
            rows = conn.execute(text("SELECT version FROM schema_migrations"))
        except ProgrammingError:  # table missing: an empty database
            return set()
        return {int(row[0]) for row in rows}


def status(engine: Engine, directory: Path | None = None) -> SchemaStatus:
    migrations = available_migrations(directory)
    applied = applied_versions(engine)
    return SchemaStatus(
        current=max(applied, default=0),
        available=migrations[-1].version,
        pending=tuple(m.version for m in migrations if m.version not in applied),
    )


def ensure_database(url: str) -> None:
    """CREATE DATABASE IF NOT EXISTS for the URL's database, utf8mb4."""
    name = database_name(url)
    engine = make_engine(server_url(url), pool_size=1)
    try:
        with engine.begin() as conn:
            quoted = conn.dialect.identifier_preparer.quote_identifier(name)
            conn.execute(text(f"CREATE DATABASE IF NOT EXISTS {quoted} "
                              "CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci"))
    finally:
        engine.dispose()


def upgrade(url: str, directory: Path | None = None) -> list[int]:
    """Create the database if needed and apply pending migrations; return what was applied.

    Raises SchemaError when the database is newer than the code.
    """
    ensure_database(url)
    engine = make_engine(url, pool_size=1)
    try:
        with engine.connect() as conn:
            got = conn.execute(text("SELECT GET_LOCK(:n, 60)"), {"n": LOCK_NAME}).scalar()
            if got != 1:
                raise SchemaError("another upgrade holds the schema lock; try again")
            try:
                return _apply_pending(conn, directory)
            finally:
                conn.execute(text("SELECT RELEASE_LOCK(:n)"), {"n": LOCK_NAME})
    finally:
        engine.dispose()


def _apply_pending(conn, directory: Path | None) -> list[int]:
    conn.execute(text(CREATE_MIGRATIONS_TABLE))
    conn.commit()
    migrations = available_migrations(directory)
    applied = {int(r[0]) for r in conn.execute(text("SELECT version FROM schema_migrations"))}
    newest = migrations[-1].version
    if applied and max(applied) > newest:
        raise SchemaError(f"database schema is at version {max(applied)}, newer than this "
                          f"code's {newest}: upgrade ictcontact instead")
    done = []
    for migration in migrations:
        if migration.version in applied:
            continue
        log.info("applying schema %s", migration.name)
        for statement in split_statements(migration.path.read_text(encoding="utf-8")):
            try:
                # Sent verbatim: text() would read ':word' as a bind parameter and double
                # every '%' (LIKE patterns, comments) for the pyformat driver.
                conn.exec_driver_sql(statement, execution_options={"no_parameters": True})
            except (OperationalError, ProgrammingError) as exc:
                raise SchemaError(f"{migration.name} failed: {exc.orig}") from exc
        conn.execute(text("INSERT INTO schema_migrations (version, name, checksum) "
                          "VALUES (:v, :n, :c)"),
                     {"v": migration.version, "n": migration.name, "c": migration.checksum})
        conn.commit()
        done.append(migration.version)
    return done


def require_current(engine: Engine, directory: Path | None = None) -> SchemaStatus:
    """Raise SchemaError (one line) unless the database is exactly at the code's version."""
    try:
        state = status(engine, directory)
    except OperationalError as exc:
        raise SchemaError(f"cannot read the schema version: {exc.orig}") from exc
    if state.newer_than_code:
        raise SchemaError(f"database schema is at version {state.current}, newer than this "
                          f"code's {state.available}: upgrade ictcontact")
    if state.pending:
        raise SchemaError(f"database schema is at version {state.current}, this code needs "
                          f"{state.available}: run `ictcontact db upgrade`")
    return state
