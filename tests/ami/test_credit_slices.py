"""Credit reserved in slices: concurrent calls share a modest balance, live calls are
extended over AMI while credit lasts, and the balance never goes below its floor."""

from __future__ import annotations

import calendar
from datetime import datetime, timedelta
from decimal import Decimal

import pytest
import pytest_twisted
from twisted.internet import reactor
from twisted.internet.endpoints import TCP4ClientEndpoint
from twisted.internet.task import Clock

from fastagi import channel_vars as v, reasons
from fastagi.ami.client import AmiClient
from fastagi.testing.fake_ami import FakeAmi
from fastagi.billing.admission import CallRequest
from fastagi.billing.rating import Rate
from fastagi.billing.slices import extension
from fastagi.jobs.slice_extender import SliceExtender
from fastagi.services import DbRunner
from fastagi.store import calls
from tests.ami.helpers import shipped_write_classes
from tests.callcontrol.agi_server import agi_server
from tests.callcontrol.tenants import add_client, add_rate, default_plan_id, ledger_gap
from tests.support.sql import scalar

D = Decimal
T0 = datetime(2026, 12, 3, 10, 0, 0)
SLICE = 300
CAP = 10800
RATE = Rate("44", D("0.60"), D("0"), 60, 60)


@pytest.mark.parametrize("max_seconds, reserved, available, expected", [
    (300, D("3"), D("5"), (600, D("6.0000"))),       # a whole slice more
    (300, D("3"), D("2"), (480, D("4.8000"))),       # what $2 pays: 3 more minutes
    (300, D("3"), D("0.59"), None),                  # not one more increment
    (10700, D("107"), D("50"), (10800, D("108.0000"))),   # never beyond the cap
    (10800, D("108"), D("50"), None),
])
def test_extension(max_seconds, reserved, available, expected):
    assert extension(RATE, max_seconds, reserved, available, SLICE, CAP) == expected


@pytest.fixture
def sliced_client(engine):
    add_rate(engine, default_plan_id(engine), "44", "0.60")
    return add_client(engine, "acme", balance="20", channel_limit=5)


def at(seconds: float) -> Clock:
    clock = Clock()
    clock.advance(calendar.timegm(T0.timetuple()) + seconds)
    return clock


@pytest_twisted.ensureDeferred
async def test_twenty_dollars_five_channels_five_calls_billed_exactly(engine, sliced_client):
    fake = FakeAmi(write_classes=shipped_write_classes())
    port = fake.listen(reactor)
    db = DbRunner(engine, reactor, reactor, 4, 5.0)
    db.start()
    client = AmiClient(TCP4ClientEndpoint(reactor, "127.0.0.1", port.getHost().port), reactor,
                       "ictcontact", "s3cret", action_timeout=2.0)
    try:
        # without slices the first call would hold $19.80 (33 min) and refuse the second
        ids = []
        for n in range(6):
            got = calls.authorize(engine, CallRequest("acme", "442071234567"), T0,
                                  calls.Limits(max_call_seconds=SLICE),
                                  calls.CallContext(f"1.{n}", f"PJSIP/acme-{n}", "t",
                                                    "127.0.0.1"))
            if n < 5:
                assert got.admission.allowed and got.admission.max_seconds == SLICE
                assert got.admission.reservation == D("3.0000")
                fake.add_channel(f"PJSIP/acme-{n}", f"1.{n}")
                ids.append(got.call_id)
            else:
                assert got.admission.reason == reasons.CHANNEL_LIMIT
        client.start()
        await client.when_connected()
        extender = SliceExtender(client, db, at(200), lambda: "127.0.0.1", SLICE, CAP, 300)
        assert await extender.run() == []    # 100 s left: not due yet (30 s ahead)
        extender._clock = at(280)
        extended = await extender.run()
        # $5 left: the first call gets a whole slice, the second what $2 pays
        assert [(e.call_id, e.max_seconds) for e in extended] == [(ids[0], 600), (ids[1], 480)]
        setvars = [(a["Channel"], a["Variable"], a["Value"])
                   for a in fake.actions_named("Setvar")]
        assert setvars == [("1.0", v.TIMEOUT_ABSOLUTE, "320"),
                           ("1.1", v.TIMEOUT_ABSOLUTE, "200")]
        held = scalar(engine, "SELECT SUM(reserved) FROM calls WHERE state = 'live'")
        assert held == D("19.8000") and held <= D("20")
        # a second server (or the next pass) does not extend them again
        assert await extender.run() == []
        # each call talks up to its limit (the worst case) and is billed exactly
        talk = {ids[0]: 600, ids[1]: 480, ids[2]: 300, ids[3]: 300, ids[4]: 300}
        for call_id, seconds in talk.items():
            settled = calls.settle(engine, call_id, seconds * 1000, "ANSWER",
                                   T0 + timedelta(seconds=seconds + 5))
            assert settled.cost == D("0.60") * seconds / 60
        balance = scalar(engine, "SELECT balance FROM client_accounts WHERE client_id = :id",
                         id=sliced_client)
        assert balance == D("0.2000") and balance >= 0
        assert ledger_gap(engine, sliced_client) == 0
    finally:
        await client.stop()
        fake.drop_all()
        await port.stopListening()
        db.stop()


