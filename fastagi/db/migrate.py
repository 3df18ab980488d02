"""Forward-only schema migrations: schema/NNN_name.sql applied in order, each recorded.

`schema_migrations` holds one row per applied file with its SHA-256. The code knows the
highest version it ships; a database above that is newer than the code and is refused,
never downgraded. A file changed after it was applied would never reach existing
databases, so `db upgrade` and `serve` refuse a database whose recorded checksums differ
from the files, naming the file.

One upgrade runs at a time. On a single server that is `GET_LOCK()`, released by the
server when the upgrading session ends, even by a crash. On a Galera cluster GET_LOCK is
local to one node, so there the lock is a row of `schema_upgrade_lock` taken with a
conditional INSERT: two upgrades on different nodes write the same row, one fails
certification and waits. That row is a lease, renewed before each migration, so an
upgrade that died holding it blocks others for at most LEASE_SECONDS.
"""

from __future__ import annotations

import hashlib
import logging
import os
import re
import socket
import time
import uuid
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import text
from sqlalchemy.engine import Engine
from sqlalchemy.exc import DBAPIError, OperationalError, ProgrammingError

from fastagi.db import galera
from fastagi.db.engine import database_name, make_engine, server_url
from fastagi.db.retry import mysql_errno
from fastagi.db.sqlscript import split_statements

log = logging.getLogger(__name__)

FILE_PATTERN = re.compile(r"^(\d{3})_([a-z0-9_]+)\.sql$")
LOCK_NAME = "ictcontact_schema_upgrade"
LOCK_WAIT_SECONDS = 60
LEASE_SECONDS = 900

CREATE_MIGRATIONS_TABLE = """
CREATE TABLE IF NOT EXISTS schema_migrations (
  version INT UNSIGNED NOT NULL PRIMARY KEY COMMENT 'Number of the applied schema/NNN_*.sql file',
  name VARCHAR(128) NOT NULL COMMENT 'File name of the migration',
  checksum CHAR(64) NOT NULL COMMENT 'SHA-256 of the file as applied',
  applied_at DATETIME NOT NULL DEFAULT CURRENT_TIMESTAMP COMMENT 'When it was applied (UTC)'
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci
  COMMENT='Schema version: one row per applied migration file (managed by ictcontact db upgrade)'
"""


CREATE_LOCK_TABLE = """
CREATE TABLE IF NOT EXISTS schema_upgrade_lock (
  id TINYINT UNSIGNED NOT NULL PRIMARY KEY COMMENT 'Always 1: one upgrade lock per database',
  holder VARCHAR(255) NOT NULL COMMENT 'The upgrade holding it: host, process and a random tag',
  taken_at DATETIME NOT NULL COMMENT 'When the holder took it (UTC)',
  expires_at DATETIME NOT NULL COMMENT 'When it lapses if the holder died (UTC); renewed before each migration'
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci
  COMMENT='Cluster-wide lock of ictcontact db upgrade on Galera, where GET_LOCK() is local to one node'
"""
# Takes the lock when it is free or lapsed, renews it when this holder has it; changes
# nothing otherwise. Assignments run left to right: once `holder` is ours, the others
# follow it. Two nodes running this at once write the same row: one fails certification.
_TAKE_LEASE = text(
    "INSERT INTO schema_upgrade_lock (id, holder, taken_at, expires_at)"
    " VALUES (1, :holder, UTC_TIMESTAMP(), UTC_TIMESTAMP() + INTERVAL :lease SECOND)"
    " ON DUPLICATE KEY UPDATE"
    " holder = IF(expires_at < UTC_TIMESTAMP(), VALUES(holder), holder),"
    " taken_at = IF(holder = VALUES(holder) AND expires_at < UTC_TIMESTAMP(),"
    "               VALUES(taken_at), taken_at),"
    " expires_at = IF(holder = VALUES(holder), VALUES(expires_at), expires_at)")
