"""With AMI, a reseller's suspension or exhausted credit ends the live calls of its whole
subtree, and only those: real MariaDB, the fake AMI over real TCP, the real AmiClient and
Enforcer. Calls are written as an admission leaves them (call row and live charges)."""

from __future__ import annotations

import pytest
import pytest_twisted
from twisted.internet import reactor
from twisted.internet.endpoints import TCP4ClientEndpoint

from fastagi.ami.client import AmiClient
from fastagi.jobs.enforcement import Enforcer
from fastagi.metrics import Metrics
from fastagi.services import DbRunner
from fastagi.store import call_watch
from fastagi.testing.fake_ami import FakeAmi
from tests.ami.helpers import shipped_write_classes
from tests.reseller_ops.tree import build_tree, live_call
from tests.support.sql import execute

HERE = "127.0.0.1"


class Box:
    def __init__(self, engine, fake: FakeAmi) -> None:
        self.engine, self.fake, self.n = engine, fake, 0

    def call(self, node, charges: dict[int, str] | None = None, asterisk: str = HERE,
             reserved: str = "0.5000", number: str | None = None) -> str:
        """A live call of `node` on the fake Asterisk; its uniqueid."""
        self.n += 1
        uniqueid = f"1700000000.{self.n}"
        call_id = live_call(self.engine, node, reserved=reserved, charges=charges,
                            asterisk=asterisk, uniqueid=uniqueid)
        if number is not None:
            execute(self.engine, "UPDATE calls SET number = :n, emergency = 1 WHERE id = :c",
                    n=number, c=call_id)
        self.fake.add_channel(f"PJSIP/{node.code}-1001-{uniqueid}", uniqueid,
                              accountcode=node.code)
        return uniqueid


@pytest_twisted.async_yield_fixture
async def world(engine):
    fake = FakeAmi(write_classes=shipped_write_classes())
    port = fake.listen(reactor)
    db = DbRunner(engine, reactor, reactor, 4, 5.0)
    db.start()
    client = AmiClient(TCP4ClientEndpoint(reactor, HERE, port.getHost().port), reactor,
                       "ictcontact", "s3cret", name="test", action_timeout=2.0,
                       min_delay=0.05, max_delay=0.2)
    box = Box(engine, fake)
    box.ami, box.tree = client, build_tree(engine)
    client.start()
    await client.when_connected()
    # made after the login, so that its catch-up at login (tested in tests/ami) cannot
    # run late, under load, in the middle of a test and send its own Hangups
    box.enforcer = Enforcer(client, db, reactor, lambda: client.peer_host, Metrics())
    yield box
    await client.stop()
    fake.drop_all()
    await port.stopListening()
    db.stop()


def hung_up(fake: FakeAmi) -> list[tuple[str, str]]:
    return sorted((a["Channel"], a["Cause"]) for a in fake.actions_named("Hangup"))


@pytest_twisted.ensureDeferred
async def test_a_resellers_suspension_ends_its_subtrees_calls_only(world):
    t = world.tree
    ended = [world.call(t.a1, {t.r1.id: "0.3"}), world.call(t.g1, {t.a1.id: "0.4", t.r1.id: "0.3"}),
             world.call(t.a2, {t.r1.id: "0.3"})]
    kept = [world.call(t.s1), world.call(t.g1, {t.a1.id: "0.4", t.r1.id: "0.3"}, asterisk="192.0.2.7"),
            world.call(t.a2, {t.r1.id: "0"}, number="112")]
    assert await world.enforcer.poll() == 0
    execute(world.engine, "CALL suspend_client('r1')")
    assert await world.enforcer.poll() == 3
    assert hung_up(world.fake) == sorted((u, "21") for u in ended)
    assert await world.enforcer.poll() == 0          # the change acted on once
    # the catch-up (at AMI login, and periodically) finds the same calls, no others
    found = call_watch.calls_to_end(world.engine, HERE)
    assert sorted(c.call.uniqueid for c in found) == sorted(ended)
    assert {c.why for c in found} == {call_watch.SUSPENDED}
    assert not set(kept) & {c.call.uniqueid for c in found}


