"""A suspended reseller stops its whole subtree, and only it, without writing the
subtree's own statuses; reactivation restores exactly what was there (a client suspended
by itself stays suspended). Real MariaDB; the store functions the server and the dialer
run, and the views Asterisk reads."""

from __future__ import annotations

from datetime import datetime, timezone

import pytest
from sqlalchemy.exc import DBAPIError

from fastagi.agents import rules
from fastagi.store import agents, dialer
from tests.reseller_ops.tree import PIN, add_node, build_tree
from tests.support.sql import execute, rows, scalar


def now() -> datetime:
    return datetime.now(timezone.utc).replace(tzinfo=None)


def login(engine, code: str, number: str = "501", exten: str = "1001") -> str:
    return agents.attempt_login(engine, agents.Request(code, f"{code}-{exten}"), number, PIN,
                                now()).reason


def world(engine) -> dict[str, object]:
    """What Asterisk, the dialer and the board see, per client code."""
    def codes(sql: str) -> list[str]:
        return sorted(r[0] for r in rows(engine, sql))
    return {
        "endpoints": codes("SELECT accountcode FROM ps_endpoints"),
        "auths": codes("SELECT SUBSTRING_INDEX(id, '-', 1) FROM ps_auths"),
        "aors": codes("SELECT SUBSTRING_INDEX(id, '-', 1) FROM ps_aors"),
        "queues": codes("SELECT client FROM ast_queues"),
        "members": codes("SELECT SUBSTRING_INDEX(SUBSTRING(interface, 7), '-', 1)"
                         " FROM ast_queue_members"),
        "states": sorted(tuple(r) for r in rows(
            engine, "SELECT client, state FROM campaign_progress")),
        "dialer": sorted(scalar(engine, "SELECT c.code FROM campaigns g JOIN clients c"
                                        " ON c.id = g.client_id WHERE g.id = :g", g=r.id)
                         for r in dialer.running_campaigns(engine)),
        "statuses": sorted(tuple(r) for r in rows(engine, "SELECT code, status FROM clients")),
        "campaigns": sorted(tuple(r) for r in rows(engine, "SELECT id, status FROM campaigns")),
    }


def open_sessions(engine) -> list[str]:
    return sorted(r[0] for r in rows(
        engine, "SELECT c.code FROM agent_sessions s JOIN clients c ON c.id = s.client_id"
                " WHERE s.ended_at IS NULL"))


def test_a_mid_level_suspension_stops_its_subtree_only_and_reactivation_restores_it(engine):
    tree = build_tree(engine)
    for code in tree.leaves:
        assert login(engine, code) == rules.OK
    execute(engine, "CALL suspend_client('a2')")       # a2 by itself, before r1
    assert login(engine, "a2") == rules.CLIENT_SUSPENDED
    before = world(engine)
    assert before["endpoints"] == ["a1", "a1", "g1", "g1", "s1", "s1"]
    assert before["members"] == ["a1", "g1", "s1"]
    assert before["dialer"] == ["a1", "g1", "s1"]
    assert ("a2", "suspended") in before["states"]

    execute(engine, "CALL suspend_client('r1')")
    during = world(engine)
    # the subtree is gone from everything Asterisk and the dialer read; the sibling stays
    for part in ("endpoints", "auths", "aors"):
        assert during[part] == ["s1", "s1"], part
    assert during["queues"] == ["s1"]
    assert during["members"] == ["s1"]
    assert during["dialer"] == ["s1"]
    assert sorted(during["states"]) == [("a1", "suspended"), ("a2", "suspended"),
                                        ("g1", "suspended"), ("s1", "running")]
    # agents of the subtree were logged out by the suspension, and cannot log in
    assert open_sessions(engine) == ["s1"]
    assert rows(engine, "SELECT c.code, s.end_reason FROM agent_sessions s JOIN clients c"
                        " ON c.id = s.client_id WHERE s.ended_at IS NOT NULL ORDER BY c.code") == [
        ("a1", "suspended"), ("a2", "suspended"), ("g1", "suspended")]
    for code in ("a1", "g1"):
        assert login(engine, code, "502", "1002") == rules.CLIENT_SUSPENDED
    assert login(engine, "s1", "502", "1002") == rules.OK   # the sibling's agents work
    # nothing of the subtree was written: statuses and campaigns as people set them
    assert during["statuses"] == [("r1", "suspended") if s[0] == "r1" else s
                                  for s in before["statuses"]]
    assert during["campaigns"] == before["campaigns"]
    # a hand save of a subtree client's row (a stale Adminer form) does not free it
    execute(engine, "UPDATE clients SET status = 'active' WHERE code = 'a1'")
    assert world(engine)["endpoints"] == ["s1", "s1"]

    execute(engine, "CALL activate_client('r1')")
    after = world(engine)
    for part in ("endpoints", "auths", "aors", "queues", "states", "dialer", "statuses",
                 "campaigns"):
        assert after[part] == before[part], part
    # a2 suspended itself: it stays suspended after its reseller's reactivation
    assert scalar(engine, "SELECT status FROM clients WHERE code = 'a2'") == "suspended"
    assert login(engine, "a2") == rules.CLIENT_SUSPENDED
    # the subtree's agents log in again (their sessions were ended, as a client's are)
    for code in ("a1", "g1"):
        assert login(engine, code) == rules.OK
    assert world(engine)["members"] == ["a1", "g1", "s1", "s1"]


