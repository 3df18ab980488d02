"""Suspension and exhausted credit end live calls over AMI; reconciliation closes calls
whose channel is gone. Real MariaDB, the fake AMI server over real TCP, the real
AmiClient; every call is made through the authorize transaction."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal

import pytest
import pytest_twisted
from twisted.internet import reactor
from twisted.internet.endpoints import TCP4ClientEndpoint

from fastagi.ami.client import AmiClient
from fastagi.testing.fake_ami import FakeAmi
from fastagi.billing.admission import CallRequest
from fastagi.jobs.enforcement import Enforcer
from fastagi.metrics import Metrics
from fastagi.jobs.reconciliation import Reconciler
from fastagi.clock import utc_now
from fastagi.services import DbRunner
from fastagi.store import calls
from tests.ami.helpers import shipped_write_classes
from tests.callcontrol.tenants import add_client, add_rate, default_plan_id, ledger_gap
from tests.support.sql import execute, scalar
from tests.support.waiting import wait_until

HERE = "127.0.0.1"          # the Asterisk the fake AMI plays (its AMI peer address)
ELSEWHERE = "192.0.2.77"    # another Asterisk sharing the database
LIMITS = calls.Limits(max_call_seconds=600)  # reserves at most $6 a call
D = Decimal


class Box:
    """The fake Asterisk's channels and the calls authorized for them."""

    def __init__(self, engine, fake: FakeAmi) -> None:
        self.engine = engine
        self.fake = fake
        self.n = 0

    def call(self, client: str, asterisk: str = HERE, number: str = "442071234567",
             emergency: bool = False, on_box: bool = True) -> int:
        self.n += 1
        uniqueid, channel = f"1700000000.{self.n}", f"PJSIP/{client}-100-{self.n:08x}"
        got = calls.authorize(self.engine, CallRequest(client, number, "out", emergency),
                              utc_now(reactor), LIMITS,
                              calls.CallContext(uniqueid, channel, "test", asterisk))
        assert got.admission.allowed, got.admission
        if on_box:
            self.fake.add_channel(channel, uniqueid, accountcode=client)
        return got.call_id

    def uniqueid(self, call_id: int) -> str:
        return scalar(self.engine, "SELECT uniqueid FROM calls WHERE id = :id", id=call_id)

    def channel(self, call_id: int) -> str:
        return scalar(self.engine, "SELECT channel FROM calls WHERE id = :id", id=call_id)

    def state(self, call_id: int) -> str:
        return scalar(self.engine, "SELECT state FROM calls WHERE id = :id", id=call_id)


@pytest.fixture
def rated(engine):
    add_rate(engine, default_plan_id(engine), "44", "0.60")
    return engine


@pytest_twisted.async_yield_fixture
async def world(rated):
    fake = FakeAmi(write_classes=shipped_write_classes())
    port = fake.listen(reactor)
    db = DbRunner(rated, reactor, reactor, 4, 5.0)
    db.start()
    client = AmiClient(TCP4ClientEndpoint(reactor, HERE, port.getHost().port), reactor,
                       "ictcontact", "s3cret", name="test", action_timeout=2.0,
                       min_delay=0.05, max_delay=0.2)
    metrics = Metrics()
    asterisk = lambda: client.peer_host  # noqa: E731  (as AmiControl.asterisk)
    enforcer = Enforcer(client, db, reactor, asterisk, metrics)
    reconciler = Reconciler(client, db, reactor, asterisk, metrics, confirm_seconds=0.05)
    box = Box(rated, fake)
    box.ami, box.enforcer, box.reconciler, box.metrics, box.port = (
        client, enforcer, reconciler, metrics, port)
    yield box
    reconciler.stop()
    await client.stop()
    fake.drop_all()
    await box.port.stopListening()
    db.stop()


def hangups_of(fake: FakeAmi) -> list[tuple[str, str]]:
    return [(a["Channel"], a["Cause"]) for a in fake.actions_named("Hangup")]


def sample(metrics: Metrics, name: str, **labels) -> float:
    return metrics.registry.get_sample_value(name, labels) or 0.0


