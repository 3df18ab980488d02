"""The dialer end to end: real MariaDB, the real FastAGI server, AMI over real TCP to a
fake PBX that runs the campaign dialplan's authorize -> Dial -> settle for every call."""

from __future__ import annotations

from decimal import Decimal

import pytest_twisted

from fastagi import channel_vars as v
from fastagi.campaigns.pacing import CONNECTION_LOST
from fastagi.testing.fake_pbx import Outcome
from tests.callcontrol.tenants import add_rate, default_plan_id, pay
from tests.campaigns.helpers import (ALWAYS_OPEN, add_campaign, add_client_with_rate, add_contacts,
                                     assert_every_call_closed, campaign_status, contact_states,
                                     fast_campaign, numbers)
from tests.campaigns.rig import campaign_rig
from tests.support.sql import execute, rows
from tests.support.waiting import pause, wait_until

@pytest_twisted.ensureDeferred
async def test_master_and_a_client_campaign_run_side_by_side_within_their_limits(engine):
    add_rate(engine, default_plan_id(engine), "44", "0.06")
    pay(engine, 1, "50", "operator top-up")
    execute(engine, "UPDATE clients SET channel_limit = 4 WHERE code = 'master'")
    acme = add_client_with_rate(engine, "acme", balance="20", channel_limit=3)
    execute(engine, "INSERT INTO campaign_destinations (name, context, exten) "
                    "VALUES ('survey', 'ivr-survey', 's')")
    ours = add_campaign(engine, 1, "operator-news", caller_id="+442000000001",
                        max_channels=10, keep_free_channels=1, calls_per_second=50, **ALWAYS_OPEN)
    theirs = add_campaign(engine, acme, "acme-survey", recording=None, destination_id=1,
                          max_channels=2, keep_free_channels=0, calls_per_second=50,
                          **ALWAYS_OPEN)
    add_contacts(engine, 1, ours, numbers(0, 20))
    add_contacts(engine, acme, theirs, numbers(100, 20))
    async with campaign_rig(engine, lambda n: Outcome("ANSWER", 30, hold_seconds=0.15)) as rig:
        rig.add_dialer("d1")
        execute(engine, "UPDATE campaigns SET status = 'running'")
        await wait_until(lambda: campaign_status(engine, ours) == "finished"
                         and campaign_status(engine, theirs) == "finished", what="both finished")
        pbx = rig.pbx
    assert contact_states(engine, ours) == {"answered": 20}
    assert contact_states(engine, theirs) == {"answered": 20}
    # caps: master 4 channels minus 1 kept free; acme's campaign cap 2 (its limit is 3)
    assert pbx.most_in_flight["master"] == 3
    assert pbx.most_in_flight["acme"] == 2
    assert pbx.double_dials == []
    assert len(pbx.calls) == 40 and {c.result for c in pbx.calls} == {"ALLOW"}
    assert_every_call_closed(engine, pbx)
    first = next(c for c in pbx.calls if c.variables[v.CAMPAIGN_CLIENT] == "acme")
    assert first.headers["Channel"] == "Local/s@ict-campaign/n"
    assert (first.headers["Context"], first.headers["Exten"], first.headers["Priority"]) == \
        ("ivr-survey", "s", "1")
    assert first.headers["Account"] == "acme"
    assert first.headers["OtherChannelId"].startswith("ictc-")
    master_call = next(c for c in pbx.calls if c.variables[v.CAMPAIGN_CLIENT] == "master")
    assert master_call.headers["Context"] == "ict-campaign-play"
    assert master_call.variables[v.CAMPAIGN_RECORDING] == "custom/promo"
    assert master_call.headers["CallerID"] == "+442000000001"
    # every call billed like any other: 30 s at 0.06/min, rounded up to the minute
    billed = rows(engine, "SELECT client_code, COUNT(*), SUM(cost) FROM calls "
                          "WHERE state = 'settled' GROUP BY client_code ORDER BY client_code")
    assert [tuple(r) for r in billed] == [("acme", 20, Decimal("1.2000")),
                                          ("master", 20, Decimal("1.2000"))]
    progress = rows(engine, "SELECT client, contacts, answered_contacts, attempts, answered, "
                            "answer_rate, talk_seconds, cost, in_flight, state "
                            "FROM campaign_progress ORDER BY campaign_id")
    assert [tuple(r) for r in progress] == [
        ("master", 20, 20, 20, 20, Decimal("1.0000"), 600, Decimal("1.2000"), 0, "finished"),
        ("acme", 20, 20, 20, 20, Decimal("1.0000"), 600, Decimal("1.2000"), 0, "finished")]
    balances = rows(engine, "SELECT code, balance FROM client_list ORDER BY id")
    assert [tuple(r) for r in balances] == [("master", Decimal("48.8000")),
                                            ("acme", Decimal("18.8000"))]


