"""`ictcontact clients|payments|calls` run with a client's own database login (a real
account, a real subprocess, the URL in the environment as docs/operator-cli.md says):
it sees its own account, payments and calls, nothing of the other client's, and every
change is refused by the database in one line, leaving every table as it was."""

from __future__ import annotations

import csv
import io
import json
import subprocess
from datetime import datetime
from decimal import Decimal
from urllib.parse import quote

import pytest
from sqlalchemy.engine import make_url

from tests.builders import Client, make_settled_call, top_up
from tests.serve_process import run_ictcontact
from tests.tenant.helpers import (PASSWORD, assert_unchanged, can_connect, checksums,
                                  seconds_until)
from tests.support.sql import execute


def tenant_url(world, letter: str, role: str = "admin") -> str:
    u = make_url(world.url)
    account = world.clients[letter].accounts[role]
    return (f"mysql+pymysql://{quote(account, safe='')}:{quote(PASSWORD, safe='')}"
            f"@{u.host}:{u.port or 3306}/{world.tenant_database}")


def as_login(world, letter: str, *args: str, role: str = "admin") -> subprocess.CompletedProcess:
    return run_ictcontact(*args, env={"ICTCONTACT_DB": tenant_url(world, letter, role)})


def one_line(result: subprocess.CompletedProcess, code: int) -> str:
    assert result.returncode == code, (result.returncode, result.stdout, result.stderr)
    assert "Traceback" not in result.stderr and result.stdout == ""
    lines = result.stderr.splitlines()
    assert len(lines) == 1, result.stderr
    return lines[0]


@pytest.fixture
def calls(world):
    """Two calls of each client in November 2026, one payment each."""
    made = {}
    with world.engine.begin() as conn:
        for letter, entry in world.clients.items():
            client = Client(entry.id, entry.code, entry.code, 0)
            made[letter] = [
                make_settled_call(conn, client, f"44{letter}1", datetime(2026, 11, 2, 9),
                                  Decimal("0.0125")),
                make_settled_call(conn, client, f"44{letter}2", datetime(2026, 11, 3, 9),
                                  Decimal("0.5000")),
            ]
            top_up(conn, entry.id, Decimal("10.50"), f"INV-{letter}")
    return made


@pytest.mark.parametrize("role", ["admin", "agent"])
def test_a_login_sees_its_own_account_payments_and_calls(world, calls, role):
    a, b = world.clients["a"], world.clients["b"]

    listing = json.loads(as_login(world, "a", "clients", "list", "--json", role=role).stdout)
    assert [c["code"] for c in listing] == [a.code]
    assert listing[0]["balance"] == "34.9875"            # 25 + 10.50 - 0.0125 - 0.5000
    shown = as_login(world, "a", "clients", "show", a.code, role=role)
    assert shown.returncode == 0 and f"code:                   {a.code}" in shown.stdout
    assert "credit limit" not in shown.stdout             # not in the tenant's client_list

    payments = json.loads(as_login(world, "a", "payments", "list", a.code, "--json",
                                   role=role).stdout)
    assert [(p["amount"], p["reference"]) for p in payments] == [
        ("25.0000", "opening balance"), ("10.5000", "INV-a")]
    assert "created_by" not in payments[0]

    export = as_login(world, "a", "calls", "export", a.code, "--from", "2026-11-01",
                      "--to", "2026-12-01", role=role)
    assert export.returncode == 0, export.stderr
    exported = list(csv.DictReader(io.StringIO(export.stdout)))
    assert [int(r["id"]) for r in exported] == calls["a"]
    assert [r["cost"] for r in exported] == ["0.0125", "0.5000"]
    assert b.code not in export.stdout and "44b" not in export.stdout


@pytest.mark.parametrize("args", [
    ["clients", "show", "{b}"],
    ["payments", "list", "{b}"],
    ["calls", "export", "{b}", "--from", "2026-11-01", "--to", "2026-12-01"],
    ["calls", "export", "{b}' OR '1'='1", "--from", "2026-11-01", "--to", "2026-12-01"],
    ["payments", "list", "%"],
])
def test_another_clients_data_is_refused_in_one_line(world, calls, args):
    a, b = world.clients["a"], world.clients["b"]
    args = [arg.format(b=b.code) for arg in args]

    line = one_line(as_login(world, "a", *args), 1)

    assert line.endswith(f"visible to this login: {a.accounts['admin']} sees only its own "
                         f"account, {a.code}"), line
    assert "44b" not in line


def test_a_login_lists_only_its_own_line_even_asking_for_every_status(world, calls):
    a = world.clients["a"]
    execute(world.engine, "UPDATE clients SET status = 'suspended' WHERE id = :b",
            b=world.clients["b"].id)
    for status in ("active", "suspended"):
        result = as_login(world, "a", "clients", "list", "--status", status, "--json")
        assert result.returncode == 0, result.stderr
        assert [c["code"] for c in json.loads(result.stdout)] == (
            [a.code] if status == "active" else [])


@pytest.mark.parametrize("args", [
    ["clients", "create", "{a}x", "Hostile Ltd"],
    ["clients", "update", "{a}", "--channels", "10000"],
    ["clients", "update", "{b}", "--name", "Taken over"],
    ["clients", "suspend", "{b}"],
    ["clients", "resume", "{a}"],
    ["payments", "add", "{a}", "1000", "FREE-MONEY"],
    ["payments", "add", "{b}", "-20", "DRAIN"],
])
@pytest.mark.parametrize("role", ["admin", "agent"])
def test_every_change_is_refused_by_the_database_and_changes_nothing(world, calls, args, role):
    a, b = world.clients["a"], world.clients["b"]
    args = [arg.format(a=a.code, b=b.code) for arg in args]
    before = checksums(world)

    line = one_line(as_login(world, "a", *args, role=role), 1)

    assert f"refused: {a.accounts[role]} is a client login" in line, line
    assert "the database said: " in line and "denied" in line, line
    assert_unchanged(before, checksums(world))


def test_a_locked_login_is_one_line(world):
    a = world.clients["a"]
    execute(world.engine, "UPDATE clients SET status = 'suspended' WHERE id = :a", a=a.id)
    seconds_until(lambda: not can_connect(world, "a", "admin"))

    line = one_line(as_login(world, "a", "clients", "show", a.code), 4)

    assert line == ("ictcontact clients show: this login is locked (its client is suspended "
                    "or its user disabled): ask the operator")


def test_a_login_pointed_at_the_product_database_is_refused_by_the_server(world):
    url = tenant_url(world, "a").rsplit("/", 1)[0] + "/" + world.database

    line = one_line(run_ictcontact("clients", "list", env={"ICTCONTACT_DB": url}), 4)

    assert "Access denied" in line and PASSWORD not in line
