"""Asterisk's database login: the shipped files, the grants and the check agree.

Seen on a real Asterisk 22: grants made for 'asterisk'@'localhost' while odbc.ini connects
over TCP to 127.0.0.1 gave `Access denied` and no realtime endpoints or CDRs at all. Each
test makes its own account (a unique name, both hosts dropped afterwards) on its own
database, and reads the shipped res_odbc.conf and odbc.ini with only the names changed.
"""

from __future__ import annotations

import itertools
import os
from pathlib import Path

import pytest
from sqlalchemy import text

from fastagi.asterisk import odbc
from fastagi.asterisk.access_check import check
from fastagi.asterisk.grants import ASTERISK_NEEDS
from fastagi.cli import main
from fastagi.db.engine import database_name

CONF = Path(__file__).resolve().parents[2] / "asterisk-conf"
_names = itertools.count()


def test_the_shipped_files_describe_a_tcp_login_to_127_0_0_1():
    conn = odbc.read_connection(CONF / "res_odbc.conf", CONF / "odbc.ini")
    assert (conn.dsn, conn.server, conn.port, conn.database, conn.username) == \
        ("ictcontact", "127.0.0.1", 3306, "ictcontact", "asterisk")
    assert not conn.over_socket
    # The trap: over TCP MariaDB sees 127.0.0.1, so that is the account to create.
    assert conn.account == "'asterisk'@'127.0.0.1'"


def test_the_docs_grant_what_the_shipped_dsn_connects_as():
    docs = (CONF.parent / "docs" / "asterisk.md").read_text()
    assert "TO 'asterisk'@'localhost'" not in docs
    assert "CREATE USER 'asterisk'@'localhost'" not in docs
    assert "ictcontact asterisk grants" in docs and "ictcontact asterisk check" in docs


def test_every_object_asterisk_reads_exists_in_the_schema(engine):
    with engine.connect() as db:
        names = {row[0] for row in db.execute(text(
            "SELECT TABLE_NAME FROM information_schema.TABLES WHERE TABLE_SCHEMA = DATABASE()"))}
    assert set(ASTERISK_NEEDS) <= names


@pytest.fixture
def asterisk_files(tmp_path, db_url, engine):
    """The shipped res_odbc.conf and odbc.ini for a unique account on the test database."""
    username = f"ict_ast_{os.getpid()}_{next(_names)}"
    res_odbc = tmp_path / "res_odbc.conf"
    res_odbc.write_text((CONF / "res_odbc.conf").read_text()
                        .replace("username => asterisk", f"username => {username}")
                        .replace("password => CHANGE_ME", "password => S3cret'\"pw"))
    odbc_ini = tmp_path / "odbc.ini"
    odbc_ini.write_text((CONF / "odbc.ini").read_text()
                        .replace("Database = ictcontact", f"Database = {database_name(db_url)}"))
    yield res_odbc, odbc_ini, username
    with engine.begin() as db:
        for host in ("127.0.0.1", "localhost"):
            db.exec_driver_sql("DROP USER IF EXISTS %s@%s", (username, host))


def run_cli(*argv) -> int:
    return main(list(argv))


def test_grants_then_check_pass_with_exactly_the_shipped_dsn(asterisk_files, db_url, capsys):
    res_odbc, odbc_ini, username = asterisk_files
    files = ["--res-odbc", str(res_odbc), "--odbc-ini", str(odbc_ini)]
    assert run_cli("asterisk", "check", *files) == 1   # no account yet: fails loudly
    assert "FAIL login" in capsys.readouterr().out
    assert run_cli("asterisk", "grants", *files, "--apply", "--db", db_url) == 0
    printed = capsys.readouterr().out
    assert f"'{username}'@'127.0.0.1'" in printed and "S3cret" not in printed
    assert run_cli("asterisk", "check", *files) == 0
    out = capsys.readouterr().out
    assert f"the server matched the account {username}@127.0.0.1" in out
    assert f"{2 + 2 * len(ASTERISK_NEEDS)} ok, 0 failed" in out
    # Running it again (a changed password in res_odbc.conf) keeps them in step.
    res_odbc.write_text(res_odbc.read_text().replace("S3cret'\"pw", "other-pw"))
    assert run_cli("asterisk", "check", *files) == 1
    assert run_cli("asterisk", "grants", *files, "--apply", "--db", db_url) == 0
    assert run_cli("asterisk", "check", *files) == 0


