"""authorize and settle over real TCP with the fake Asterisk: the dialplan contract."""

from __future__ import annotations

import threading
from decimal import Decimal

import pytest
import pytest_twisted
from sqlalchemy import text
from twisted.internet import reactor, task

from fastagi import channel_vars as v, reasons
from fastagi.db.engine import make_engine
from tests.callcontrol.agi_server import agi_server, reject_vars
from tests.callcontrol.tenants import add_client, add_rate, default_plan_id
from tests.support.sql import scalar

D = Decimal


@pytest.fixture
def tenants(engine):
    plan = default_plan_id(engine)
    add_rate(engine, plan, "44", "0.10", connection_fee="0.05", initial=60, subsequent=6)
    add_client(engine, "acme", balance="3.05", channel_limit=2)
    add_client(engine, "frozen", balance="10", status="suspended")
    add_client(engine, "broke", balance="0.01")
    add_client(engine, "full", balance="10", channel_limit=0)
    return engine


@pytest_twisted.ensureDeferred
async def test_allowed_call_sets_the_whole_contract_then_settles_once(tenants):
    async with agi_server(tenants, dial_template="PJSIP/{number}@uplink") as server:
        got = await server.variables("authorize", "acme", "442071234567")
        assert got == {
            v.RESULT: v.ALLOW, v.CALL_ID: got[v.CALL_ID],
            # (3.05 - 0.05) / 0.10 = 30 min, the cap is 10800 s
            v.MAX_MS: "1800000", v.DIAL: "PJSIP/442071234567@uplink", v.RATE: "0.100000"}
        call_id = got[v.CALL_ID]
        settled = await server.variables("settle", call_id, "ms=60001", "ANSWER")
        # 60.001 s is 61 s started: 0.05 fee + 66 s at 0.10/min = 0.16
        assert settled == {v.RESULT: v.ALLOW, v.COST: "0.1600"}
        again = await server.variables("settle", call_id, "ms=900000", "ANSWER")
        assert again[v.COST] == "0.1600"
    assert scalar(tenants, "SELECT balance FROM client_list WHERE code = 'acme'") == D("2.8900")


@pytest_twisted.ensureDeferred
async def test_settle_with_empty_answered_time_costs_nothing(tenants):
    async with agi_server(tenants) as server:
        call_id = (await server.variables("authorize", "acme", "4411"))[v.CALL_ID]
        assert (await server.variables("settle", call_id, "ms=", "NOANSWER"))[v.COST] == "0.0000"


@pytest_twisted.ensureDeferred
async def test_settle_records_the_milliseconds_and_the_seconds_started(tenants):
    async with agi_server(tenants) as server:
        call_id = (await server.variables("authorize", "acme", "4411"))[v.CALL_ID]
        assert (await server.variables("settle", call_id, "ms=4568", "ANSWER"))[v.RESULT] == v.ALLOW
    assert scalar(tenants, "SELECT CONCAT(answered_ms, ' ms, ', answered_seconds, ' s')"
                           " FROM calls WHERE id = :id", id=int(call_id)) == "4568 ms, 5 s"


@pytest_twisted.ensureDeferred
async def test_settle_from_an_old_dialplan_bills_whole_seconds_and_says_so(tenants, caplog):
    async with agi_server(tenants) as server:
        call_id = (await server.variables("authorize", "acme", "4411"))[v.CALL_ID]
        settled = await server.variables("settle", call_id, "61", "ANSWER")
    # ANSWEREDTIME 61: 0.05 fee + 66 s at 0.10/min = 0.16, as before ANSWEREDTIME_MS
    assert settled == {v.RESULT: v.ALLOW, v.COST: "0.1600"}
    assert any("settled from whole seconds" in r.getMessage() and r.levelname == "WARNING"
               for r in caplog.records)


@pytest.mark.parametrize("args, reason", [
    (("ghost", "4411"), reasons.UNKNOWN_CLIENT),
    (("frozen", "4411"), reasons.SUSPENDED),
    (("acme", "3312345"), reasons.NO_RATE),
    (("broke", "4411"), reasons.NO_CREDIT),
    (("full", "4411"), reasons.CHANNEL_LIMIT),
])
@pytest_twisted.ensureDeferred
async def test_every_rejection_reason_reaches_the_dialplan(tenants, args, reason):
    async with agi_server(tenants) as server:
        got = await server.variables("authorize", *args)
    assert got == reject_vars(reason, reasons.cause_for(reason))


