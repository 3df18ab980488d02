"""reseller_tree and reseller_margins_daily on hand-made data, and what the views Asterisk
hits on every registration and call cost with the subtree check (EXPLAIN: index reads,
no scan of clients or client_tree)."""

from __future__ import annotations

import json
from decimal import Decimal

from tests.reseller_ops.tree import build_tree, live_call, settle_by_hand
from tests.support.sql import execute, rows, scalar

D = Decimal


def test_reseller_tree_shows_parent_depth_path_subtree_live_calls_and_balance(engine):
    tree = build_tree(engine)
    live_call(engine, tree.g1, charges={tree.a1.id: "1", tree.r1.id: "1"})
    live_call(engine, tree.a2, charges={tree.r1.id: "1"})
    live_call(engine, tree.s1)
    execute(engine, "CALL suspend_client('a1')")
    got = {r.code: r for r in rows(engine, "SELECT * FROM reseller_tree")}
    assert [(c, got[c].parent, got[c].depth, got[c].path, got[c].subtree_clients,
             got[c].subtree_live_calls, got[c].status, got[c].blocked_by)
            for c in ("master", "r1", "a1", "g1", "a2", "s1")] == [
        ("master", None, 0, "master", 5, 3, "active", None),
        ("r1", "master", 1, "master/r1", 3, 2, "active", None),
        ("a1", "r1", 2, "master/r1/a1", 1, 1, "suspended", None),
        ("g1", "a1", 3, "master/r1/a1/g1", 0, 1, "active", "a1"),
        ("a2", "r1", 2, "master/r1/a2", 0, 1, "active", None),
        ("s1", "master", 1, "master/s1", 0, 1, "active", None)]
    assert got["r1"].balance == D("100.0000")


def test_margins_per_reseller_per_day(engine):
    tree = build_tree(engine)
    day1, day2 = "2026-12-01 10:00:00", "2026-12-02 23:59:59.999"
    # g1's calls pay a1 (which pays r1); a2's calls pay r1 directly
    for seconds, at in ((60, day1), (120, day1), (90, day2)):
        call = live_call(engine, tree.g1, charges={tree.a1.id: "1", tree.r1.id: "1"}, at=at)
        minutes = D(seconds) / 60
        settle_by_hand(engine, call, str(D("0.05") * minutes), seconds, {
            tree.a1.id: (str(D("0.03") * minutes), str(D("0.05") * minutes)),
            tree.r1.id: (str(D("0.02") * minutes), str(D("0.03") * minutes))}, at=at)
    call = live_call(engine, tree.a2, charges={tree.r1.id: "1"}, at=day1)
    settle_by_hand(engine, call, "0.0400", 60, {tree.r1.id: ("0.0200", "0.0400")}, at=day1)
    live_call(engine, tree.g1, charges={tree.a1.id: "1", tree.r1.id: "1"}, at=day1)  # live: not yet
    got = [tuple(r) for r in rows(
        engine, "SELECT reseller, day, calls, minutes, sell, cost, margin"
                " FROM reseller_margins_daily ORDER BY reseller, day")]
    assert [(r[0], str(r[1]), *r[2:]) for r in got] == [
        ("a1", "2026-12-01", 2, D("3.00"), D("0.1500"), D("0.0900"), D("0.0600")),
        ("a1", "2026-12-02", 1, D("1.50"), D("0.0750"), D("0.0450"), D("0.0300")),
        ("r1", "2026-12-01", 3, D("4.00"), D("0.1300"), D("0.0800"), D("0.0500")),
        ("r1", "2026-12-02", 1, D("1.50"), D("0.0450"), D("0.0300"), D("0.0150"))]
    # the reseller's balance paid its costs (the charge's ledger), nothing else
    assert scalar(engine, "SELECT balance FROM client_accounts WHERE client_id = :r",
                  r=tree.r1.id) == D("100") - D("0.1100")
    # one reseller's one day is an index range (the condition reaches the grouping)
    plan = explain(engine, "SELECT * FROM reseller_margins_daily WHERE reseller_id = :r"
                           " AND day = '2026-12-01'", r=tree.r1.id)
    assert "ix_call_charges_margin" in plan or "ix_call_charges_settled" in plan, plan


def explain(engine, sql: str, **params) -> str:
    return json.dumps([tuple(r) for r in rows(engine, "EXPLAIN FORMAT=JSON " + sql, **params)])


def test_the_realtime_views_read_one_extension_by_index(engine):
    """Asterisk asks ps_endpoints/ps_auths/ps_aors WHERE id = ? on every REGISTER and
    INVITE: with the subtree check it stays a unique-key read of the extension and
    primary/secondary-key reads of its client and the client's ancestors."""
    build_tree(engine)
    for view in ("ps_endpoints", "ps_auths", "ps_aors"):
        plan = json.loads(rows(engine, f"EXPLAIN FORMAT=JSON SELECT * FROM {view}"
                                       " WHERE id = 'g1-1001'")[0][0])
        text_plan = json.dumps(plan)
        assert '"access_type": "ALL"' not in text_plan, (view, text_plan)
        assert "ix_client_tree_client" in text_plan or "PRIMARY" in text_plan, text_plan
    plan = json.dumps(json.loads(rows(engine, "EXPLAIN FORMAT=JSON SELECT * FROM ast_queues"
                                              " WHERE name = 'x'")[0][0]))
    assert "client_tree" in plan
