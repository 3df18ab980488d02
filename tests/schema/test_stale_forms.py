"""A form loaded before the system moved a row (Adminer writes every column back;
phpMyAdmin writes the changed ones): both saves do exactly what the admin changed and
nothing else. What the system keeps lives apart from the rows people edit: a client's
balance, admitted calls and the time the balance moved in client_accounts (schema/093), a
campaign's pacing clock, note and finish in campaign_runs (095). A stale save can neither be
refused for them nor move them back; a hand-written change of client_accounts is refused
in words.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from decimal import Decimal

import pytest
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError

from fastagi.billing.admission import CallRequest
from fastagi.store import calls
from fastagi.store import dialer as dialer_store
from tests.builders import add_rate, ledger_balance, make_client, top_up

RELOAD = "reload the form and save again"
LIMITS = calls.Limits(max_call_seconds=3600, stale_grace_seconds=300)
NOW = datetime(2026, 11, 25, 12, 0, 0)


def load_form(conn, client_id: int) -> dict:
    return dict(conn.execute(text("SELECT * FROM clients WHERE id = :id"),
                             {"id": client_id}).mappings().one())


def account(conn, client_id: int) -> dict:
    return dict(conn.execute(text("SELECT * FROM client_accounts WHERE client_id = :id"),
                             {"id": client_id}).mappings().one())


def full_row_save(conn, form: dict, table: str = "clients", key: str = "id",
                  **changes) -> int:
    """What Adminer's edit form sends: every column as loaded (changes applied), updated_at
    as NOW() (its ON UPDATE column), WHERE on the primary key. Returns the rows changed."""
    values = {**form, **changes}
    columns = [c for c in values if c not in (key, "updated_at")]
    assignments = ", ".join(f"`{c}` = :{c}" for c in columns)
    stamp = ", updated_at = NOW()" if "updated_at" in form else ""
    return conn.execute(text(f"UPDATE {table} SET {assignments}{stamp} WHERE {key} = :{key}"),
                        values).rowcount


@pytest.fixture
def acme(engine):
    """A client with 10.00, a rated destination, one call already admitted and settled."""
    with engine.begin() as conn:
        plan = conn.execute(text("SELECT id FROM rate_plans WHERE is_default = 1")).scalar_one()
        add_rate(conn, plan, "44", Decimal("0.60"), Decimal("0"), 60, 60)
        client = make_client(conn, "acme", balance=Decimal("10"))
    call_and_settle(engine, 60_000)
    return client


def call_and_settle(engine, answered_ms: int) -> int:
    """An admission and a settle as the server makes them (fastagi/store/calls.py)."""
    got = calls.authorize(engine, CallRequest("acme", "442071234567", "out", False), NOW, LIMITS)
    assert got.admission.allowed
    calls.settle(engine, got.call_id, answered_ms, "ANSWER", NOW)
    return got.call_id


def system_moves(engine, client_id: int) -> None:
    """While the form is open: a call is admitted and settled, a payment is made."""
    call_and_settle(engine, 120_000)                 # 2 min at 0.60: -1.20
    with engine.begin() as conn:
        top_up(conn, client_id, Decimal("5"), "INV-1")


def test_a_stale_full_row_save_does_exactly_what_the_admin_changed(engine, acme):
    with engine.connect() as conn:
        form = load_form(conn, acme.id)              # Adminer's edit form, loaded
        before = account(conn, acme.id)
    system_moves(engine, acme.id)
    with engine.connect() as conn:
        moved = account(conn, acme.id)
    assert (moved["balance"], moved["admitted_calls"]) == (Decimal("13.2"), 2)
    with engine.begin() as conn:                     # saved minutes later: every column
        assert full_row_save(conn, form, status="suspended", notes="late payer") == 1
    with engine.connect() as conn:
        row, after = load_form(conn, acme.id), account(conn, acme.id)
        exact = ledger_balance(conn, acme.id)
    assert (row["status"], row["notes"]) == ("suspended", "late payer")
    assert row["suspended_at"] is not None
    assert after == moved != before                  # nothing the system keeps moved back
    assert after["balance"] == exact == Decimal("13.2")
    untouched = {k: v for k, v in row.items()
                 if k not in ("status", "notes", "suspended_at", "updated_at")}
    assert untouched == {k: v for k, v in form.items()
                         if k not in ("status", "notes", "suspended_at", "updated_at")}


def test_a_changed_columns_save_does_exactly_what_the_admin_changed(engine, acme):
    system_moves(engine, acme.id)                    # after phpMyAdmin loaded its form
    with engine.connect() as conn:
        moved = account(conn, acme.id)
    with engine.begin() as conn:                     # phpMyAdmin: only the changed columns
        conn.execute(text("UPDATE clients SET status = 'suspended', notes = 'late payer' "
                          "WHERE id = :id"), {"id": acme.id})
    with engine.begin() as conn:
        conn.execute(text("UPDATE clients SET status = 'active' WHERE id = :id"),
                     {"id": acme.id})
    with engine.connect() as conn:
        row, after = load_form(conn, acme.id), account(conn, acme.id)
        exact = ledger_balance(conn, acme.id)
    assert (row["status"], row["notes"]) == ("active", "late payer")
    assert after == moved and after["balance"] == exact == Decimal("13.2")


def test_system_writes_never_move_the_clients_row(engine, acme):
    """Admissions, settles and payments write client_accounts only: clients.updated_at
    stays the last change by an admin, and the account says when the balance moved."""
    with engine.begin() as conn:
        conn.execute(text("UPDATE clients SET updated_at = '2026-01-01 00:00:00' "
                          "WHERE id = :id"), {"id": acme.id})
        form = load_form(conn, acme.id)
    system_moves(engine, acme.id)
    with engine.connect() as conn:
        assert load_form(conn, acme.id) == form
        assert account(conn, acme.id)["balance_moved_at"] is not None


@pytest.mark.parametrize("statement, message", [
    ("UPDATE client_accounts SET balance = 1000 WHERE client_id = :id",
     "client_accounts.balance is kept by the ledger: INSERT INTO payments"),
    ("UPDATE client_accounts SET admitted_calls = 0 WHERE client_id = :id",
     "client_accounts.admitted_calls is counted by the server"),
    ("DELETE FROM client_accounts WHERE client_id = :id",
     "client_accounts rows go with their client"),
])
def test_a_hand_written_change_of_the_account_is_refused_in_words(engine, acme, statement,
                                                                  message):
    with engine.connect() as conn:
        before = account(conn, acme.id)
    with pytest.raises(DBAPIError) as refused:
        with engine.begin() as conn:
            conn.execute(text(statement), {"id": acme.id})
    assert refused.value.orig.args[1].startswith(message)
    with engine.connect() as conn:
        assert account(conn, acme.id) == before
        assert before["balance"] == ledger_balance(conn, acme.id) == Decimal("9.4")


def test_a_stale_full_row_save_of_the_account_is_refused_and_moves_nothing_back(engine, acme):
    """Someone opens client_accounts itself in Adminer and saves a form loaded before a
    settle and a payment: refused in words (the balance differs from what is stored)."""
    with engine.connect() as conn:
        form = account(conn, acme.id)
    system_moves(engine, acme.id)
    with engine.connect() as conn:
        moved = account(conn, acme.id)
    with pytest.raises(DBAPIError) as refused:
        with engine.begin() as conn:
            full_row_save(conn, form, table="client_accounts", key="client_id")
    assert refused.value.orig.args[1].startswith("client_accounts.balance is kept by the ledger")
    with engine.connect() as conn:
        assert account(conn, acme.id) == moved
        assert moved["balance"] == ledger_balance(conn, acme.id) == Decimal("13.2")


def test_a_fresh_full_row_save_goes_through(engine):
    with engine.begin() as conn:
        acme = make_client(conn, "acme", balance=Decimal("10"))
        form = load_form(conn, acme.id)
        full_row_save(conn, form, channel_limit=7, notes="more lines")
    with engine.connect() as conn:
        row = load_form(conn, acme.id)
        money = account(conn, acme.id)["balance"]
    assert (row["channel_limit"], row["notes"], row["opening_balance"], money) == (
        7, "more lines", Decimal("10"), Decimal("10"))


# ---- campaigns: what people set, beside what the dialer keeps -------------------------
# The dialer writes only campaign_runs (schema/095), so a campaign form holds only what
# people set: saved whole from a form loaded before the dialer worked (or finished) the
# campaign, it does exactly what the admin changed, and the dialer's state stays as the
# dialer left it.

DIALER = dialer_store.DialerLimits("d1", 30, 50, ())
NOON = datetime(2026, 12, 3, 12, 0)


def load_campaign(conn, campaign_id: int) -> dict:
    return dict(conn.execute(text("SELECT * FROM campaigns WHERE id = :id"),
                             {"id": campaign_id}).mappings().one())


def full_row_save_campaign(conn, form: dict, **changes) -> int:
    """Adminer's edit form: every column as loaded (changes applied), updated_at as NOW()
    (its ON UPDATE column), WHERE on the primary key."""
    values = {**form, **changes}
    columns = [c for c in values if c not in ("id", "updated_at")]
    assignments = ", ".join(f"`{c}` = :{c}" for c in columns)
    return conn.execute(text(f"UPDATE campaigns SET {assignments}, updated_at = NOW() "
                             f"WHERE id = :id"), values).rowcount


def dialer_state(conn, campaign_id: int) -> tuple:
    return tuple(conn.execute(text(
        "SELECT r.finished, r.finished_at, r.pacing_clock, r.dialer_note, p.state "
        "FROM campaign_runs r JOIN campaign_progress p ON p.campaign_id = r.campaign_id "
        "WHERE r.campaign_id = :id"), {"id": campaign_id}).one())


def dial_everyone(engine, campaign_id: int) -> None:
    """The dialer at work: claims the contacts (the clock moves), their calls end
    (failed for good: one attempt allowed), and it finds the campaign finished."""
    assert len(dialer_store.claim(engine, campaign_id, NOON, DIALER).orders) == 2
    with engine.begin() as conn:
        conn.execute(text("UPDATE campaign_attempts SET outcome = 'failed', ended_at = :t "
                          "WHERE campaign_id = :id"), {"id": campaign_id, "t": NOON})
    dialer_store.finish_attempts(engine, NOON, DIALER)
    assert dialer_store.finish_campaigns(engine) == [campaign_id]


@pytest.fixture
def running_campaign(engine):
    with engine.begin() as conn:
        acme = make_client(conn, "acme", balance=Decimal("10"))
        campaign = conn.execute(text(
            "INSERT INTO campaigns (client_id, name, status, caller_id, recording, max_attempts,"
            " calls_per_second, window_days, window_start, window_end) VALUES (:c, 'spring',"
            " 'running', '4420', 'custom/offer', 1, 1000, 'mon,tue,wed,thu,fri,sat,sun',"
            " '00:00', '23:59:59')"),
            {"c": acme.id}).lastrowid
        conn.execute(text("INSERT INTO contacts (client_id, campaign_id, phone) "
                          "VALUES (:c, :g, '442071230001'), (:c, :g, '442071230002')"),
                     {"c": acme.id, "g": campaign})
    return campaign


@pytest.mark.parametrize("finish", [False, True], ids=["clock moved", "finished"])
def test_a_stale_full_row_campaign_save_does_exactly_what_the_admin_changed(
        engine, running_campaign, finish):
    with engine.connect() as conn:
        form = load_campaign(conn, running_campaign)
    assert not {"pacing_clock", "finished_at", "dialer_note", "finished"} & form.keys()
    if finish:
        dial_everyone(engine, running_campaign)
    else:
        assert dialer_store.claim(engine, running_campaign, NOON, DIALER).orders
    with engine.connect() as conn:
        moved = dialer_state(conn, running_campaign)
    assert moved[2] is not None and moved[4] == ("finished" if finish else "running")
    with engine.begin() as conn:        # Adminer: the form loaded before the dialer worked
        assert full_row_save_campaign(conn, form, max_channels=4) == 1
    with engine.connect() as conn:
        after = load_campaign(conn, running_campaign)
        assert dialer_state(conn, running_campaign) == moved
    assert {c: v for c, v in after.items() if c != "updated_at"} == {
        **{c: v for c, v in form.items() if c != "updated_at"}, "max_channels": 4}


def test_a_changed_columns_pause_of_a_campaign_the_dialer_works_goes_through(
        engine, running_campaign):
    assert dialer_store.claim(engine, running_campaign, NOON, DIALER).orders
    with engine.connect() as conn:
        moved = dialer_state(conn, running_campaign)
    with engine.begin() as conn:        # phpMyAdmin: only the changed column
        assert conn.execute(text("UPDATE campaigns SET status = 'paused' WHERE id = :id"),
                            {"id": running_campaign}).rowcount == 1
    with engine.connect() as conn:
        assert load_campaign(conn, running_campaign)["status"] == "paused"
        assert dialer_state(conn, running_campaign) == moved[:4] + ("paused",)


def test_a_finished_campaign_runs_again_when_it_gets_contacts(engine, running_campaign):
    """'finished' is the dialer's finding, not a status people set: new contacts to dial
    make the campaign dial again, and it is found finished again when they are done."""
    dial_everyone(engine, running_campaign)
    with engine.begin() as conn:
        first_finish = dialer_state(conn, running_campaign)[1]
        conn.execute(text("INSERT INTO contacts (client_id, campaign_id, phone) "
                          "SELECT client_id, id, '442071230003' FROM campaigns WHERE id = :g"),
                     {"g": running_campaign})
    assert running_campaign in {c.id for c in dialer_store.running_campaigns(engine)}
    assert dialer_store.finish_campaigns(engine) == []       # not finished any more
    with engine.connect() as conn:
        assert dialer_state(conn, running_campaign)[0::4] == (0, "running")
    result = dialer_store.claim(engine, running_campaign, NOON + timedelta(minutes=1), DIALER)
    assert [o.phone for o in result.orders] == ["442071230003"]
    with engine.connect() as conn:
        assert dialer_state(conn, running_campaign)[1] == first_finish   # when it last finished


def test_finished_is_not_a_status_people_set(engine, running_campaign):
    with pytest.raises(DBAPIError) as refused:
        with engine.begin() as conn:
            conn.execute(text("UPDATE campaigns SET status = 'finished' WHERE id = :id"),
                         {"id": running_campaign})
    assert refused.value.orig.args[0] == 1265        # not one of draft, running, paused


# ---- a suspension writes no campaign row (schema/150) ------------------------------------

def test_a_campaign_form_loaded_before_a_suspension_and_saved_after_reactivation(
        engine, running_campaign):
    """The form holds status 'running' from before the suspension; saved whole after
    reactivation it writes back what people set, and the campaign dials again."""
    with engine.connect() as conn:
        form = load_campaign(conn, running_campaign)
    with engine.begin() as conn:
        conn.execute(text("UPDATE clients SET status = 'suspended' WHERE code = 'acme'"))
    with engine.connect() as conn:
        assert load_campaign(conn, running_campaign) == form     # the suspension wrote nothing
        assert dialer_state(conn, running_campaign)[4] == "suspended"
    assert running_campaign not in {c.id for c in dialer_store.running_campaigns(engine)}
    assert dialer_store.claim(engine, running_campaign, NOON, DIALER).orders == ()
    with engine.begin() as conn:
        conn.execute(text("UPDATE clients SET status = 'active' WHERE code = 'acme'"))
    with engine.begin() as conn:        # Adminer: the form loaded before the suspension
        assert full_row_save_campaign(conn, form, max_channels=4) == 1
    with engine.connect() as conn:
        after = load_campaign(conn, running_campaign)
        assert (after["status"], after["max_channels"]) == ("running", 4)
        assert dialer_state(conn, running_campaign)[4] == "running"
    assert running_campaign in {c.id for c in dialer_store.running_campaigns(engine)}
    assert len(dialer_store.claim(engine, running_campaign, NOON, DIALER).orders) == 2


def test_a_campaign_form_saved_during_a_suspension_does_not_make_it_dial(
        engine, running_campaign):
    """The hostile side: a form loaded before the suspension (status running) and saved
    during it leaves the campaign stopped until reactivation; a paused one stays paused."""
    with engine.connect() as conn:
        form = load_campaign(conn, running_campaign)
    with engine.begin() as conn:
        conn.execute(text("UPDATE clients SET status = 'suspended' WHERE code = 'acme'"))
    with engine.begin() as conn:
        assert full_row_save_campaign(conn, form, max_channels=4) == 1
    with engine.connect() as conn:
        assert dialer_state(conn, running_campaign)[4] == "suspended"
    assert running_campaign not in {c.id for c in dialer_store.running_campaigns(engine)}
    assert dialer_store.claim(engine, running_campaign, NOON, DIALER).orders == ()
    with engine.begin() as conn:        # people pause it during the suspension
        conn.execute(text("UPDATE campaigns SET status = 'paused' WHERE id = :id"),
                     {"id": running_campaign})
        conn.execute(text("UPDATE clients SET status = 'active' WHERE code = 'acme'"))
    with engine.connect() as conn:
        assert load_campaign(conn, running_campaign)["status"] == "paused"
        assert dialer_state(conn, running_campaign)[4] == "paused"
    assert dialer_store.claim(engine, running_campaign, NOON, DIALER).orders == ()
