"""A client user's saves from Adminer and phpMyAdmin through the tenant `campaigns` view
while the dialer works the campaign. A view has no key, so both tools' UPDATE matches on
every column they loaded (LIMIT 1): Adminer also writes every column back, phpMyAdmin only
the changed ones. The view shows only what people set and the dialer writes only
campaign_runs (schema/095, 096), so the save finds its row and does exactly what the user
changed; the dialer's state stays as the dialer left it. Beside it, the hostile side: the
dialer's state is read-only and another client's is out of reach."""

from __future__ import annotations

import threading
from datetime import datetime, timedelta

import pytest
from sqlalchemy import text

from fastagi.store import dialer as dialer_store
from tests.tenant.helpers import error_code, execute, query

LIMITS = dialer_store.DialerLimits("d1", 30, 50, ())
ALWAYS_OPEN = ("window_days = 'mon,tue,wed,thu,fri,sat,sun', window_start = '00:00:00', "
               "window_end = '23:59:59'")


def load(conn, view: str, campaign_id: int) -> dict:
    """The row as the tool's edit form loads it."""
    with conn.cursor() as cur:
        cur.execute(f"SELECT * FROM `{view}` WHERE id = %s", (campaign_id,))
        names = [d[0] for d in cur.description]
        return dict(zip(names, cur.fetchone()))


def keyless_update(conn, view: str, loaded: dict, changes: dict) -> int:
    """A tool's UPDATE of a row of a view without a key: SET `changes`, WHERE every
    column as loaded, LIMIT 1. Adminer's SET is the whole form, phpMyAdmin's the
    changed columns."""
    where = " AND ".join(f"`{c}` IS NULL" if v is None else f"`{c}` = %({c})s"
                         for c, v in loaded.items())
    sets = ", ".join(f"`{c}` = %(set_{c})s" for c in changes)
    with conn.cursor() as cur:
        cur.execute(f"UPDATE `{view}` SET {sets} WHERE {where} LIMIT 1",
                    {**loaded, **{f"set_{c}": v for c, v in changes.items()}})
        return cur.rowcount


def adminer(loaded: dict, **changes) -> dict:
    return {c: v for c, v in {**loaded, **changes}.items() if c != "id"}


def phpmyadmin(loaded: dict, **changes) -> dict:
    return {c: v for c, v in changes.items() if loaded[c] != v}


def running_with_contacts(world, letter: str, contacts: int) -> int:
    """The client's campaign (it has one contact already) running, with more contacts."""
    entry = world.clients[letter]
    with world.engine.begin() as conn:
        conn.execute(text(
            f"UPDATE campaigns SET status = 'running', caller_id = '4420', "
            f"recording = 'custom/offer', calls_per_second = 1000, {ALWAYS_OPEN} "
            f"WHERE id = :id"), {"id": entry.campaign_id})
        for n in range(contacts):
            conn.execute(text("INSERT INTO contacts (client_id, campaign_id, phone) "
                              "VALUES (:c, :g, :p)"),
                         {"c": entry.id, "g": entry.campaign_id, "p": f"4420{n:08d}"})
    return entry.campaign_id


def run_row(world, campaign_id: int) -> tuple:
    with world.engine.connect() as conn:
        return tuple(conn.execute(text(
            "SELECT finished, finished_at, pacing_clock, dialer_note FROM campaign_runs "
            "WHERE campaign_id = :g"), {"g": campaign_id}).one())


@pytest.mark.parametrize("tool", [adminer, phpmyadmin])
def test_a_supervisor_pauses_a_campaign_the_dialer_is_working(world, tool):
    campaign = running_with_contacts(world, "a", 5)
    now = datetime(2026, 12, 3, 12, 0)
    supervisor = world.login("a", "supervisor")
    try:
        loaded = load(supervisor, "campaigns", campaign)
        assert "pacing_clock" not in loaded and "updated_at" not in loaded
        # the dialer works the campaign between the load and the save
        assert len(dialer_store.claim(world.engine, campaign, now, LIMITS).orders) == 6
        moved = run_row(world, campaign)
        assert moved[2] is not None
        with world.engine.begin() as conn:   # ... and people's timestamps are not its
            conn.execute(text("DO SLEEP(1.1)"))
        assert keyless_update(supervisor, "campaigns", loaded,
                              tool(loaded, status="paused", max_channels=3)) == 1
        assert query(supervisor, "SELECT g.status, g.max_channels, r.state FROM campaigns g "
                                 "JOIN campaign_runs r ON r.campaign_id = g.id") == [
            ("paused", 3, "paused")]
    finally:
        supervisor.close()
    assert run_row(world, campaign) == moved       # the dialer's state as it left it
    assert dialer_store.claim(world.engine, campaign, now + timedelta(seconds=1),
                              LIMITS).limited_by == "not running"


