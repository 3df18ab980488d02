"""Admins at work in stock Adminer and phpMyAdmin (headless Chromium), while the system
works the same rows (issue 19).

Adminer's edit form writes every column it loaded back; phpMyAdmin's writes the columns
that changed; a tenant view has no key, so both tools' UPDATE of it matches on every
column it loaded. Whatever the tool, a save does what the admin changed and nothing else:
what the system keeps (balances, admission counts, the dialer's progress) is never moved
back, and the ledger stays exact. Assertions read only what stays stable whatever table
keeps it: the `client_list` and `campaign_progress` views, the payments and calls ledger,
and what the page says.
"""

from __future__ import annotations

from datetime import datetime, timezone
from decimal import Decimal
from types import SimpleNamespace

import pytest
from sqlalchemy import text
from sqlalchemy.engine import make_url

from fastagi.billing.admission import CallRequest
from fastagi.store import calls as calls_store
from fastagi.store import dialer as dialer_store
from tests.builders import add_rate, default_plan_id, top_up
from tests.support.sql import rows, scalar
from tests.tenant.helpers import PASSWORD, drop_accounts_with_prefix, prefix_for

DIALER = dialer_store.DialerLimits(dialer="d1", claim_seconds=30, batch=50,
                                   emergency_numbers=("911", "112", "999"))
ALWAYS_OPEN = dict(window_days="mon,tue,wed,thu,fri,sat,sun", window_start="00:00:00",
                   window_end="23:59:59")


def now() -> datetime:
    return datetime.now(timezone.utc).replace(tzinfo=None)


def listed(engine, code: str) -> SimpleNamespace:
    """The client's `client_list` row."""
    found = rows(engine, "SELECT * FROM client_list WHERE code = :c", c=code)
    assert len(found) == 1, f"client_list has {len(found)} rows for {code}"
    return SimpleNamespace(**found[0]._mapping)


def ledger(engine, client_id: int) -> Decimal:
    return scalar(engine, "SELECT (SELECT COALESCE(SUM(amount), 0) FROM payments "
                          "        WHERE client_id = :c) "
                          "     - (SELECT COALESCE(SUM(cost), 0) FROM calls WHERE client_id = :c)",
                  c=client_id)


def admitted_calls(engine, client_id: int) -> int:
    """The server's admission count, from the table that keeps it (`clients` until issue
    19 moves it to `client_accounts`)."""
    table = scalar(engine, "SELECT table_name FROM information_schema.columns "
                           "WHERE table_schema = DATABASE() AND column_name = 'admitted_calls' "
                           "AND table_name IN ('client_accounts', 'clients') "
                           "ORDER BY table_name = 'client_accounts' DESC LIMIT 1")
    key = "client_id" if table == "client_accounts" else "id"
    return scalar(engine, f"SELECT admitted_calls FROM `{table}` WHERE `{key}` = :c", c=client_id)


def progress(engine, campaign_id: int) -> SimpleNamespace:
    found = rows(engine, "SELECT * FROM campaign_progress WHERE campaign_id = :g", g=campaign_id)
    return SimpleNamespace(**found[0]._mapping)


def admit(engine, code: str) -> int:
    got = calls_store.authorize(engine, CallRequest(code, "442071234567"), now(),
                                calls_store.Limits())
    assert got.admission.allowed, got.admission
    return got.call_id


def running_campaign(engine, client_id: int, contacts: int = 3) -> int:
    """A broadcast campaign the dialer may work now (calling window always open)."""
    with engine.begin() as conn:
        campaign = conn.execute(text(
            "INSERT INTO campaigns (client_id, name, recording, caller_id, calls_per_second, "
            "keep_free_channels, window_days, window_start, window_end) "
            "VALUES (:c, 'Spring offer', 'custom/promo', '442071234567', 20, 0, "
            ":window_days, :window_start, :window_end)"),
            {"c": client_id, **ALWAYS_OPEN}).lastrowid
        for n in range(contacts):
            conn.execute(text("INSERT INTO contacts (client_id, campaign_id, phone) "
                              "VALUES (:c, :g, :p)"),
                         {"c": client_id, "g": campaign, "p": f"4420700000{n:02d}"})
        conn.execute(text("UPDATE campaigns SET status = 'running' WHERE id = :g"),
                     {"g": campaign})
    return campaign


def dialer_works(engine, campaign_id: int) -> int:
    """One pass of the dialer on the campaign: contacts claimed, attempts started, its
    pacing clock forward. Returns how many calls it ordered."""
    return len(dialer_store.claim(engine, campaign_id, now(), DIALER).orders)