_LEASE_HOLDER = text("SELECT holder, expires_at FROM schema_upgrade_lock WHERE id = 1")
_RENEW_LEASE = text("UPDATE schema_upgrade_lock"
                    " SET expires_at = UTC_TIMESTAMP() + INTERVAL :lease SECOND"
                    " WHERE id = 1 AND holder = :holder")
_DROP_LEASE = text("DELETE FROM schema_upgrade_lock WHERE id = 1 AND holder = :holder")


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
    current: int          # highest applied version (0: empty or missing database)
    available: int        # highest version this code ships
    pending: tuple[int, ...]
    database_exists: bool = True  # False: the URL names a database not created yet

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
    found = _applied_or_missing(engine)
    return set() if found is None else found  # no database yet: nothing applied


def _applied_or_missing(engine: Engine) -> set[int] | None:
    """The applied versions; None when the database itself does not exist."""
    try:
        conn = engine.connect()
    except OperationalError as exc:
        if exc.orig is not None and exc.orig.args and exc.orig.args[0] == ER_BAD_DB_ERROR:
            return None
        raise
    with conn:
        try:
            rows = conn.execute(text("SELECT version FROM schema_migrations"))
        except ProgrammingError:  # table missing: an empty database
            return set()
        return {int(row[0]) for row in rows}


def checksum_mismatch(applied: dict[int, tuple[str, str]],
                      migrations: list[Migration]) -> str | None:
    """One line naming the first applied migration whose file changed (or vanished) since it
    was applied, or None. `applied` maps version -> (name, checksum) as recorded."""
    files = {m.version: m for m in migrations}
    for version in sorted(applied):
        name, recorded = applied[version]
        migration = files.get(version)
        if migration is None:
            if version <= migrations[-1].version:
                return (f"schema/{name} was applied to this database but is missing from "
                        f"{migrations[-1].path.parent}: restore it as released")
            continue  # newer than the code: refused separately
        if migration.checksum != recorded:
            return (f"schema/{migration.name} differs from the file applied to this database "
                    f"(checksum {recorded[:12]}): restore it as released and put the change "
                    "in a new numbered file")
    return None


def applied_checksums(conn) -> dict[int, tuple[str, str]]:
    return {int(r[0]): (r[1], r[2]) for r in conn.execute(
        text("SELECT version, name, checksum FROM schema_migrations"))}


def verify_checksums(engine: Engine, directory: Path | None = None) -> None:
    """Raise SchemaError (one line) if an applied migration's file changed since."""
    migrations = available_migrations(directory)
    try:
        conn = engine.connect()
    except OperationalError as exc:
        if exc.orig is not None and exc.orig.args and exc.orig.args[0] == ER_BAD_DB_ERROR:
            return  # no database yet: nothing applied
        raise
    with conn:
        try:
            applied = applied_checksums(conn)
        except ProgrammingError:  # no schema_migrations: nothing applied
            return
    mismatch = checksum_mismatch(applied, migrations)
    if mismatch:
        raise SchemaError(mismatch)