def test_an_account_for_localhost_is_refused_and_the_check_says_why(asterisk_files, engine):
    res_odbc, odbc_ini, username = asterisk_files
    with engine.begin() as db:   # what the old docs said to do
        db.exec_driver_sql("CREATE USER %s@'localhost' IDENTIFIED BY %s", (username, "S3cret'\"pw"))
        for name, privileges in ASTERISK_NEEDS.items():
            db.exec_driver_sql(f"GRANT {', '.join(privileges)} ON {name} TO %s@'localhost'",
                               (username,))
    findings = check(odbc.read_connection(res_odbc, odbc_ini))
    assert [f.ok for f in findings] == [False]
    assert "Access denied" in findings[0].detail
    assert f"'{username}'@'127.0.0.1'" in findings[0].detail


def test_a_missing_privilege_is_named(asterisk_files, db_url, engine):
    res_odbc, odbc_ini, username = asterisk_files
    assert run_cli("asterisk", "grants", "--res-odbc", str(res_odbc), "--odbc-ini",
                   str(odbc_ini), "--apply", "--db", db_url) == 0
    with engine.begin() as db:
        db.exec_driver_sql("REVOKE INSERT ON cdr FROM %s@'127.0.0.1'", (username,))
    failed = [f for f in check(odbc.read_connection(res_odbc, odbc_ini)) if not f.ok]
    assert [(f.what, "missing INSERT" in f.detail) for f in failed] == [("SELECT, INSERT on cdr", True)]


def test_a_remote_database_server_needs_the_asterisk_host(tmp_path, capsys):
    odbc_ini = tmp_path / "odbc.ini"
    odbc_ini.write_text((CONF / "odbc.ini").read_text().replace("127.0.0.1", "db.example.net"))
    files = ["--res-odbc", str(CONF / "res_odbc.conf"), "--odbc-ini", str(odbc_ini)]
    assert run_cli("asterisk", "grants", *files) == 1
    assert "give --host" in capsys.readouterr().err
    assert run_cli("asterisk", "grants", *files, "--host", "10.1.2.3") == 0
    assert "TO 'asterisk'@'10.1.2.3';" in capsys.readouterr().out


def test_a_socket_dsn_is_the_localhost_account(tmp_path):
    odbc_ini = tmp_path / "odbc.ini"
    odbc_ini.write_text((CONF / "odbc.ini").read_text().replace("Server = 127.0.0.1",
                                                                "Server = localhost"))
    conn = odbc.read_connection(CONF / "res_odbc.conf", odbc_ini)
    assert conn.over_socket and conn.account == "'asterisk'@'localhost'"


@pytest.mark.parametrize("change, message", [
    (("dsn => ictcontact", "dsn => nosuch"), "no DSN [nosuch]"),
    (("username => asterisk", ""), "has no username"),
])
def test_broken_files_get_one_clear_line(tmp_path, capsys, change, message):
    res_odbc = tmp_path / "res_odbc.conf"
    res_odbc.write_text((CONF / "res_odbc.conf").read_text().replace(*change))
    assert run_cli("asterisk", "check", "--res-odbc", str(res_odbc),
                   "--odbc-ini", str(CONF / "odbc.ini")) == 1
    assert message in capsys.readouterr().err


def _accounts(engine, username: str) -> list[str]:
    with engine.connect() as db:
        return [row[0] for row in db.exec_driver_sql(
            "SELECT Host FROM mysql.user WHERE User = %s", (username,))]


def test_the_placeholder_password_is_never_applied(asterisk_files, db_url, engine, capsys):
    res_odbc, odbc_ini, username = asterisk_files
    res_odbc.write_text(res_odbc.read_text().replace("S3cret'\"pw", "CHANGE_ME"))
    files = ["--res-odbc", str(res_odbc), "--odbc-ini", str(odbc_ini)]
    assert run_cli("asterisk", "grants", *files, "--apply", "--db", db_url) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert err == [f"ictcontact asterisk grants: {res_odbc} [asterisk] still has the placeholder "
                   "password CHANGE_ME: write the real one there as `password => ...` "
                   "(Asterisk logs in with it), then run this again"]
    assert _accounts(engine, username) == []
    # Without --apply the statements still print for review, with a note on stderr.
    assert run_cli("asterisk", "grants", *files) == 0
    captured = capsys.readouterr()
    assert "CREATE USER IF NOT EXISTS" in captured.out and "CHANGE_ME" not in captured.out
    assert "placeholder password CHANGE_ME" in captured.err


