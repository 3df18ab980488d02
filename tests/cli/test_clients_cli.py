"""`ictcontact clients|payments|calls` as the operator runs them: a real subprocess of the
console script against the real MariaDB. Tables have a header, `--json` parses with money
as exact strings, the database's refusals are one line in words with exit 1, usage errors
exit 2, a database that cannot be used exit 4; nothing is a traceback."""

from __future__ import annotations

import csv
import io
import json
import subprocess
from datetime import datetime
from decimal import Decimal

import pytest
from sqlalchemy import text

from tests.builders import make_client, make_settled_call
from tests.serve_process import run_ictcontact
from tests.support.sql import rows, scalar


def ict(db_url: str, *args: str) -> subprocess.CompletedProcess:
    return run_ictcontact(*args, "--db", db_url)


def ok(result: subprocess.CompletedProcess) -> str:
    assert result.returncode == 0, result.stderr
    assert "Traceback" not in result.stderr
    return result.stdout


def refused(result: subprocess.CompletedProcess, code: int = 1) -> str:
    """The one line on stderr of a refusal with exit `code`; nothing on stdout."""
    assert result.returncode == code, (result.returncode, result.stdout, result.stderr)
    assert "Traceback" not in result.stderr
    lines = result.stderr.splitlines()
    assert len(lines) == 1, result.stderr
    assert result.stdout == ""
    return lines[0]


def table(stdout: str) -> list[list[str]]:
    return [line.split() for line in stdout.splitlines()]


def listed(engine, code: str) -> dict:
    row = rows(engine, "SELECT * FROM client_list WHERE code = :c", c=code)
    return dict(row[0]._mapping) if row else {}


def test_create_then_show_list_and_json(db_url, engine):
    out = ok(ict(db_url, "clients", "create", "acme", "Acme Ltd", "--channels", "5",
                 "--opening-balance", "25.1234", "--email", "noc@acme.example",
                 "--credit-limit", "10"))
    assert "balance (USD):            25.1234" in out
    assert "email:                    noc@acme.example" in out
    assert listed(engine, "acme")["channels"] == 5
    assert scalar(engine, "SELECT credit_limit FROM clients WHERE code = 'acme'") == Decimal("10")
    # the opening balance is in the ledger, as create_client records it
    assert scalar(engine, "SELECT kind FROM payments p JOIN clients c ON c.id = p.client_id"
                          " WHERE c.code = 'acme'") == "opening"

    lines = table(ok(ict(db_url, "clients", "list")))
    assert lines[0] == ["CODE", "NAME", "BALANCE", "PLAN", "CHANNELS", "STATUS", "LIVE",
                        "AVAILABLE"]
    assert ["acme", "Acme", "Ltd", "25.1234", "default", "5", "active", "0", "35.1234"] in lines

    data = json.loads(ok(ict(db_url, "clients", "list", "--json")))
    acme = next(c for c in data if c["code"] == "acme")
    assert acme == {"code": "acme", "name": "Acme Ltd", "balance": "25.1234", "plan": "default",
                    "channels": 5, "status": "active", "live_calls": 0,
                    "available_credit": "35.1234"}
    shown = json.loads(ok(ict(db_url, "clients", "show", "acme", "--json")))
    assert shown["credit_limit"] == "10.0000" and shown["email"] == "noc@acme.example"
    assert shown["created_at"].endswith("Z") and shown["suspended_at"] is None
    assert json.loads(ok(ict(db_url, "clients", "list", "--status", "suspended", "--json"))) == []


def test_update_suspend_resume(db_url, engine):
    with engine.begin() as conn:
        make_client(conn, "acme", name="Acme Ltd")
        conn.execute(text("INSERT INTO rate_plans (name) VALUES ('wholesale')"))
    shown = json.loads(ok(ict(db_url, "clients", "update", "acme", "--plan", "wholesale",
                              "--channels", "20", "--name", "Acme Group", "--phone", "+44 20",
                              "--end-calls-without-credit", "yes", "--json")))
    assert (shown["plan"], shown["channels"], shown["name"], shown["phone"],
            shown["end_calls_without_credit"]) == ("wholesale", 20, "Acme Group", "+44 20", True)
    ok(ict(db_url, "clients", "update", "acme", "--phone", ""))
    assert scalar(engine, "SELECT phone FROM clients WHERE code = 'acme'") is None

    assert "status:                   suspended" in ok(ict(db_url, "clients", "suspend", "acme"))
    assert listed(engine, "acme")["status"] == "suspended"
    assert scalar(engine, "SELECT suspended_at FROM clients WHERE code = 'acme'") is not None
    assert json.loads(ok(ict(db_url, "clients", "resume", "acme", "--json")))["status"] == "active"
    assert listed(engine, "acme")["status"] == "active"


