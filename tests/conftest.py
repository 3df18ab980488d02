"""Shared fixtures: every test that touches the database gets its own fresh database.

The server is the real MariaDB/MySQL named by ICT_TEST_SERVER (default: root on
127.0.0.1:3306). Each `db_url` is a new database with the whole schema applied, dropped
after the test, so tests never see each other's rows.
"""

from __future__ import annotations

import itertools
import os

import pytest
from sqlalchemy import text

from fastagi.db import migrate
from fastagi.db.engine import make_engine

SERVER_URL = os.environ.get("ICT_TEST_SERVER", "mysql+pymysql://root@127.0.0.1:3306")
_counter = itertools.count()


def fresh_database_name() -> str:
    return f"ict_test_{os.getpid()}_{next(_counter)}"


def drop_database(name: str) -> None:
    engine = make_engine(SERVER_URL + "/", pool_size=1)
    try:
        with engine.begin() as conn:
            conn.execute(text(f"DROP DATABASE IF EXISTS `{name}`"))
    finally:
        engine.dispose()


@pytest.fixture
def empty_db_url():
    """URL of a database name that does not exist yet (dropped after the test)."""
    name = fresh_database_name()
    drop_database(name)
    yield f"{SERVER_URL}/{name}"
    drop_database(name)


@pytest.fixture
def db_url(empty_db_url):
    """URL of a fresh database with the whole schema and seed applied."""
    migrate.upgrade(empty_db_url)
    return empty_db_url


@pytest.fixture
def engine(db_url):
    """An Engine on the test's own database (disposed after the test)."""
    eng = make_engine(db_url)
    yield eng
    eng.dispose()
