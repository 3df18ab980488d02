"""What the server says about one database, in a form two databases can be compared by.

`fingerprint(cursor, database)` reads information_schema (tables, columns, indexes,
constraints, foreign keys, CHECKs, triggers with their action order, views, routines and
their parameters, events), the server's own CREATE TABLE text, the privileges granted on
the database, and every row of every table. The database's name is replaced by
`<database>` everywhere, so two databases built the same way compare equal, and a view or
routine that still names another database does not.

Left out, because they say WHEN an object or row was made, not what it is: the CREATED /
LAST_ALTERED / LAST_EXECUTED times of routines, triggers and events, an event's STARTS
(a schema file's event starts when it is created), and the values of columns that default
to CURRENT_TIMESTAMP (only whether they are set).
"""

from __future__ import annotations

from tests.support.database import quote

PLACEHOLDER = "<database>"

_SECTIONS = {
    "database": "SELECT DEFAULT_CHARACTER_SET_NAME, DEFAULT_COLLATION_NAME"
                " FROM information_schema.SCHEMATA WHERE SCHEMA_NAME = %s",
    "tables": "SELECT TABLE_NAME, TABLE_TYPE, ENGINE, ROW_FORMAT, AUTO_INCREMENT,"
              " TABLE_COLLATION, CREATE_OPTIONS, TABLE_COMMENT FROM information_schema.TABLES"
              " WHERE TABLE_SCHEMA = %s",
    "columns": "SELECT TABLE_NAME, COLUMN_NAME, ORDINAL_POSITION, COLUMN_DEFAULT, IS_NULLABLE,"
               " COLUMN_TYPE, CHARACTER_SET_NAME, COLLATION_NAME, COLUMN_KEY, EXTRA,"
               " IS_GENERATED, GENERATION_EXPRESSION, COLUMN_COMMENT"
               " FROM information_schema.COLUMNS WHERE TABLE_SCHEMA = %s",
    "indexes": "SELECT TABLE_NAME, INDEX_NAME, SEQ_IN_INDEX, COLUMN_NAME, NON_UNIQUE, SUB_PART,"
               " NULLABLE, INDEX_TYPE, COMMENT, INDEX_COMMENT, IGNORED"
               " FROM information_schema.STATISTICS WHERE TABLE_SCHEMA = %s",
    "constraints": "SELECT TABLE_NAME, CONSTRAINT_NAME, CONSTRAINT_TYPE"
                   " FROM information_schema.TABLE_CONSTRAINTS WHERE CONSTRAINT_SCHEMA = %s",
    "foreign keys": "SELECT TABLE_NAME, CONSTRAINT_NAME, UNIQUE_CONSTRAINT_SCHEMA,"
                    " UNIQUE_CONSTRAINT_NAME, REFERENCED_TABLE_NAME, MATCH_OPTION,"
                    " UPDATE_RULE, DELETE_RULE FROM information_schema.REFERENTIAL_CONSTRAINTS"
                    " WHERE CONSTRAINT_SCHEMA = %s",
    "key columns": "SELECT TABLE_NAME, CONSTRAINT_NAME, COLUMN_NAME, ORDINAL_POSITION,"
                   " POSITION_IN_UNIQUE_CONSTRAINT, REFERENCED_TABLE_SCHEMA,"
                   " REFERENCED_TABLE_NAME, REFERENCED_COLUMN_NAME"
                   " FROM information_schema.KEY_COLUMN_USAGE WHERE TABLE_SCHEMA = %s",
    "checks": "SELECT TABLE_NAME, CONSTRAINT_NAME, LEVEL, CHECK_CLAUSE"
              " FROM information_schema.CHECK_CONSTRAINTS WHERE CONSTRAINT_SCHEMA = %s",
    "triggers": "SELECT EVENT_OBJECT_TABLE, ACTION_TIMING, EVENT_MANIPULATION, ACTION_ORDER,"
                " TRIGGER_NAME, ACTION_CONDITION, ACTION_STATEMENT, ACTION_ORIENTATION,"
                " SQL_MODE, DEFINER, CHARACTER_SET_CLIENT, COLLATION_CONNECTION,"
                " DATABASE_COLLATION FROM information_schema.TRIGGERS"
                " WHERE TRIGGER_SCHEMA = %s",
    "views": "SELECT TABLE_NAME, VIEW_DEFINITION, CHECK_OPTION, IS_UPDATABLE, DEFINER,"
             " SECURITY_TYPE, CHARACTER_SET_CLIENT, COLLATION_CONNECTION, ALGORITHM"
             " FROM information_schema.VIEWS WHERE TABLE_SCHEMA = %s",
    "routines": "SELECT ROUTINE_TYPE, SPECIFIC_NAME, DATA_TYPE, DTD_IDENTIFIER, ROUTINE_BODY,"
                " ROUTINE_DEFINITION, IS_DETERMINISTIC, SQL_DATA_ACCESS, SECURITY_TYPE,"
                " SQL_MODE, ROUTINE_COMMENT, DEFINER, CHARACTER_SET_CLIENT,"
                " COLLATION_CONNECTION, DATABASE_COLLATION FROM information_schema.ROUTINES"
                " WHERE ROUTINE_SCHEMA = %s",
    "parameters": "SELECT SPECIFIC_NAME, ROUTINE_TYPE, ORDINAL_POSITION, PARAMETER_MODE,"
                  " PARAMETER_NAME, DTD_IDENTIFIER FROM information_schema.PARAMETERS"
                  " WHERE SPECIFIC_SCHEMA = %s",
    "events": "SELECT EVENT_NAME, DEFINER, TIME_ZONE, EVENT_BODY, EVENT_DEFINITION, EVENT_TYPE,"
              " EXECUTE_AT, INTERVAL_VALUE, INTERVAL_FIELD, SQL_MODE, ENDS, STATUS,"
              " ON_COMPLETION, EVENT_COMMENT, ORIGINATOR, CHARACTER_SET_CLIENT,"
              " COLLATION_CONNECTION, DATABASE_COLLATION FROM information_schema.EVENTS"
              " WHERE EVENT_SCHEMA = %s",
    "grants": "SELECT 'db', Host, User, Db FROM mysql.db WHERE Db = %(db)s UNION ALL"
              " SELECT 'table', Host, User, Table_name FROM mysql.tables_priv WHERE Db = %(db)s"
              " UNION ALL SELECT 'routine', Host, User, Routine_name FROM mysql.procs_priv"
              " WHERE Db = %(db)s",
}


