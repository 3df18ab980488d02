"""The shipped [ict-outbound] failover loop, played step by step against a real FastAGI
server (real TCP, the fake Asterisk for each AGI) and the real database."""

from __future__ import annotations

import pytest
import pytest_twisted
from twisted.internet import reactor

from fastagi import channel_vars as v
from fastagi.dialplan.confparse import dialplan_from_texts
from fastagi.testing.fake_asterisk import run_session
from tests.callcontrol.agi_server import agi_server
from tests.callcontrol.tenants import add_client, add_rate, default_plan_id
from tests.dialplan.helpers import DIALPLAN, EXTENSIONS_CONF
from tests.routing.carriers import add_buy_rate, add_group, add_route, add_trunk, live_on
from tests.routing.dialplan_player import play_after_dial, play_outbound
from tests.support.sql import rows, scalar

UK = "442071234567"


@pytest.fixture(scope="module")
def plan():
    return dialplan_from_texts((str(EXTENSIONS_CONF), EXTENSIONS_CONF.read_text()),
                               (str(DIALPLAN), DIALPLAN.read_text()))


@pytest.fixture
def carriers(engine):
    plan_id = default_plan_id(engine)
    add_rate(engine, plan_id, "44", "0.10")
    add_client(engine, "acme", balance="10")
    ids = [add_trunk(engine, name, capacity=3) for name in ("alpha", "beta", "gamma")]
    group = add_group(engine, "44", max_tries=3)
    for n, trunk in enumerate(ids):
        add_buy_rate(engine, trunk, "44", "0.05")
        add_route(engine, group, trunk, 10 * (n + 1))
    return ids


def agi_via(server):
    async def agi(script, args, chan):
        result = await run_session(reactor, "127.0.0.1", server.port, script, args, timeout=10)
        return result.server_closed, dict(result.set_by_server)
    return agi


def script(outcomes):
    """Dial answers by endpoint, e.g. {'ep-alpha': ('CHANUNAVAIL', 38)}; else ANSWER."""
    def dial(target):
        return outcomes.get(target.split("@")[1], ("ANSWER", 16))
    return dial


@pytest_twisted.ensureDeferred
async def test_first_trunk_chanunavail_then_the_second_carries_the_call(engine, plan, carriers):
    alpha, beta, _ = carriers
    async with agi_server(engine) as server:
        got = await play_outbound(plan, "acme", UK, script({"ep-alpha": ("CHANUNAVAIL", 38)}),
                                  agi_via(server))
    assert got.dials == [f"PJSIP/{UK}@ep-alpha", f"PJSIP/{UK}@ep-beta"]
    assert [s for s, _, _ in got.agi_calls] == ["authorize", "failover", "settle"]
    assert got.agi_calls[1][1] == [got.chan[v.CALL_ID], "CHANUNAVAIL", "38", "alpha"]
    assert got.ended_in == "ict-after-dial" and got.chan["DIALSTATUS"] == "ANSWER"
    assert got.hangup == "16"
    call = int(got.chan[v.CALL_ID])
    assert [tuple(r) for r in rows(engine, "SELECT trunk_id, state, dial_status FROM call_attempts"
                                   " WHERE call_id = :c ORDER BY attempt", c=call)] == [
        (alpha, "failed", "CHANUNAVAIL"), (beta, "ended", "ANSWER")]
    assert scalar(engine, "SELECT trunk_id FROM calls WHERE id = :c", c=call) == beta
    assert live_on(engine, alpha) == live_on(engine, beta) == 0


@pytest_twisted.ensureDeferred
async def test_congestion_everywhere_ends_in_no_route_and_a_settled_call(engine, plan, carriers):
    down = {f"ep-{n}": ("CONGESTION", 34) for n in ("alpha", "beta", "gamma")}
    async with agi_server(engine) as server:
        got = await play_outbound(plan, "acme", UK, script(down), agi_via(server))
    assert len(got.dials) == 3                      # max_tries 3
    assert got.ended_in == "ict-reject"
    assert (got.chan[v.REASON], got.chan[v.CAUSE]) == ("no-route", "3")
    call = int(got.chan[v.CALL_ID])
    assert scalar(engine, "SELECT CONCAT(state, '|', cost, '|', route_outcome) FROM calls"
                  " WHERE id = :c", c=call) == "settled|0.0000|no-route"
    assert scalar(engine, "SELECT reason FROM call_rejections WHERE call_id = :c",
                  c=call) == "no-route"
    assert scalar(engine, "SELECT COUNT(*) FROM call_attempts WHERE state = 'live'") == 0