def originates_after(pbx, moment: float) -> list[float]:
    return [c.at - moment for c in pbx.calls if c.at > moment]


@pytest_twisted.ensureDeferred
async def test_pause_stops_new_calls_within_a_second_and_resume_goes_on(engine):
    import time
    acme = add_client_with_rate(engine, "acme", balance="100", channel_limit=20)
    campaign = fast_campaign(engine, acme, 200, max_channels=10)
    async with campaign_rig(engine, lambda n: Outcome("ANSWER", 5, hold_seconds=0.05)) as rig:
        rig.add_dialer("d1")
        execute(engine, "UPDATE campaigns SET status = 'running' WHERE id = :g", g=campaign)
        await wait_until(lambda: len(rig.pbx.calls) >= 20, what="20 calls")
        execute(engine, "UPDATE campaigns SET status = 'paused' WHERE id = :g", g=campaign)
        paused_at = time.monotonic()
        before = len(rig.pbx.calls)
        await pause(1.5)  # time is the behaviour: what is dialled after it
        late = [t for t in originates_after(rig.pbx, paused_at) if t > 1.0]
        assert late == []
        paused_total = len(rig.pbx.calls)
        assert paused_total < 200 and paused_total - before <= 10
        execute(engine, "UPDATE campaigns SET status = 'running' WHERE id = :g", g=campaign)
        await wait_until(lambda: campaign_status(engine, campaign) == "finished",
                         what="finished after resume")
        assert rig.pbx.double_dials == []
    assert contact_states(engine, campaign) == {"answered": 200}
    assert_every_call_closed(engine, rig.pbx)


@pytest_twisted.ensureDeferred
async def test_suspension_stops_the_campaign_at_once_and_reactivation_resumes_it(engine):
    import time
    acme = add_client_with_rate(engine, "acme", balance="100", channel_limit=20)
    campaign = fast_campaign(engine, acme, 150, max_channels=10)
    async with campaign_rig(engine, lambda n: Outcome("ANSWER", 5, hold_seconds=0.05)) as rig:
        rig.add_dialer("d1", requeue_seconds=0.5)
        execute(engine, "UPDATE campaigns SET status = 'running' WHERE id = :g", g=campaign)
        await wait_until(lambda: len(rig.pbx.calls) >= 20, what="20 calls")
        execute(engine, "UPDATE clients SET status = 'suspended' WHERE id = :c", c=acme)
        suspended_at = time.monotonic()
        await pause(1.5)  # time is the behaviour: what is dialled after it
        assert [t for t in originates_after(rig.pbx, suspended_at) if t > 1.0] == []
        assert campaign_status(engine, campaign) == "suspended"   # state; status untouched (150)
        # calls that reached authorize after the suspension were refused there
        refused = [c.result for c in rig.pbx.calls if c.result.startswith("REJECT")]
        assert set(refused) <= {"REJECT:suspended"}
        execute(engine, "UPDATE clients SET status = 'active' WHERE id = :c", c=acme)
        await wait_until(lambda: campaign_status(engine, campaign) == "finished",
                         what="finished after reactivation")
    assert contact_states(engine, campaign) == {"answered": 150}
    assert_every_call_closed(engine, rig.pbx)


