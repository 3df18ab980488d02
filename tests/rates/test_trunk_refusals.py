"""Trunks, buy rates, route groups, routes and pending rate changes refuse bad rows with
the rule in words (people edit these by hand in Adminer). Each case runs its bad statement
and its good twin (the same statement with an allowed value, which must pass, so a case
cannot pass by a typo) in one transaction that is always rolled back."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError

TRUNK = "INSERT INTO trunks (name, endpoint, capacity, calls_per_second) VALUES ({})"
TRUNK_RATE = ("INSERT INTO trunk_rates (trunk_id, prefix, rate_per_min, connection_fee, "
              "initial_increment, subsequent_increment) VALUES (:trunk, {})")
GROUP = "INSERT INTO route_groups (rate_plan_id, prefix, ordering) VALUES ({})"
ROUTE = "INSERT INTO routes (route_group_id, trunk_id, priority, allow_loss) VALUES (:group, :trunk2, {})"
PENDING = ("INSERT INTO rate_pending (rate_plan_id, prefix, change_kind, rate_per_min, "
           "connection_fee, initial_increment, subsequent_increment, effective_at) "
           "VALUES (:plan, {}, '2099-01-01')")
TRUNK_PENDING = ("INSERT INTO trunk_rate_pending (trunk_id, prefix, change_kind, rate_per_min, "
                 "connection_fee, initial_increment, subsequent_increment, effective_at) "
                 "VALUES (:trunk, {}, '2099-01-01')")

CASES = [
    # (id, bad, good, message in the refusal)
    ("trunk name with a space", TRUNK.format("'Carrier One', 'c1', 10, NULL"),
     TRUNK.format("'carrier-one', 'c1', 10, NULL"), "trunks.name is 1-64 characters of a-z"),
    ("trunk endpoint as a dial string", TRUNK.format("'c2', 'PJSIP/c2', 10, NULL"),
     TRUNK.format("'c2', 'c2', 10, NULL"), "trunks.endpoint is the name of a PJSIP endpoint"),
    ("negative capacity", TRUNK.format("'c3', 'c3', -1, NULL"), TRUNK.format("'c3', 'c3', 0, NULL"),
     "trunks.capacity is the most simultaneous calls on the trunk, 0-10000"),
    ("capacity above 10000", TRUNK.format("'c4', 'c4', 10001, NULL"),
     TRUNK.format("'c4', 'c4', 10000, NULL"), "trunks.capacity is the most simultaneous calls"),
    ("zero calls per second", TRUNK.format("'c5', 'c5', 10, 0"), TRUNK.format("'c5', 'c5', 10, 0.5"),
     "trunks.calls_per_second must be above 0"),
    ("capacity by update", "UPDATE trunks SET capacity = -5 WHERE id = :trunk",
     "UPDATE trunks SET capacity = 5 WHERE id = :trunk", "trunks.capacity is the most"),
    ("duplicate trunk name", TRUNK.format("'carrier1', 'x', 10, NULL"),
     TRUNK.format("'carrier9', 'x', 10, NULL"), "Duplicate entry 'carrier1' for key 'uq_trunks_name'"),
    ("buy rate prefix with +", TRUNK_RATE.format("'+44', 0.01, 0, 60, 60"),
     TRUNK_RATE.format("'44', 0.01, 0, 60, 60"), "trunk_rates.prefix is 1-32 digits"),
    ("buy rate rounded", TRUNK_RATE.format("'44', 0.0000001, 0, 60, 60"),
     TRUNK_RATE.format("'44', 0.000001, 0, 60, 60"),
     "trunk_rates.rate_per_min takes at most 6 decimals and is never rounded"),
    ("buy fee rounded", TRUNK_RATE.format("'44', 0.01, 0.0100001, 60, 60"),
     TRUNK_RATE.format("'44', 0.01, 0.010001, 60, 60"),
     "trunk_rates.connection_fee takes at most 6 decimals"),
    ("buy rate negative", TRUNK_RATE.format("'44', -0.01, 0, 60, 60"),
     TRUNK_RATE.format("'44', 0, 0, 60, 60"), "trunk_rates.rate_per_min is USD per minute, 0 or more"),
    ("buy increment 0", TRUNK_RATE.format("'44', 0.01, 0, 0, 60"),
     TRUNK_RATE.format("'44', 0.01, 0, 1, 60"), "trunk_rates increments are 1-3600 seconds each"),
    ("route group prefix with +", GROUP.format("NULL, '+44', 'priority'"),
     GROUP.format("NULL, '44', 'priority'"), "route_groups.prefix is 1-32 digits"),
    ("route group prefix DEFAULT misspelt", GROUP.format("NULL, 'defaults', 'priority'"),
     GROUP.format("NULL, 'default', 'priority'"), "or the word default for every other number"),
    ("second group for the same plan and prefix", GROUP.format(":plan, '33', 'priority'"),
     GROUP.format(":plan, '34', 'priority'"), "uq_route_groups_plan_prefix"),
    ("route priority above 1000", ROUTE.format("1001, 0"), ROUTE.format("1000, 0"),
     "routes.priority is 0-1000, lower tried first"),
    ("route allow_loss 2", ROUTE.format("10, 2"), ROUTE.format("10, 1"),
     "routes.allow_loss is 1 (this trunk may cost more than the client pays) or 0"),
    ("route to no trunk", "INSERT INTO routes (route_group_id, trunk_id) VALUES (:group, 999999)",
     "INSERT INTO routes (route_group_id, trunk_id) VALUES (:group, :trunk2)", "fk_routes_trunk"),
    ("deleting a trunk routes use", "DELETE FROM trunks WHERE id = :trunk",
     "DELETE FROM trunks WHERE id = :trunk3",
     "this trunk is used by routes: set trunks.status = 'disabled' to stop using it"),
    # schema 155 words a deck refusal only for a row that breaks a rule: every rule still
    # refuses, also after clean rows of the same statement, and on update
    ("buy rate rounded after a clean row", TRUNK_RATE.format("'441', 0.01, 0, 60, 60), (:trunk, '442', 0.0000001, 0, 60, 60"),
     TRUNK_RATE.format("'441', 0.01, 0, 60, 60), (:trunk, '442', 0.000001, 0, 60, 60"),
     "trunk_rates.rate_per_min takes at most 6 decimals and is never rounded"),
    ("buy rate prefix with + after a clean row", TRUNK_RATE.format("'441', 0.01, 0, 60, 60), (:trunk, '+442', 0.01, 0, 60, 60"),
     TRUNK_RATE.format("'441', 0.01, 0, 60, 60), (:trunk, '442', 0.01, 0, 60, 60"),
     "trunk_rates.prefix is 1-32 digits"),
    ("buy rate increment 0 by update", "UPDATE trunk_rates SET subsequent_increment = 0 WHERE trunk_id = :trunk",
     "UPDATE trunk_rates SET subsequent_increment = 6 WHERE trunk_id = :trunk",
     "trunk_rates increments are 1-3600 seconds each"),
    ("buy rate negative by update", "UPDATE trunk_rates SET rate_per_min = -0.01 WHERE trunk_id = :trunk",
     "UPDATE trunk_rates SET rate_per_min = 0.01 WHERE trunk_id = :trunk",
     "trunk_rates.rate_per_min is USD per minute, 0 or more"),
    ("buy rate rounded by update", "UPDATE trunk_rates SET connection_fee = 0.0000001 WHERE trunk_id = :trunk",
     "UPDATE trunk_rates SET connection_fee = 0.000001 WHERE trunk_id = :trunk",
     "trunk_rates.connection_fee takes at most 6 decimals"),
    ("pending buy rate rounded", TRUNK_PENDING.format("'44', 'set', 0.0000001, 0, 60, 60"),
     TRUNK_PENDING.format("'44', 'set', 0.000001, 0, 60, 60"),
     "trunk_rate_pending.rate_per_min takes at most 6 decimals and is never rounded"),
    ("pending buy rate without a fee", TRUNK_PENDING.format("'44', 'set', 0.01, NULL, 60, 60"),
     TRUNK_PENDING.format("'44', 'remove', NULL, NULL, NULL, NULL"),
     "trunk_rate_pending.connection_fee is USD once per answered call"),
    ("pending sell prefix of letters", PENDING.format("'4x', 'set', 0.01, 0, 60, 60"),
     PENDING.format("'44', 'set', 0.01, 0, 60, 60"), "rate_pending.prefix is 1-32 digits"),
    ("pending sell rate rounded", PENDING.format("'44', 'set', 0.0000001, 0, 60, 60"),
     PENDING.format("'44', 'set', 0.000001, 0, 60, 60"),
     "rate_pending.rate_per_min takes at most 6 decimals and is never rounded"),
    ("pending sell rate without increments", PENDING.format("'44', 'set', 0.01, 0, 0, 60"),
     PENDING.format("'44', 'remove', NULL, NULL, NULL, NULL"),
     "rate_pending increments are 1-3600 seconds each"),
]


@pytest.fixture
def ids(engine):
    with engine.begin() as conn:
        plan = conn.execute(text("INSERT INTO rate_plans (name) VALUES ('premium')")).lastrowid
        trunk = conn.execute(text(TRUNK.format("'carrier1', 'carrier1', 30, NULL"))).lastrowid
        trunk2 = conn.execute(text(TRUNK.format("'carrier2', 'carrier2', 30, NULL"))).lastrowid
        trunk3 = conn.execute(text(TRUNK.format("'spare', 'spare', 30, NULL"))).lastrowid
        group = conn.execute(text(GROUP.format(":plan, '33', 'least-cost'")), {"plan": plan}).lastrowid
        conn.execute(text("INSERT INTO routes (route_group_id, trunk_id, priority) VALUES (:g, :t, 10)"),
                     {"g": group, "t": trunk})
        conn.execute(text(TRUNK_RATE.format("'4420', 0.01, 0, 30, 6")), {"trunk": trunk})
    return {"plan": plan, "trunk": trunk, "trunk2": trunk2, "trunk3": trunk3, "group": group}


def _run(engine, sql: str, ids: dict) -> str | None:
    """The server's refusal of `sql` (None if it passed); always rolled back."""
    with engine.connect() as conn:
        transaction = conn.begin()
        try:
            names = {k: v for k, v in ids.items() if f":{k}" in sql}
            conn.execute(text(sql), names)
            return None
        except DBAPIError as exc:
            return str(exc.orig)
        finally:
            transaction.rollback()


