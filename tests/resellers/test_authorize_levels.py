"""authorize and settle of calls under resellers, against the real database: every level
checked, charged and billed in the call's transactions; rejections name the level."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timedelta
from decimal import Decimal

import pytest
from sqlalchemy import text

from fastagi import reasons
from fastagi.billing.admission import CallRequest
from fastagi.store import call_watch, calls
from tests.resellers.world import balance, client_under, ledger_gap, live_at, plan_of
from tests.support.sql import execute, scalar

NOW = datetime(2026, 12, 7, 12, 0, 0)
LIMITS = calls.Limits(max_call_seconds=3600, dial_template="PJSIP/{number}@carrier",
                      stale_grace_seconds=300)
# calls of at most a minute: each reserves 0.0100 of r1's 0.20
MINUTE = calls.Limits(max_call_seconds=60, dial_template="x/{number}", stale_grace_seconds=300)
D = Decimal
UK = "442071234567"


def out(code: str, number: str = UK, emergency: bool = False) -> CallRequest:
    return CallRequest(client_code=code, number=number, direction="out", emergency=emergency)


@pytest.fixture
def tree(engine):
    """master -> r1 -> r2 -> leaf (3 levels below master), r2 also sells to `sib`; and
    `flat`, a client of master on the same operator plan as r1."""
    op = plan_of(engine, None, "op", {"44": ("0.01", "0", 60, 60)})
    r1 = client_under(engine, "r1", None, op, balance="0.20", channel_limit=50)
    r1_sells = plan_of(engine, "r1", "r1-sells", {"44": ("0.024", "0.01", 30, 6)})
    client_under(engine, "r2", "r1", r1_sells, balance="10", channel_limit=50)
    r2_sells = plan_of(engine, "r2", "r2-sells", {"44": ("0.05", "0", 1, 1),
                                                  "33": ("0.05", "0", 1, 1)})
    client_under(engine, "leaf", "r2", r2_sells, balance="10")
    client_under(engine, "sib", "r2", r2_sells, balance="10")
    client_under(engine, "flat", None, op, balance="10")
    return r1


def charges(engine, call_id: int) -> list[str]:
    with engine.connect() as conn:
        return [f"{r.code}|{r.depth}|{r.live}|{r.rate_per_min}|{r.reserved}|{r.cost}|{r.sell}"
                f"|{r.margin}" for r in conn.execute(text(
                    "SELECT c.code, g.* FROM call_charges g JOIN clients c ON c.id = g.client_id"
                    " WHERE g.call_id = :i ORDER BY g.depth"), {"i": call_id})]


def test_a_call_three_levels_below_master_is_held_and_billed_at_every_level(engine, tree):
    got = calls.authorize(engine, out("leaf"), NOW, LIMITS)
    adm = got.admission
    assert adm.allowed and got.rejected_by is None
    # r1's 0.20 at 0.01/min is 20 minutes: the least any level allows
    assert adm.max_seconds == 1200
    assert adm.reservation == D("1.0000")           # leaf: 0.05 x 20 min
    assert charges(engine, got.call_id) == [
        "r2|1|1|0.024000|0.4900|None|None|None",     # 0.01 + 0.024 x 20
        "r1|2|1|0.010000|0.2000|None|None|None"]     # 0.01 x 20
    assert scalar(engine, "SELECT reseller_levels FROM calls WHERE id = :i", i=got.call_id) == 2
    assert live_at(engine, "r1") == (1, D("0.2000"))
    settled = calls.settle(engine, got.call_id, 90500, "ANSWER", NOW + timedelta(minutes=2))
    # leaf 1/1: 91 s x 0.05/60 = 0.075833 -> 0.0758; r2 30/6: 96 s -> 0.01 + 0.0384 = 0.0484;
    # r1 60/60: 120 s -> 0.0200
    assert settled.cost == D("0.0758")
    assert charges(engine, got.call_id) == [
        "r2|1|0|0.024000|0.4900|0.0484|0.0758|0.0274",
        "r1|2|0|0.010000|0.2000|0.0200|0.0484|0.0284"]
    assert [balance(engine, c) for c in ("leaf", "r2", "r1")] == [
        D("9.9242"), D("9.9516"), D("0.1800")]
    assert balance(engine, "master") == 0           # the operator's own account: untouched
    assert [ledger_gap(engine, c) for c in ("leaf", "r2", "r1", "master")] == [0, 0, 0, 0]
    assert live_at(engine, "r1") == (0, 0)
    # a repeat changes nothing at any level
    assert not calls.settle(engine, got.call_id, 90500, "ANSWER", NOW).changed
    assert balance(engine, "r1") == D("0.1800")


def test_a_client_of_master_is_admitted_and_billed_exactly_as_before(engine, tree):
    got = calls.authorize(engine, out("flat"), NOW, LIMITS)
    assert got.admission.allowed and got.admission.max_seconds == 3600
    assert scalar(engine, "SELECT reseller_levels FROM calls WHERE id = :i", i=got.call_id) == 0
    assert charges(engine, got.call_id) == []
    calls.settle(engine, got.call_id, 61000, "ANSWER", NOW)
    assert balance(engine, "flat") == D("9.9800") and ledger_gap(engine, "flat") == 0
    assert balance(engine, "master") == 0


@pytest.mark.parametrize("setup, number, reason, level", [
    ("UPDATE clients SET status = 'suspended' WHERE code = 'r1'", UK, reasons.SUSPENDED, "r1"),
    ("UPDATE clients SET status = 'suspended' WHERE code = 'r2'", UK, reasons.SUSPENDED, "r2"),
    # leaf's plan has 33, r2's buy plan (r1-sells) has not: r2's level has no rate
    (None, "33123456", reasons.NO_RATE, "r2"),
    ("UPDATE clients SET channel_limit = 0 WHERE code = 'r1'", UK, reasons.CHANNEL_LIMIT, "r1"),
    ("UPDATE clients SET channel_limit = 0 WHERE code = 'leaf'", UK, reasons.CHANNEL_LIMIT,
     "leaf"),
    ("UPDATE clients SET status = 'suspended' WHERE code = 'leaf'", UK, reasons.SUSPENDED,
     "leaf"),
])
def test_a_rejection_names_the_level_that_refused(engine, tree, setup, number, reason, level):
    if setup:
        execute(engine, setup)
    got = calls.authorize(engine, out("leaf", number), NOW, LIMITS)
    assert not got.admission.allowed
    assert (got.admission.reason, got.rejected_by) == (reason, level)
    assert scalar(engine, "SELECT CONCAT_WS('|', state, reason, rejected_by, reseller_levels)"
                  " FROM calls WHERE id = :i", i=got.call_id) == f"rejected|{reason}|{level}|0"
    assert charges(engine, got.call_id) == []


def test_no_credit_at_a_reseller_names_it_and_a_suspended_parent_stops_its_own_calls(
        engine, tree):
    # r1's own call holds all its 0.20 (20 minutes at 0.01)
    own = calls.authorize(engine, out("r1"), NOW, LIMITS)
    assert own.admission.allowed and own.admission.reservation == D("0.2000")
    got = calls.authorize(engine, out("leaf"), NOW, LIMITS)
    assert (got.admission.reason, got.rejected_by) == (reasons.NO_CREDIT, "r1")
    calls.settle(engine, own.call_id, 0, "NOANSWER", NOW)
    assert calls.authorize(engine, out("leaf"), NOW, LIMITS).admission.allowed


def test_a_resellers_channels_count_its_subtree_and_its_own_calls(engine, tree):
    execute(engine, "UPDATE clients SET channel_limit = 2 WHERE code = 'r2'")
    assert calls.authorize(engine, out("leaf"), NOW, MINUTE).admission.allowed
    assert calls.authorize(engine, out("sib"), NOW, MINUTE).admission.allowed
    third = calls.authorize(engine, out("r2"), NOW, MINUTE)   # r2's own call: subtree full
    assert (third.admission.reason, third.rejected_by) == (reasons.CHANNEL_LIMIT, "r2")
    fourth = calls.authorize(engine, out("sib"), NOW, MINUTE)
    assert (fourth.admission.reason, fourth.rejected_by) == (reasons.CHANNEL_LIMIT, "r2")
    assert live_at(engine, "r2")[0] == 2


def test_the_stale_sweep_releases_every_level(engine, tree):
    execute(engine, "UPDATE clients SET channel_limit = 1 WHERE code = 'r1'")
    got = calls.authorize(engine, out("leaf"), NOW, LIMITS)
    assert calls.authorize(engine, out("sib"), NOW, LIMITS).rejected_by == "r1"
    assert calls.close_stale(engine, NOW + timedelta(hours=3)) == 1
    assert [c.split("|")[2] for c in charges(engine, got.call_id)] == ["0", "0"]
    assert live_at(engine, "r1") == (0, 0)
    assert calls.authorize(engine, out("sib"), NOW, LIMITS).admission.allowed
    assert balance(engine, "r1") == D("0.20")       # a stale call is not billed


def test_emergency_calls_are_free_at_every_level_even_under_a_suspended_reseller(
        engine, tree):
    execute(engine, "UPDATE clients SET status = 'suspended' WHERE code = 'r1'")
    got = calls.authorize(engine, out("leaf", "112", emergency=True), NOW, LIMITS)
    assert got.admission.allowed
    calls.settle(engine, got.call_id, 600000, "ANSWER", NOW)
    assert [c.split("|")[5] for c in charges(engine, got.call_id)] == ["0.0000", "0.0000"]
    assert [balance(engine, c) for c in ("leaf", "r2", "r1")] == [D("10"), D("10"), D("0.20")]


def test_siblings_racing_for_a_resellers_last_credit_and_channels_never_overdraw_it(
        engine, tree):
    # calls of at most 60 s: each reserves 0.0100 at r1 (0.01/min, 60/60), whose 0.20 pays
    # for 20; r2's 6 channels bind first
    execute(engine, "UPDATE clients SET channel_limit = 6 WHERE code = 'r2'")
    with ThreadPoolExecutor(16) as pool:
        got = list(pool.map(lambda i: calls.authorize(
            engine, out(("leaf", "sib")[i % 2]), NOW, MINUTE), range(40)))
    allowed = [g for g in got if g.admission.allowed]
    assert len(allowed) == 6
    assert {(g.admission.reason, g.rejected_by) for g in got if not g.admission.allowed} == {
        (reasons.CHANNEL_LIMIT, "r2")}
    for g in allowed:
        calls.settle(engine, g.call_id, 60000, "ANSWER", NOW)
    # now credit binds: r1 has 0.20 - 6 x 0.01 = 0.14: 14 more calls of a minute
    execute(engine, "UPDATE clients SET channel_limit = 50 WHERE code = 'r2'")
    with ThreadPoolExecutor(16) as pool:
        got = list(pool.map(lambda i: calls.authorize(
            engine, out(("leaf", "sib")[i % 2]), NOW, MINUTE), range(30)))
    allowed = [g for g in got if g.admission.allowed]
    assert len(allowed) == 14
    assert {(g.admission.reason, g.rejected_by) for g in got if not g.admission.allowed} == {
        (reasons.NO_CREDIT, "r1")}
    for g in allowed:
        calls.settle(engine, g.call_id, 60000, "ANSWER", NOW)
    assert balance(engine, "r1") == 0
    assert [ledger_gap(engine, c) for c in ("leaf", "sib", "r2", "r1")] == [0, 0, 0, 0]


def test_a_credit_slice_is_extended_only_as_far_as_every_level_pays(engine, tree):
    first = calls.Limits(max_call_seconds=1140, dial_template="x/{number}",
                         stale_grace_seconds=300)
    got = calls.authorize(engine, out("leaf"), NOW, first)   # r1 holds 0.19 of its 0.20
    assert got.admission.max_seconds == 1140
    later = NOW + timedelta(days=1)
    # a 300 s slice is wanted; r1's last 0.01 pays for one more minute only
    extended = call_watch.extend_call(engine, got.call_id, 300, 3600, later, 300)
    assert extended.max_seconds == 1200
    assert scalar(engine, "SELECT CONCAT_WS('|', max_seconds, reserved) FROM calls"
                  " WHERE id = :i", i=got.call_id) == "1200|1.0000"
    assert [c.split("|")[4] for c in charges(engine, got.call_id)] == ["0.4900", "0.2000"]
    assert call_watch.extend_call(engine, got.call_id, 300, 3600, later, 300) is None
    calls.settle(engine, got.call_id, 1200000, "ANSWER", NOW)
    assert balance(engine, "r1") == 0
    assert [ledger_gap(engine, c) for c in ("leaf", "r2", "r1")] == [0, 0, 0]


def test_mixed_load_at_every_level_never_deadlocks_and_keeps_every_ledger(engine, tree):
    """Calls of clients at every depth (and of the resellers themselves), settles and
    payments to the resellers at once: every transaction takes the levels' rows in the one
    order (deepest first, clients row then account), so none waits for a retry."""
    import random
    from fastagi.db.retry import observed_by
    from tests.callcontrol.tenants import pay

    codes = ("leaf", "sib", "r2", "r1", "flat")
    ids = {c: scalar(engine, "SELECT id FROM clients WHERE code = :c", c=c) for c in codes}
    pay(engine, ids["r1"], "100", "load-r1")
    retries: list[str] = []

    def worker(n: int) -> None:
        rng = random.Random(n)
        held = []
        with observed_by(retries.append):
            for i in range(30):
                if n == 0 and i % 3 == 0:
                    pay(engine, ids[rng.choice(("r1", "r2"))], "0.5", f"w{n}-{i}")
                got = calls.authorize(engine, out(rng.choice(codes)), NOW, MINUTE)
                if got.admission.allowed:
                    held.append(got.call_id)
                if held and rng.random() < 0.6:
                    calls.settle(engine, held.pop(rng.randrange(len(held))),
                                 rng.randint(0, 60000), "ANSWER", NOW)
            for call_id in held:
                calls.settle(engine, call_id, rng.randint(0, 60000), "ANSWER", NOW)

    with ThreadPoolExecutor(8) as pool:
        list(pool.map(worker, range(8)))
    assert retries == []
    assert scalar(engine, "SELECT COUNT(*) FROM calls WHERE state = 'live'") == 0
    assert scalar(engine, "SELECT COUNT(*) FROM calls WHERE state = 'settled'"
                  " AND reseller_levels > 0") > 20
    assert [ledger_gap(engine, c) for c in codes] == [0] * len(codes)
    assert [live_at(engine, c) for c in codes] == [(0, 0)] * len(codes)


def test_a_resellers_own_call_is_extended_only_from_what_its_subtree_leaves(engine, tree):
    # leaf's call holds 0.19 of r1's 0.20 (19 minutes at r1's 0.01)
    first = calls.Limits(max_call_seconds=1140, dial_template="x/{number}",
                         stale_grace_seconds=300)
    assert calls.authorize(engine, out("leaf"), NOW, first).admission.allowed
    own = calls.authorize(engine, out("r1"), NOW, MINUTE)    # r1's own: the last 0.01
    assert own.admission.allowed and own.admission.reservation == D("0.0100")
    later = NOW + timedelta(days=1)
    assert call_watch.extend_call(engine, own.call_id, 300, 3600, later, 300) is None
