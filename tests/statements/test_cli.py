"""`ictcontact statement` run as the operator runs it (a real subprocess): each format
carries the same figures, refusals are one line on stderr with the documented exit code."""

from __future__ import annotations

import csv
import io
import json
from datetime import datetime
from decimal import Decimal

import pytest

from tests.builders import add_rate, default_plan_id, make_client
from tests.serve_process import run_ictcontact
from tests.support.ledger import call, pay


@pytest.fixture
def acme(engine):
    """A client with a month of everything: payments, a correction, calls to two
    destinations, an emergency call, and a call of the next month."""
    with engine.begin() as conn:
        plan = default_plan_id(conn)
        add_rate(conn, plan, "44", Decimal("0.02"), description="United Kingdom - Fixed")
        add_rate(conn, plan, "1", Decimal("0.01"), description="United States <&> Canada")
        client = make_client(conn, "acme", name="Acme <b>Ltd</b> & Co")
        pay(conn, client.id, Decimal("30"), datetime(2026, 10, 20))
        pay(conn, client.id, Decimal("50"), datetime(2026, 11, 3, 10), note="bank transfer")
        pay(conn, client.id, Decimal("5"), datetime(2026, 11, 4), "correction",
            note="INV-1001 was 45")
        for seconds, cost in ((120, "0.0400"), (60, "0.0200"), (30, "0.0100")):
            call(conn, client.id, "acme", datetime(2026, 11, 5), cost=Decimal(cost),
                 answered_seconds=seconds, billable_seconds=seconds, prefix="44")
        call(conn, client.id, "acme", datetime(2026, 11, 6), cost=Decimal("0.0600"),
             answered_seconds=355, billable_seconds=360, prefix="1")
        call(conn, client.id, "acme", datetime(2026, 11, 7), cost=Decimal("0"),
             answered_seconds=180, emergency=True, prefix=None, number="911")
        call(conn, client.id, "acme", datetime(2026, 12, 1), cost=Decimal("1.0000"),
             answered_seconds=60, billable_seconds=60, prefix="44")
    return client


def statement(db_url, *args):
    return run_ictcontact("statement", *args, "--db", db_url)


def test_the_table_shows_totals_payments_and_usage(db_url, acme):
    result = statement(db_url, "acme", "--period", "2026-11")

    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert "Acme <b>Ltd</b> & Co (acme)" in out
    assert "2026-11-01 00:00 to 2026-12-01 00:00 UTC" in out
    for label, amount in (("Opening balance", "30.0000"), ("Payments", "50.0000"),
                          ("Corrections", "5.0000"), ("Usage", "-0.1300"),
                          ("Closing balance", "84.8700")):
        assert any(line.startswith(label) and line.endswith(amount)
                   for line in out.splitlines()), (label, out)
    assert "not over yet" not in out
    lines = [line.split() for line in out.splitlines()]
    assert ["Emergency", "calls", "(free)", "-", "1", "3.00", "0.0000", "free"] in lines
    assert ["TOTAL", "5", "12.50", "0.1300"] in lines


