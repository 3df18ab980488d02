"""AmiClient against the fake AMI server over real TCP: login, the product's actions with
the shipped manager.conf user's write classes, reconnect with backoff, hostile servers."""

from __future__ import annotations

import pytest
import pytest_twisted
from twisted.internet import reactor
from twisted.internet.endpoints import TCP4ClientEndpoint
from twisted.logger import globalLogPublisher

from fastagi.ami import actions
from fastagi.ami.client import AmiClient, parse_address
from fastagi.ami.errors import ActionFailed, ActionTimeout, NotConnected
from fastagi.testing.fake_ami import FakeAmi
from tests.ami.helpers import shipped_write_classes
from tests.support.waiting import pause, wait_until

@pytest_twisted.async_yield_fixture
async def fake():
    server = FakeAmi(write_classes=shipped_write_classes())
    port = server.listen(reactor)
    server.port_number = port.getHost().port
    yield server
    server.drop_all()
    await port.stopListening()


@pytest_twisted.async_yield_fixture
async def make_client(fake):
    clients = []

    def make(secret="s3cret", **options):
        options.setdefault("action_timeout", 1.0)
        options.setdefault("min_delay", 0.05)
        options.setdefault("max_delay", 0.2)
        endpoint = TCP4ClientEndpoint(reactor, "127.0.0.1", fake.port_number)
        client = AmiClient(endpoint, reactor, "ictcontact", secret, name="test", **options)
        clients.append(client)
        client.start()
        return client

    yield make
    for client in clients:
        await client.stop()


@pytest_twisted.ensureDeferred
async def test_product_actions_with_the_shipped_write_classes(fake, make_client):
    fake.add_channel("PJSIP/acme-100-00000001", "1700000000.1", accountcode="acme")
    fake.add_channel("PJSIP/acme-101-00000002", "1700000000.2", accountcode="acme")
    client = make_client()
    await client.when_connected()
    channels = await client.core_show_channels()
    assert [(c.uniqueid, c.channel, c.accountcode) for c in channels] == [
        ("1700000000.1", "PJSIP/acme-100-00000001", "acme"),
        ("1700000000.2", "PJSIP/acme-101-00000002", "acme")]
    assert channels[0].duration_seconds == 10
    await client.setvar("1700000000.1", "TIMEOUT(absolute)", "120")
    assert fake.channels["1700000000.1"].variables == {"TIMEOUT(absolute)": "120"}
    await client.hangup("1700000000.1", 52)
    assert fake.hangups == [("PJSIP/acme-100-00000001", "52")]
    with pytest.raises(ActionFailed, match="No such channel"):
        await client.hangup("1700000000.1", 52)
    result = await client.originate(
        actions.originate_fields("PJSIP/200", context="campaign", exten="s",
                                 variables={"ICT_CAMPAIGN": "7"}), response_timeout=2)
    assert result.success and result.reason_name == "answered"
    originate = fake.actions_named("Originate")[0]
    assert originate["Async"] == "true" and originate["Variable"] == "ICT_CAMPAIGN=7"
    login = fake.actions_named("Login")[0]
    assert login["Username"] == "ictcontact" and login["Events"] == "call"
    # every ActionID carries this process's prefix: other servers' answers never match
    assert all(a["ActionID"].startswith(client.id_prefix) for a in fake.actions)


@pytest_twisted.ensureDeferred
async def test_write_class_missing_is_permission_denied(fake, make_client):
    fake.write_classes = {"originate"}
    client = make_client()
    await client.when_connected()
    with pytest.raises(ActionFailed, match="Permission denied"):
        await client.hangup("x", 16)


@pytest_twisted.ensureDeferred
async def test_refused_login_retries_and_actions_fail_at_once(fake, make_client):
    client = make_client(secret="wrong")
    await wait_until(lambda: len(fake.actions_named("Login")) >= 3)
    assert not client.connected
    with pytest.raises(NotConnected):
        await client.hangup("x", 16)


@pytest_twisted.ensureDeferred
async def test_reconnects_after_the_connection_drops(fake, make_client):
    client = make_client()
    states, connects = [], []
    client.on_state(states.append)
    client.on_connected(connects.append)
    await client.when_connected()
    fake.drop_all()
    await wait_until(lambda: client.connections == 2 and client.connected)
    assert states == [True, False, True]
    assert connects == [client, client]    # reconcile at every (re)connect
    fake.add_channel("c", "1")
    await client.hangup("1", 16)
    assert fake.hangups == [("c", "16")]


@pytest.fixture
def unhandled_errors():
    """Every error Twisted logs (a reactor's "Unhandled Error", a Deferred's unhandled
    failure) while the test runs: what an administrator would see in the log."""
    errors = []

    def observe(event):
        if "log_failure" in event:
            errors.append(event["log_failure"].getTraceback())

    globalLogPublisher.addObserver(observe)
    yield errors
    globalLogPublisher.removeObserver(observe)