def test_payments_add_and_list_move_the_balance_exactly(db_url, engine):
    with engine.begin() as conn:
        make_client(conn, "acme", balance=Decimal("0.0001"))
    out = ok(ict(db_url, "payments", "add", "acme", "50.10", "INV-1001"))
    assert out.splitlines()[0] == "recorded 50.10 USD for acme (INV-1001)"
    assert "balance (USD):            50.1001" in out
    row = json.loads(ok(ict(db_url, "payments", "add", "acme", "-0.1001", "INV-1001 fix",
                            "--json")))
    assert row["balance"] == "50.0000"
    assert listed(engine, "acme")["balance"] == Decimal("50.0000")

    payments = json.loads(ok(ict(db_url, "payments", "list", "acme", "--json")))
    assert [(p["amount"], p["kind"], p["reference"]) for p in payments] == [
        ("0.0001", "opening", "opening balance"), ("50.1000", "topup", "INV-1001"),
        ("-0.1001", "correction", "INV-1001 fix")]
    assert all(p["created_at"].endswith("Z") and p["created_by"] for p in payments)
    lines = ok(ict(db_url, "payments", "list", "acme")).splitlines()
    assert lines[0].split() == ["ID", "RECORDED", "(UTC)", "AMOUNT", "(USD)", "KIND",
                                "REFERENCE", "NOTE", "BY"]
    assert len(lines) == 4 and "-0.1001  correction  INV-1001 fix" in lines[3]
    # the window is [from, to) in UTC
    assert json.loads(ok(ict(db_url, "payments", "list", "acme", "--from", "2000-01-01",
                             "--to", "2000-02-01", "--json"))) == []


@pytest.mark.parametrize("args, words", [
    (["clients", "create", "acme", "Other"], "a client with that code already exists"),
    (["clients", "create", "other", "Acme Ltd"], "a client with that name already exists"),
    (["clients", "create", "Bad Code", "Bad"], "a client code is 1-32 characters a-z"),
    (["clients", "create", "newco", "New", "--plan", "nope"], "no rate plan with that name"),
    (["clients", "update", "acme", "--plan", "nope"], "no rate plan named 'nope'"),
    (["clients", "update", "acme", "--channels", "-1"], "the channel limit cannot be negative"),
    (["clients", "update", "acme", "--credit-limit", "0.00001"],
     "takes at most 4 decimals and is never rounded"),
    (["clients", "show", "nobody"], "no client with code 'nobody'"),
    (["clients", "suspend", "nobody"], "no client with that code"),
    (["payments", "add", "acme", "10.00001", "R1"], "at most 4 decimals and is never rounded"),
    (["payments", "add", "acme", "5", "INV-1"], "already has a payment with that reference"),
    (["payments", "add", "acme", "-500", "R2"], "below"),
    (["payments", "add", "nobody", "5", "R3"], "no client with that code"),
    (["payments", "list", "nobody"], "no client with code 'nobody'"),
    (["calls", "export", "nobody", "--from", "2026-01-01", "--to", "2026-02-01"],
     "no client with code 'nobody'"),
])
def test_refusals_are_one_line_in_words_exit_1(db_url, engine, args, words):
    with engine.begin() as conn:
        client = make_client(conn, "acme", name="Acme Ltd", balance=Decimal("10"))
        conn.execute(text("INSERT INTO payments (client_id, amount, reference)"
                          " VALUES (:c, 1, 'INV-1')"), {"c": client.id})
    before = rows(engine, "SELECT * FROM client_list ORDER BY id")
    payments = scalar(engine, "SELECT COUNT(*) FROM payments")

    line = refused(ict(db_url, *args))

    assert words in line, line
    assert line.startswith(f"ictcontact {args[0]} {args[1]}: ")
    assert rows(engine, "SELECT * FROM client_list ORDER BY id") == before
    assert scalar(engine, "SELECT COUNT(*) FROM payments") == payments


@pytest.mark.parametrize("args, words", [
    (["payments", "add", "acme", "1e3", "R"], "'1e3' is not an amount"),
    (["payments", "add", "acme", "12,50", "R"], "'12,50' is not an amount"),
    (["clients", "update", "acme"], "nothing to change"),
    (["calls", "export", "acme", "--from", "2026-02-01", "--to", "2026-01-01"],
     "must be after --from"),
    (["calls", "export", "acme", "--from", "yesterday", "--to", "2026-01-01"],
     "'yesterday' is not a date or time"),
    (["calls", "export", "acme", "--from", "2026-01-01"], "--to"),
    (["clients", "frobnicate"], "invalid choice"),
])
def test_usage_errors_are_one_line_exit_2(db_url, engine, args, words):
    with engine.begin() as conn:
        make_client(conn, "acme")

    line = refused(ict(db_url, *args), code=2)

    assert words in line, line