@pytest_twisted.ensureDeferred
async def test_a_lower_resellers_suspension_leaves_its_parent_and_siblings(world):
    t = world.tree
    g1 = world.call(t.g1, {t.a1.id: "0.4", t.r1.id: "0.3"})
    others = [world.call(t.a2, {t.r1.id: "0.3"}), world.call(t.s1)]
    execute(world.engine, "CALL suspend_client('a1')")
    assert await world.enforcer.poll() == 1
    assert hung_up(world.fake) == [(g1, "21")]
    assert others


@pytest_twisted.ensureDeferred
async def test_reactivated_before_the_poll_nothing_is_hung_up(world):
    t = world.tree
    world.call(t.g1, {t.a1.id: "0.4", t.r1.id: "0.3"})
    execute(world.engine, "CALL suspend_client('r1')")
    execute(world.engine, "CALL activate_client('r1')")
    assert await world.enforcer.poll() == 0
    assert hung_up(world.fake) == []


@pytest_twisted.ensureDeferred
async def test_a_resellers_exhausted_credit_ends_its_subtrees_calls(world):
    t = world.tree
    execute(world.engine, "UPDATE clients SET end_calls_without_credit = 1 WHERE code = 'r1'")
    ended = [world.call(t.g1, {t.a1.id: "0.4", t.r1.id: "30"}),
             world.call(t.a2, {t.r1.id: "30"})]
    others = [world.call(t.s1)]
    assert await world.enforcer.poll() == 0          # 100 covers the 60 held
    # a chargeback leaves r1 less than its subtree's calls hold of it
    execute(world.engine, "INSERT INTO payments (client_id, amount, kind, reference)"
            " VALUES (:r, -50, 'correction', 'chargeback')", r=t.r1.id)
    assert await world.enforcer.poll() == 2
    assert hung_up(world.fake) == sorted((u, "21") for u in ended)
    found = call_watch.calls_to_end(world.engine, HERE)
    assert {c.why for c in found} == {call_watch.NO_CREDIT}
    assert others


@pytest_twisted.ensureDeferred
async def test_without_the_option_a_short_reseller_keeps_its_calls(world):
    t = world.tree
    world.call(t.g1, {t.a1.id: "0.4", t.r1.id: "80"})
    execute(world.engine, "INSERT INTO payments (client_id, amount, kind, reference)"
            " VALUES (:r, -50, 'correction', 'chargeback')", r=t.r1.id)
    assert await world.enforcer.poll() == 0
    assert await world.enforcer.catch_up() == 0
    assert hung_up(world.fake) == []


@pytest.mark.parametrize("switch", ["option", "change-below"])
def test_the_option_switched_on_late_or_a_child_change_still_names_the_right_calls(engine, switch):
    """Store level: the option set on a reseller already short logs a change for it; a
    change of a client below a short reseller finds the short reseller above."""
    t = build_tree(engine)
    live_call(engine, t.g1, reserved="0.1", charges={t.a1.id: "0.1", t.r1.id: "150"},
              asterisk=HERE, uniqueid="u-1")
    if switch == "option":
        execute(engine, "UPDATE clients SET end_calls_without_credit = 1 WHERE code = 'r1'")
        changes = call_watch.recent_changes(engine)
        assert [(c.client_id, c.kind) for c in changes][-1] == (t.r1.id, "no-credit")
        ids = [t.r1.id]
    else:
        execute(engine, "UPDATE clients SET end_calls_without_credit = 1 WHERE code = 'r1'")
        ids = [t.g1.id]
    found = call_watch.calls_to_end(engine, HERE, ids)
    assert [(c.call.uniqueid, c.why) for c in found] == [("u-1", call_watch.NO_CREDIT)]