@pytest.mark.parametrize("script, args", [
    ("authorize", ()),
    ("authorize", ("acme",)),
    ("authorize", ("ACME", "4411")),
    ("authorize", ("acme", "44 11")),
    ("authorize", ("acme", "4411", "sideways")),
    ("authorize", ("acme", '44"; DROP TABLE calls; --')),
    ("authorize", ("acme", "4411", "out", "extra")),
    ("settle", ()),
    ("settle", ("abc", "10", "ANSWER")),
    ("settle", ("1", "-5", "ANSWER")),
    ("settle", ("1", "10", "ANSWER\\n")),
    ("settle", ("999999", "10", "ANSWER")),
    ("authorize?x=1", ("acme", "4411", "in", "x")),
])
@pytest_twisted.ensureDeferred
async def test_malformed_requests_get_bad_request(tenants, script, args):
    async with agi_server(tenants) as server:
        got = await server.variables(script, *args)
    assert got[v.RESULT] == v.REJECT
    assert got[v.REASON] == reasons.BAD_REQUEST
    assert got[v.CAUSE] == str(reasons.cause_for(reasons.BAD_REQUEST))
    assert scalar(tenants, "SELECT COUNT(*) FROM calls WHERE state = 'live'") == 0


@pytest_twisted.ensureDeferred
async def test_settling_a_rejected_attempt_is_a_bad_request(tenants):
    async with agi_server(tenants) as server:
        await server.variables("authorize", "ghost", "4411")
        rejected = scalar(tenants, "SELECT MAX(id) FROM calls WHERE state = 'rejected'")
        got = await server.variables("settle", str(rejected), "10", "ANSWER")
    assert got[v.REASON] == reasons.BAD_REQUEST


@pytest_twisted.ensureDeferred
async def test_database_outage_fails_closed_with_unavailable():
    down = make_engine("mysql+pymysql://root@127.0.0.1:1/ictcontact", pool_size=2, timeout_s=1)
    try:
        async with agi_server(down, pool=2, db_timeout=3) as server:
            got = await server.variables("authorize", "acme", "4411")
    finally:
        down.dispose()
    assert {k: got[k] for k in (v.RESULT, v.REASON, v.CAUSE)} == {
        v.RESULT: v.REJECT, v.REASON: reasons.UNAVAILABLE,
        v.CAUSE: str(reasons.cause_for(reasons.UNAVAILABLE))}


@pytest_twisted.ensureDeferred
async def test_emergency_number_is_allowed_for_a_suspended_client_and_not_billed(tenants):
    async with agi_server(tenants) as server:
        got = await server.variables("authorize", "frozen", "112")
        assert got[v.RESULT] == v.ALLOW and got[v.RATE] == "0.000000"
        assert got[v.DIAL] == "PJSIP/112@carrier"
        settled = await server.variables("settle", got[v.CALL_ID], "300", "ANSWER")
        assert settled[v.COST] == "0.0000"
        # Only whole numbers are emergency numbers: 1125551234 is an ordinary call.
        other = await server.variables("authorize", "frozen", "1125551234")
        assert other[v.REASON] == reasons.SUSPENDED
    assert scalar(tenants, "SELECT balance FROM client_list WHERE code = 'frozen'") == D("10.0000")


@pytest_twisted.ensureDeferred
async def test_inbound_call_is_admitted_free_and_has_no_dial_target(tenants):
    async with agi_server(tenants) as server:
        got = await server.variables("authorize", "broke", "442071234567", "in")
    assert got[v.RESULT] == v.ALLOW and got[v.DIAL] == "" and got[v.RATE] == "0.000000"


@pytest_twisted.ensureDeferred
async def test_call_record_keeps_channel_and_server(tenants):
    async with agi_server(tenants, server_name="agi-7") as server:
        got = await server.variables("authorize", "acme", "4411")
    row = scalar(tenants, "SELECT CONCAT_WS('|', channel, server, uniqueid IS NOT NULL)"
                 " FROM calls WHERE id = :i", i=int(got[v.CALL_ID]))
    assert row == "PJSIP/acme-00000001|agi-7|1"


@pytest_twisted.ensureDeferred
async def test_authorize_that_outlives_its_deadline_rolls_back_instead_of_leaking(tenants):
    """The dialplan was told `unavailable`: the call must not appear live later."""
    blocker = tenants.connect()
    transaction = blocker.begin()
    blocker.execute(text("SELECT id FROM clients WHERE code = 'acme' FOR UPDATE"))
    try:
        async with agi_server(tenants, db_timeout=1, session_timeout=5) as server:
            got = await server.variables("authorize", "acme", "4411")
            assert got[v.REASON] == reasons.UNAVAILABLE
            # Release the lock: the authorize thread resumes, past its deadline.
            threading.Thread(target=transaction.rollback).start()
            await task.deferLater(reactor, 1.0, lambda: None)
    finally:
        blocker.close()
    assert scalar(tenants, "SELECT COUNT(*) FROM calls WHERE client_code = 'acme'") == 0