def test_a_database_that_cannot_be_used_is_one_line_exit_4(db_url):
    unreachable = "mysql+pymysql://root@127.0.0.1:1/ictcontact"
    line = refused(run_ictcontact("clients", "list", "--db", unreachable), code=4)
    assert "cannot use database" in line and "Can't connect" in line

    missing = db_url.rsplit("/", 1)[0] + "/ict_no_such_database"
    line = refused(run_ictcontact("payments", "list", "acme", "--db", missing), code=4)
    assert "Unknown database" in line


def export_rows(stdout: str) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(stdout)))


def test_calls_export_csv_and_json_in_the_utc_window(db_url, engine, tmp_path):
    with engine.begin() as conn:
        acme = make_client(conn, "acme", balance=Decimal("100"))
        other = make_client(conn, "other", balance=Decimal("100"))
        before = make_settled_call(conn, acme, "441", datetime(2026, 10, 31, 23, 59, 59, 999000),
                                   Decimal("0.0100"))
        first = make_settled_call(conn, acme, "442", datetime(2026, 11, 1, 0, 0, 0),
                                  Decimal("0.0123"), answered_seconds=37)
        last = make_settled_call(conn, acme, "443", datetime(2026, 11, 30, 23, 59, 59, 500000),
                                 Decimal("1.5000"))
        make_settled_call(conn, acme, "444", datetime(2026, 12, 1), Decimal("0.0200"))
        make_settled_call(conn, other, "449", datetime(2026, 11, 15), Decimal("0.0300"))

    result = ict(db_url, "calls", "export", "acme", "--from", "2026-11-01", "--to", "2026-12-01")

    exported = export_rows(ok(result))
    assert [int(r["id"]) for r in exported] == [first, last]
    assert before not in [int(r["id"]) for r in exported]
    assert list(exported[0]) == [
        "id", "authorized_at_utc", "settled_at_utc", "direction", "number", "state", "reason",
        "emergency", "prefix", "rate_per_min", "connection_fee", "initial_increment",
        "subsequent_increment", "answered_seconds", "billable_seconds", "dial_status", "cost"]
    assert exported[0]["authorized_at_utc"] == "2026-11-01 00:00:00.000"
    assert exported[0]["settled_at_utc"] == "2026-11-01 00:00:37.000"
    assert (exported[0]["cost"], exported[1]["cost"]) == ("0.0123", "1.5000")
    assert exported[0]["rate_per_min"] == "0.020000" and exported[0]["reason"] == ""
    assert result.stderr.strip() == ("ictcontact calls export: 2 calls of acme authorized from "
                                     "2026-11-01 00:00:00 to 2026-12-01 00:00:00 UTC (to excluded)")
    # the costs add up to the cent with what the ledger debited
    assert sum(Decimal(r["cost"]) for r in exported) == scalar(
        engine, "SELECT SUM(cost) FROM calls WHERE client_id = :c AND authorized_at >= "
                "'2026-11-01' AND authorized_at < '2026-12-01'", c=acme.id)

    # an offset is converted to UTC: 01:00+01:00 is midnight UTC
    as_json = json.loads(ok(ict(db_url, "calls", "export", "acme", "--from",
                                "2026-11-01T01:00:00+01:00", "--to", "2026-11-30T23:59:59.5Z",
                                "--json")))
    assert [c["id"] for c in as_json] == [first]
    assert as_json[0]["cost"] == "0.0123" and as_json[0]["authorized_at"] == "2026-11-01T00:00:00Z"

    target = tmp_path / "acme-2026-11.csv"
    ok(ict(db_url, "calls", "export", "acme", "--from", "2026-11-01", "--to", "2026-12-01",
           "--output", str(target)))
    assert [int(r["id"]) for r in export_rows(target.read_text(encoding="utf-8"))] == [first, last]
    assert not (tmp_path / "acme-2026-11.csv.partial").exists()

    empty = ict(db_url, "calls", "export", "acme", "--from", "2020-01-01", "--to", "2020-02-01",
                "--json")
    assert json.loads(ok(empty)) == []


def test_an_export_that_fails_leaves_no_file(db_url, engine, tmp_path):
    with engine.begin() as conn:
        make_client(conn, "acme")
    target = tmp_path / "out.csv"
    line = refused(ict(db_url, "calls", "export", "nobody", "--from", "2026-11-01", "--to",
                       "2026-12-01", "--output", str(target)))
    assert "no client with code 'nobody'" in line
    assert list(tmp_path.iterdir()) == []
