"""A reseller's statement reconciles with its ledger: besides its own calls it pays for its
clients' calls (call_charges, one row per call per reseller level) and gives its clients
credit (transfer_to_client). Both move its balance, so both are on its statement: the
charges as a section of their own, one line per client of its own, and each transfer as
money out; the client receiving it sees a payment in.

The tree (tests/tenant/resellers.py): master -> r1 -> {k1, s -> g}; r1 pays 0.02/min for
44, sells at 0.05 to k1 and s; s sells at 0.09 to g. Calls go through the real authorize
and settle, the transfer through r1's own database login."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal

import pytest
from sqlalchemy import text
from sqlalchemy.engine import make_url

from fastagi.billing.admission import CallRequest
from fastagi.billing.statement import Period
from fastagi.commands import statement as statement_cli
from fastagi.store import calls, statements
from tests.support.ledger import ledger_at
from tests.support.sql import scalar
from tests.tenant.helpers import drop_accounts_with_prefix, prefix_for, query
from tests.tenant.resellers import Resellers

D = Decimal
LIMITS = calls.Limits(max_call_seconds=3600, dial_template="PJSIP/{number}@carrier",
                      stale_grace_seconds=300)


@pytest.fixture
def resellers(engine, db_url):
    database = make_url(db_url).database
    prefix = prefix_for(database)
    try:
        yield Resellers.create(engine, db_url, prefix)
    finally:
        with engine.begin() as conn:
            conn.execute(text("CALL drop_tenant_world()"))
        drop_accounts_with_prefix(engine, prefix)


def talk(engine, code: str, now: datetime, answered_ms: int) -> int:
    got = calls.authorize(engine, CallRequest(client_code=code, number="442071234567",
                                              direction="out", emergency=False), now, LIMITS)
    assert got.admission.allowed, got
    calls.settle(engine, got.call_id, answered_ms, "ANSWER", now)   # the same month
    return got.call_id


@pytest.fixture
def month(engine, resellers):
    """r1 gives k1 7.50 of credit, then k1 calls twice, g once (r1 pays for it through s),
    r1 once itself: the calls are stamped at the transfer's own time (the server's clock),
    so all of it falls in one month whatever the hour."""
    codes = resellers.codes
    with resellers.login("r1") as conn:
        query(conn, "CALL transfer_to_client(%s, 7.5, 'inv-7')", (codes["k1"],))
    with engine.connect() as conn:
        now = conn.execute(text(
            "SELECT p.created_at FROM transfers t JOIN payments p ON p.id = t.from_payment_id"
            " WHERE t.reference = 'inv-7'")).scalar_one().replace(microsecond=0)
    period = Period(now.year, now.month)
    talk(engine, codes["k1"], now, 60_000)      # r1 pays 0.0200, k1 pays 0.0500
    talk(engine, codes["k1"], now, 90_500)      # 91 s -> 120 s: r1 0.0400, k1 0.1000
    talk(engine, codes["g"], now, 30_000)       # r1 0.0200 (depth 2), s 0.0500, g 0.0900
    talk(engine, codes["r1"], now, 60_000)      # r1's own call: 0.0200
    return period, now


def test_every_level_s_statement_closes_at_its_balance(engine, resellers, month):
    period, now = month
    for name in ("r1", "s", "k1", "g"):
        made = statements.statement(engine, resellers.codes[name], period, now)
        with engine.connect() as conn:
            assert made.opening_balance == ledger_at(conn, resellers.ids[name], period.start)
            assert made.closing_balance == ledger_at(conn, resellers.ids[name], period.end)
        assert made.closing_balance == resellers.balance(name), name
        assert made.closing_balance == made.current_balance, name


def test_a_reseller_sees_what_it_paid_for_each_client_of_its_own(engine, resellers, month):
    period, now = month
    r1 = statements.statement(engine, resellers.codes["r1"], period, now)

    # its own call, by destination
    assert [(u.calls, u.seconds, u.cost) for u in r1.usage] == [(1, 60, D("0.0200"))]
    # its clients' calls, one line per client of its own (g's call is under s)
    assert [(c.code, c.calls, c.seconds, c.cost, c.sold) for c in r1.client_charges] == [
        (resellers.codes["k1"], 2, 180, D("0.0600"), D("0.1500")),
        (resellers.codes["s"], 1, 60, D("0.0200"), D("0.0500"))]
    assert r1.client_charges_cost == D("0.0800")
    # the transfer is money out, not a correction
    assert [(p.kind, p.amount) for p in r1.payment_rows if p.is_transfer] == [
        ("transfer", D("-7.5"))]
    assert r1.corrections == 0 and r1.transfers == D("-7.5")
    assert r1.closing_balance == (r1.opening_balance + r1.payments + r1.transfers
                                  - r1.usage_cost - r1.client_charges_cost)
    # k1 received it as a payment
    k1 = statements.statement(engine, resellers.codes["k1"], period, now)
    assert D("7.5") in [p.amount for p in k1.payment_rows if not p.is_correction]
    assert k1.client_charges == ()


def test_the_monthly_view_carries_the_charges_and_transfers(engine, resellers, month):
    period, now = month
    r1 = statements.statement(engine, resellers.codes["r1"], period, now)
    with engine.connect() as conn:
        row = conn.execute(text("SELECT * FROM statements WHERE client_id = :c AND period = :p"),
                           {"c": resellers.ids["r1"], "p": str(period)}).one()
    assert (row.opening_balance, row.payments, row.transfers, row.corrections, row.usage_cost,
            row.client_charges, row.closing_balance) == (
        r1.opening_balance, r1.payments, r1.transfers, r1.corrections, r1.usage_cost,
        r1.client_charges_cost, r1.closing_balance)
    assert row.closing_balance == scalar(engine, "SELECT balance FROM client_accounts"
                                         " WHERE client_id = :c", c=resellers.ids["r1"])


def test_the_renderers_show_the_clients_section(engine, resellers, month):
    period, now = month
    r1 = statements.statement(engine, resellers.codes["r1"], period, now)
    k1 = resellers.codes["k1"]

    table = statement_cli.render_table(r1)
    assert "Your clients' calls" in table
    assert any(line.split()[:4] == [k1, "2", "3.00", "0.0600"] for line in table.splitlines())
    assert any(line.startswith("Transfers to clients") and line.endswith("-7.5000")
               for line in table.splitlines())
    html = statement_cli.RENDERERS["html"](r1)
    assert "Your clients&#x27; calls" in html or "Your clients' calls" in html
    assert f"<td>{k1}</td>" in html
    as_json = statement_cli.as_dict(r1)
    assert as_json["client_charges"] == "0.0800"
    assert as_json["transfers"] == "-7.5000"
    assert as_json["client_charge_lines"][0]["client"] == k1