def fingerprint(cursor, database: str) -> dict[str, list]:
    """Section name -> sorted rows, with `database` written as PLACEHOLDER."""
    found = {}
    for section, query in _SECTIONS.items():
        cursor.execute(query, {"db": database} if "%(db)s" in query else (database,))
        found[section] = _sorted(cursor.fetchall(), database)
    cursor.execute("SELECT TABLE_NAME FROM information_schema.TABLES"
                   " WHERE TABLE_SCHEMA = %s AND TABLE_TYPE = 'BASE TABLE' ORDER BY 1",
                   (database,))
    tables = [row[0] for row in cursor.fetchall()]
    found["create table"] = []
    for table in tables:
        cursor.execute(f"SHOW CREATE TABLE {quote(database)}.{quote(table)}")
        found["create table"].append(_normal(cursor.fetchone()[1], database))
        found[f"rows of {table}"] = _rows(cursor, database, table)
    return found


def differences(expected: dict[str, list], actual: dict[str, list]) -> list[str]:
    """One line per section that differs, naming rows missing from or extra in `actual`."""
    lines = []
    for section in sorted(set(expected) | set(actual)):
        want, got = expected.get(section), actual.get(section)
        if want == got:
            continue
        if want is None or got is None:
            lines.append(f"{section}: only in {'actual' if want is None else 'expected'}")
            continue
        missing = [row for row in want if row not in got]
        extra = [row for row in got if row not in want]
        lines.append(f"{section}: missing {missing[:3]} extra {extra[:3]}"
                     if missing or extra else f"{section}: same rows, other order")
    return lines


# Columns a database gets a new value of whenever it is made (like a creation time).
FRESH_EACH_TIME = {("route_table_version", "version")}   # a UUID (schema 116)


def _rows(cursor, database: str, table: str) -> list:
    cursor.execute("SELECT COLUMN_NAME, COLUMN_DEFAULT FROM information_schema.COLUMNS"
                   " WHERE TABLE_SCHEMA = %s AND TABLE_NAME = %s ORDER BY ORDINAL_POSITION",
                   (database, table))
    columns = cursor.fetchall()
    when_written = [i for i, (name, default) in enumerate(columns)
                    if (default or "").lower().startswith("current_timestamp")
                    or (table, name) in FRESH_EACH_TIME]
    cursor.execute(f"SELECT * FROM {quote(database)}.{quote(table)}")
    rows = []
    for row in cursor.fetchall():
        row = list(row)
        for i in when_written:
            row[i] = "<set>" if row[i] is not None else None
        rows.append(row)
    return _sorted(rows, database)


def _sorted(rows, database: str) -> list:
    return sorted((tuple(_normal(value, database) for value in row) for row in rows), key=repr)


def _normal(value, database: str):
    if isinstance(value, bytes):
        value = value.decode("utf-8", "backslashreplace")
    if isinstance(value, str):
        return value.replace(database, PLACEHOLDER)
    return value
