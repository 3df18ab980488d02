"""Shared fixtures: every test that touches the database gets its own fresh database.

The server is the real MariaDB/MySQL named by ICT_TEST_SERVER (default: root on
127.0.0.1:3306). Layout of the suite:

- tests/<area>/test_*.py: the tests, one folder per area of fastagi/.
- tests/support/: helpers shared by tests (databases, waiting, SQL one-liners, chats);
  tests/builders.py: typed builders for fixture rows. A test module never imports from
  another test module.

Database fixtures (each database is `ict_test_<pid>_<n>`, dropped after the test):

- `db_url`: a database with the whole schema and seed, as `ictcontact db upgrade` leaves
  it. Built by cloning this process's template database (`ict_test_<pid>_template`,
  migrated once per session, see tests/support/database.py), not by running the schema
  files again: seconds saved per test, same tables, rows, views, routines, triggers and
  events (tests/schema/test_template_clone.py proves the clone equals a fresh migrate).
- `engine`: an Engine on `db_url`.
- `empty_db_url`: a name with no database yet, for tests of the migrations themselves.
"""

from __future__ import annotations

import pytest

from fastagi.db.engine import make_engine
from fastagi.store import route_table
from tests.support.database import (CloneSupply, SchemaSnapshot, connect_server, drop_database,
                                    fresh_database_name, migrate_template,
                                    template_database_name, url_for)


@pytest.fixture(scope="session")
def template_clones():
    """This process's migrated template and the worker that clones it (session-long)."""
    template = template_database_name()
    try:
        migrate_template(template)
        connection = connect_server()
        try:
            with connection.cursor() as cursor:
                snapshot = SchemaSnapshot.take(cursor, template)
        finally:
            connection.close()
        supply = CloneSupply(snapshot)
        try:
            yield supply
        finally:
            supply.close()
    finally:
        drop_database(template)


@pytest.fixture
def empty_db_url():
    """URL of a database name that does not exist yet (dropped after the test)."""
    name = fresh_database_name()
    drop_database(name)
    yield url_for(name)
    drop_database(name)


@pytest.fixture
def db_url(template_clones):
    """URL of a fresh database with the whole schema and seed applied."""
    name = template_clones.take()
    try:
        yield url_for(name)
    finally:
        template_clones.give_back(name)


@pytest.fixture
def engine(db_url):
    """An Engine on the test's own database (disposed after the test)."""
    eng = make_engine(db_url)
    yield eng
    route_table.forget(eng)   # waits for a copy of its route table being made
    eng.dispose()
