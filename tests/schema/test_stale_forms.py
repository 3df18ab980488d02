"""A form loaded before the system moved a client's row (Adminer writes every column back;
phpMyAdmin writes the changed ones): the changed-columns save does exactly what the admin
changed; a full-row save that would move back what the system keeps is refused with what
to do, never taken silently. (Moving that state off the edited row is still open: issue 19.)
"""

from __future__ import annotations

from decimal import Decimal

import pytest
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError

from tests.builders import make_client, top_up

RELOAD = "reload the form and save again"


def load_form(conn, client_id: int) -> dict:
    return dict(conn.execute(text("SELECT * FROM clients WHERE id = :id"),
                             {"id": client_id}).mappings().one())


def full_row_save(conn, form: dict, **changes) -> None:
    """What Adminer's edit form sends: every column as loaded (changes applied), updated_at
    as NOW() (its ON UPDATE column), WHERE on the primary key."""
    values = {**form, **changes}
    columns = [c for c in values if c not in ("id", "updated_at")]
    assignments = ", ".join(f"`{c}` = :{c}" for c in columns)
    conn.execute(text(f"UPDATE clients SET {assignments}, updated_at = NOW() WHERE id = :id"),
                 values)


def admit(conn, client_id: int) -> None:
    """The write authorize makes to the client row (fastagi/store/calls.py)."""
    conn.execute(text("UPDATE clients SET admitted_calls = admitted_calls + 1, "
                      "updated_at = updated_at WHERE id = :id"), {"id": client_id})


@pytest.mark.parametrize("moved", ["balance", "admitted_calls"])
def test_a_stale_full_row_save_is_refused_with_what_to_do(engine, moved):
    with engine.begin() as conn:
        acme = make_client(conn, "acme", balance=Decimal("10"))
        admit(conn, acme.id)
        form = load_form(conn, acme.id)
    with engine.begin() as conn:        # a top-up or an admission while the form is open
        if moved == "balance":
            top_up(conn, acme.id, Decimal("5"), "INV-1")
        else:
            admit(conn, acme.id)
    with pytest.raises(DBAPIError) as refused:
        with engine.begin() as conn:
            full_row_save(conn, form, status="suspended", notes="late payer")
    assert RELOAD in refused.value.orig.args[1]
    assert refused.value.orig.args[1].startswith(f"clients.{moved} ")
    with engine.begin() as conn:        # reloaded: the same save goes through
        full_row_save(conn, load_form(conn, acme.id), status="suspended", notes="late payer")
    with engine.connect() as conn:
        row = load_form(conn, acme.id)
    assert (row["status"], row["notes"], row["balance"], row["admitted_calls"]) == (
        "suspended", "late payer", Decimal("15") if moved == "balance" else Decimal("10"),
        1 if moved == "balance" else 2)


def test_a_changed_columns_save_does_exactly_what_the_admin_changed(engine):
    with engine.begin() as conn:
        acme = make_client(conn, "acme", balance=Decimal("10"))
        admit(conn, acme.id)
    with engine.begin() as conn:        # moved after phpMyAdmin loaded its form
        top_up(conn, acme.id, Decimal("5"), "INV-1")
        admit(conn, acme.id)
    with engine.begin() as conn:        # phpMyAdmin: only the changed columns
        conn.execute(text("UPDATE clients SET status = 'suspended', notes = 'late payer' "
                          "WHERE id = :id"), {"id": acme.id})
    with engine.connect() as conn:
        row = load_form(conn, acme.id)
    assert (row["status"], row["notes"], row["balance"], row["admitted_calls"]) == (
        "suspended", "late payer", Decimal("15"), 2)


def test_a_fresh_full_row_save_goes_through(engine):
    with engine.begin() as conn:
        acme = make_client(conn, "acme", balance=Decimal("10"))
        form = load_form(conn, acme.id)
        full_row_save(conn, form, channel_limit=7, notes="more lines")
    with engine.connect() as conn:
        row = load_form(conn, acme.id)
    assert (row["channel_limit"], row["notes"], row["balance"]) == (7, "more lines", Decimal("10"))


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