@pytest.mark.parametrize("status", ["BUSY", "NOANSWER", "CANCEL"])
@pytest_twisted.ensureDeferred
async def test_busy_noanswer_cancel_never_fail_over(engine, plan, carriers, status):
    async with agi_server(engine) as server:
        got = await play_outbound(plan, "acme", UK, script({"ep-alpha": (status, 17)}),
                                  agi_via(server))
    assert got.dials == [f"PJSIP/{UK}@ep-alpha"]
    assert [s for s, _, _ in got.agi_calls] == ["authorize", "settle"]
    assert got.ended_in == "ict-after-dial"
    assert got.hangup == {"BUSY": "17", "NOANSWER": "19", "CANCEL": "16"}[status]


@pytest_twisted.ensureDeferred
async def test_unallocated_number_is_done_not_failed_over(engine, plan, carriers):
    async with agi_server(engine) as server:
        got = await play_outbound(plan, "acme", UK, script({"ep-alpha": ("CHANUNAVAIL", 1)}),
                                  agi_via(server))
    assert len(got.dials) == 1
    assert got.agi_calls[1][0] == "failover" and got.agi_calls[1][2] == {v.RESULT: v.DONE}
    assert got.ended_in == "ict-after-dial"
    # the carrier's own cause reaches the caller: 1 UNALLOCATED, which chan_pjsip sends as
    # 404 (it was hung up with 20, a 480, whatever the carrier said)
    assert got.hangup == "1"


@pytest_twisted.ensureDeferred
async def test_without_routes_the_template_call_never_fails_over(engine, plan):
    add_rate(engine, default_plan_id(engine), "44", "0.10")
    add_client(engine, "acme", balance="10")
    async with agi_server(engine, dial_template="PJSIP/{number}@uplink") as server:
        got = await play_outbound(plan, "acme", UK,
                                  lambda target: ("CHANUNAVAIL", 38), agi_via(server))
    assert got.dials == [f"PJSIP/{UK}@uplink"] and v.TRUNK not in got.chan
    assert got.ended_in == "ict-after-dial"
    assert got.hangup == "38"          # no failover: the carrier's cause (500 to the caller)


@pytest_twisted.ensureDeferred
async def test_failover_server_unreachable_fails_closed(engine, plan, carriers):
    async with agi_server(engine) as server:
        real = agi_via(server)

        async def agi(script_name, args, chan):
            if script_name == "failover":
                return False, {}              # AGISTATUS=FAILURE: could not connect
            return await real(script_name, args, chan)
        got = await play_outbound(plan, "acme", UK, script({"ep-alpha": ("CONGESTION", 34)}),
                                  agi)
    assert got.ended_in == "ict-fail-closed" and len(got.dials) == 1
    # the settle handler still closes the call and releases the trunk
    assert scalar(engine, "SELECT COUNT(*) FROM call_attempts WHERE state = 'live'") == 0


# [ict-after-dial] alone: (DIALSTATUS, HANGUPCAUSE) -> the cause the caller is hung up with.
@pytest.mark.parametrize("status, cause, hangup", [
    ("CHANUNAVAIL", "1", "1"),        # carrier 404 -> 404 to the caller
    ("CHANUNAVAIL", "22", "22"),      # 410 -> 410
    ("CHANUNAVAIL", "28", "28"),      # 484 -> 484
    ("CHANUNAVAIL", "21", "21"),      # 403 / 603 -> 403
    ("CONGESTION", "34", "34"),       # 503 -> 503
    ("CHANUNAVAIL", "127", "127"),    # highest valid cause
    # no usable cause: the defaults as before
    ("CHANUNAVAIL", "", "20"),
    ("CHANUNAVAIL", "0", "20"),
    ("CONGESTION", "0", "34"),
    ("CHANUNAVAIL", "128", "20"),
    ("CONGESTION", "1000", "34"),
    ("CHANUNAVAIL", "0017", "20"),    # more than 3 digits: not a cause Asterisk writes
    ("CHANUNAVAIL", "2x;", "2"),      # only digits reach Hangup()
    # not a carrier failure: the status decides, never the cause
    ("BUSY", "1", "17"),
    ("NOANSWER", "1", "19"),
    ("ANSWER", "1", "16"),
    ("CANCEL", "34", "16"),
])
def test_after_dial_hangs_up_with_the_carriers_cause_when_it_is_valid(plan, status, cause,
                                                                     hangup):
    assert play_after_dial(plan, {"DIALSTATUS": status, "HANGUPCAUSE": cause}) == hangup