def assert_saved(outcome, tool) -> None:
    assert outcome.ok, f"{tool.name} refused the save: {outcome.text}"


# ---- a DBA: create, top up, suspend, reactivate, campaign settings ----------------------

def test_a_dba_creates_tops_up_suspends_and_reactivates_while_the_system_works(
        tool, dba, engine):
    with engine.begin() as conn:       # the default plan rates UK numbers
        add_rate(conn, default_plan_id(conn), "44", Decimal("0.06"))
    tool.login(*dba)

    tool.new("clients")                # rate_plan_id left as the form offers it
    tool.fill(code="acme", name="Acme Ltd")
    assert_saved(tool.save(), tool)
    acme = listed(engine, "acme")
    assert (acme.plan, acme.balance, acme.status) == ("default", Decimal("0"), "active")

    tool.new("payments")               # a top-up is an INSERT into payments
    tool.fill(client_id=str(acme.id), amount="50.00", reference="INV-1001")
    assert_saved(tool.save(), tool)
    assert listed(engine, "acme").balance == Decimal("50")

    first_call = admit(engine, "acme")
    campaign = running_campaign(engine, acme.id)

    # Suspend from the edit form, while a call settles, a payment lands, a call is
    # admitted and the dialer works the client's campaign between load and save.
    tool.edit("clients", {"id": acme.id})
    calls_store.settle(engine, first_call, 65_000, "ANSWER", now())
    with engine.begin() as conn:
        top_up(conn, acme.id, Decimal("5.00"), "INV-1002")
    second_call = admit(engine, "acme")
    assert dialer_works(engine, campaign) > 0
    moved = listed(engine, "acme")
    tool.fill(status="suspended", notes="late payer")
    assert_saved(tool.save(), tool)
    after = listed(engine, "acme")
    assert after.status == "suspended"
    assert after.balance == moved.balance == ledger(engine, acme.id) == (
        Decimal("55") - scalar(engine, "SELECT cost FROM calls WHERE id = :k", k=first_call))
    assert admitted_calls(engine, acme.id) >= 2
    stopped = progress(engine, campaign)      # the suspension stopped it, writing no campaign
    assert (stopped.status, stopped.state) == ("running", "suspended")

    # Reactivate, while the second call settles and another payment lands.
    tool.edit("clients", {"id": acme.id})
    calls_store.settle(engine, second_call, 30_000, "ANSWER", now())
    with engine.begin() as conn:
        top_up(conn, acme.id, Decimal("1.25"), "INV-1003")
    tool.fill(status="active")
    assert_saved(tool.save(), tool)
    after = listed(engine, "acme")
    assert after.status == "active"
    assert after.balance == ledger(engine, acme.id) == Decimal("56.25") - scalar(
        engine, "SELECT SUM(cost) FROM calls WHERE client_id = :c", c=acme.id)
    assert scalar(engine, "SELECT COUNT(*) FROM payments WHERE client_id = :c", c=acme.id) == 3
    resumed = progress(engine, campaign)      # reactivation: it runs again, nothing written
    assert (resumed.status, resumed.state) == ("running", "running")

    # A campaign form loaded before the dialer worked it and finished it.
    tool.edit("campaigns", {"id": campaign})
    dialer_works(engine, campaign)
    with engine.begin() as conn:       # every contact dialled: the dialer finishes it
        conn.execute(text("UPDATE contacts SET status = 'done' WHERE campaign_id = :g"),
                     {"g": campaign})
    assert dialer_store.finish_campaigns(engine) == [campaign]
    finished = progress(engine, campaign)
    tool.fill(max_channels="4")
    assert_saved(tool.save(), tool)
    after = progress(engine, campaign)
    # what people chose stays 'running'; the dialer's finding shows as the state
    assert (after.max_channels, after.status, after.state, after.finished_at) == (
        4, "running", "finished", finished.finished_at)
    assert after.finished_at is not None


# ---- a client login: pause a campaign the dialer is working ------------------------------

@pytest.fixture
def supervisor(engine, db_url):
    """A client with a running campaign and a supervisor with a database login:
    (account, password, tenant database, campaign id)."""
    database = make_url(db_url).database
    prefix = prefix_for(database)
    code = prefix + "a"
    try:
        with engine.begin() as conn:
            plan = default_plan_id(conn)
            add_rate(conn, plan, "44", Decimal("0.06"))
            client = conn.execute(text("INSERT INTO clients (code, name) VALUES (:c, :c)"),
                                  {"c": code}).lastrowid
            top_up(conn, client, Decimal("25"), "INV-1")
            conn.execute(text("INSERT INTO users (client_id, username, role) "
                              "VALUES (:c, :u, 'supervisor')"), {"c": client, "u": f"sup-{code}"})
        campaign = running_campaign(engine, client)
        with engine.begin() as conn:
            account = conn.execute(text("CALL grant_db_login(:c, :u, :p)"),
                                   {"c": code, "u": f"sup-{code}", "p": PASSWORD}).one().account
        yield account, PASSWORD, f"{database}_tenant", campaign
    finally:
        with engine.begin() as conn:
            conn.execute(text("CALL drop_tenant_world()"))
        drop_accounts_with_prefix(engine, prefix)


