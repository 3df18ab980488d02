"""A test's database (`db_url`, a clone of the session's template) is what a fresh
`ictcontact db upgrade` makes: the comparison covers every table, column, index, key,
CHECK, trigger (with its firing order), view, routine, event, grant and row. Each way a
clone could fall short is then made on purpose, and the comparison must see it."""

from __future__ import annotations

import pymysql
import pytest
from sqlalchemy.engine import make_url
from sqlalchemy.exc import OperationalError, ProgrammingError

from fastagi.db import migrate
from tests.support.database import (connect_server, lost_connection, quote,
                                    template_database_name)
from tests.support.fingerprint import differences, fingerprint


@pytest.fixture
def cursor():
    connection = connect_server()
    try:
        with connection.cursor() as cur:
            yield cur
    finally:
        connection.close()


def name_of(url: str) -> str:
    return make_url(url).database


def test_a_clone_equals_a_fresh_migrate(empty_db_url, db_url, cursor):
    migrate.upgrade(empty_db_url)
    fresh = fingerprint(cursor, name_of(empty_db_url))
    clone = fingerprint(cursor, name_of(db_url))
    assert differences(fresh, clone) == []
    # The comparison has something to compare: the schema files' objects and seed rows.
    assert len(fresh["tables"]) > 30 and len(fresh["triggers"]) > 40
    assert fresh["events"] and fresh["routines"] and fresh["checks"] and fresh["foreign keys"]
    assert fresh["rows of rate_plans"] and fresh["rows of schema_migrations"]
    # every slot holds one trigger since 147-149 (tests/schema/test_snapshot.py checks it)
    assert all(row[3] == 1 for row in fresh["triggers"])


def test_rows_written_in_a_clone_stay_in_it(db_url, cursor):
    cursor.execute(f"INSERT INTO {quote(name_of(db_url))}.rate_plans (name) VALUES ('mine')")
    cursor.execute(f"SELECT name FROM {quote(template_database_name())}.rate_plans")
    assert "mine" not in {name for (name,) in cursor.fetchall()}


def change_a_trigger_body(cursor) -> None:
    """Re-create a trigger under its own name with another body (its refusal text)."""
    cursor.execute("SHOW CREATE TRIGGER payments_before_update")
    create = cursor.fetchone()[2]
    cursor.execute("DROP TRIGGER payments_before_update")
    cursor.execute(create.replace("payments are never changed", "payments do not change"))


def view_reading_the_template(cursor) -> None:
    cursor.execute(f"CREATE OR REPLACE VIEW client_list AS SELECT code FROM "
                   f"{quote(template_database_name())}.clients")


SHORTFALLS = {
    "a trigger missing": ("triggers", "DROP TRIGGER calls_after_insert"),
    "a trigger with another body": ("triggers", change_a_trigger_body),
    "a seed row missing": ("rows of tenant_privileges",
                           "DELETE FROM tenant_privileges LIMIT 1"),
    "an AUTO_INCREMENT start moved": ("tables", "ALTER TABLE calls AUTO_INCREMENT = 50"),
    "the event missing": ("events", "DROP EVENT db_login_sync"),
    "the event disabled": ("events", "ALTER EVENT db_login_sync DISABLE"),
    "a view reading the template": ("views", view_reading_the_template),
    "a procedure missing": ("routines", "DROP PROCEDURE add_payment"),
    "a foreign key missing": ("foreign keys", "ALTER TABLE rates DROP FOREIGN KEY fk_rates_rate_plan"),
    "a CHECK missing": ("checks", "ALTER TABLE rates DROP CONSTRAINT ck_rates_fee_not_negative"),
    "an index more": ("indexes", "ALTER TABLE calls ADD INDEX extra_probe (number)"),
    "a column comment lost": ("columns",
                                 "ALTER TABLE rates MODIFY prefix VARCHAR(32) NOT NULL"),
    "a grant on the database": ("grants", "GRANT SELECT ON {db}.* TO CURRENT_USER"),
}


@pytest.mark.parametrize("shortfall", SHORTFALLS, ids=list(SHORTFALLS))
def test_the_comparison_sees_each_way_a_clone_could_fall_short(shortfall, db_url, cursor):
    section, change = SHORTFALLS[shortfall]
    database = name_of(db_url)
    cursor.execute(f"USE {quote(database)}")
    before = fingerprint(cursor, database)
    try:
        if callable(change):
            change(cursor)
        else:
            cursor.execute(change.format(db=quote(database)))
        found = differences(before, fingerprint(cursor, database))
    finally:
        if section == "grants":
            cursor.execute(f"REVOKE SELECT ON {quote(database)}.* FROM CURRENT_USER")
    assert any(line.startswith(section + ":") for line in found), found


def raised_from(orig: Exception) -> Exception:
    """A SchemaError raised from SQLAlchemy's error for `orig`, as migrate raises it."""
    wrapped = (OperationalError if isinstance(orig, pymysql.err.OperationalError)
               else ProgrammingError)("CREATE TABLE t", {}, orig)
    try:
        try:
            raise wrapped
        except Exception as exc:
            raise migrate.SchemaError("002_clients.sql failed") from exc
    except migrate.SchemaError as error:
        return error


def test_only_a_lost_connection_makes_the_template_or_a_clone_again():
    assert lost_connection(raised_from(pymysql.err.OperationalError(2013, "Lost connection")))
    assert lost_connection(raised_from(pymysql.err.OperationalError(2006, "gone away")))
    assert not lost_connection(raised_from(pymysql.err.ProgrammingError(1064, "syntax")))
    assert not lost_connection(raised_from(pymysql.err.OperationalError(1205, "lock wait")))
