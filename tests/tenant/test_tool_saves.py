"""A client user's save from Adminer through a tenant view (a view has no key, so the
tool's UPDATE matches on every column it loaded, LIMIT 1) still finds a campaign the dialer
worked in between: the dialer's writes leave updated_at, the last change people made."""

from __future__ import annotations

from datetime import datetime
from types import SimpleNamespace

from sqlalchemy import text

from fastagi.store import dialer as dialer_store
from tests.builders import make_campaign, make_client


def keyless_update(conn, view: str, loaded: dict, **changes) -> int:
    """What Adminer sends for a table without a key: SET the changes, WHERE every column."""
    where = " AND ".join(f"`{c}` IS NULL" if v is None else f"`{c}` = %({c})s"
                         for c, v in loaded.items())
    sets = ", ".join(f"`{c}` = %(set_{c})s" for c in changes)
    with conn.cursor() as cur:
        cur.execute(f"UPDATE `{view}` SET {sets} WHERE {where} LIMIT 1",
                    {**loaded, **{f"set_{c}": v for c, v in changes.items()}})
        return cur.rowcount


def test_a_supervisor_pauses_a_campaign_the_dialer_is_working(world):
    a = world.clients["a"]
    with world.engine.begin() as conn:
        conn.execute(text("UPDATE campaigns SET status = 'running', caller_id = '4420' "
                          "WHERE id = :id"), {"id": a.campaign_id})
    supervisor = world.login("a", "supervisor")
    try:
        with supervisor.cursor() as cur:
            cur.execute("SELECT * FROM campaigns WHERE id = %s", (a.campaign_id,))
            names = [d[0] for d in cur.description]
            loaded = dict(zip(names, cur.fetchone()))
        with world.engine.begin() as conn:     # the dialer works the campaign meanwhile
            conn.execute(text("DO SLEEP(1.1)"))  # so a moved updated_at would differ
            conn.execute(text("UPDATE campaigns SET pacing_clock = UTC_TIMESTAMP(6), "
                              "updated_at = updated_at WHERE id = :id"), {"id": a.campaign_id})
            dialer_store._note(conn, SimpleNamespace(id=a.campaign_id, name="Spring",
                                                     dialer_note=None), None)
        assert keyless_update(supervisor, "campaigns", loaded, status="paused") == 1
    finally:
        supervisor.close()
    with world.engine.connect() as conn:
        assert conn.execute(text("SELECT status FROM campaigns WHERE id = :id"),
                            {"id": a.campaign_id}).scalar_one() == "paused"


def test_the_dialers_writes_leave_updated_at(engine):
    with engine.begin() as conn:
        acme = make_client(conn, "acme")
        campaign = make_campaign(conn, acme.id, "Spring")
        conn.execute(text("UPDATE campaigns SET updated_at = '2020-01-01 00:00:00' "
                          "WHERE id = :id"), {"id": campaign})
        row = SimpleNamespace(id=campaign, name="Spring", dialer_note=None)
        dialer_store._note(conn, row, "bad time zone")
        assert conn.execute(text("SELECT dialer_note, updated_at FROM campaigns WHERE id = :id"),
                            {"id": campaign}).one() == ("bad time zone", datetime(2020, 1, 1))