def test_a_client_login_pauses_a_running_campaign_the_dialer_is_working(
        tool, supervisor, engine):
    account, password, tenant_database, campaign = supervisor
    tool.login(account, password, tenant_database)
    assert dialer_works(engine, campaign) > 0
    tool.edit("campaigns", {"id": campaign})
    # Between load and save the dialer works on: more calls, and a note about the campaign.
    dialer_works(engine, campaign)
    with engine.begin() as conn:
        dialer_store._note(conn, SimpleNamespace(id=campaign, name="Spring offer"),
                           SimpleNamespace(dialer_note=None),
                           "queue sales is paused: no agent can take a call")
    attempts = scalar(engine, "SELECT COUNT(*) FROM campaign_attempts WHERE campaign_id = :g",
                      g=campaign)
    tool.fill(status="paused")
    outcome = tool.save()
    assert_saved(outcome, tool)
    after = progress(engine, campaign)
    assert after.status == "paused", (
        f"{tool.name} said {outcome.text!r} but the campaign is {after.status}")
    assert after.dialer_note == "queue sales is paused: no agent can take a call"
    assert scalar(engine, "SELECT COUNT(*) FROM campaign_attempts WHERE campaign_id = :g",
                  g=campaign) == attempts


# ---- what a refusal looks like in the tool ----------------------------------------------

REFUSALS = {
    "rate": "rates.rate_per_min takes at most 6 decimals and is never rounded",
    "topup": "a topup is money received and must be positive",
    "channels": "clients.channel_limit is at most 10000 simultaneous calls",
}


def test_the_refusals_a_form_shows_and_a_procedure_called_from_the_tool(tool, dba, engine):
    tool.login(*dba)
    plan = scalar(engine, "SELECT id FROM rate_plans WHERE is_default = 1")
    master = listed(engine, "master")
    shown = {}

    tool.new("rates")
    tool.fill(rate_plan_id=str(plan), prefix="44", description="UK", rate_per_min="0.0000004")
    shown["rate"] = tool.save()
    tool.new("payments")
    tool.fill(client_id=str(master.id), amount="-5", reference="INV-1")
    shown["topup"] = tool.save()
    tool.edit("clients", {"id": master.id})
    tool.fill(channel_limit="100000")
    shown["channels"] = tool.save()

    for case, words in REFUSALS.items():
        assert not shown[case].ok, f"{tool.name} took the {case} form: {shown[case].text}"
        assert words in shown[case].text, (case, shown[case].text)
        assert "ck_" not in shown[case].text and "fk_" not in shown[case].text
    assert scalar(engine, "SELECT COUNT(*) FROM rates") == 0
    assert scalar(engine, "SELECT COUNT(*) FROM payments") == 0
    assert listed(engine, "master").balance == master.balance
    assert listed(engine, "master").channels == master.channels

    # The procedures' Call forms have their parameters for the documented DBA grants.
    paid = tool.call("add_payment", p_code="master", p_amount="5.00", p_reference="INV-M1")
    assert paid.ok and "master" in paid.text, paid.text
    assert listed(engine, "master").balance == master.balance + Decimal("5")
    called = tool.call("create_client", p_code="delta", p_name="Delta Ltd", p_plan="",
                       p_channels="5", p_opening_balance="10.00")
    assert called.ok and "delta" in called.text, called.text
    delta = listed(engine, "delta")
    assert (delta.plan, delta.channels, delta.balance) == ("default", 5, Decimal("10"))


def test_every_procedure_declares_its_parameters_so_adminer_can_read_them(engine):
    """Adminer 4.8.1 builds a Call form by parsing SHOW CREATE PROCEDURE's parameter list;
    its grammar takes `CHARACTER SET x` after a type but not `COLLATE y`, and a list it
    cannot parse gives an empty form (schema 097). No browser needed to check that."""
    unreadable = rows(engine, "SELECT name, param_list FROM mysql.proc "
                              "WHERE db = DATABASE() AND type = 'PROCEDURE' "
                              "AND CONVERT(param_list USING utf8mb4) LIKE '%COLLATE%' "
                              "ORDER BY name")
    assert [name for name, _ in unreadable] == []
