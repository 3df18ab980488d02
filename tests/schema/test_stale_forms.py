"""A form loaded before the system moved a client's row (Adminer writes every column back;
phpMyAdmin writes the changed ones): the changed-columns save does exactly what the admin
changed; a full-row save that would move back what the system keeps is refused with what
to do, never taken silently. A campaign row holds only what people set (the dialer keeps
its state in campaign_runs), so a stale campaign form does exactly what the admin changed.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from decimal import Decimal

import pytest
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError

from fastagi.store import dialer as dialer_store
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
