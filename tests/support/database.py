"""Test databases: names, the migrated template, and fast clones of it.

Running the 39 schema files costs seconds per database (ALTER TABLEs rebuild tables, each
statement commits). So each pytest process migrates ONE template database
(`ict_test_<pid>_template`), reads it back once as a `SchemaSnapshot`, and every test gets
a new database built by replaying that snapshot: the CREATE statements the server itself
prints (SHOW CREATE ...), in dependency order, with the template's name removed, plus a
copy of its rows. A clone is a database of its own, so a test may alter, lock or break
anything in it without touching the next test.

What a clone keeps, as a fresh migrate would have it (tests/schema/test_template_clone.py
proves it): tables with their columns, indexes, foreign keys, CHECKs, comments and
AUTO_INCREMENT counters; every row; views; procedures and functions; triggers in their
firing order; events; each routine's, trigger's and event's DEFINER, sql_mode and
character set. Order matters: rows are copied before the triggers exist (the template's
rows already hold what its triggers wrote), routines come before the views that may call
them, and a view after the views it reads.
"""

from __future__ import annotations

import itertools
import os
import queue
import re
import threading
from dataclasses import dataclass
from pathlib import Path

import pymysql
from sqlalchemy.engine import make_url

from fastagi.db import migrate

SERVER_URL = os.environ.get("ICT_TEST_SERVER", "mysql+pymysql://root@127.0.0.1:3306")
_counter = itertools.count()


def fresh_database_name() -> str:
    """`ict_test_<pid>_<n>`: unique on the server while this process runs (tests derive
    account names from it, see tests/tenant/helpers.prefix_for)."""
    return f"ict_test_{os.getpid()}_{next(_counter)}"


def template_database_name() -> str:
    return f"ict_test_{os.getpid()}_template"


def url_for(name: str) -> str:
    return f"{SERVER_URL}/{name}"


def connect_server() -> pymysql.connections.Connection:
    """A root session on the test server, autocommit, UTC, like fastagi.db.engine's."""
    url = make_url(SERVER_URL)
    return pymysql.connect(host=url.host or "127.0.0.1", port=url.port or 3306,
                           user=url.username or "root", password=url.password or "",
                           charset="utf8mb4", autocommit=True, connect_timeout=10,
                           read_timeout=120, init_command="SET time_zone = '+00:00'")


def drop_database(name: str) -> None:
    connection = connect_server()
    try:
        with connection.cursor() as cursor:
            drop_with(cursor, name)
    finally:
        connection.close()


# MariaDB 10.11 sometimes leaves a trigger file's crash-safety backup (<table>.TRG-,
# <trigger>.TRN-) in a database directory, seen when a DROP DATABASE ran while that
# database's event was running; the DROP then fails with 1010 "Directory not empty" and
# every later DROP too. Stopping the events first avoids the race; the leftovers of a
# server on this machine are removed and the DROP repeated.
STRAY_DDL_BACKUPS = ("*.TRG-", "*.TRN-")


def drop_with(cursor, name: str) -> None:
    """DROP DATABASE `name` (if it exists), its events stopped first."""
    cursor.execute("SELECT event_name FROM information_schema.events WHERE event_schema = %s",
                   (name,))
    for (event,) in cursor.fetchall():
        try:
            cursor.execute(f"ALTER EVENT {quote(name)}.{quote(event)} DISABLE")
        except pymysql.MySQLError:
            pass  # half-dropped already: the DROP below says what is wrong
    try:
        cursor.execute(f"DROP DATABASE IF EXISTS {quote(name)}")
    except pymysql.err.OperationalError as exc:
        if exc.args[0] != 1010:
            raise
        cursor.execute("SELECT @@datadir")
        folder = Path(cursor.fetchone()[0]) / name
        if not folder.is_dir():
            raise
        for pattern in STRAY_DDL_BACKUPS:
            for leftover in folder.glob(pattern):
                leftover.unlink(missing_ok=True)
        cursor.execute(f"DROP DATABASE IF EXISTS {quote(name)}")


def quote(identifier: str) -> str:
    return "`" + identifier.replace("`", "``") + "`"


