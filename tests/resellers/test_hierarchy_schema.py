"""The hierarchy's rules in the schema: parents, depth, cycles, moves only through
move_client's hand-over, the tree kept by the system, plans sold by the parent, and
call_charges as part of the ledger. Each refusal in words, beside the accepted case."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal

import pytest
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError

from fastagi.billing.admission import CallRequest
from fastagi.store import calls
from tests.resellers.world import balance, client_under, ledger_gap, master_id, plan_of
from tests.support.sql import execute, scalar


def refused(engine, sql: str, words: str, **params) -> None:
    with pytest.raises(DBAPIError) as raised:
        execute(engine, sql, **params)
    assert words in str(raised.value.orig), raised.value.orig


def tree_of(engine, code: str) -> list[tuple[str, int]]:
    with engine.connect() as conn:
        return [tuple(r) for r in conn.execute(text(
            "SELECT a.code, t.depth FROM client_tree t JOIN clients a ON a.id = t.ancestor_id"
            " JOIN clients c ON c.id = t.client_id WHERE c.code = :c ORDER BY t.depth"),
            {"c": code})]


def chain(engine, depth: int) -> list[str]:
    """r1 under master, r2 under r1, ... r<depth>; each on its parent's plan."""
    plan = plan_of(engine, None, "op", {"44": ("0.01", "0", 60, 60)})
    parent = None
    codes = []
    for n in range(1, depth + 1):
        code = f"r{n}"
        client_under(engine, code, parent, plan)
        plan = plan_of(engine, code, f"{code}-sells", {"44": ("0.02", "0", 60, 60)})
        parent = code
        codes.append(code)
    return codes


def move(engine, code: str, parent: str, plan_name: str | None = None):
    """What move_client does: the hand-over variable, then the UPDATE (plan with it)."""
    with engine.begin() as conn:
        conn.execute(text("SET @ict_move_client = (SELECT id FROM clients WHERE code = :c)"),
                     {"c": code})
        try:
            conn.execute(text(
                "UPDATE clients c JOIN clients p ON p.code = :p"
                " SET c.parent_id = p.id, c.rate_plan_id = COALESCE("
                " (SELECT id FROM rate_plans WHERE name = :plan), c.rate_plan_id)"
                " WHERE c.code = :c"), {"c": code, "p": parent, "plan": plan_name})
        finally:
            conn.execute(text("SET @ict_move_client = NULL"))


def test_a_client_given_no_parent_is_masters_and_has_its_tree_rows(engine):
    execute(engine, "INSERT INTO clients (code, name) VALUES ('plain', 'Plain')")
    assert scalar(engine, "SELECT parent_id FROM clients WHERE code = 'plain'") == master_id(engine)
    assert tree_of(engine, "plain") == [("plain", 0), ("master", 1)]
    assert scalar(engine, "SELECT parent_id FROM clients WHERE code = 'master'") is None
    # every client, master included, has its self row
    assert scalar(engine, "SELECT COUNT(*) FROM clients c WHERE NOT EXISTS (SELECT 1 FROM"
                  " client_tree t WHERE t.ancestor_id = c.id AND t.client_id = c.id)") == 0


def test_six_levels_below_master_and_not_seven(engine):
    codes = chain(engine, 6)
    assert tree_of(engine, "r6")[-1] == ("master", 6)
    refused(engine, "INSERT INTO clients (code, name, parent_id, rate_plan_id)"
            " SELECT 'r7', 'r7', id, (SELECT id FROM rate_plans WHERE name = 'r6-sells')"
            " FROM clients WHERE code = 'r6'", "at most 6 levels below master")
    assert codes == ["r1", "r2", "r3", "r4", "r5", "r6"]


def test_parent_id_changes_only_through_the_hand_over_and_never_into_a_cycle(engine):
    chain(engine, 3)
    refused(engine, "UPDATE clients SET parent_id = (SELECT id FROM (SELECT id FROM clients"
            " WHERE code = 'master') m) WHERE code = 'r3'", "only through CALL move_client")
    with pytest.raises(DBAPIError) as cycle:
        move(engine, "r1", "r3")
    assert "cannot move under itself or one of its own clients" in str(cycle.value.orig)
    with pytest.raises(DBAPIError) as itself:
        move(engine, "r2", "r2")
    assert "cannot move under itself" in str(itself.value.orig)
    # r3 (with a client of its own) moves under r1: its subtree is re-hung
    client_under(engine, "leaf", "r3", scalar(engine, "SELECT id FROM rate_plans"
                                              " WHERE name = 'r3-sells'"))
    move(engine, "r3", "r1", "r1-sells")
    assert tree_of(engine, "r3") == [("r3", 0), ("r1", 1), ("master", 2)]
    assert tree_of(engine, "leaf") == [("leaf", 0), ("r3", 1), ("r1", 2), ("master", 3)]
    assert tree_of(engine, "r2") == [("r2", 0), ("r1", 1), ("master", 2)]