def test_the_parent_and_a_top_reseller_keep_working_when_a_lower_one_is_suspended(engine):
    tree = build_tree(engine)
    execute(engine, "CALL suspend_client('a1')")   # a1 resells to g1
    seen = world(engine)
    assert seen["endpoints"] == ["a2", "a2", "s1", "s1"]   # a1 itself and g1 are stopped
    assert seen["dialer"] == ["a2", "s1"]
    assert scalar(engine, "SELECT blocked_by FROM reseller_tree WHERE code = 'g1'") == "a1"
    assert scalar(engine, "SELECT blocked_by FROM reseller_tree WHERE code = 'a1'") is None
    assert scalar(engine, "SELECT blocked_by FROM reseller_tree WHERE code = 'a2'") is None
    assert tree.r1.id > 0


def test_a_client_created_under_a_suspended_reseller_is_stopped_at_once(engine):
    tree = build_tree(engine)
    execute(engine, "CALL suspend_client('r1')")
    add_node(engine, "a3", tree.r1, running=False)   # no campaign starts below r1 now
    assert "a3" not in world(engine)["endpoints"]
    assert login(engine, "a3") == rules.CLIENT_SUSPENDED
    execute(engine, "CALL activate_client('r1')")
    assert world(engine)["endpoints"].count("a3") == 2
    assert login(engine, "a3") == rules.OK


def test_master_suspended_stops_only_its_own_calls_not_the_tree(engine):
    build_tree(engine)
    # the root is the operator's own account: its status is its own, as authorize reads it
    execute(engine, "UPDATE clients SET status = 'suspended' WHERE code = 'master'")
    try:
        assert world(engine)["endpoints"] == ["a1", "a1", "a2", "a2", "g1", "g1", "s1", "s1"]
    finally:
        execute(engine, "UPDATE clients SET status = 'active' WHERE code = 'master'")


def test_no_hand_write_cuts_a_subtree_loose_from_its_suspended_reseller(engine):
    """Hostile: the tree is the system's; a hand write to it is refused, so no one frees a
    subtree by cutting it loose from its suspended reseller."""
    tree = build_tree(engine)
    execute(engine, "CALL suspend_client('r1')")
    with pytest.raises(DBAPIError) as refused:
        execute(engine, "DELETE FROM client_tree WHERE client_id = :c AND depth > 0",
                c=tree.a1.id)
    assert "client_tree is kept by the system" in str(refused.value)
    with pytest.raises(DBAPIError) as refused:
        execute(engine, "UPDATE clients SET parent_id = (SELECT id FROM (SELECT id FROM"
                        " clients WHERE code = 'master') m) WHERE code = 'a1'")
    assert "move_client" in str(refused.value)
    assert "a1" not in world(engine)["endpoints"]


def test_user_logins_of_the_subtree_answer_client_suspended(engine):
    build_tree(engine)
    for code in ("g1", "s1"):
        execute(engine, "INSERT INTO users (client_id, username, role, password)"
                        " SELECT id, :u, 'admin', 'correct horse' FROM clients WHERE code = :c",
                u=f"boss@{code}", c=code)

    def answer(code: str) -> tuple:
        return tuple(rows(engine, "CALL user_login(:u, 'correct horse')", u=f"boss@{code}")[0])[:2]

    assert answer("g1") == (1, "ok")
    execute(engine, "CALL suspend_client('r1')")
    assert answer("g1") == (0, "client-suspended")
    assert answer("s1") == (1, "ok")
    execute(engine, "CALL activate_client('r1')")
    assert answer("g1") == (1, "ok")


def test_the_dialers_claim_of_a_subtree_campaign_is_refused_while_its_reseller_is_suspended(engine):
    """The claim reads the effective status again under its campaign locks (a campaign
    listed just before the suspension is not dialled)."""
    tree = build_tree(engine)
    limits = dialer.DialerLimits("d1", 30.0, 5, ("112",))
    execute(engine, "CALL suspend_client('r1')")
    got = dialer.claim(engine, tree.g1.campaign_id, now(), limits)
    assert (got.orders, got.limited_by) == ((), "not running")
    assert scalar(engine, "SELECT COUNT(*) FROM contacts WHERE status = 'dialing'") == 0
    execute(engine, "CALL activate_client('r1')")
    assert dialer.claim(engine, tree.g1.campaign_id, now(), limits).limited_by != "not running"


def test_a_subtree_campaign_cannot_be_started_while_its_reseller_is_suspended(engine):
    tree = build_tree(engine)
    execute(engine, "UPDATE campaigns SET status = 'paused' WHERE id = :g", g=tree.g1.campaign_id)
    execute(engine, "CALL suspend_client('r1')")
    with pytest.raises(DBAPIError) as refused:
        execute(engine, "UPDATE campaigns SET status = 'running' WHERE id = :g",
                g=tree.g1.campaign_id)
    assert ("the client's reseller r1 is suspended: its campaigns cannot run until it is"
            " reactivated") in str(refused.value)
    # one left running through the suspension is no start: a full-row save keeps it
    execute(engine, "UPDATE campaigns SET name = 'renamed' WHERE id = :g", g=tree.a1.campaign_id)
    execute(engine, "UPDATE campaigns SET status = 'running' WHERE id = :g", g=tree.s1.campaign_id)
    execute(engine, "CALL activate_client('r1')")
    execute(engine, "UPDATE campaigns SET status = 'running' WHERE id = :g", g=tree.g1.campaign_id)
    assert scalar(engine, "SELECT state FROM campaign_progress WHERE campaign_id = :g",
                  g=tree.g1.campaign_id) == "running"
