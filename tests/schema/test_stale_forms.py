"""A form loaded before the system moved a client (Adminer writes every column back;
phpMyAdmin writes the changed ones): both saves do exactly what the admin changed and
nothing else. What the system keeps (balance, admitted calls, the time the balance moved)
lives in client_accounts (schema/093), which no client form writes, so a stale save can
neither be refused for it nor move it back; a hand-written change of it is refused in
words. Campaigns below: the dialer's clock and finish.
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal

import pytest
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError

from fastagi.billing.admission import CallRequest
from fastagi.store import calls
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


# ---- campaigns: the dialer's clock and finish -------------------------------------------

def load_campaign(conn, campaign_id: int) -> dict:
    return dict(conn.execute(text("SELECT * FROM campaigns WHERE id = :id"),
                             {"id": campaign_id}).mappings().one())


def full_row_save_campaign(conn, form: dict, **changes) -> None:
    values = {**form, **changes}
    columns = [c for c in values if c not in ("id", "updated_at")]
    assignments = ", ".join(f"`{c}` = :{c}" for c in columns)
    conn.execute(text(f"UPDATE campaigns SET {assignments}, updated_at = NOW() WHERE id = :id"),
                 values)


def dialer_works(conn, campaign_id: int, finish: bool) -> None:
    """What the dialer writes (fastagi/campaigns/dialer_store.py): the clock forward, and
    'finished' when no contact is left."""
    conn.execute(text("UPDATE campaigns SET pacing_clock = UTC_TIMESTAMP(6) WHERE id = :id"),
                 {"id": campaign_id})
    if finish:
        conn.execute(text("UPDATE campaigns SET status = 'finished' WHERE id = :id "
                          "AND status = 'running'"), {"id": campaign_id})


@pytest.fixture
def running_campaign(engine):
    with engine.begin() as conn:
        acme = make_client(conn, "acme")
        campaign = conn.execute(text(
            "INSERT INTO campaigns (client_id, name, status, caller_id, pacing_clock) "
            "VALUES (:c, 'spring', 'running', '4420', UTC_TIMESTAMP(6) - INTERVAL 1 MINUTE)"),
            {"c": acme.id}).lastrowid
    return campaign


@pytest.mark.parametrize("finish", [False, True], ids=["clock moved", "finished"])
def test_a_stale_campaign_form_cannot_put_back_the_dialers_state(engine, running_campaign,
                                                                  finish):
    with engine.connect() as conn:
        form = load_campaign(conn, running_campaign)
    with engine.begin() as conn:
        dialer_works(conn, running_campaign, finish)
        moved = load_campaign(conn, running_campaign)
    with pytest.raises(DBAPIError) as refused:
        with engine.begin() as conn:
            full_row_save_campaign(conn, form, max_channels=4)
    assert RELOAD in refused.value.orig.args[1]
    assert refused.value.orig.args[1].startswith("campaigns.pacing_clock and finished_at are "
                                                 "kept by the dialer")
    with engine.connect() as conn:
        assert load_campaign(conn, running_campaign) == moved
    with engine.begin() as conn:        # reloaded: the save goes through, nothing moved back
        full_row_save_campaign(conn, load_campaign(conn, running_campaign), max_channels=4)
    with engine.connect() as conn:
        after = load_campaign(conn, running_campaign)
    assert (after["max_channels"], after["status"], after["pacing_clock"],
            after["finished_at"]) == (4, moved["status"], moved["pacing_clock"],
                                      moved["finished_at"])


def test_a_changed_columns_pause_of_a_campaign_the_dialer_works_goes_through(
        engine, running_campaign):
    with engine.begin() as conn:
        dialer_works(conn, running_campaign, finish=False)
        clock = load_campaign(conn, running_campaign)["pacing_clock"]
    with engine.begin() as conn:        # phpMyAdmin: only the changed column
        conn.execute(text("UPDATE campaigns SET status = 'paused' WHERE id = :id"),
                     {"id": running_campaign})
    with engine.connect() as conn:
        after = load_campaign(conn, running_campaign)
    assert (after["status"], after["pacing_clock"]) == ("paused", clock)