@pytest_twisted.ensureDeferred
async def test_suspension_ends_exactly_that_clients_calls_and_bills_each_once(world):
    acme = add_client(world.engine, "acme", balance="100")
    beta = add_client(world.engine, "beta", balance="100")
    ended = [world.call("acme") for _ in range(3)]
    settled_first = world.call("acme")
    emergency = world.call("acme", number="112", emergency=True)
    elsewhere = world.call("acme", asterisk=ELSEWHERE, on_box=False)
    others = [world.call("beta") for _ in range(2)]
    # the dialplan settles one call before anything happens
    calls.settle(world.engine, settled_first, 30000, "ANSWER", utc_now(reactor))
    world.fake.channels.pop(world.uniqueid(settled_first))
    world.ami.start()
    await world.ami.when_connected()
    await wait_until(lambda: world.reconciler.passes >= 1)   # at login: nothing to fix
    assert await world.enforcer.poll() == 0

    execute(world.engine, "UPDATE clients SET status = 'suspended' WHERE code = 'acme'")
    assert await world.enforcer.poll() == 3
    assert sorted(hangups_of(world.fake)) == sorted(
        (world.uniqueid(c), "21") for c in ended)
    assert await world.enforcer.poll() == 0          # each change acted on once
    for call_id in [emergency, elsewhere, *others]:
        assert world.state(call_id) == "live"
    assert scalar(world.engine, "SELECT asterisk FROM live_calls WHERE call_id = :id",
                  id=elsewhere) == ELSEWHERE
    assert world.fake.find(world.uniqueid(emergency)) is not None

    # hangup handlers: the first call settles at once; the second's settle is late (it
    # comes after reconciliation); the third never comes but Asterisk wrote its CDR, with
    # billsec to the microsecond: 120.0004 s is 121 s started, a third minute
    first, late, lost = ended
    calls.settle(world.engine, first, 61000, "ANSWER", utc_now(reactor))
    execute(world.engine, "INSERT INTO cdr (calldate, uniqueid, billsec, disposition, "
            "accountcode) VALUES (UTC_TIMESTAMP(), :u, 120.000400, 'ANSWERED', 'acme')",
            u=world.uniqueid(lost))
    outcome = await world.reconciler.run()
    assert sorted(outcome.settled) == [lost] and outcome.closed == (late,)
    late_settle = calls.settle(world.engine, late, 42000, "ANSWER", utc_now(reactor))
    assert late_settle.changed and late_settle.state == "settled"
    again = calls.settle(world.engine, lost, 125000, "ANSWER", utc_now(reactor))
    assert not again.changed
    # every ended call billed once for its talk time ($0.60/min, 60 s increments)
    costs = {c: scalar(world.engine, "SELECT cost FROM calls WHERE id = :id", id=c)
             for c in (first, late, lost)}
    assert costs == {first: D("1.2000"), late: D("0.6000"), lost: D("1.8000")}
    assert scalar(world.engine, "SELECT answered_ms FROM calls WHERE id = :id",
                  id=lost) == 120001
    assert ledger_gap(world.engine, acme) == 0 and ledger_gap(world.engine, beta) == 0
    assert scalar(world.engine, "SELECT balance FROM client_accounts WHERE client_id = :id", id=acme) == (
        D("100") - D("0.6000") - sum(costs.values()))
    assert sample(world.metrics, "ictcontact_enforcement_hangups_total",
                  reason="suspended", result="hungup") == 3
    assert sample(world.metrics, "ictcontact_reconciliation_fixes_total",
                  action="settled") == 1


@pytest_twisted.ensureDeferred
async def test_reactivated_before_the_poll_nothing_is_hung_up(world):
    add_client(world.engine, "acme", balance="10")
    world.call("acme")
    world.ami.start()
    await world.ami.when_connected()
    execute(world.engine, "CALL suspend_client('acme')")
    execute(world.engine, "CALL activate_client('acme')")
    assert await world.enforcer.poll() == 0
    assert hangups_of(world.fake) == []


@pytest_twisted.ensureDeferred
async def test_ami_down_pauses_enforcement_and_login_catches_up(world):
    add_client(world.engine, "acme", balance="10")
    calls_ = [world.call("acme") for _ in range(2)]
    number = world.port.getHost().port
    await world.port.stopListening()               # Asterisk's AMI is down
    world.ami.start()
    execute(world.engine, "UPDATE clients SET status = 'suspended' WHERE code = 'acme'")
    assert await world.enforcer.poll() == 0        # paused: nothing can be sent
    # call control goes on meanwhile: a new call of another client is authorized
    add_client(world.engine, "beta", balance="10")
    world.call("beta")
    world.port = world.fake.listen(reactor, port=number)    # AMI back
    await wait_until(lambda: len(world.fake.actions_named("Hangup")) == 2)
    assert sorted(hangups_of(world.fake)) == sorted((world.uniqueid(c), "21") for c in calls_)


@pytest_twisted.ensureDeferred
async def test_no_credit_ends_calls_only_for_clients_with_the_option(world):
    keen = add_client(world.engine, "keen", balance="2")
    lax = add_client(world.engine, "lax", balance="2")
    execute(world.engine, "UPDATE clients SET end_calls_without_credit = 1 WHERE id = :id",
            id=keen)
    keen_call, lax_call = world.call("keen"), world.call("lax")
    world.ami.start()
    await world.ami.when_connected()
    assert await world.enforcer.poll() == 0
    for client_id in (keen, lax):        # a chargeback leaves less than the calls hold
        execute(world.engine, "INSERT INTO payments (client_id, amount, kind, reference) "
                "VALUES (:id, -1.5, 'correction', 'chargeback')", id=client_id)
    assert await world.enforcer.poll() == 1
    assert hangups_of(world.fake) == [(world.uniqueid(keen_call), "21")]
    assert world.fake.find(world.uniqueid(lax_call)) is not None