@pytest_twisted.ensureDeferred
async def test_credit_running_out_stops_the_dialer_without_using_up_contacts(engine):
    import time
    acme = add_client_with_rate(engine, "acme", balance="0.30", channel_limit=10, rate="0.06")
    campaign = fast_campaign(engine, acme, 20, max_channels=5)
    async with campaign_rig(engine, lambda n: Outcome("ANSWER", 30, hold_seconds=0.1)) as rig:
        rig.add_dialer("d1")
        execute(engine, "UPDATE campaigns SET status = 'running' WHERE id = :g", g=campaign)
        balance = lambda: rows(engine, "SELECT balance FROM client_accounts WHERE client_id = :c", c=acme)[0][0]
        # A contact refused while another call held the credit comes back after the
        # dialer's requeue delay (30 s by default): the deadline is beyond it.
        await wait_until(lambda: balance() == Decimal("0") and rig.pbx.open_calls == 0,
                         timeout=90, what="credit used up")
        spent_at = time.monotonic()
        await pause(1.5)  # time is the behaviour: what is dialled after it
        assert originates_after(rig.pbx, spent_at) == []
    states = contact_states(engine, campaign)
    assert states["answered"] == 5 and sum(states.values()) == 20
    assert set(states) <= {"answered", "new", "retry"}
    # refusals for no credit did not use up attempts
    assert rows(engine, "SELECT COUNT(*) FROM contacts WHERE campaign_id = :g "
                        "AND status <> 'answered' AND attempts > 0", g=campaign)[0][0] == 0
    assert campaign_status(engine, campaign) == "running"
    outcomes = rows(engine, "SELECT outcome, reason, COUNT(*) FROM campaign_attempts "
                            "GROUP BY outcome, reason ORDER BY outcome")
    assert {(o, r) for o, r, _ in outcomes} <= {("answered", "ANSWER"), ("rejected", "no-credit")}
    assert_every_call_closed(engine, rig.pbx)


def no_credit_attempts(engine) -> int:
    return rows(engine, "SELECT COUNT(*) FROM campaign_attempts WHERE reason = 'no-credit'")[0][0]


@pytest_twisted.ensureDeferred
async def test_a_modest_balance_fills_the_campaign_cap_with_credit_slices(engine):
    """$100 at $0.60/min, max_channels 5: each call reserves one 300 s slice ($3), so five
    run at once, and no originate is wasted on a no-credit refusal. (Reserving each call's
    whole maximum, the first call held the $100 and every other one was refused.)"""
    acme = add_client_with_rate(engine, "acme", balance="100", channel_limit=10, rate="0.60")
    campaign = fast_campaign(engine, acme, 15, max_channels=5)
    # serve --ami: slices are on by default (the AMI address is only needed to extend
    # calls, which these short calls never are)
    async with campaign_rig(engine, lambda n: Outcome("ANSWER", 2.96, hold_seconds=0.4),
                            ami="127.0.0.1:1", ami_secret="s") as rig:
        rig.add_dialer("d1")
        execute(engine, "UPDATE campaigns SET status = 'running' WHERE id = :g", g=campaign)
        await wait_until(lambda: campaign_status(engine, campaign) == "finished",
                       what="campaign finished")
        pbx = rig.pbx
    assert pbx.most_in_flight["acme"] == 5
    assert {c.result for c in pbx.calls} == {"ALLOW"} and len(pbx.calls) == 15
    assert no_credit_attempts(engine) == 0
    assert contact_states(engine, campaign) == {"answered": 15}
    # each 2.96 s call: its first (60 s) increment, $0.60, and the exact ms recorded
    assert rows(engine, "SELECT COUNT(*), SUM(cost), SUM(answered_ms) FROM calls")[0] == (
        15, Decimal("9.0000"), 15 * 2960)
    assert_every_call_closed(engine, pbx)


