"""Progressive campaigns end to end: the dialer asks Asterisk (the fake PBX's AMI
QueueStatus) how many agents of the campaign's queue are free, dials no more contacts
than that, and sends each answered contact to the queue."""

from __future__ import annotations


import pytest_twisted
from sqlalchemy import text
from sqlalchemy.exc import IntegrityError, OperationalError

from fastagi import channel_vars as v
from fastagi.testing.fake_pbx import FakeQueue, Outcome
from tests.campaigns.helpers import (ALWAYS_OPEN, add_client_with_rate, add_contacts,
                                     assert_every_call_closed, campaign_status, contact_states,
                                     numbers)
from tests.campaigns.rig import campaign_rig
from tests.support.sql import execute, rows
from tests.support.waiting import pause, wait_until


def add_queue(engine, client: int, name: str = "sales") -> int:
    with engine.begin() as conn:
        return int(conn.execute(text("INSERT INTO queues (client_id, name) VALUES (:c, :n)"),
                                {"c": client, "n": name}).lastrowid)


def progressive_campaign(engine, client: int, queue: int, contacts: int, **columns) -> int:
    values = {"client_id": client, "name": "callback", "mode": "progressive",
              "recording": None, "queue_id": queue, "calls_per_second": 50,
              "keep_free_channels": 0, "queue_wait_seconds": 20, **ALWAYS_OPEN, **columns}
    with engine.begin() as conn:
        campaign = int(conn.execute(text(
            f"INSERT INTO campaigns ({', '.join(values)}) "
            f"VALUES ({', '.join(':' + k for k in values)})"), values).lastrowid)
    add_contacts(engine, client, campaign, numbers(0, contacts))
    return campaign


def acme_progressive(engine, contacts: int, **columns) -> tuple[int, int, int]:
    """(client, queue, campaign): acme, its queue `sales`, a progressive campaign on it."""
    acme = add_client_with_rate(engine, "acme", balance="100", channel_limit=20)
    queue = add_queue(engine, acme)
    return acme, queue, progressive_campaign(engine, acme, queue, contacts, **columns)


async def start_and_see_no_call(engine, rig, campaign: int, seconds: float) -> None:
    rig.add_dialer("d1")
    execute(engine, "UPDATE campaigns SET status = 'running' WHERE id = :g", g=campaign)
    await pause(seconds)  # time is the behaviour: no call for `seconds`
    assert rig.pbx.calls == []


@pytest_twisted.ensureDeferred
async def test_progressive_dials_only_for_free_agents_and_every_answer_finds_one(engine):
    acme = add_client_with_rate(engine, "acme", balance="100", channel_limit=20)
    queue = add_queue(engine, acme)
    campaign = progressive_campaign(engine, acme, queue, 40)
    outcome = lambda n: Outcome("ANSWER", 20, ring_seconds=0.1, hold_seconds=0.3)  # noqa: E731
    async with campaign_rig(engine, outcome) as rig:
        rig.pbx.queues["acme-sales"] = FakeQueue(agents=3)
        rig.add_dialer("d1")
        execute(engine, "UPDATE campaigns SET status = 'running' WHERE id = :g", g=campaign)
        await wait_until(lambda: campaign_status(engine, campaign) == "finished", timeout=60,
                         what="the progressive campaign finished")
        pbx = rig.pbx
    assert contact_states(engine, campaign) == {"answered": 40}
    assert pbx.no_agent == []                       # no answered contact left without an agent
    assert pbx.queues["acme-sales"].most_busy == 3  # and every agent was used
    assert pbx.most_in_flight["acme"] <= 3          # one call per free agent, never more
    assert pbx.double_dials == []
    assert pbx.queue_status_asked > 0
    call = pbx.calls[0]
    assert (call.headers["Context"], call.headers["Exten"]) == ("ict-campaign-queue", "s")
    assert call.variables[v.CAMPAIGN_QUEUE] == "acme-sales"
    assert call.variables[v.CAMPAIGN_QUEUE_WAIT] == "20"
    assert rows(engine, "SELECT COUNT(*) FROM campaign_attempts WHERE campaign_id = :g "
                        "AND answered_at IS NOT NULL", g=campaign)[0][0] == 40
    assert rows(engine, "SELECT mode, queue FROM campaign_progress WHERE campaign_id = :g",
                g=campaign)[0] == ("progressive", "acme-sales")
    assert_every_call_closed(engine, pbx)


