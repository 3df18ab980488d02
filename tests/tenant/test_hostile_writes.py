"""A hostile client's writes: statements and session settings that used to reach another
client's rows or skip the schema's checks (schema 100). Every refusal is checked, and so is
that nothing changed: the checksum of every product table with its AUTO_INCREMENT, and
every login's grants and account record, before and after (helpers.checksums)."""

from __future__ import annotations

from dataclasses import dataclass

import pymysql
import pytest
from sqlalchemy import text

from tests.tenant.helpers import assert_unchanged, checksums, error_code, execute, query

SIGNAL = 1644
FOREIGN_KEY = 1452
CHECK_OPTION = 1369      # CHECK OPTION failed
NO_DEFAULT = 1423        # LOAD DATA / INSERT ... SELECT through a view missing NOT NULL columns

OTHERS_ROW = "belongs to someone else"
CHECKS_ON = "writes with every check on"
NO_IDS = "does not choose row ids"
CLOCK = "the server's clock and replication"
EMPTY_ENUM = "not an empty string"


@pytest.fixture
def rows(world):
    """Spare rows of client A to update and delete, and a user of client B without a
    database login (nothing else would stop a REPLACE from deleting it)."""
    a, b = world.clients["a"], world.clients["b"]
    with world.engine.begin() as conn:
        def insert(sql, **params):
            return conn.execute(text(sql), params).lastrowid
        ids = {
            "a_campaign": a.campaign_id, "a_contact": a.contact_id, "a_extension": a.extension_id,
            "b_campaign": b.campaign_id, "b_agent": b.agent_id, "b_contact": b.contact_id,
            "a_spare_campaign": insert("INSERT INTO campaigns (client_id, name) VALUES (:c, 'spare')", c=a.id),
            "a_spare_agent": insert("INSERT INTO agents (client_id, name) VALUES (:c, 'spare')", c=a.id),
            "a_spare_user": insert("INSERT INTO users (client_id, username, role) VALUES (:c, :u, 'agent')",
                                   c=a.id, u=f"spare-{a.code}"),
            "a_spare_extension": insert("INSERT INTO extensions (client_id, exten, sip_password)"
                                        " VALUES (:c, '1996', 'spare-secret')", c=a.id),
            "a_queue": insert("INSERT INTO queues (client_id, name) VALUES (:c, 'spare')", c=a.id),
            "a_dnc": insert("INSERT INTO do_not_call (client_id, phone) VALUES (:c, '442070000009')", c=a.id),
            "b_plain_user": insert("INSERT INTO users (client_id, username, role) VALUES (:c, :u, 'agent')",
                                   c=b.id, u=f"plain-{b.code}"),
        }
    ids["b_plain_username"] = f"plain-{b.code}"
    ids["prefix"] = world.prefix
    return ids


# One write of each kind on every writable view, as client A's admin (admin has every
# write a supervisor has). {…} are ids of the `rows` fixture.
WRITES = {
    "campaigns": ("INSERT INTO campaigns (name) VALUES ('hostile')",
                  "UPDATE campaigns SET name = 'hostile-2' WHERE id = {a_spare_campaign}",
                  "DELETE FROM campaigns WHERE id = {a_spare_campaign}"),
    "contacts": ("INSERT INTO contacts (campaign_id, phone) VALUES ({a_campaign}, '442079999999')",
                 "UPDATE contacts SET first_name = 'hostile' WHERE id = {a_contact}",
                 "DELETE FROM contacts WHERE id = {a_contact}"),
    "agents": ("INSERT INTO agents (name) VALUES ('hostile')",
               "UPDATE agents SET name = 'hostile-2' WHERE id = {a_spare_agent}",
               "DELETE FROM agents WHERE id = {a_spare_agent}"),
    "extensions": ("INSERT INTO extensions (exten, sip_password) VALUES ('1998', 'hostile-secret')",
                   "UPDATE extensions SET callerid = 'hostile' WHERE id = {a_extension}",
                   "DELETE FROM extensions WHERE id = {a_spare_extension}"),
    "users": ("INSERT INTO users (username, role) VALUES ('hostile-{prefix}', 'agent')",
              "UPDATE users SET status = 'disabled' WHERE id = {a_spare_user}",
              "DELETE FROM users WHERE id = {a_spare_user}"),
    "queues": ("INSERT INTO queues (name) VALUES ('hostile')",
               "UPDATE queues SET description = 'hostile' WHERE id = {a_queue}",
               "DELETE FROM queues WHERE id = {a_queue}"),
    "do_not_call": ("INSERT INTO do_not_call (phone) VALUES ('442070000001')",
                    None,  # no UPDATE privilege on do_not_call
                    "DELETE FROM do_not_call WHERE id = {a_dnc}"),
}

# Session settings any account may make, that switched a check off or chose ids/clocks;
# `inserts_only`: the setting matters to INSERT only (ids).
@dataclass(frozen=True)
class Setting:
    sql: str
    message: str
    inserts_only: bool = False