@pytest_twisted.ensureDeferred
async def test_without_slices_the_dialer_waits_for_credit_instead_of_wasting_attempts(engine):
    """serve --credit-slice-seconds 0 (and the dialer told so): the first call reserves
    what $100 pays, so the dialer starts the next one only when it has settled; no
    contact is refused no-credit on the way."""
    acme = add_client_with_rate(engine, "acme", balance="100", channel_limit=10, rate="0.60")
    campaign = fast_campaign(engine, acme, 4, max_channels=5)
    async with campaign_rig(engine, lambda n: Outcome("ANSWER", 5, hold_seconds=0.2)) as rig:
        rig.add_dialer("d1", credit_slice_seconds=0)
        execute(engine, "UPDATE campaigns SET status = 'running' WHERE id = :g", g=campaign)
        await wait_until(lambda: campaign_status(engine, campaign) == "finished",
                       what="campaign finished")
        pbx = rig.pbx
    assert pbx.most_in_flight["acme"] == 1
    assert no_credit_attempts(engine) == 0
    assert contact_states(engine, campaign) == {"answered": 4}
    assert_every_call_closed(engine, pbx)


@pytest_twisted.ensureDeferred
async def test_retries_and_refusals_are_recorded_per_attempt(engine):
    acme = add_client_with_rate(engine, "acme", balance="100", channel_limit=10)
    campaign = fast_campaign(engine, acme, 4, max_attempts=2, retry_busy_seconds=0,
                             retry_failed_seconds=0)
    no_rate, = add_contacts(engine, acme, campaign, ["3312345678"])
    seen: dict[str, int] = {}

    def outcome(number: str) -> Outcome:
        seen[number] = seen.get(number, 0) + 1
        if number.endswith("01"):
            return Outcome("CONGESTION")
        return Outcome("BUSY") if seen[number] == 1 else Outcome("ANSWER", 12)

    async with campaign_rig(engine, outcome) as rig:
        rig.add_dialer("d1")
        execute(engine, "UPDATE campaigns SET status = 'running' WHERE id = :g", g=campaign)
        await wait_until(lambda: campaign_status(engine, campaign) == "finished", what="finished")
        assert rig.pbx.double_dials == []
    got = rows(engine, "SELECT c.phone, c.status, c.attempts, c.last_reason, "
                       "GROUP_CONCAT(a.outcome ORDER BY a.id) FROM contacts c "
                       "JOIN campaign_attempts a ON a.contact_id = c.id "
                       "GROUP BY c.id ORDER BY c.id")
    assert [tuple(r) for r in got] == [
        ("442000000000", "answered", 2, "ANSWER", "busy,answered"),
        ("442000000001", "failed", 2, "failed after 2 attempts", "failed,failed"),
        ("442000000002", "answered", 2, "ANSWER", "busy,answered"),
        ("442000000003", "answered", 2, "ANSWER", "busy,answered"),
        ("3312345678", "failed", 1, "rejected: no-rate", "rejected"),
    ]


@pytest_twisted.ensureDeferred
async def test_two_dialers_on_one_campaign_never_dial_a_contact_twice(engine):
    acme = add_client_with_rate(engine, "acme", balance="100", channel_limit=20)
    campaign = fast_campaign(engine, acme, 60, max_channels=4, calls_per_second=40)
    async with campaign_rig(engine, lambda n: Outcome("ANSWER", 5, hold_seconds=0.1)) as rig:
        rig.add_dialer("d1")
        rig.add_dialer("d2")
        execute(engine, "UPDATE campaigns SET status = 'running' WHERE id = :g", g=campaign)
        await wait_until(lambda: campaign_status(engine, campaign) == "finished", what="finished")
        assert rig.pbx.double_dials == []
        assert rig.pbx.most_in_flight["acme"] == 4
    by_dialer = dict(rows(engine, "SELECT dialer, COUNT(*) FROM campaign_attempts GROUP BY dialer"))
    assert set(by_dialer) == {"d1", "d2"} and sum(by_dialer.values()) == 60
    assert contact_states(engine, campaign) == {"answered": 60}
    assert_every_call_closed(engine, rig.pbx)


