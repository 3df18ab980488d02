"""authorize/settle/stale transactions against the real database (no AGI in between)."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timedelta
from decimal import Decimal

import pytest

from fastagi import reasons
from fastagi.billing.admission import CallRequest
from fastagi.db.engine import make_engine
from fastagi.store import calls
from tests.callcontrol.tenants import (add_client, add_plan, add_rate, default_plan_id,
                                       ledger_gap, pay)
from tests.support.sql import execute, scalar

NOW = datetime(2026, 11, 25, 12, 0, 0)
LIMITS = calls.Limits(max_call_seconds=3600, dial_template="PJSIP/{number}@carrier",
                      stale_grace_seconds=300)
D = Decimal


def out(code: str, number: str = "442071234567", emergency: bool = False) -> CallRequest:
    return CallRequest(client_code=code, number=number, direction="out", emergency=emergency)


@pytest.fixture
def plan(engine):
    plan_id = default_plan_id(engine)
    add_rate(engine, plan_id, "44", "0.10")
    add_rate(engine, plan_id, "4420", "0.05", connection_fee="0.01", initial=30, subsequent=6)
    return plan_id


def test_allowed_call_uses_longest_prefix_and_reserves_its_maximum(engine, plan):
    cid = add_client(engine, "acme", balance="1.00")
    got = calls.authorize(engine, out("acme", "442071234567"), NOW, LIMITS)
    adm = got.admission
    assert adm.allowed and adm.reason == ""
    assert adm.rate.prefix == "4420"
    # (1.00 - 0.01) / 0.05 per min = 19.8 min = 1188 s -> 30 + 193*6 = 1188 s
    assert adm.max_seconds == 1188
    assert adm.reservation == D("1.0000")
    assert adm.dial_target == "PJSIP/442071234567@carrier"
    row = scalar(engine, "SELECT CONCAT_WS('|', state, prefix, rate_per_min, max_seconds,"
                 " reserved, expires_at) FROM calls WHERE id = :i", i=got.call_id)
    assert row == "live|4420|0.050000|1188|1.0000|2026-11-25 12:24:48.000"
    assert got.client_id == cid


@pytest.mark.parametrize("setup, request_, reason", [
    ("none", out("ghost"), reasons.UNKNOWN_CLIENT),
    ("suspended", out("acme"), reasons.SUSPENDED),
    ("active", out("acme", "33123456"), reasons.NO_RATE),
    ("broke", out("acme"), reasons.NO_CREDIT),
    ("full", out("acme"), reasons.CHANNEL_LIMIT),
])
def test_each_rejection_reason_is_recorded(engine, plan, setup, request_, reason):
    if setup != "none":
        add_client(engine, "acme", balance="0" if setup == "broke" else "5",
                   status="suspended" if setup == "suspended" else "active",
                   channel_limit=0 if setup == "full" else 5)
    got = calls.authorize(engine, request_, NOW, LIMITS)
    assert not got.admission.allowed
    assert got.admission.reason == reason
    assert got.admission.cause == reasons.cause_for(reason)
    recorded = scalar(engine, "SELECT CONCAT_WS('|', state, reason, client_code, number,"
                      " reserved) FROM calls WHERE id = :i", i=got.call_id)
    assert recorded == f"rejected|{reason}|{request_.client_code}|{request_.number}|0.0000"


def test_emergency_is_allowed_for_suspended_empty_full_account_and_never_billed(engine, plan):
    cid = add_client(engine, "acme", balance="0", channel_limit=0, status="suspended")
    got = calls.authorize(engine, out("acme", "112", emergency=True), NOW, LIMITS)
    assert got.admission.allowed
    assert got.admission.reservation == 0
    assert got.admission.max_seconds == LIMITS.max_call_seconds
    settled = calls.settle(engine, got.call_id, 600000, "ANSWER", NOW + timedelta(minutes=11))
    assert settled.cost == 0
    assert scalar(engine, "SELECT balance FROM client_accounts WHERE client_id = :i", i=cid) == 0
    assert scalar(engine, "SELECT emergency FROM calls WHERE id = :i", i=got.call_id) == 1


def test_inbound_is_free_unless_the_plan_rates_inbound(engine, plan):
    add_client(engine, "acme", balance="0")
    inbound = CallRequest("acme", "442071234567", "in")
    got = calls.authorize(engine, inbound, NOW, LIMITS)
    assert got.admission.allowed and got.admission.reservation == 0
    assert got.admission.max_seconds == 3600 and got.admission.dial_target == ""
    rated = add_plan(engine, "rated-inbound", rate_inbound=True)
    add_rate(engine, rated, "44", "0.10")
    add_client(engine, "bob", balance="0", plan_id=rated)
    got = calls.authorize(engine, CallRequest("bob", "442071234567", "in"), NOW, LIMITS)
    assert got.admission.reason == reasons.NO_CREDIT


def test_inbound_respects_suspension_and_channel_limit(engine, plan):
    add_client(engine, "acme", status="suspended")
    add_client(engine, "bob", channel_limit=0)
    assert calls.authorize(engine, CallRequest("acme", "1", "in"), NOW, LIMITS
                           ).admission.reason == reasons.SUSPENDED
    assert calls.authorize(engine, CallRequest("bob", "1", "in"), NOW, LIMITS
                           ).admission.reason == reasons.CHANNEL_LIMIT


def test_plan_dial_template_overrides_the_server_default(engine):
    plan_id = add_plan(engine, "via-carrier2", dial_template="PJSIP/00{number}@carrier2")
    add_rate(engine, plan_id, "1", "0.01")
    add_client(engine, "acme", balance="10", plan_id=plan_id)
    got = calls.authorize(engine, out("acme", "15551234"), NOW, LIMITS)
    assert got.admission.dial_target == "PJSIP/0015551234@carrier2"


def test_operator_changes_apply_to_the_very_next_call(engine, plan):
    cid = add_client(engine, "acme", balance="0", channel_limit=1)
    assert calls.authorize(engine, out("acme"), NOW, LIMITS).admission.reason == reasons.NO_CREDIT
    pay(engine, cid, "10.00", "TOPUP-1")
    first = calls.authorize(engine, out("acme"), NOW, LIMITS)
    assert first.admission.allowed
    assert calls.authorize(engine, out("acme"), NOW, LIMITS
                           ).admission.reason == reasons.CHANNEL_LIMIT
    execute(engine, "UPDATE clients SET channel_limit = 2 WHERE id = :i", i=cid)
    execute(engine, "UPDATE rates SET rate_per_min = 0.001 WHERE prefix = '4420'")
    second = calls.authorize(engine, out("acme"), NOW, LIMITS)
    assert second.admission.allowed and second.admission.rate.rate_per_min == D("0.001")
    execute(engine, "UPDATE clients SET status = 'suspended' WHERE id = :i", i=cid)
    assert calls.authorize(engine, out("acme"), NOW, LIMITS).admission.reason == reasons.SUSPENDED
    execute(engine, "UPDATE clients SET status = 'active' WHERE id = :i", i=cid)
    execute(engine, "DELETE FROM rates WHERE rate_plan_id = :p", p=plan)
    assert calls.authorize(engine, out("acme"), NOW, LIMITS).admission.reason == reasons.NO_RATE


def test_settle_bills_once_and_a_repeat_changes_nothing(engine, plan):
    cid = add_client(engine, "acme", balance="5.00")
    call = calls.authorize(engine, out("acme"), NOW, LIMITS).call_id
    first = calls.settle(engine, call, 31000, "ANSWER", NOW + timedelta(seconds=40))
    # 4420: fee 0.01 + 0.05/min * 36 s = 0.04
    assert (first.changed, first.cost) == (True, D("0.0400"))
    again = calls.settle(engine, call, 999000, "ANSWER", NOW + timedelta(seconds=90))
    assert (again.changed, again.cost, again.state) == (False, D("0.0400"), "settled")
    assert scalar(engine, "SELECT balance FROM client_accounts WHERE client_id = :i", i=cid) == D("4.9600")
    assert ledger_gap(engine, cid) == 0


def test_unanswered_call_costs_nothing_and_releases_channel(engine, plan):
    cid = add_client(engine, "acme", balance="5.00", channel_limit=1)
    call = calls.authorize(engine, out("acme"), NOW, LIMITS).call_id
    assert calls.settle(engine, call, None, "BUSY", NOW).cost == 0
    assert calls.authorize(engine, out("acme"), NOW, LIMITS).admission.allowed
    assert scalar(engine, "SELECT balance FROM client_accounts WHERE client_id = :i", i=cid) == D("5.0000")


def test_talk_above_the_limit_is_billed_at_the_limit_and_flagged(engine, plan):
    cid = add_client(engine, "acme", balance="0.1100")  # 0.01 fee + 2 min at 0.05
    got = calls.authorize(engine, out("acme"), NOW, LIMITS)
    assert got.admission.max_seconds == 120
    settled = calls.settle(engine, got.call_id, 121000, "ANSWER", NOW)
    assert settled.cost == D("0.1100")
    assert scalar(engine, "SELECT balance FROM client_accounts WHERE client_id = :i", i=cid) == 0
    assert "above" in scalar(engine, "SELECT review_note FROM calls WHERE id = :i",
                             i=got.call_id)


def test_unknown_and_rejected_calls_settle_to_nothing(engine, plan):
    assert not calls.settle(engine, 424242, 10000, "ANSWER", NOW).found
    rejected = calls.authorize(engine, out("ghost"), NOW, LIMITS).call_id
    result = calls.settle(engine, rejected, 10000, "ANSWER", NOW)
    assert (result.found, result.state, result.changed) == (True, "rejected", False)


def test_stale_calls_release_channel_and_credit_and_are_kept_for_review(engine, plan):
    cid = add_client(engine, "acme", balance="10.00", channel_limit=1)
    got = calls.authorize(engine, out("acme"), NOW, LIMITS)
    expiry = NOW + timedelta(seconds=got.admission.max_seconds + LIMITS.stale_grace_seconds)
    assert calls.close_stale(engine, expiry - timedelta(seconds=1)) == 0
    assert calls.authorize(engine, out("acme"), NOW, LIMITS
                           ).admission.reason == reasons.CHANNEL_LIMIT
    assert calls.close_stale(engine, expiry + timedelta(milliseconds=1)) == 1
    assert calls.close_stale(engine, expiry + timedelta(seconds=5)) == 0
    assert scalar(engine, "SELECT state FROM calls WHERE id = :i", i=got.call_id) == "stale"
    assert scalar(engine, "SELECT COUNT(*) FROM calls_for_review WHERE call_id = :i",
                  i=got.call_id) == 1
    assert scalar(engine, "SELECT balance FROM client_accounts WHERE client_id = :i", i=cid) == D("10.0000")
    assert calls.authorize(engine, out("acme"), NOW, LIMITS).admission.allowed
    # A settle that arrives late bills once, and says so for the reviewer.
    late = calls.settle(engine, got.call_id, 60000, "ANSWER", expiry + timedelta(minutes=1))
    assert late.changed and late.cost == D("0.0600")
    assert "stale" in scalar(engine, "SELECT review_note FROM calls WHERE id = :i",
                             i=got.call_id)
    assert not calls.settle(engine, got.call_id, 60000, "ANSWER", expiry).changed
    assert ledger_gap(engine, cid) == 0


def _in_parallel(db_url, work, count, threads):
    """Run work(engine, i) `count` times across `threads` threads, each on its own pool."""
    engine = make_engine(db_url, pool_size=threads)
    try:
        with ThreadPoolExecutor(max_workers=threads) as pool:
            return list(pool.map(lambda i: work(engine, i), range(count)))
    finally:
        engine.dispose()


def test_parallel_authorizations_never_exceed_the_channel_limit(engine, db_url, plan):
    add_client(engine, "acme", balance="1000", channel_limit=10)
    results = _in_parallel(db_url, lambda eng, i: calls.authorize(eng, out("acme"), NOW, LIMITS),
                           count=200, threads=20)
    allowed = [r for r in results if r.admission.allowed]
    assert len(allowed) == 10
    assert {r.admission.reason for r in results if not r.admission.allowed} == {
        reasons.CHANNEL_LIMIT}
    assert scalar(engine, "SELECT live_calls FROM client_list WHERE code = 'acme'") == 10


def test_credit_for_n_calls_admits_exactly_n_and_the_ledger_holds(engine, db_url):
    plan_id = default_plan_id(engine)
    add_rate(engine, plan_id, "1", "0.013", connection_fee="0.002", initial=30, subsequent=6)
    limits = calls.Limits(max_call_seconds=600, dial_template="X/{number}", stale_grace_seconds=60)
    # One maximum-length call: 0.002 + 0.013 * 10 min = 0.132
    n = 7
    cid = add_client(engine, "acme", balance=str(Decimal("0.132") * n), channel_limit=100)
    results = _in_parallel(
        db_url, lambda eng, i: calls.authorize(eng, out("acme", "15550001"), NOW, limits),
        count=n + 1, threads=n + 1)
    allowed = [r for r in results if r.admission.allowed]
    assert len(allowed) == n
    assert all(r.admission.max_seconds == 600 for r in allowed)
    assert [r.admission.reason for r in results if not r.admission.allowed] == [reasons.NO_CREDIT]
    _in_parallel(db_url, lambda eng, i: calls.settle(eng, allowed[i].call_id, (17 + 83 * i) * 1000,
                                                     "ANSWER", NOW), count=n, threads=n)
    assert ledger_gap(engine, cid) == 0
    balance = scalar(engine, "SELECT balance FROM client_accounts WHERE client_id = :i", i=cid)
    assert balance >= 0
    charged = scalar(engine, "SELECT SUM(cost) FROM calls WHERE client_id = :i", i=cid)
    assert balance == Decimal("0.132") * n - charged


def test_postpaid_credit_limit_extends_available_credit(engine, plan):
    add_client(engine, "acme", balance="0", credit_limit="1.00")
    got = calls.authorize(engine, out("acme", "4411"), NOW, LIMITS)
    assert got.admission.allowed and got.admission.max_seconds == 600


def test_a_leading_plus_is_not_part_of_the_rated_prefix(engine, plan):
    add_client(engine, "acme", balance="5")
    got = calls.authorize(engine, out("acme", "+442071234567"), NOW, LIMITS)
    assert got.admission.allowed and got.admission.rate.prefix == "4420"
    assert got.admission.dial_target == "PJSIP/+442071234567@carrier"


def test_prefixes_up_to_32_digits_and_shorter_numbers_than_prefixes(engine, plan):
    add_rate(engine, plan, "4" * 32, "0.01")
    add_client(engine, "acme", balance="5")
    longest = calls.authorize(engine, out("acme", "4" * 32), NOW, LIMITS)
    assert longest.admission.rate.prefix == "4" * 32
    assert calls.authorize(engine, out("acme", "4"), NOW, LIMITS
                           ).admission.reason == reasons.NO_RATE