def test_a_dsn_database_that_does_not_exist_leaves_no_account(asterisk_files, db_url, engine,
                                                              capsys):
    res_odbc, odbc_ini, username = asterisk_files
    missing = f"ict_test_{os.getpid()}_nosuch"
    odbc_ini.write_text(odbc_ini.read_text().replace(database_name(db_url), missing))
    assert run_cli("asterisk", "grants", "--res-odbc", str(res_odbc), "--odbc-ini",
                   str(odbc_ini), "--apply", "--db", db_url) == 1
    err = capsys.readouterr().err
    assert f"the DSN's database {missing} does not exist" in err
    assert "no account was created" in err and "ictcontact db upgrade" in err
    assert _accounts(engine, username) == []


def test_a_dsn_database_without_the_schema_leaves_no_account(asterisk_files, db_url, engine,
                                                             capsys):
    res_odbc, odbc_ini, username = asterisk_files
    empty = f"ict_test_{os.getpid()}_noschema"
    odbc_ini.write_text(odbc_ini.read_text().replace(database_name(db_url), empty))
    with engine.begin() as db:
        db.exec_driver_sql(f"CREATE DATABASE `{empty}`")
    try:
        assert run_cli("asterisk", "grants", "--res-odbc", str(res_odbc), "--odbc-ini",
                       str(odbc_ini), "--apply", "--db", db_url) == 1
        assert f"the DSN's database {empty} has no ps_endpoints" in capsys.readouterr().err
        assert _accounts(engine, username) == []
    finally:
        with engine.begin() as db:
            db.exec_driver_sql(f"DROP DATABASE IF EXISTS `{empty}`")


def test_a_statement_failing_midway_drops_the_account_it_created(asterisk_files, db_url, engine):
    from sqlalchemy.exc import ProgrammingError

    from fastagi.store.asterisk_access import apply_grants, grant_statements
    _, _, username = asterisk_files
    database = database_name(db_url)
    statements = grant_statements(database, username, "127.0.0.1", "pw")
    statements.append((f"GRANT SELECT ON `{database}`.`no_such_table` TO %s@%s",
                       (username, "127.0.0.1")))
    with pytest.raises(ProgrammingError):
        apply_grants(engine, database, username, "127.0.0.1", statements)
    assert _accounts(engine, username) == []
    # An account that was there before is the operator's: it stays.
    with engine.begin() as db:
        db.exec_driver_sql("CREATE USER %s@'127.0.0.1' IDENTIFIED BY 'old'", (username,))
    with pytest.raises(ProgrammingError):
        apply_grants(engine, database, username, "127.0.0.1", statements)
    assert _accounts(engine, username) == ["127.0.0.1"]


def test_no_etc_asterisk_hints_at_the_file_options(tmp_path, monkeypatch, capsys):
    # The defaults are read when the parser is built: point them where nothing is.
    monkeypatch.setattr(odbc, "DEFAULT_RES_ODBC", str(tmp_path / "asterisk" / "res_odbc.conf"))
    monkeypatch.setattr(odbc, "DEFAULT_ODBC_INI", str(tmp_path / "odbc.ini"))
    assert run_cli("asterisk", "grants", "--apply") == 1
    assert capsys.readouterr().err.strip().splitlines() == [
        f"ictcontact asterisk grants: cannot read {tmp_path}/asterisk/res_odbc.conf: No such "
        "file or directory (the files Asterisk uses are elsewhere? give --res-odbc PATH "
        "--odbc-ini PATH)"]
    assert run_cli("asterisk", "check", "--res-odbc", str(CONF / "res_odbc.conf")) == 1
    assert capsys.readouterr().err.strip().splitlines() == [
        f"ictcontact asterisk check: {tmp_path}/odbc.ini: cannot read the file (the DSN is "
        "in another file? give --odbc-ini PATH)"]