SETTINGS = [
    Setting("SET SESSION foreign_key_checks = 0", CHECKS_ON),
    Setting("SET SESSION unique_checks = 0", CHECKS_ON),
    Setting("SET SESSION check_constraint_checks = 0", CHECKS_ON),
    Setting("SET SESSION insert_id = 4294967295", NO_IDS, inserts_only=True),
    Setting("SET SESSION auto_increment_increment = 65535", NO_IDS, inserts_only=True),
    Setting("SET SESSION auto_increment_offset = 7", NO_IDS, inserts_only=True),
    Setting("SET SESSION skip_replication = 1", CLOCK),
    Setting("SET SESSION timestamp = 1", CLOCK),
]


def refused(conn, sql: str, args=None) -> pymysql.MySQLError:
    with pytest.raises(pymysql.MySQLError) as caught:
        execute(conn, sql, args)
    return caught.value


def test_every_write_on_every_view_is_refused_under_every_unsafe_setting(world, rows):
    before = checksums(world)
    failures = []
    for setting in SETTINGS:
        with world.login("a", "admin") as conn:
            execute(conn, setting.sql)
            for view, statements in WRITES.items():
                for kind, sql in zip(("insert", "update", "delete"), statements):
                    if sql is None or (setting.inserts_only and kind != "insert"):
                        continue
                    try:
                        execute(conn, sql.format(**rows))
                    except pymysql.MySQLError as exc:
                        if error_code(exc) != SIGNAL or setting.message not in str(exc):
                            failures.append(f"{setting.sql} / {view} {kind}: {exc.args}")
                    else:
                        failures.append(f"{setting.sql} / {view} {kind}: accepted")
    assert failures == [], "\n".join(failures)
    assert_unchanged(before, checksums(world))


def test_the_same_writes_pass_with_the_default_settings(world, rows):
    """The guards are not a login that can write nothing."""
    with world.login("a", "admin") as conn:
        for view, statements in WRITES.items():
            for sql in statements:
                if sql is not None:
                    assert execute(conn, sql.format(**rows)) == 1, (view, sql)


def test_replace_cannot_delete_another_clients_row(world, rows):
    before = checksums(world)
    with world.login("a", "admin") as conn:
        exc = refused(conn, "REPLACE INTO users (username, role) VALUES (%s, 'agent')",
                      (rows["b_plain_username"],))
        assert error_code(exc) == SIGNAL and OTHERS_ROW in str(exc)
        # a user of the other client that has a login: the same rule answers first
        exc = refused(conn, "REPLACE INTO users (username, role) VALUES (%s, 'agent')",
                      (f"admin-{world.clients['b'].code}",))
        assert OTHERS_ROW in str(exc)
        exc = refused(conn, "REPLACE INTO users (username, role) SELECT %s, 'agent'",
                      (rows["b_plain_username"],))
        assert error_code(exc) in (SIGNAL, NO_DEFAULT)  # ... SELECT through a view: 1423
    assert_unchanged(before, checksums(world))
    with world.login("a", "admin") as conn:  # REPLACE of one's own row still works
        assert execute(conn, "REPLACE INTO users (username, role) VALUES (%s, 'supervisor')",
                       (f"spare-{world.clients['a'].code}",)) == 2


def test_load_data_replace_cannot_delete_another_clients_row(world, rows, tmp_path):
    data = tmp_path / "users.tsv"
    data.write_text(f"{rows['b_plain_username']}\tagent\n")
    before = checksums(world)
    with world.login("a", "admin", local_infile=True) as conn:
        exc = refused(conn, f"LOAD DATA LOCAL INFILE '{data}' REPLACE INTO TABLE users (username, role)")
        assert error_code(exc) == SIGNAL and OTHERS_ROW in str(exc)
    assert_unchanged(before, checksums(world))


@pytest.mark.parametrize("sql, error", [
    # multi-table UPDATE and DELETE only reach rows the views show
    ("UPDATE contacts c JOIN campaigns g ON g.id = c.campaign_id SET c.campaign_id = {b_campaign}",
     FOREIGN_KEY),
    ("UPDATE contacts c, campaigns g SET c.first_name = 'x', g.name = 'x' WHERE g.id = {b_campaign}", None),
    ("DELETE c, g FROM contacts c JOIN campaigns g ON g.id = c.campaign_id WHERE g.id = {b_campaign}", None),
    ("DELETE c FROM contacts c WHERE c.id = {b_contact}", None),
    ("UPDATE extensions e JOIN agents a SET e.agent_id = {b_agent}", FOREIGN_KEY),
    ("UPDATE users u JOIN agents a SET u.agent_id = {b_agent} WHERE u.id = {a_spare_user}", FOREIGN_KEY),
    ("UPDATE agents a JOIN queues q SET a.name = 'x', q.name = 'x' WHERE a.id = {b_agent}", None),
    ("DELETE a, q FROM agents a JOIN queues q WHERE a.id = {b_agent}", None),
    ("DELETE FROM do_not_call WHERE id IN (SELECT {b_contact})", None),
    # ON DUPLICATE KEY UPDATE of another client's row: the view's CHECK OPTION
    ("INSERT INTO users (username, role) VALUES ('{b_plain_username}', 'agent')"
     " ON DUPLICATE KEY UPDATE status = 'disabled'", CHECK_OPTION),
    # INSERT ... SELECT through a tenant view is refused whatever it selects (the view
    # lacks the NOT NULL client_id; MariaDB checks that before the triggers could fill it)
    ("INSERT INTO contacts (campaign_id, phone) SELECT {b_campaign}, '442071110000'", NO_DEFAULT),
    ("INSERT INTO extensions (agent_id, exten, sip_password) SELECT {b_agent}, '1997', 'secret-pass'",
     NO_DEFAULT),
    ("INSERT INTO users (username, role, agent_id) SELECT 'x-{prefix}', 'agent', {b_agent}", NO_DEFAULT),
    ("INSERT INTO users (username, role) SELECT '{b_plain_username}', 'agent'", NO_DEFAULT),
])
def test_multi_table_and_insert_select_forms_stay_in_the_client(world, rows, sql, error):
    before = checksums(world)
    statement = sql.format(**rows)
    with world.login("a", "admin") as conn:
        if error is None:  # the other client's rows are not there to touch
            assert execute(conn, statement) == 0
        else:
            assert error_code(refused(conn, statement)) == error
    assert_unchanged(before, checksums(world))