@pytest_twisted.ensureDeferred
async def test_no_free_agent_means_no_call_until_one_is_free(engine):
    acme, queue, campaign = acme_progressive(engine, 6)
    async with campaign_rig(engine, lambda n: Outcome("ANSWER", 10, hold_seconds=0.1)) as rig:
        rig.pbx.queues["acme-sales"] = FakeQueue(agents=2, busy=2)   # both on inbound calls
        await start_and_see_no_call(engine, rig, campaign, 1.5)
        asked = rig.pbx.queue_status_asked
        assert asked >= 2                            # it kept asking
        rig.pbx.queues["acme-sales"].busy = 1        # one agent free again
        await wait_until(lambda: campaign_status(engine, campaign) == "finished",
                         what="finished with one agent")
        assert rig.pbx.most_in_flight["acme"] == 1
        assert rig.pbx.no_agent == []
    assert contact_states(engine, campaign) == {"answered": 6}


@pytest_twisted.ensureDeferred
async def test_callers_waiting_in_the_queue_come_before_campaign_calls(engine):
    acme, queue, campaign = acme_progressive(engine, 4)
    async with campaign_rig(engine, lambda n: Outcome("ANSWER", 10, hold_seconds=0.1)) as rig:
        rig.pbx.queues["acme-sales"] = FakeQueue(agents=2, waiting=2)  # two inbound callers
        await start_and_see_no_call(engine, rig, campaign, 1.0)
        rig.pbx.queues["acme-sales"].waiting = 0
        await wait_until(lambda: campaign_status(engine, campaign) == "finished", what="finished")
    assert contact_states(engine, campaign) == {"answered": 4}


@pytest_twisted.ensureDeferred
async def test_a_disabled_queue_stops_the_campaign_with_a_reason(engine):
    acme = add_client_with_rate(engine, "acme", balance="100", channel_limit=20)
    queue = add_queue(engine, acme)
    campaign = progressive_campaign(engine, acme, queue, 3)
    execute(engine, "UPDATE queues SET status = 'disabled' WHERE id = :q", q=queue)
    async with campaign_rig(engine, lambda n: Outcome("ANSWER", 10)) as rig:
        rig.pbx.queues["acme-sales"] = FakeQueue(agents=2)
        rig.add_dialer("d1")
        execute(engine, "UPDATE campaigns SET status = 'running' WHERE id = :g", g=campaign)
        await wait_until(lambda: note(engine, campaign) is not None, what="a dialer note")
        assert rig.pbx.calls == []
    assert note(engine, campaign) == "queue acme-sales is disabled: no agent can take a call"


def note(engine, campaign: int) -> str | None:
    return rows(engine, "SELECT dialer_note FROM campaign_runs WHERE campaign_id = :g",
                g=campaign)[0][0]


def test_a_progressive_campaign_needs_a_queue_of_its_own_client(engine):
    acme = add_client_with_rate(engine, "acme")
    other = add_client_with_rate(engine, "other")
    theirs = add_queue(engine, other, "support")
    for columns, error in (
            ({"mode": "progressive", "recording": None}, "ck_campaigns_progressive_queue"),
            ({"mode": "progressive", "recording": "custom/promo", "queue_id": theirs},
             "ck_campaigns_progressive_queue"),
            ({"mode": "broadcast", "recording": "custom/promo", "queue_id": theirs},
             "ck_campaigns_progressive_queue"),
            ({"mode": "progressive", "recording": None, "queue_id": theirs},
             "fk_campaigns_queue_same_client")):
        values = {"client_id": acme, "name": "c", **columns}
        try:
            with engine.begin() as conn:
                conn.execute(text(f"INSERT INTO campaigns ({', '.join(values)}) "
                                  f"VALUES ({', '.join(':' + k for k in values)})"), values)
        except (IntegrityError, OperationalError) as exc:
            assert error in str(exc.orig), (columns, exc.orig)
        else:
            raise AssertionError(f"{columns} was accepted")
