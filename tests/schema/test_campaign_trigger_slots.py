"""Each trigger slot of campaigns and campaign_runs holds one trigger (schema/148), so what
a write to them runs is read in one place; and the triggers are the same on a fresh
database and on one that ran 095/096/148 after 100-103 (tests/schema/test_upgrade_from_083
upgrades such a database)."""

from __future__ import annotations

from sqlalchemy import text


def test_one_trigger_per_slot_on_campaigns_and_campaign_runs(engine):
    with engine.connect() as conn:
        slots = conn.execute(text(
            "SELECT event_object_table, action_timing, event_manipulation, "
            "GROUP_CONCAT(trigger_name ORDER BY action_order) FROM information_schema.triggers "
            "WHERE trigger_schema = DATABASE() "
            "AND event_object_table IN ('campaigns', 'campaign_runs') "
            "GROUP BY event_object_table, action_timing, event_manipulation "
            "ORDER BY 1, 2, 3")).all()
    assert [tuple(s) for s in slots] == [
        ("campaigns", "AFTER", "INSERT", "campaigns_after_insert"),
        ("campaigns", "BEFORE", "DELETE", "campaigns_before_delete"),
        ("campaigns", "BEFORE", "INSERT", "campaigns_before_insert"),
        ("campaigns", "BEFORE", "UPDATE", "campaigns_before_update"),
    ]


def test_every_campaign_has_its_run_row_from_the_start(engine):
    with engine.begin() as conn:
        client = conn.execute(text("SELECT id FROM clients WHERE code = 'master'")).scalar_one()
        campaign = conn.execute(text("INSERT INTO campaigns (client_id, name) VALUES (:c, 'x')"),
                                {"c": client}).lastrowid
        assert tuple(conn.execute(text(
            "SELECT finished, finished_at, pacing_clock, dialer_note FROM campaign_runs "
            "WHERE campaign_id = :g"), {"g": campaign}).one()) == (0, None, None, None)
        conn.execute(text("DELETE FROM campaigns WHERE id = :g"), {"g": campaign})
        assert conn.execute(text("SELECT COUNT(*) FROM campaign_runs WHERE campaign_id = :g"),
                            {"g": campaign}).scalar_one() == 0
