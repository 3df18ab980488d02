"""The dialer end to end: real MariaDB, the real FastAGI server, AMI over real TCP to a
fake PBX that runs the campaign dialplan's authorize -> Dial -> settle for every call."""

from __future__ import annotations

from decimal import Decimal

import pytest_twisted

from fastagi import channel_vars as v
from fastagi.campaigns.fake_pbx import Outcome
from tests.callcontrol.tenants import add_rate, default_plan_id, execute, pay
from tests.campaigns.helpers import add_campaign, add_client_with_rate, add_contacts, rows
from tests.campaigns.rig import campaign_rig, wait_for

ALWAYS_OPEN = dict(window_days="mon,tue,wed,thu,fri,sat,sun", window_start="00:00:00",
                   window_end="23:59:59")


def numbers(first: int, count: int) -> list[str]:
    return [f"4420{n:08d}" for n in range(first, first + count)]


def contact_states(engine, campaign: int) -> dict[str, int]:
    return {status: n for status, n in rows(
        engine, "SELECT status, COUNT(*) FROM contacts WHERE campaign_id = :g GROUP BY status",
        g=campaign)}


def campaign_status(engine, campaign: int) -> str:
    return rows(engine, "SELECT status FROM campaigns WHERE id = :g", g=campaign)[0][0]


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
        await wait_for(lambda: campaign_status(engine, ours) == "finished"
                       and campaign_status(engine, theirs) == "finished", what="both finished")
        pbx = rig.pbx
    assert contact_states(engine, ours) == {"answered": 20}
    assert contact_states(engine, theirs) == {"answered": 20}
    # caps: master 4 channels minus 1 kept free; acme's campaign cap 2 (its limit is 3)
    assert pbx.most_in_flight["master"] == 3
    assert pbx.most_in_flight["acme"] == 2
    assert pbx.double_dials == []
    assert len(pbx.calls) == 40 and {c.result for c in pbx.calls} == {"ALLOW"}
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
                            "answer_rate, talk_seconds, cost, in_flight, status "
                            "FROM campaign_progress ORDER BY campaign_id")
    assert [tuple(r) for r in progress] == [
        ("master", 20, 20, 20, 20, Decimal("1.0000"), 600, Decimal("1.2000"), 0, "finished"),
        ("acme", 20, 20, 20, 20, Decimal("1.0000"), 600, Decimal("1.2000"), 0, "finished")]
    balances = rows(engine, "SELECT code, balance FROM clients ORDER BY id")
    assert [tuple(r) for r in balances] == [("master", Decimal("48.8000")),
                                            ("acme", Decimal("18.8000"))]
