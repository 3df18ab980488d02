"""`ictcontact users grant|list|sync|revoke`, run as the operator runs it (a subprocess,
the password on standard input, never on the command line), and the operator's own
accounts keep working as before."""

from __future__ import annotations

import os
import subprocess
import sys

import pymysql
import pytest
from sqlalchemy import text

from tests.builders import make_campaign, make_client
from tests.tenant.helpers import connect, query

PASSWORD = "a password of some length"


def ictcontact(*args: str, stdin: str = "") -> subprocess.CompletedProcess:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("ICTCONTACT_")}
    return subprocess.run([sys.executable, "-m", "fastagi", "--log-level", "WARNING", *args],
                          input=stdin, capture_output=True, text=True, env=clean, timeout=60)


@pytest.fixture
def acme(engine, account_prefix):
    with engine.begin() as conn:
        client = make_client(conn, account_prefix + "c")
        conn.execute(text("INSERT INTO users (client_id, username, role) VALUES (:c, 'alice', 'admin')"),
                     {"c": client.id})
    return client


def test_grant_list_sync_revoke(db_url, engine, acme):
    who = f"{acme.code}/alice"
    run = ictcontact("users", "grant", who, "--password-stdin", "--db", db_url,
                     stdin=PASSWORD + "\n")
    assert run.returncode == 0, run.stderr
    tenant_db = f"{engine.url.database}_tenant"
    assert run.stdout.strip() == (f"granted {who}: account '{acme.code}.alice'@'%', role admin, "
                                  f"open; it logs in to database {tenant_db}")
    assert PASSWORD not in run.stdout + run.stderr
    with connect(db_url, f"{acme.code}.alice", PASSWORD, tenant_db) as conn:
        query(conn, "INSERT INTO campaigns (name) VALUES ('First campaign')")
        assert query(conn, "SELECT name FROM campaigns") == [("First campaign",)]

    listing = ictcontact("users", "list", acme.code, "--db", db_url)
    assert listing.stdout.splitlines() == ["LOGIN\tACCOUNT\tROLE\tSTATE",
                                           f"{who}\t'{acme.code}.alice'@'%'\tadmin\topen"]
    with engine.begin() as conn:
        conn.execute(text("UPDATE clients SET status = 'suspended' WHERE id = :c"), {"c": acme.id})
    assert ictcontact("users", "sync", "--db", db_url).returncode == 0
    listing = ictcontact("users", "list", "--db", db_url)
    assert listing.stdout.splitlines() == ["LOGIN\tACCOUNT\tROLE\tSTATE",
                                           f"{who}\t'{acme.code}.alice'@'%'\tadmin\tlocked"]

    run = ictcontact("users", "revoke", who, "--db", db_url)
    assert (run.returncode, run.stdout.strip()) == (0, f"revoked {who}: account '{acme.code}.alice' dropped")
    with pytest.raises(pymysql.MySQLError):
        connect(db_url, f"{acme.code}.alice", PASSWORD, None)


@pytest.mark.parametrize("args, stdin, code, message", [
    (["grant", "no-slash"], PASSWORD, 2, "expected CLIENT/USERNAME"),
    (["grant", "{code}/alice"], "short\n", 1, "at least 12 characters"),
    (["grant", "{code}/nobody"], PASSWORD, 1, "no such user in that client"),
    (["grant", "{code}/alice", "--account", "x'; DROP USER root; --"], PASSWORD, 1,
     "account name must be"),
    (["revoke", "{code}/alice"], "", 1, "that user has no database login"),
])
def test_refusals_are_one_line(db_url, acme, args, stdin, code, message):
    args = [a.format(code=acme.code) for a in args]
    run = ictcontact("users", *args, "--db", db_url, stdin=stdin)
    assert run.returncode == code
    assert len(run.stderr.strip().splitlines()) == 1 and message in run.stderr, run.stderr


def test_the_operator_keeps_working_as_before(db_url, engine, acme, account_prefix):
    """Root and a separate operator account with the product database's privileges: their
    rows keep the client_id they write, they see every client, nothing locks them."""
    run = ictcontact("users", "grant", f"{acme.code}/alice", "--password-stdin", "--db", db_url,
                     stdin=PASSWORD)
    assert run.returncode == 0, run.stderr
    operator = f"{account_prefix}.operator"
    database = engine.url.database
    with engine.begin() as conn:
        conn.execute(text("CREATE USER :u@'%' IDENTIFIED BY :p"), {"u": operator, "p": PASSWORD})
        conn.execute(text(f"GRANT ALL PRIVILEGES ON `{database}`.* TO :u@'%'"), {"u": operator})
        other = make_client(conn, account_prefix + "d")
        make_campaign(conn, other.id, "root campaign")
    with connect(db_url, operator, PASSWORD, database) as conn:
        query(conn, "INSERT INTO campaigns (client_id, name) VALUES (%s, 'operator campaign')",
              (other.id,))
        query(conn, "CALL add_payment(%s, 10, 'op-1')", (other.code,))
        query(conn, "UPDATE clients SET status = 'suspended' WHERE id = %s", (other.id,))
        assert sorted(query(conn, "SELECT name FROM campaigns WHERE client_id = %s", (other.id,))) == [
            ("operator campaign",), ("root campaign",)]
        assert len(query(conn, "SELECT id FROM clients")) == 3  # master, acme, other
    with engine.begin() as conn:
        conn.execute(text("CALL sync_db_logins()"))
        assert conn.execute(text("SELECT balance FROM client_accounts WHERE client_id = :c"),
                            {"c": other.id}).scalar_one() == 10
        assert conn.execute(text("SELECT COUNT(*) FROM db_logins WHERE locked = 1")).scalar_one() == 0
    with connect(db_url, operator, PASSWORD, database) as conn:  # still not locked
        assert query(conn, "SELECT 1") == [(1,)]