def status(engine: Engine, directory: Path | None = None) -> SchemaStatus:
    migrations = available_migrations(directory)
    found = _applied_or_missing(engine)
    applied = found or set()
    return SchemaStatus(
        current=max(applied, default=0),
        available=migrations[-1].version,
        pending=tuple(m.version for m in migrations if m.version not in applied),
        database_exists=found is not None,
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


def upgrade(url: str, directory: Path | None = None, timeout_s: int = 5) -> list[int]:
    """Create the database if needed and apply pending migrations; return what was applied.

    Raises SchemaError when the database is newer than the code. `timeout_s` bounds the
    connect and the pool wait; a statement may run as long as it needs.
    """
    ensure_database(url)
    # No statement timeout: an ALTER TABLE of a table with millions of rows runs for
    # minutes, and giving up its connection would leave a file half applied.
    engine = make_engine(url, pool_size=1, timeout_s=timeout_s, statement_timeout_s=None)
    try:
        with engine.connect() as conn:
            lock = _lease_lock if galera.is_galera(conn) else _server_lock
            with lock(conn) as renew:
                return _apply_pending(conn, directory, renew)
    finally:
        engine.dispose()


@contextmanager
def _server_lock(conn):
    """GET_LOCK for one server; yields the (no-op) renew callback."""
    got = conn.execute(text("SELECT GET_LOCK(:n, 0)"), {"n": LOCK_NAME}).scalar()
    if got != 1:
        _end_client_login_holding(conn, LOCK_NAME)
        got = conn.execute(text("SELECT GET_LOCK(:n, :wait)"),
                           {"n": LOCK_NAME, "wait": LOCK_WAIT_SECONDS}).scalar()
    conn.commit()
    if got != 1:
        raise SchemaError("another upgrade holds the schema lock; try again")
    try:
        yield lambda: None
    except BaseException:
        # The upgrade failed, maybe because the connection was lost: a release on it would
        # raise over the real error. A lost session has released its lock already.
        try:
            conn.rollback()
            conn.execute(text("SELECT RELEASE_LOCK(:n)"), {"n": LOCK_NAME})
            conn.commit()
        except Exception:
            log.debug("schema lock not released (connection gone, and the lock with it)",
                      exc_info=True)
        raise
    conn.execute(text("SELECT RELEASE_LOCK(:n)"), {"n": LOCK_NAME})
    conn.commit()


# Any account may take any named lock (MariaDB has no privilege on GET_LOCK). A session of
# a client database login (docs/tenant-logins.md: an account granted a `<db>_tenant_<role>`
# role, without admin option, and holding no global privilege) holding the upgrade lock is
# ended rather than waited for. The creator of the roles holds them with admin option: an
# operator's session is never ended.
_CLIENT_LOGIN_HOLDER = text(
    "SELECT p.id FROM information_schema.processlist p"
    " WHERE p.id = IS_USED_LOCK(:n)"
    " AND EXISTS (SELECT 1 FROM mysql.roles_mapping m WHERE m.User = p.user AND m.Admin_option = 'N'"
    "   AND (m.Role LIKE '%\\_tenant\\_admin' OR m.Role LIKE '%\\_tenant\\_supervisor'"
    "        OR m.Role LIKE '%\\_tenant\\_agent'))"
    " AND NOT EXISTS (SELECT 1 FROM mysql.roles_mapping m WHERE m.User = p.user AND m.Admin_option = 'Y')"
    " AND NOT EXISTS (SELECT 1 FROM mysql.global_priv g WHERE g.User = p.user"
    "   AND JSON_VALUE(g.Priv, '$.access') <> 0)")


def _end_client_login_holding(conn, name: str) -> None:
    holder = conn.execute(_CLIENT_LOGIN_HOLDER, {"n": name}).scalar()
    if holder is not None:
        log.warning("a client login's session (%s) held the named lock %s: ending it", holder, name)
        try:
            conn.execute(text(f"KILL CONNECTION {int(holder)}"))
        except OperationalError as exc:  # it ended meanwhile (1094)
            log.info("ending session %s: %s", holder, exc)


ER_LOCK_DEADLOCK = 1213  # on Galera also: another node wrote the lock row first
ER_DUP_ENTRY = 1062


@contextmanager
def _lease_lock(conn, lease_s: int = LEASE_SECONDS):
    """The lock row for a Galera cluster; yields a callback that renews the lease (raises
    SchemaError if it was lost). Waits up to LOCK_WAIT_SECONDS for another holder."""
    holder = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"[:255]
    params = {"holder": holder, "lease": lease_s}
    conn.execute(text(CREATE_LOCK_TABLE))
    conn.commit()
    deadline = time.monotonic() + LOCK_WAIT_SECONDS
    while True:
        try:
            conn.execute(_TAKE_LEASE, params)
            conn.commit()
        except OperationalError as exc:  # lost the race for the row on another node
            conn.rollback()
            if mysql_errno(exc) not in (ER_LOCK_DEADLOCK, ER_DUP_ENTRY):
                raise
        current = conn.execute(_LEASE_HOLDER).first()
        conn.commit()
        if current is not None and current.holder == holder:
            break
        if time.monotonic() > deadline:
            who = f" ({current.holder}, until {current.expires_at} UTC)" if current else ""
            raise SchemaError(f"another upgrade holds the schema lock{who}; try again")
        time.sleep(0.2)
    log.info("schema upgrade lock taken by %s", holder)

    def renew() -> None:
        renewed = conn.execute(_RENEW_LEASE, params).rowcount
        conn.commit()
        if renewed != 1:
            raise SchemaError("the schema upgrade lock lapsed while upgrading; run "
                              "`ictcontact db upgrade` again")
    try:
        yield renew
    finally:
        try:
            conn.rollback()
            conn.execute(_DROP_LEASE, params)
            conn.commit()
        except DBAPIError:  # the lease lapses by itself
            log.warning("could not release the schema upgrade lock of %s", holder)


SCHEMA_COLLATION = "utf8mb4_unicode_ci"
# A routine's text parameters and variables declared without a collation take the
# database's default when the routine is created; a database made by hand with
# `CREATE DATABASE x CHARACTER SET utf8mb4` (utf8mb4_general_ci) gave routines that fail with
# 1267 "Illegal mix of collations" against the schema's utf8mb4_unicode_ci columns.
# The schema name is a bound constant, not DATABASE(): information_schema pushes only a
# constant down, and with DATABASE() it opens every trigger file on the server.
_COLLATION_STATE = text(
    "SELECT DEFAULT_COLLATION_NAME AS database_collation,"
    " (SELECT COUNT(*) FROM information_schema.ROUTINES WHERE ROUTINE_SCHEMA = :db"
    "  AND DATABASE_COLLATION <> :wanted)"
    " + (SELECT COUNT(*) FROM information_schema.TRIGGERS WHERE TRIGGER_SCHEMA = :db"
    "  AND DATABASE_COLLATION <> :wanted) AS objects_off"
    " FROM information_schema.SCHEMATA WHERE SCHEMA_NAME = :db")


def _settle_database_collation(conn, anything_applied: bool) -> None:
    """Give a database with nothing applied yet the schema's default collation; refuse, in
    one line, one whose routines or triggers were already created with another."""
    name = conn.exec_driver_sql("SELECT DATABASE()").scalar()
    state = conn.execute(_COLLATION_STATE, {"db": name, "wanted": SCHEMA_COLLATION}).one()
    if state.database_collation == SCHEMA_COLLATION and not state.objects_off:
        return
    if anything_applied:
        raise SchemaError(
            f"database {name} has routines or triggers made under default collation "
            f"{state.database_collation}, not {SCHEMA_COLLATION} (they fail with error 1267): "
            "repair it as docs/admin-sql.md 'Database collation' says")
    quoted = conn.dialect.identifier_preparer.quote_identifier(name)
    conn.exec_driver_sql(f"ALTER DATABASE {quoted} CHARACTER SET utf8mb4 "
                         f"COLLATE {SCHEMA_COLLATION}")
    conn.commit()
    log.info("database %s had default collation %s: set it to %s before creating the schema",
             name, state.database_collation, SCHEMA_COLLATION)


def _apply_pending(conn, directory: Path | None, renew) -> list[int]:
    conn.execute(text(CREATE_MIGRATIONS_TABLE))
    conn.commit()
    migrations = available_migrations(directory)
    recorded = applied_checksums(conn)
    _settle_database_collation(conn, bool(recorded))
    applied = set(recorded)
    newest = migrations[-1].version
    if applied and max(applied) > newest:
        raise SchemaError(f"database schema is at version {max(applied)}, newer than this "
                          f"code's {newest}: upgrade ictcontact instead")
    mismatch = checksum_mismatch(recorded, migrations)
    if mismatch:
        raise SchemaError(mismatch)
    done = []
    for migration in migrations:
        if migration.version in applied:
            continue
        renew()
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
    try:
        verify_checksums(engine, directory)
    except OperationalError as exc:
        raise SchemaError(f"cannot read the schema version: {exc.orig}") from exc
    if state.pending:
        raise SchemaError(f"database schema is at version {state.current}, this code needs "
                          f"{state.available}: run `ictcontact db upgrade`")
    return state