def test_saves_find_their_row_while_dialers_keep_claiming(world):
    """Supervisor saves (pause, run, a cap) in a loop while two dialers claim and pace
    the same campaign: every save changes exactly one row, never none."""
    campaign = running_with_contacts(world, "a", 400)
    stop = threading.Event()
    claimed = [0]

    def dial(name: str) -> None:
        limits = dialer_store.DialerLimits(name, 30, 2, ())
        clock = datetime(2026, 12, 3, 12, 0)
        while not stop.is_set():
            clock += timedelta(milliseconds=50)
            claimed[0] += len(dialer_store.claim(world.engine, campaign, clock, limits).orders)
            with world.engine.begin() as conn:   # calls end: the caps free up
                conn.execute(text("UPDATE campaign_attempts SET outcome = 'busy' "
                                  "WHERE outcome IS NULL AND campaign_id = :g"), {"g": campaign})

    dialers = [threading.Thread(target=dial, args=(f"d{n}",)) for n in range(2)]
    supervisor = world.login("a", "supervisor")
    counts = []
    try:
        for thread in dialers:
            thread.start()
        for n in range(30):
            loaded = load(supervisor, "campaigns", campaign)
            tool = adminer if n % 2 else phpmyadmin
            changes = {"status": "paused" if loaded["status"] == "running" else "running",
                       "max_channels": 10 + n}
            counts.append(keyless_update(supervisor, "campaigns", loaded, tool(loaded, **changes)))
    finally:
        stop.set()
        for thread in dialers:
            thread.join()
        supervisor.close()
    assert claimed[0] > 0
    assert counts == [1] * 30
    with world.engine.connect() as conn:
        assert conn.execute(text("SELECT max_channels FROM campaigns WHERE id = :g"),
                            {"g": campaign}).scalar_one() == 39


def test_the_dialers_state_is_read_only_and_the_clients_own(world):
    mine = running_with_contacts(world, "a", 1)
    theirs = running_with_contacts(world, "b", 1)
    now = datetime(2026, 12, 3, 12, 0)
    dialer_store.claim(world.engine, mine, now, LIMITS)
    dialer_store.claim(world.engine, theirs, now, LIMITS)
    before = run_row(world, mine), run_row(world, theirs)
    admin = world.login("a", "admin")
    try:
        assert [r[0] for r in query(admin, "SELECT campaign_id FROM campaign_runs")] == [mine]
        assert query(admin, "SELECT state FROM campaign_progress") == [("running",)]
        # tools offer it read-only: the columns carry the select privilege only
        assert {r[7] for r in query(admin, "SHOW FULL COLUMNS FROM campaign_runs")} == {"select"}
        for statement in ("UPDATE campaign_runs SET pacing_clock = NULL",
                          "DELETE FROM campaign_runs",
                          f"INSERT INTO campaign_runs (campaign_id) VALUES ({theirs})"):
            with pytest.raises(Exception) as refused:
                execute(admin, statement)
            assert error_code(refused.value) == 1142, statement      # command denied
        with pytest.raises(Exception) as refused:   # not a column of the editable view
            execute(admin, "UPDATE campaigns SET pacing_clock = NULL")
        assert error_code(refused.value) == 1143                    # column denied
        assert execute(admin, "UPDATE campaigns SET status = 'paused' WHERE id = %s",
                       (theirs,)) == 0
    finally:
        admin.close()
    assert (run_row(world, mine), run_row(world, theirs)) == before
    with world.engine.connect() as conn:
        assert conn.execute(text("SELECT status FROM campaigns WHERE id = :g"),
                            {"g": theirs}).scalar_one() == "running"


def test_views_that_cannot_be_written_are_granted_select_only(world):
    with world.engine.connect() as conn:
        assert conn.execute(text(
            "SELECT p.view_name, p.role, p.privilege FROM tenant_privileges p "
            "JOIN tenant_views v ON v.name = p.view_name "
            "WHERE v.writable = 0 AND p.privilege <> 'SELECT'")).all() == []
        read_only = {r[0] for r in conn.execute(text(
            "SELECT name FROM tenant_views WHERE writable = 0"))}
    assert {"campaign_runs", "campaign_progress"} <= read_only
    admin = world.login("a", "admin")
    try:
        for view in sorted(read_only):
            privileges = {r[7] for r in query(admin, f"SHOW FULL COLUMNS FROM `{view}`")}
            assert privileges == {"select"}, view
    finally:
        admin.close()