# The server is shared: another run may stall or kill a session of ours. Making the
# template or a clone again after a lost connection keeps that from failing the tests
# (the template's failure would fail all of them); any other error is the test's.
RETRIES = 2
LOST_CONNECTION = {2006, 2013}  # server has gone away; lost connection during query


def lost_connection(exc: BaseException | None) -> bool:
    """Whether `exc`, or an error it was raised from or while handling, lost the
    connection to the server."""
    while exc is not None:
        if isinstance(exc, pymysql.err.OperationalError) and exc.args \
                and exc.args[0] in LOST_CONNECTION:
            return True
        exc = exc.__cause__ or exc.__context__ or getattr(exc, "orig", None)
    return False


def migrate_template(name: str) -> None:
    """`name` dropped and migrated from schema/ (again after a lost connection)."""
    for attempt in range(RETRIES + 1):
        drop_database(name)
        try:
            migrate.upgrade(url_for(name))
            return
        except Exception as exc:
            if attempt == RETRIES or not lost_connection(exc):
                raise


class CloneSupply:
    """Clones of a snapshot made AHEAD of the tests by worker threads, which also drop the
    databases tests are done with. Creating a table or trigger waits mostly on the
    disk (each DDL is made durable), so the next test's database is built while the current
    test runs; a test only waits when tests finish faster than clones are made."""

    def __init__(self, snapshot: SchemaSnapshot, ahead: int = 2, workers: int = 2,
                 timeout_s: float = 300):
        self.snapshot = snapshot
        self.timeout_s = timeout_s
        self._ready: queue.Queue = queue.Queue()   # a database name, or the error raised
        self._jobs: queue.Queue = queue.Queue()    # ("clone", retries) | ("drop", name) | None
        self._made: set[str] = set()               # made and not dropped yet
        self._closing = False
        # Two workers: while one waits for the disk, the other's statements run.
        self._threads = [threading.Thread(target=self._work, daemon=True,
                                          name=f"test-database-clones-{n}")
                         for n in range(workers)]
        for thread in self._threads:
            thread.start()
        for _ in range(ahead):
            self._jobs.put(("clone", RETRIES))

    def take(self) -> str:
        """The name of a new clone no one else has seen (orders its replacement first)."""
        self._jobs.put(("clone", RETRIES))
        try:
            made = self._ready.get(timeout=self.timeout_s)
        except queue.Empty:
            raise RuntimeError(f"no test database was cloned within {self.timeout_s} s "
                               "(is the server stuck on a DROP DATABASE?)") from None
        if isinstance(made, BaseException):
            raise RuntimeError(f"cloning the template database failed: {made!r}") from made
        return made

    def give_back(self, name: str) -> None:
        """Drop `name` soon, in the worker (the test is done with it)."""
        self._jobs.put(("drop", name))

    def close(self) -> None:
        """Drop the clones made ahead and every database given back; stop the workers."""
        self._closing = True  # clones still ordered are not made
        for thread in self._threads:
            self._jobs.put(None)
        for thread in self._threads:
            thread.join()
        for name in sorted(self._made):
            drop_database(name)

    def _work(self) -> None:
        connection = None
        while (job := self._jobs.get()) is not None:
            kind, argument = job
            if kind == "clone" and self._closing:
                continue
            try:
                if connection is None:
                    connection = connect_server()
                with connection.cursor() as cursor:
                    if kind == "clone":
                        name = fresh_database_name()
                        self._made.add(name)
                        self.snapshot.clone_into(cursor, name)
                        self._ready.put(name)
                    else:
                        drop_with(cursor, argument)
                        self._made.discard(argument)
            except Exception as exc:  # handed to the waiting test; drops are retried by close
                if connection is not None:
                    connection.close()
                connection = None
                if kind == "clone" and argument and lost_connection(exc):
                    self._jobs.put(("clone", argument - 1))  # the half-made one: by close
                elif kind == "clone":
                    self._ready.put(exc)
        if connection is not None:
            connection.close()


@dataclass(frozen=True)
class Stored:
    """A CREATE of a stored program and the session settings it was created under (the
    server records them with it and runs the program under them)."""
    sql: str
    sql_mode: str
    character_set_client: str
    collation_connection: str
    time_zone: str | None = None  # events only


