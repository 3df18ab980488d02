"""move_client / move_client_to_plan: refused in words while the subtree has live calls,
into its own subtree, for master, onto a plan the new parent does not sell; accepted
otherwise with client_tree exact (it equals the closure of clients.parent_id)."""

from __future__ import annotations

import threading

import pytest
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError

from fastagi.db.engine import make_engine
from tests.reseller_ops.tree import add_node, build_tree, live_call, settle_by_hand
from tests.support.sql import execute, rows, scalar


def closure(engine) -> list[tuple[int, int, int]]:
    """(ancestor, client, depth) computed in Python from clients.parent_id."""
    parent = {r.id: r.parent_id for r in rows(engine, "SELECT id, parent_id FROM clients")}
    out = []
    for client in parent:
        node, depth = client, 0
        while node is not None:
            out.append((node, client, depth))
            node, depth = parent[node], depth + 1
    return sorted(out)


def tree_rows(engine) -> list[tuple[int, int, int]]:
    return sorted(tuple(r) for r in rows(engine, "SELECT ancestor_id, client_id, depth FROM client_tree"))


def refusal(engine, sql: str, **params) -> str:
    with pytest.raises(DBAPIError) as refused:
        execute(engine, sql, **params)
    return str(refused.value.orig.args[1])


@pytest.fixture
def tree(engine):
    tree = build_tree(engine)
    tree.s2 = add_node(engine, "s2", None, furnish=False, sells=True)
    return tree


def test_a_move_is_refused_while_the_subtree_has_a_live_call_and_accepted_after(engine, tree):
    call = live_call(engine, tree.g1, charges={tree.a1.id: "1.0000", tree.r1.id: "0.5000"})
    before = tree_rows(engine)
    said = refusal(engine, "CALL move_client_to_plan('a1', 's2', 'plan of s2')")
    assert said.startswith("move_client: a1 and its clients have 1 live call(s)")
    assert "wait until they end" in said
    assert tree_rows(engine) == before
    settle_by_hand(engine, call, "0.05", 60, {tree.a1.id: ("0.02", "0.05"),
                                              tree.r1.id: ("0.02", "0.02")})
    execute(engine, "CALL move_client_to_plan('a1', 's2', 'plan of s2')")
    assert tree_rows(engine) == closure(engine)
    assert rows(engine, "SELECT code, parent, depth, path FROM reseller_tree"
                        " WHERE code IN ('a1', 'g1') ORDER BY code") == [
        ("a1", "s2", 2, "master/s2/a1"), ("g1", "a1", 3, "master/s2/a1/g1")]
    # the moved client is on the new parent's plan; its own clients keep a1's plan
    assert scalar(engine, "SELECT rate_plan_id FROM clients WHERE code = 'a1'") == tree.s2.own_plan_id
    assert scalar(engine, "SELECT rate_plan_id FROM clients WHERE code = 'g1'") == tree.a1.own_plan_id


def test_a_live_call_of_the_client_itself_also_refuses(engine, tree):
    live_call(engine, tree.a2)
    assert "a2 and its clients have 1 live call(s)" in refusal(
        engine, "CALL move_client('a2', 'master')")


def test_a_move_into_its_own_subtree_is_refused(engine, tree):
    before = tree_rows(engine)
    for child, parent in (("r1", "g1"), ("r1", "a1"), ("a1", "a1")):
        said = refusal(engine, "CALL move_client(:c, :p)", c=child, p=parent)
        assert "cannot move under itself or one of its own clients" in said, said
    assert tree_rows(engine) == before


def test_master_unknown_codes_and_a_plan_the_new_parent_does_not_sell_are_refused(engine, tree):
    before = tree_rows(engine)
    assert "master is the root" in refusal(engine, "CALL move_client('master', 'r1')")
    assert "no client with that code" in refusal(engine, "CALL move_client('nobody', 'r1')")
    assert "no new parent" in refusal(engine, "CALL move_client('a1', 'nobody')")
    assert "no rate plan" in refusal(engine, "CALL move_client_to_plan('a1', 's2', 'nothing')")
    said = refusal(engine, "CALL move_client('a1', 's2')")
    assert said == ("move_client: a1's plan is not sold by s2: CALL move_client_to_plan('a1', 's2',"
                    f" <a plan of s2>) instead (SELECT name FROM rate_plans WHERE owner_client_id"
                    f" = {tree.s2.id})")
    # onto a plan of someone else than the new parent: refused too
    assert "not sold by s2" in refusal(engine, "CALL move_client_to_plan('a1', 's2', 'plan of r1')")
    assert tree_rows(engine) == before