def test_each_bad_row_is_refused_in_words_and_its_good_twin_passes(engine, ids):
    wrong = []
    for case_id, bad, good, message in CASES:
        refusal = _run(engine, bad, ids)
        if refusal is None or message not in refusal:
            wrong.append(f"{case_id}: bad statement gave {refusal!r}, expected {message!r}")
        passed = _run(engine, good, ids)
        if passed is not None:
            wrong.append(f"{case_id}: good twin refused: {passed}")
    assert wrong == []


def test_routes_go_with_their_group_and_plan(engine, ids):
    with engine.begin() as conn:
        conn.execute(text("DELETE FROM rate_plans WHERE id = :plan"), {"plan": ids["plan"]})
        left = conn.execute(text("SELECT COUNT(*) FROM routes")).scalar_one()
    assert left == 0


def test_the_trunks_and_routes_sql_of_the_admin_guide_runs_as_written(engine):
    guide = (Path(__file__).resolve().parents[2] / "docs" / "admin-sql.md").read_text()
    block = guide.split("## Trunks and routes", 1)[1].split("```sql\n", 1)[1].split("```", 1)[0]
    statements = [s.strip() for s in block.split(";\n") if s.strip()]
    with engine.begin() as conn:
        for statement in statements:
            conn.exec_driver_sql(statement.rstrip(";"))
    with engine.connect() as conn:
        got = conn.execute(text(
            "SELECT g.prefix, g.ordering, t.name, r.priority, t.status FROM routes r "
            "JOIN route_groups g ON g.id = r.route_group_id JOIN trunks t ON t.id = r.trunk_id "
            "ORDER BY g.prefix, r.priority")).all()
    assert [tuple(r) for r in got] == [
        ("44", "least-cost", "carrier1", 10, "active"), ("44", "least-cost", "carrier2", 20, "disabled"),
        ("default", "priority", "carrier1", 10, "active"),
        ("default", "priority", "carrier2", 20, "disabled")]