@pytest_twisted.ensureDeferred
async def test_ami_down_the_first_slice_stands(engine, sliced_client):
    got = calls.authorize(engine, CallRequest("acme", "442071234567"), T0,
                          calls.Limits(max_call_seconds=SLICE),
                          calls.CallContext("1.1", "PJSIP/a", "t", "127.0.0.1"))
    db = DbRunner(engine, reactor, reactor, 2, 5.0)
    db.start()
    client = AmiClient(TCP4ClientEndpoint(reactor, "127.0.0.1", 9), reactor, "u", "s")
    try:
        extender = SliceExtender(client, db, at(290), lambda: "127.0.0.1", SLICE, CAP, 300)
        assert await extender.run() == []
        assert scalar(engine, "SELECT max_seconds FROM calls WHERE id = :id",
                      id=got.call_id) == SLICE
    finally:
        db.stop()


@pytest_twisted.ensureDeferred
async def test_authorize_sets_the_slice_as_the_channel_hangup_time(engine, sliced_client):
    async with agi_server(engine, ami="127.0.0.1:5038", ami_secret="x",
                          credit_slice_seconds=SLICE, max_call_seconds=CAP) as server:
        result = await server.session("authorize", "acme", "442071234567")
        emergency = await server.session("authorize", "acme", "112")
    assert result.commands[0] == f'SET VARIABLE "{v.TIMEOUT_ABSOLUTE}" "{SLICE}"'
    assert result.set_by_server[v.RESULT] == v.ALLOW
    assert result.set_by_server[v.MAX_MS] == str(CAP * 1000)   # L(): the longest call
    assert scalar(engine, "SELECT reserved FROM calls WHERE id = :id",
                  id=int(result.set_by_server[v.CALL_ID])) == D("3.0000")
    assert v.TIMEOUT_ABSOLUTE not in emergency.set_by_server   # never sliced
    assert emergency.set_by_server[v.RESULT] == v.ALLOW


@pytest.mark.parametrize("cli, environ, slice_seconds", [
    ({"ami": "127.0.0.1:5038"}, {}, 300),                           # on by default with AMI
    ({"ami": "127.0.0.1:5038", "credit_slice_seconds": 0}, {}, 0),  # the documented way out
    ({"ami": "127.0.0.1:5038"}, {"ICTCONTACT_CREDIT_SLICE_SECONDS": "0"}, 0),
    ({"ami": "127.0.0.1:5038", "credit_slice_seconds": 120}, {}, 120),
    ({}, {}, 0),                                                    # no AMI: cannot extend
])
def test_serve_slices_credit_by_default_with_ami(cli, environ, slice_seconds):
    from fastagi.commands.serve import load_config
    from fastagi.settings import SettingsSource
    config = load_config(SettingsSource(cli, {"ICTCONTACT_AMI_SECRET": "s", **environ}))
    assert (config.credit_slice_seconds, config.slicing) == (slice_seconds,
                                                             slice_seconds > 0)


def test_slices_asked_for_without_ami_are_refused():
    from fastagi.commands.serve import load_config
    from fastagi.settings import SettingsError, SettingsSource
    with pytest.raises(SettingsError, match="needs ami"):
        load_config(SettingsSource({"credit_slice_seconds": 300}, {}))