@dataclass(frozen=True)
class SeedTable:
    name: str
    columns: tuple[str, ...]  # generated columns left out: the server computes them


@dataclass(frozen=True)
class SchemaSnapshot:
    """Everything `clone_into` needs to rebuild `source` under another name."""
    source: str
    charset: str
    collation: str
    tables: tuple[str, ...]
    seed: tuple[SeedTable, ...]
    routines: tuple[Stored, ...]
    views: tuple[str, ...]
    triggers: tuple[Stored, ...]
    events: tuple[Stored, ...]

    @classmethod
    def take(cls, cursor, source: str) -> SchemaSnapshot:
        """Read `source` (which must stay in place: clones copy its rows)."""
        qualifier = quote(source) + "."
        cursor.execute("SELECT DEFAULT_CHARACTER_SET_NAME, DEFAULT_COLLATION_NAME"
                       " FROM information_schema.SCHEMATA WHERE SCHEMA_NAME = %s", (source,))
        charset, collation = cursor.fetchone()
        tables = _names(cursor, "SELECT TABLE_NAME FROM information_schema.TABLES WHERE"
                        " TABLE_SCHEMA = %s AND TABLE_TYPE = 'BASE TABLE' ORDER BY 1", source)
        creates = tuple(_show(cursor, "TABLE", source, t)[1] for t in tables)
        seed = tuple(SeedTable(t, _copied_columns(cursor, source, t))
                     for t in tables if _has_rows(cursor, source, t))
        routines = tuple(_stored(cursor, kind, source, name, sql_at=2)
                         for kind, name in _pairs(cursor, source))
        views = _views_in_dependency_order(cursor, source, qualifier)
        triggers = tuple(_stored(cursor, "TRIGGER", source, name, sql_at=2)
                         for name in _names(cursor, _TRIGGERS_IN_FIRING_ORDER, source))
        events = tuple(_event(cursor, source, name) for name in _names(
            cursor, "SELECT EVENT_NAME FROM information_schema.EVENTS"
            " WHERE EVENT_SCHEMA = %s ORDER BY 1", source))
        snapshot = cls(source, charset, collation, creates, seed, routines, views,
                       triggers, events)
        snapshot._check_names_no_source(qualifier)
        return snapshot

    def clone_into(self, cursor, target: str) -> None:
        """Create database `target` as a copy of the source (it must not exist)."""
        cursor.execute(f"CREATE DATABASE {quote(target)} CHARACTER SET {self.charset}"
                       f" COLLATE {self.collation}")
        cursor.execute(f"USE {quote(target)}")
        cursor.execute(_SAVE_SESSION)
        # Tables reference each other in both directions: create them all, then check.
        cursor.execute("SET SESSION foreign_key_checks = 0")
        try:
            for create in self.tables:
                cursor.execute(create)
            for table in self.seed:
                columns = ", ".join(quote(c) for c in table.columns)
                cursor.execute(f"INSERT INTO {quote(table.name)} ({columns}) SELECT {columns}"
                               f" FROM {quote(self.source)}.{quote(table.name)}")
        finally:
            cursor.execute("SET SESSION foreign_key_checks = @saved_fk")
        for routine in self.routines:
            _create_stored(cursor, routine)
        for view in self.views:
            cursor.execute(view)
        for trigger in self.triggers:
            _create_stored(cursor, trigger)
        for event in self.events:
            _create_stored(cursor, event)
        cursor.execute(_RESTORE_SESSION)

    def _check_names_no_source(self, qualifier: str) -> None:
        """A clone must never read or write the template: no statement may name it."""
        texts = [*self.tables, *self.views,
                 *(s.sql for s in (*self.routines, *self.triggers, *self.events))]
        leaking = [sql[:80] for sql in texts if self.source in sql]
        if leaking:
            raise RuntimeError(f"statements still name the template {qualifier}: {leaking}")


_SAVE_SESSION = (
    "SET @saved_mode = @@SESSION.sql_mode, @saved_fk = @@SESSION.foreign_key_checks,"
    " @saved_cs = @@SESSION.character_set_client,"
    " @saved_coll = @@SESSION.collation_connection, @saved_tz = @@SESSION.time_zone")
