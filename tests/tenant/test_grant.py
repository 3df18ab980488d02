"""grant_db_login / revoke_db_login: names from people cannot inject SQL, the password
goes only to the server's authentication, and the old SHA-512 hash is retired."""

from __future__ import annotations

import re

import pymysql
import pytest
from sqlalchemy import exc as sa_exc
from sqlalchemy import text

from tests.builders import make_client
from tests.tenant.helpers import connect, error_code, query

GOOD_PASSWORD = "a long enough password"


@pytest.fixture
def acme(engine, account_prefix):
    """Client <prefix>c with user `<prefix>-alice` (no database login yet)."""
    with engine.begin() as conn:
        client = make_client(conn, account_prefix + "c")
        conn.execute(text("INSERT INTO users (client_id, username, role, password) "
                          "VALUES (:c, :u, 'admin', 'old web password')"),
                     {"c": client.id, "u": f"{account_prefix}-alice"})
    return client


def grant(engine, client: str, username: str, password: str = GOOD_PASSWORD,
          account: str | None = None, host: str | None = None):
    with engine.begin() as conn:
        return conn.execute(text("CALL grant_db_login_as(:c, :u, :p, :a, :h)"),
                            {"c": client, "u": username, "p": password, "a": account,
                             "h": host}).one()


def server_accounts(engine, prefix: str) -> list[tuple]:
    with engine.connect() as conn:
        return [tuple(r) for r in conn.execute(text(
            "SELECT user, host FROM mysql.user WHERE user LIKE :p ORDER BY user"),
            {"p": prefix.replace("_", "\\_") + "%"})]


# Databases of test and benchmark runs (`ict_test_<pid>_<n>`, `ict_bench_..._<pid>`...):
# other runs on the server, and this run's clone worker, create and drop theirs meanwhile.
OTHER_RUNS = re.compile(r"^ict_[a-z_]+_[0-9]+")


def databases(engine) -> set[str]:
    """The server's databases, less other test runs' (this test's own are kept)."""
    ours = engine.url.database
    with engine.connect() as conn:
        return {name for (name,) in conn.execute(text("SHOW DATABASES"))
                if name == ours or name.startswith(ours + "_") or not OTHER_RUNS.match(name)}


HOSTILE_ACCOUNTS = [
    "{p}x'@'%' IDENTIFIED BY 'x",
    "{p}x`; DROP DATABASE {db}; --",
    "{p}x'; DROP USER root@localhost; --",
    "{p}x\\'",
    "{p}x@localhost",
    "{p} space",
    "{p}x\nGRANT ALL ON *.* TO x",
    "{p}\u212a",              # KELVIN SIGN: a 'k' only to a case-insensitive match
    "{p}é",
    "-{p}",
    "",
    "{p}" + "x" * 80,
]


@pytest.mark.parametrize("account", HOSTILE_ACCOUNTS)
def test_hostile_account_names_are_refused_and_create_nothing(engine, db_url, acme, account_prefix,
                                                              account):
    name = account.format(p=account_prefix, db=engine.url.database)
    before = databases(engine)
    with pytest.raises(sa_exc.DBAPIError) as refused:
        grant(engine, acme.code, f"{account_prefix}-alice", account=name)
    assert "account name must be" in str(refused.value.orig)
    assert server_accounts(engine, account_prefix) == []
    assert databases(engine) == before
    with engine.connect() as conn:
        assert conn.execute(text("SELECT COUNT(*) FROM db_logins")).scalar_one() == 0


@pytest.mark.parametrize("host", ["%' IDENTIFIED BY 'x", "x`y", "local host", "", "h" * 61,
                                  "%'; DROP DATABASE mysql; --"])
def test_hostile_host_names_are_refused(engine, acme, account_prefix, host):
    with pytest.raises(sa_exc.DBAPIError) as refused:
        grant(engine, acme.code, f"{account_prefix}-alice", host=host)
    assert "host must be" in str(refused.value.orig)
    assert server_accounts(engine, account_prefix) == []


@pytest.mark.parametrize("username", ["x' OR '1'='1", "alice'; DROP TABLE users; --"])
def test_hostile_usernames_only_find_no_user(engine, acme, username):
    with pytest.raises(sa_exc.DBAPIError) as refused:
        grant(engine, acme.code, username)
    assert "no such user in that client" in str(refused.value.orig)


def test_a_username_with_other_characters_needs_an_account_name(engine, acme, account_prefix):
    with engine.begin() as conn:
        conn.execute(text("INSERT INTO users (client_id, username) VALUES (:c, :u)"),
                     {"c": acme.id, "u": f"{account_prefix}o'brien"})
    with pytest.raises(sa_exc.DBAPIError) as refused:
        grant(engine, acme.code, f"{account_prefix}o'brien")
    assert "account name must be" in str(refused.value.orig)
    row = grant(engine, acme.code, f"{account_prefix}o'brien", account=f"{account_prefix}.obrien")
    assert row.account == f"{account_prefix}.obrien"


