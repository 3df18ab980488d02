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