def test_foreign_key_checks_off_cannot_point_at_another_clients_rows(world, rows):
    before = checksums(world)
    with world.login("a", "admin") as conn:
        execute(conn, "SET SESSION foreign_key_checks = 0")
        exc = refused(conn, "INSERT INTO contacts (campaign_id, phone) VALUES (%s, '442071234500')",
                      (rows["b_campaign"],))
        assert CHECKS_ON in str(exc)
        exc = refused(conn, "UPDATE extensions SET agent_id = %s", (rows["b_agent"],))
        assert CHECKS_ON in str(exc)
    assert_unchanged(before, checksums(world))


def test_check_constraints_off_cannot_store_a_dial_string(world, rows):
    before = checksums(world)
    with world.login("a", "supervisor") as conn:
        execute(conn, "SET SESSION check_constraint_checks = 0")
        exc = refused(conn, "INSERT INTO contacts (campaign_id, phone) VALUES (%s, 'x;Local/1@evil')",
                      (rows["a_campaign"],))
        assert CHECKS_ON in str(exc)
    assert_unchanged(before, checksums(world))


@pytest.mark.parametrize("setup, sql", [
    ("SET SESSION sql_mode = ''", "INSERT INTO users (username, role) VALUES ('e-{prefix}', 'owner')"),
    ("SET SESSION sql_mode = ''", "UPDATE users SET role = 'owner' WHERE id = {a_spare_user}"),
    ("SET SESSION sql_mode = DEFAULT", "INSERT IGNORE INTO users (username, role) VALUES ('e-{prefix}', 'owner')"),
    ("SET SESSION sql_mode = DEFAULT", "UPDATE IGNORE users SET role = 'owner' WHERE id = {a_spare_user}"),
    ("SET SESSION sql_mode = DEFAULT", "UPDATE IGNORE campaigns SET mode = 'robocall' WHERE id = {a_spare_campaign}"),
    ("SET SESSION sql_mode = DEFAULT", "INSERT IGNORE INTO queues (name, strategy) VALUES ('e', 'random-ish')"),
    ("SET SESSION sql_mode = DEFAULT", "UPDATE IGNORE contacts SET status = 'gone' WHERE id = {a_contact}"),
])
def test_an_invalid_enum_is_never_stored_as_empty(world, rows, setup, sql):
    before = checksums(world)
    with world.login("a", "admin") as conn:
        execute(conn, setup)
        exc = refused(conn, sql.format(**rows))
        assert error_code(exc) == SIGNAL and EMPTY_ENUM in str(exc)
    assert_unchanged(before, checksums(world))


def test_insert_id_cannot_exhaust_an_auto_increment_for_everyone(world, rows):
    before = checksums(world)
    with world.login("a", "supervisor") as conn:
        execute(conn, "SET SESSION insert_id = 4294967295")
        assert NO_IDS in str(refused(conn, "INSERT INTO agents (name) VALUES ('x')"))
        assert NO_IDS in str(refused(conn, "INSERT INTO agents (name) VALUES ('x'), ('y')"))
    assert_unchanged(before, checksums(world))
    # every client and the operator still insert, with ordinary ids
    with world.login("b", "supervisor") as conn:
        execute(conn, "INSERT INTO agents (name) VALUES ('after')")
        assert query(conn, "SELECT LAST_INSERT_ID()")[0][0] < 1000
    with world.engine.begin() as conn:
        conn.execute(text("INSERT INTO agents (client_id, name) VALUES (:c, 'operator')"),
                     {"c": world.clients["a"].id})


def test_the_operator_keeps_its_own_session_settings(world):
    """The guards bind client logins only: an operator's bulk load may switch checks off."""
    with world.engine.begin() as conn:
        conn.execute(text("SET SESSION foreign_key_checks = 0"))
        conn.execute(text("INSERT INTO agents (client_id, name) VALUES (:c, 'bulk')"),
                     {"c": world.clients["a"].id})
        conn.execute(text("SET SESSION foreign_key_checks = 1"))