@pytest.mark.parametrize("password", [
    "it's a 'quoted' password", 'back\\slash \\\' and "double"', "new\nline and\ttab x",
    "'; DROP USER root; --  ", "ünïcødé pässwörd ✓"])
def test_any_password_works_verbatim(engine, db_url, acme, account_prefix, password):
    row = grant(engine, acme.code, f"{account_prefix}-alice", password=password)
    assert (row.account, row.host, row.role, row.state) == (
        f"{acme.code}.{account_prefix}-alice", "%", "admin", "open")
    with connect(db_url, row.account, password, f"{engine.url.database}_tenant") as conn:
        assert query(conn, "SELECT code FROM client_list") == [(acme.code,)]
    with pytest.raises(pymysql.MySQLError) as refused:
        connect(db_url, row.account, password + "x", None)
    assert error_code(refused.value) == 1045


@pytest.mark.parametrize("password", [None, "", "short pass1"])
def test_short_passwords_are_refused(engine, acme, account_prefix, password):
    with pytest.raises(sa_exc.DBAPIError) as refused:
        grant(engine, acme.code, f"{account_prefix}-alice", password=password)
    assert "at least 12 characters" in str(refused.value.orig)
    assert server_accounts(engine, account_prefix) == []


def test_the_old_hash_is_retired_and_cannot_come_back(engine, acme, account_prefix):
    username = f"{account_prefix}-alice"
    with engine.begin() as conn:
        assert conn.execute(text("CALL user_login(:u, 'old web password')"), {"u": username}
                            ).one().allowed == 1
    grant(engine, acme.code, username)
    with engine.begin() as conn:
        assert conn.execute(text("SELECT password_hash FROM users WHERE username = :u"),
                            {"u": username}).scalar_one() is None
        assert conn.execute(text("CALL user_login(:u, 'old web password')"), {"u": username}
                            ).one().allowed == 0
    with pytest.raises(sa_exc.DBAPIError) as refused:
        with engine.begin() as conn:
            conn.execute(text("UPDATE users SET password = 'x' WHERE username = :u"), {"u": username})
    assert "logs in with its database account" in str(refused.value.orig)


def test_a_second_grant_a_taken_name_and_hand_written_rows_are_refused(engine, acme, account_prefix):
    username = f"{account_prefix}-alice"
    row = grant(engine, acme.code, username)
    with pytest.raises(sa_exc.DBAPIError) as refused:
        grant(engine, acme.code, username)
    assert "already has a database login" in str(refused.value.orig)
    with engine.begin() as conn:
        conn.execute(text("INSERT INTO users (client_id, username) VALUES (:c, :u)"),
                     {"c": acme.id, "u": f"{account_prefix}-bob"})
    with pytest.raises(sa_exc.DBAPIError) as refused:
        grant(engine, acme.code, f"{account_prefix}-bob", account=row.account)
    assert "already exists on this server" in str(refused.value.orig)
    with pytest.raises(sa_exc.DBAPIError) as refused:
        with engine.begin() as conn:
            conn.execute(text("INSERT INTO db_logins (user_id, client_id, account) "
                              "SELECT id, client_id, :a FROM users WHERE username = :u"),
                         {"a": f"{account_prefix}.hand", "u": f"{account_prefix}-bob"})
    assert "created by CALL grant_db_login" in str(refused.value.orig)
    with pytest.raises(sa_exc.DBAPIError) as refused:
        with engine.begin() as conn:
            conn.execute(text("DELETE FROM db_logins"))
    assert "removed by CALL revoke_db_login" in str(refused.value.orig)


def test_revoke_drops_the_account_and_ends_its_sessions(engine, db_url, acme, account_prefix):
    username = f"{account_prefix}-alice"
    row = grant(engine, acme.code, username)
    session = connect(db_url, row.account, GOOD_PASSWORD, f"{engine.url.database}_tenant")
    with engine.begin() as conn:
        assert conn.execute(text("CALL revoke_db_login(:c, :u)"),
                            {"c": acme.code, "u": username}).one().state == "revoked"
    with pytest.raises(pymysql.err.OperationalError):
        query(session, "SELECT * FROM campaigns")
    assert server_accounts(engine, account_prefix) == []
    with pytest.raises(pymysql.MySQLError):
        connect(db_url, row.account, GOOD_PASSWORD, None)
    with engine.begin() as conn:  # the users row stays; it may be granted again
        conn.execute(text("DELETE FROM users WHERE username = :u"), {"u": username})


def test_a_login_may_change_its_own_password(engine, db_url, acme, account_prefix):
    row = grant(engine, acme.code, f"{account_prefix}-alice")
    with connect(db_url, row.account, GOOD_PASSWORD, None) as conn:
        query(conn, "SET PASSWORD = PASSWORD(%s)", ("another long password",))
    with connect(db_url, row.account, "another long password", None) as conn:
        assert query(conn, "SELECT 1") == [(1,)]