@pytest_twisted.ensureDeferred
async def test_reconciliation_never_touches_a_channel_that_exists(world):
    add_client(world.engine, "acme", balance="50")
    kept = [world.call("acme") for _ in range(3)]
    by_name_only = world.call("acme")
    gone = world.call("acme", on_box=False)
    other_box = world.call("acme", asterisk=ELSEWHERE, on_box=False)
    # a channel Asterisk lists by name with another uniqueid is still that channel
    chan = world.fake.channels.pop(world.uniqueid(by_name_only))
    world.fake.add_channel(chan.channel, "renamed.1")
    world.ami.start()
    await world.ami.when_connected()
    await wait_until(lambda: world.reconciler.passes >= 1)
    assert [world.state(c) for c in kept + [by_name_only]] == ["live"] * 4
    assert world.state(gone) == "stale"
    note = scalar(world.engine, "SELECT review_note FROM calls WHERE id = :id", id=gone)
    assert "closed by reconciliation" in note
    assert world.state(other_box) == "live"      # not this server's Asterisk
    assert world.fake.actions_named("Hangup") == []
    # the next pass changes nothing
    outcome = await world.reconciler.run()
    assert outcome.settled == () and outcome.closed == ()


@pytest_twisted.ensureDeferred
async def test_a_settle_during_the_confirmation_wins(world):
    add_client(world.engine, "acme", balance="50")
    call_id = world.call("acme", on_box=False)
    world.reconciler._confirm = 0.5
    world.ami.start()
    await world.ami.when_connected()
    await wait_until(lambda: getattr(world.reconciler, "_waiting", None) is not None,
                     what="the login pass waiting to confirm the call is gone")
    calls.settle(world.engine, call_id, 10000, "ANSWER", utc_now(reactor))
    await wait_until(lambda: world.reconciler.passes >= 1)
    assert scalar(world.engine, "SELECT review_note FROM calls WHERE id = :id",
                  id=call_id) is None
    assert scalar(world.engine, "SELECT cost FROM calls WHERE id = :id", id=call_id) == D("0.6")


@pytest_twisted.ensureDeferred
async def test_hostile_ami_never_blocks_and_enforcement_resumes(world):
    add_client(world.engine, "acme", balance="10")
    call_id = world.call("acme")
    world.fake.silent.add("Hangup")               # a server that never answers Hangup
    world.ami.start()
    await world.ami.when_connected()
    execute(world.engine, "CALL suspend_client('acme')")
    started = reactor.seconds()
    await world.enforcer.poll()                   # the Hangup times out: connection dropped
    assert reactor.seconds() - started < 3
    assert sample(world.metrics, "ictcontact_enforcement_hangups_total",
                  reason="suspended", result="failed") == 1
    world.fake.silent.clear()
    await wait_until(lambda: world.fake.find(world.uniqueid(call_id)) is None)  # catch-up
    assert world.ami.connections >= 2


def test_change_log_rows_come_from_any_session(rated):
    acme = add_client(rated, "acme", balance="5")
    execute(rated, "UPDATE clients SET status = 'suspended' WHERE id = :id", id=acme)
    execute(rated, "UPDATE clients SET status = 'suspended' WHERE id = :id", id=acme)
    execute(rated, "UPDATE clients SET status = 'active' WHERE id = :id", id=acme)
    execute(rated, "CALL suspend_client('acme')")
    kinds = scalar(rated, "SELECT GROUP_CONCAT(kind ORDER BY id) FROM client_changes "
                   "WHERE client_id = :id", id=acme)
    assert kinds == "suspended,suspended"   # one row per change to suspended, not per UPDATE
    assert scalar(rated, "SELECT COUNT(*) FROM client_changes WHERE created_at > "
                  "UTC_TIMESTAMP(3) - INTERVAL 1 MINUTE") == 2
    assert isinstance(scalar(rated, "SELECT MAX(created_at) FROM client_changes"), datetime)


def test_settling_a_call_of_a_client_with_the_option_writes_the_log_when_short(rated):
    """The change-log trigger reads calls while a calls UPDATE (settle) moves the balance."""
    keen = add_client(rated, "keen", balance="10")
    execute(rated, "UPDATE clients SET end_calls_without_credit = 1 WHERE id = :id", id=keen)
    now = datetime(2026, 12, 3, 10, 0, 0)
    first, second = (calls.authorize(rated, CallRequest("keen", "442071234567"), now, LIMITS,
                                     calls.CallContext(f"9.{n}", f"PJSIP/k-{n}", "t", HERE))
                     for n in range(2))
    assert first.admission.allowed and second.admission.allowed   # $6 + $4 reserved
    settled = calls.settle(rated, first.call_id, 60000, "ANSWER", now)
    assert settled.changed and settled.cost == D("0.6000")
    assert scalar(rated, "SELECT COUNT(*) FROM client_changes WHERE client_id = :id",
                  id=keen) == 0     # $9.40 still covers the $4 the other call holds
    execute(rated, "INSERT INTO payments (client_id, amount, kind, reference) "
            "VALUES (:id, -6, 'correction', 'fix')", id=keen)
    assert scalar(rated, "SELECT kind FROM client_changes WHERE client_id = :id",
                  id=keen) == "no-credit"