def test_a_move_deeper_than_six_levels_is_refused(engine):
    chain(engine, 5)
    plan = plan_of(engine, None, "op2", {"44": ("0.01", "0", 60, 60)})
    client_under(engine, "s1", None, plan)
    s_plan = plan_of(engine, "s1", "s1-sells", {"44": ("0.01", "0", 60, 60)})
    client_under(engine, "s2", "s1", s_plan)
    with pytest.raises(DBAPIError) as deep:   # r5 is 5 below master; s1's subtree is 2 deep
        move(engine, "s1", "r5", "r5-sells")
    assert "more than 6 levels below master" in str(deep.value.orig)


def test_client_tree_is_kept_by_the_system(engine):
    chain(engine, 1)
    refused(engine, "INSERT INTO client_tree (ancestor_id, client_id, depth) VALUES (1, 1, 3)",
            "client_tree is kept by the system")
    refused(engine, "UPDATE client_tree SET depth = 4", "client_tree is kept by the system")
    refused(engine, "DELETE FROM client_tree", "client_tree is kept by the system")


def test_a_clients_plan_is_sold_by_its_parent(engine):
    chain(engine, 2)
    refused(engine, "INSERT INTO clients (code, name, parent_id) SELECT 'x', 'x', id FROM clients"
            " WHERE code = 'r2'", "a client of reseller r2 is on one of its plans")
    refused(engine, "UPDATE clients SET rate_plan_id = (SELECT id FROM rate_plans"
            " WHERE name = 'r2-sells') WHERE code = 'r2'", "a client of reseller r1 is on")
    refused(engine, "UPDATE clients SET rate_plan_id = (SELECT id FROM rate_plans"
            " WHERE name = 'r1-sells') WHERE code = 'r1'",
            "a client of master is on one of the operator's plans")
    refused(engine, "UPDATE rate_plans SET owner_client_id = NULL WHERE name = 'r1-sells'",
            "owner_client_id cannot change while clients are on the plan")
    refused(engine, "UPDATE rate_plans SET is_default = 1 WHERE name = 'r2-sells'",
            "the default plan is the operator's")
    # a form saved whole (every column as loaded) is not a change
    execute(engine, "UPDATE clients SET rate_plan_id = rate_plan_id, parent_id = parent_id,"
            " name = 'R2 renamed' WHERE code = 'r2'")


def test_call_charges_are_part_of_the_ledger(engine):
    chain(engine, 1)
    client_under(engine, "leaf", "r1", scalar(engine, "SELECT id FROM rate_plans"
                                              " WHERE name = 'r1-sells'"), balance="5")
    execute(engine, "INSERT INTO payments (client_id, amount, reference) SELECT id, 5, 'r1'"
            " FROM clients WHERE code = 'r1'")
    now = datetime(2026, 12, 7, 12, 0)
    limits = calls.Limits(max_call_seconds=600, dial_template="x/{number}")
    got = calls.authorize(engine, CallRequest("leaf", "4420"), now, limits)
    refused(engine, "DELETE FROM call_charges", "a charged or live call charge cannot be deleted")
    refused(engine, "INSERT INTO call_charges (call_id, client_id, depth, prefix, rate_per_min,"
            " connection_fee, initial_increment, subsequent_increment, cost, authorized_at)"
            " SELECT :i, id, 1, '44', 0, 0, 1, 1, 1, NOW() FROM clients WHERE code = 'r1'",
            "written by the server", i=got.call_id)
    calls.settle(engine, got.call_id, 60000, "ANSWER", now)
    assert balance(engine, "r1") == Decimal("4.9900")
    # a correction of a reseller's charge moves its balance by the difference
    execute(engine, "UPDATE call_charges SET cost = 0.0050 WHERE call_id = :i", i=got.call_id)
    assert balance(engine, "r1") == Decimal("4.9950")
    assert scalar(engine, "SELECT margin FROM call_charges WHERE call_id = :i",
                  i=got.call_id) == Decimal("0.0150")
    refused(engine, "UPDATE call_charges SET cost = 0.00501 WHERE call_id = :i",
            "call_charges.cost takes at most 4 decimals", i=got.call_id)
    refused(engine, "UPDATE call_charges SET live = 1 WHERE call_id = :i", "only ends",
            i=got.call_id)
    assert [ledger_gap(engine, c) for c in ("leaf", "r1")] == [0, 0]