def test_a_move_under_master_and_back(engine, tree):
    execute(engine, "CALL move_client_to_plan('a2', 'master', :p)",
            p=scalar(engine, "SELECT name FROM rate_plans WHERE is_default = 1"))
    assert tree_rows(engine) == closure(engine)
    assert scalar(engine, "SELECT path FROM reseller_tree WHERE code = 'a2'") == "master/a2"
    execute(engine, "CALL move_client_to_plan('a2', 'r1', 'plan of r1')")
    assert tree_rows(engine) == closure(engine)
    assert scalar(engine, "SELECT path FROM reseller_tree WHERE code = 'a2'") == "master/r1/a2"


def test_a_client_moved_under_a_suspended_reseller_is_stopped_at_once(engine, tree):
    execute(engine, "CALL suspend_client('s2')")
    assert scalar(engine, "SELECT COUNT(*) FROM ps_endpoints WHERE accountcode = 'a1'") == 2
    execute(engine, "CALL move_client_to_plan('a1', 's2', 'plan of s2')")
    for code in ("a1", "g1"):
        assert scalar(engine, "SELECT COUNT(*) FROM ps_endpoints WHERE accountcode = :c",
                      c=code) == 0
        assert scalar(engine, "SELECT blocked_by FROM reseller_tree WHERE code = :c",
                      c=code) == "s2"
    assert scalar(engine, "SELECT status FROM clients WHERE code = 'a1'") == "active"


def test_inside_a_callers_transaction_it_joins_it(engine, tree):
    with engine.connect() as conn:
        with conn.begin() as tx:
            conn.execute(text("CALL move_client_to_plan('a1', 's2', 'plan of s2')")).all()
            tx.rollback()
    assert scalar(engine, "SELECT path FROM reseller_tree WHERE code = 'a1'") == "master/r1/a1"
    assert tree_rows(engine) == closure(engine)


def test_crossing_moves_take_turns_and_never_make_a_cycle(db_url, engine):
    """Hostile: x under y and y under x at once. One wins; the other is refused (a cycle),
    after retrying the deadlock the two may meet in."""
    x = add_node(engine, "x", None, furnish=False, sells=True)
    y = add_node(engine, "y", None, furnish=False, sells=True)
    # each on a plan the other sells: both moves are otherwise allowed
    execute(engine, "CALL move_client_to_plan('x', 'y', 'plan of y')")
    execute(engine, "CALL move_client_to_plan('x', 'master', :p)",
            p=scalar(engine, "SELECT name FROM rate_plans WHERE is_default = 1"))
    assert x.id and y.id
    eng = make_engine(db_url, pool_size=2)
    results: list[str] = []
    barrier = threading.Barrier(2)

    def move(child: str, parent: str) -> None:
        barrier.wait()
        try:
            # autocommit, as the tools call it: the procedure's own transaction, which
            # retries a deadlock (the crossing moves lock each other's rows)
            with eng.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
                conn.execute(text("CALL move_client_to_plan(:c, :p, :plan)"),
                             {"c": child, "p": parent, "plan": f"plan of {parent}"}).all()
            results.append("moved")
        except DBAPIError as exc:
            results.append(str(exc.orig.args[1]))

    try:
        for _ in range(5):
            results.clear()
            threads = [threading.Thread(target=move, args=a) for a in (("x", "y"), ("y", "x"))]
            for t in threads:
                t.start()
            for t in threads:
                t.join(30)
            assert sorted(r[:5] for r in results) == ["move_", "moved"], results
            assert "cannot move under itself" in [r for r in results if r != "moved"][0]
            assert tree_rows(engine) == closure(engine)
            # both back under master for the next round
            for code in ("x", "y"):
                if scalar(engine, "SELECT parent FROM reseller_tree WHERE code = :c", c=code) != "master":
                    execute(engine, "CALL move_client_to_plan(:c, 'master', :p)", c=code,
                            p=scalar(engine, "SELECT name FROM rate_plans WHERE is_default = 1"))
    finally:
        eng.dispose()