def test_csv_and_json_carry_the_same_figures(db_url, acme):
    as_csv = statement(db_url, "acme", "--period", "2026-11", "--format", "csv")
    as_json = statement(db_url, "acme", "--period", "2026-11", "--format", "json")

    assert as_csv.returncode == as_json.returncode == 0, as_csv.stderr + as_json.stderr
    table = list(csv.DictReader(io.StringIO(as_csv.stdout)))
    totals = {r["item"]: r["amount"] for r in table if r["section"] == "summary"}
    assert totals == {"opening_balance": "30.0000", "payments": "50.0000", "transfers": "0.0000",
                      "corrections": "5.0000", "usage": "0.1300", "client_charges": "0.0000",
                      "closing_balance": "84.8700"}
    usage = [(r["item"], r["prefix"], r["calls"], r["seconds"], r["amount"])
             for r in table if r["section"] == "usage"]
    assert usage == [("United States <&> Canada", "1", "1", "360", "0.0600"),
                     ("United Kingdom - Fixed", "44", "3", "210", "0.0700"),
                     ("Emergency calls (free)", "", "1", "180", "0.0000")]
    assert [(r["section"], r["reference"] != "") for r in table
            if r["section"] in ("payment", "correction")] == [("payment", True),
                                                               ("correction", True)]

    data = json.loads(as_json.stdout)
    assert {k: data[k] for k in ("opening_balance", "payments", "corrections", "usage",
                                 "closing_balance", "calls", "period", "complete")} == {
        "opening_balance": "30.0000", "payments": "50.0000", "corrections": "5.0000",
        "usage": "0.1300", "closing_balance": "84.8700", "calls": 5, "period": "2026-11",
        "complete": True}
    assert data["client"] == {"code": "acme", "name": "Acme <b>Ltd</b> & Co"}
    assert [u["emergency"] for u in data["usage_lines"]] == [False, False, True]
    assert data["current_balance"] == "83.8700"     # client_list: December's call too
    assert sum(Decimal(u["cost"]) for u in data["usage_lines"]) == Decimal(data["usage"])


def test_html_is_a_printable_page_with_totals_and_every_value_escaped(db_url, acme):
    result = statement(db_url, "acme", "--period", "2026-11", "--format", "html")

    assert result.returncode == 0, result.stderr
    page = result.stdout
    assert page.startswith("<!DOCTYPE html>") and page.rstrip().endswith("</html>")
    assert "@page" in page and "@media print" in page
    assert "Acme &lt;b&gt;Ltd&lt;/b&gt; &amp; Co" in page and "<b>Ltd</b>" not in page
    assert "United States &lt;&amp;&gt; Canada" in page
    for amount in ("30.0000", "50.0000", "5.0000", "-0.1300", "84.8700"):
        assert f'<td class="num">{amount}</td>' in page
    assert "Closing balance" in page and "Emergency calls (free)" in page
    assert "<script" not in page and "http" not in page   # nothing fetched when printed


def test_the_next_month_opens_with_this_months_closing(db_url, acme):
    november = json.loads(statement(db_url, "acme", "--period", "2026-11",
                                    "--format", "json").stdout)
    december = json.loads(statement(db_url, "acme", "--period", "2026-12",
                                    "--format", "json").stdout)

    assert december["opening_balance"] == november["closing_balance"]
    assert december["usage"] == "1.0000"


@pytest.mark.parametrize("period", ["2026-13", "november", "2026-11-01", "26-11"])
def test_a_bad_period_is_one_line_and_exit_2(db_url, period):
    result = statement(db_url, "acme", "--period", period)

    assert result.returncode == 2
    assert result.stdout == ""
    assert result.stderr == (f"ictcontact statement: --period must be a month as YYYY-MM "
                             f"(e.g. 2026-11), not {period!r}\n")


def test_an_unknown_client_is_one_line_and_exit_1(db_url):
    result = statement(db_url, "nobody", "--period", "2026-11")

    assert result.returncode == 1
    assert result.stdout == ""
    assert result.stderr == ("ictcontact statement: no client with code 'nobody' "
                             "(SELECT code FROM client_list lists them)\n")


def test_a_missing_period_or_format_is_a_usage_error(db_url):
    for args in (["acme"], ["acme", "--period", "2026-11", "--format", "pdf"]):
        result = statement(db_url, *args)
        assert result.returncode == 2
        assert len(result.stderr.splitlines()) == 1 and "Traceback" not in result.stderr


def test_a_database_without_the_schema_is_one_line_and_exit_1(empty_db_url):
    result = statement(empty_db_url, "acme", "--period", "2026-11")

    assert result.returncode == 1
    assert len(result.stderr.splitlines()) == 1, result.stderr
    assert result.stderr.startswith("ictcontact statement: ") and "Traceback" not in result.stderr