@pytest_twisted.ensureDeferred
async def test_a_dialer_killed_mid_campaign_loses_and_doubles_nothing(engine):
    acme = add_client_with_rate(engine, "acme", balance="100", channel_limit=20)
    campaign = fast_campaign(engine, acme, 16, max_channels=4)
    async with campaign_rig(engine, lambda n: Outcome("ANSWER", 5, hold_seconds=1.0)) as rig:
        doomed = rig.add_dialer("d1", claim_seconds=1.0)
        execute(engine, "UPDATE campaigns SET status = 'running' WHERE id = :g", g=campaign)
        await wait_until(lambda: len(rig.pbx.calls) >= 4, what="4 calls")
        await doomed.stop()          # gone: its 4 calls go on without it
        rig.dialers.remove(doomed)
        killed_with = len(rig.pbx.calls)
        rig.add_dialer("d2", claim_seconds=1.0)
        await wait_until(lambda: campaign_status(engine, campaign) == "finished",
                         what="finished by d2")
        assert rig.pbx.double_dials == []
    assert contact_states(engine, campaign) == {"answered": 16}
    attempts = dict(rows(engine, "SELECT dialer, COUNT(*) FROM campaign_attempts GROUP BY dialer"))
    assert attempts == {"d1": killed_with, "d2": 16 - killed_with}
    assert_every_call_closed(engine, rig.pbx)


@pytest_twisted.ensureDeferred
async def test_an_ami_outage_stops_dialling_and_uses_up_no_attempt(engine):
    import time
    acme = add_client_with_rate(engine, "acme", balance="100", channel_limit=20)
    campaign = fast_campaign(engine, acme, 60, max_channels=5, max_attempts=1)
    async with campaign_rig(engine, lambda n: Outcome("ANSWER", 5, hold_seconds=0.1)) as rig:
        rig.add_dialer("d1", requeue_seconds=0.5)
        execute(engine, "UPDATE campaigns SET status = 'running' WHERE id = :g", g=campaign)
        await wait_until(lambda: len(rig.pbx.calls) >= 10, what="10 calls")
        rig.pbx.secret = "changed"        # Asterisk restarts with another secret: no login
        rig.pbx.drop_all()
        await wait_until(lambda: not rig.ami.connected, what="AMI down")
        down_at = time.monotonic()
        await pause(1.0)  # time is the behaviour: no attempt used while down
        assert [t for t in originates_after(rig.pbx, down_at)] == []
        rig.pbx.secret = "s3cret"
        await wait_until(lambda: campaign_status(engine, campaign) == "finished", timeout=60,
                         what="finished after AMI came back")
        assert rig.pbx.double_dials == []
    # one attempt each, yet every contact answered: nothing the outage touched was spent
    assert contact_states(engine, campaign) == {"answered": 60}
    assert_every_call_closed(engine, rig.pbx)


@pytest_twisted.ensureDeferred
async def test_an_originate_lost_with_the_ami_connection_uses_up_no_attempt(engine):
    acme = add_client_with_rate(engine, "acme", balance="100", channel_limit=20)
    campaign = fast_campaign(engine, acme, 1, max_attempts=1)
    async with campaign_rig(engine, lambda n: Outcome("ANSWER", 5)) as rig:
        rig.pbx.silent = {"Originate"}     # received, never answered, never placed
        rig.add_dialer("d1", requeue_seconds=0.5)
        execute(engine, "UPDATE campaigns SET status = 'running' WHERE id = :g", g=campaign)
        await wait_until(lambda: any(a.get("Action") == "Originate" for a in rig.pbx.actions),
                         what="the Originate arrives")
        rig.pbx.drop_all()
        rig.pbx.silent = set()
        await wait_until(lambda: campaign_status(engine, campaign) == "finished", timeout=30,
                         what="finished after AMI came back")
    attempts = rows(engine, "SELECT outcome, reason FROM campaign_attempts ORDER BY id")
    assert [tuple(a) for a in attempts] == [("failed", CONNECTION_LOST), ("answered", "ANSWER")]
    assert rows(engine, "SELECT status, attempts FROM contacts")[0] == ("answered", 1)
    assert len(rig.pbx.calls) == 1
    assert_every_call_closed(engine, rig.pbx)