@pytest_twisted.ensureDeferred
async def test_an_asterisk_restart_logs_no_unhandled_error_and_logs_in_again(
        fake, make_client, unhandled_errors):
    """Asterisk restarts with another secret: the logged-in connection drops, logins are
    refused (Asterisk answers Error and closes), a connection drops while its Login waits;
    each costs a retry with backoff and nothing else, and the first login accepted makes
    the client usable again."""
    client = make_client()
    states = []
    client.on_state(states.append)
    await client.when_connected()
    fake.secret = "changed"
    fake.drop_all()                                   # after login
    await wait_until(lambda: len(fake.actions_named("Login")) >= 4, what="refused logins")
    assert not client.connected
    fake.silent.add("Login")                          # a Login that gets no answer ...
    logins = len(fake.actions_named("Login"))
    await wait_until(lambda: len(fake.actions_named("Login")) > logins, what="a Login")
    fake.drop_all()                                   # ... and its connection drops
    fake.silent.clear()
    fake.secret = "s3cret"
    await wait_until(lambda: client.connections == 2 and client.connected,
                     what="logged in again")
    assert states == [True, False, True]
    fake.add_channel("c", "1")
    await client.hangup("1", 16)
    assert fake.hangups == [("c", "16")]
    await pause(0.1)        # a close reported late would come now
    assert unhandled_errors == []


@pytest_twisted.ensureDeferred
async def test_stop_while_the_login_waits_logs_no_unhandled_error(
        fake, make_client, unhandled_errors):
    fake.silent.add("Login")
    client = make_client()
    await fake.when(lambda: fake.actions_named("Login"))
    stopping = client.stop()
    stopping.addTimeout(5, reactor)
    await stopping
    await wait_until(lambda: not fake.sessions, what="the connection closed")
    assert not client.connected
    with pytest.raises(NotConnected):
        await client.hangup("x", 16)
    await pause(0.1)
    assert len(fake.actions_named("Login")) == 1      # stopped: no reconnect
    assert unhandled_errors == []


@pytest_twisted.ensureDeferred
async def test_a_server_that_never_answers_times_out_and_is_left(fake, make_client):
    fake.silent.add("CoreShowChannels")
    client = make_client(action_timeout=0.3)
    await client.when_connected()
    started = reactor.seconds()
    with pytest.raises(ActionTimeout, match="CoreShowChannels not answered within 0.3 s"):
        await client.core_show_channels()
    # The message says the client's own timeout ran; the bound only catches a hang and is
    # generous for a loaded machine.
    assert reactor.seconds() - started < 10
    await wait_until(lambda: client.connections == 2 and client.connected)
    fake.silent.clear()
    assert await client.core_show_channels() == []


@pytest_twisted.ensureDeferred
async def test_garbage_and_a_huge_message_only_cost_a_reconnect(fake, make_client):
    client = make_client()
    await client.when_connected()
    fake.push(b"\xff\xfe garbage\r\n\r\nEvent: Flood\r\n" + b"X: y\r\n" * 5000)
    await wait_until(lambda: client.connections == 2 and client.connected)
    fake.add_channel("c", "1")
    assert [c.uniqueid for c in await client.core_show_channels()] == ["1"]


@pytest_twisted.ensureDeferred
async def test_stop_logs_off(fake, make_client):
    client = make_client()
    await client.when_connected()
    await client.stop()
    assert fake.actions[-1]["Action"] == "Logoff"
    assert not client.connected


@pytest_twisted.ensureDeferred
async def test_stop_is_bounded_when_asterisk_stopped_reading(fake, make_client):
    """A hung Asterisk takes no more bytes: its Logoff gets no answer within 1 s, and that
    drops the connection at once (a close would wait for what is still buffered, for
    ever), so the dialer's and serve's exits never wait on AMI."""
    client = make_client(action_timeout=1.0)
    await client.when_connected()
    for session in fake.sessions:
        session.transport.pauseProducing()          # Asterisk reads nothing more
    client.protocol.transport.write(b"X" * (64 << 20))  # more than the kernel buffers
    started = reactor.seconds()
    stopping = client.stop()
    stopping.addTimeout(15, reactor)                # a hang fails the test, not the run
    await stopping
    assert reactor.seconds() - started < 1.0 + 1.5   # the Logoff's wait, plus margin
    assert not client.connected


@pytest.mark.parametrize("text, expected", [
    ("127.0.0.1:5038", ("127.0.0.1", 5038)), ("pbx.example", ("pbx.example", 5038)),
    ("[::1]:5039", ("::1", 5039))])
def test_parse_address(text, expected):
    assert parse_address(text) == expected


@pytest.mark.parametrize("text", ["", ":5038", "host:0", "host:x", "host:70000"])
def test_parse_address_refuses(text):
    with pytest.raises(ValueError):
        parse_address(text)