_RESTORE_SESSION = (
    "SET SESSION sql_mode = @saved_mode, character_set_client = @saved_cs,"
    " collation_connection = @saved_coll, time_zone = @saved_tz")
_TRIGGERS_IN_FIRING_ORDER = (
    "SELECT TRIGGER_NAME FROM information_schema.TRIGGERS WHERE TRIGGER_SCHEMA = %s"
    " ORDER BY EVENT_OBJECT_TABLE, ACTION_TIMING, EVENT_MANIPULATION, ACTION_ORDER")
# A trigger created after its siblings fires after them: creating them in ACTION_ORDER
# rebuilds the order the schema files set with FOLLOWS/PRECEDES.


def _names(cursor, query: str, source: str) -> list[str]:
    cursor.execute(query, (source,))
    return [row[0] for row in cursor.fetchall()]


def _pairs(cursor, source: str) -> list[tuple[str, str]]:
    cursor.execute("SELECT ROUTINE_TYPE, ROUTINE_NAME FROM information_schema.ROUTINES"
                   " WHERE ROUTINE_SCHEMA = %s ORDER BY 1, 2", (source,))
    return list(cursor.fetchall())


def _show(cursor, kind: str, source: str, name: str) -> tuple:
    cursor.execute(f"SHOW CREATE {kind} {quote(source)}.{quote(name)}")
    return cursor.fetchone()


def _stored(cursor, kind: str, source: str, name: str, sql_at: int) -> Stored:
    # SHOW CREATE PROCEDURE/FUNCTION/TRIGGER: name, sql_mode, statement,
    # character_set_client, collation_connection, database collation
    row = _show(cursor, kind, source, name)
    return Stored(row[sql_at], row[1], row[3], row[4])


_STARTS = re.compile(r" STARTS '[^']*'")


def _event(cursor, source: str, name: str) -> Stored:
    # SHOW CREATE EVENT: name, sql_mode, time_zone, statement, charset, collation, db collation
    row = _show(cursor, "EVENT", source, name)
    # The schema files start their events when they are created; so does a clone's.
    return Stored(_STARTS.sub("", row[3], count=1), row[1], row[4], row[5], time_zone=row[2])


def _create_stored(cursor, stored: Stored) -> None:
    cursor.execute("SET SESSION sql_mode = %s, character_set_client = %s,"
                   " collation_connection = %s",
                   (stored.sql_mode, stored.character_set_client, stored.collation_connection))
    if stored.time_zone is not None:
        cursor.execute("SET SESSION time_zone = %s", (stored.time_zone,))
    cursor.execute(stored.sql)


def _has_rows(cursor, source: str, table: str) -> bool:
    cursor.execute(f"SELECT EXISTS (SELECT 1 FROM {quote(source)}.{quote(table)})")
    return bool(cursor.fetchone()[0])


def _copied_columns(cursor, source: str, table: str) -> tuple[str, ...]:
    cursor.execute("SELECT COLUMN_NAME FROM information_schema.COLUMNS"
                   " WHERE TABLE_SCHEMA = %s AND TABLE_NAME = %s AND IS_GENERATED = 'NEVER'"
                   " ORDER BY ORDINAL_POSITION", (source, table))
    return tuple(row[0] for row in cursor.fetchall())


def _views_in_dependency_order(cursor, source: str, qualifier: str) -> tuple[str, ...]:
    """CREATE VIEW statements, each after the views it reads. The server prints every
    name qualified with the database (`db`.`t`); the qualifier is removed so the view
    reads the clone's own tables."""
    names = _names(cursor, "SELECT TABLE_NAME FROM information_schema.VIEWS"
                   " WHERE TABLE_SCHEMA = %s ORDER BY 1", source)
    creates = {name: _show(cursor, "VIEW", source, name)[1].replace(qualifier, "")
               for name in names}
    reads = {name: {other for other in names if other != name
                    and f"{qualifier}{quote(other)}" in _show(cursor, "VIEW", source, name)[1]}
             for name in names}
    ordered: list[str] = []
    while len(ordered) < len(names):
        ready = [n for n in names if n not in ordered and reads[n] <= set(ordered)]
        if not ready:
            raise RuntimeError(f"views read each other in a circle: {sorted(reads)}")
        ordered += ready
    return tuple(creates[name] for name in ordered)
