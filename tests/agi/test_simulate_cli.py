"""`ictcontact simulate` as a subprocess against a server in this test's reactor."""

from __future__ import annotations

import os
import sys

import pytest_twisted
from twisted.internet import reactor
from twisted.internet.defer import Deferred
from twisted.internet.utils import getProcessOutputAndValue

from fastagi import channel_vars as v
from fastagi.agi.server import AgiServerFactory

from .helpers import make_services


async def echo(channel, services):
    value = await channel.get_variable(v.DIAL)
    await channel.set_variables({
        v.RESULT: v.ALLOW, v.DIAL: f"{value}/{'+'.join(channel.args)}",
        v.CALL_ID: f"{channel.env.query.get('x')}:{channel.env.callerid}:{channel.hung_up}"})


async def refuse(channel, services):
    await channel.set_variables({v.RESULT: v.REJECT, v.REASON: "no-credit"})


async def hold(channel, services):
    await Deferred()


async def ask(channel, services):
    first = await channel.get_data("agent-user", 5000, 10)
    second = await channel.get_data("agent-pass", 5000, 10)
    await channel.set_variables({v.RESULT: v.ALLOW,
                                 v.REASON: f"{first.digits}/{second.timed_out}"})


async def simulate(port, *argv):
    env = {k: val for k, val in os.environ.items() if not k.startswith("ICTCONTACT_")}
    env["ICTCONTACT_CONFIG"] = os.devnull
    out, err, code = await getProcessOutputAndValue(
        sys.executable, ["-m", "fastagi", "simulate", "--connect", f"127.0.0.1:{port}",
                         *argv], env=env)
    return out.decode(), err.decode(), code


@pytest_twisted.async_yield_fixture
async def server_port():
    factory = AgiServerFactory({"echo": echo, "hold": hold, "ask": ask, "refuse": refuse},
                               make_services(reactor, session_timeout=5, db_timeout=1))
    port = reactor.listenTCP(0, factory, interface="127.0.0.1")
    yield port.getHost().port
    await port.stopListening()


@pytest_twisted.ensureDeferred
async def test_simulate_prints_commands_and_variables(server_port):
    out, err, code = await simulate(server_port, "echo?x=1", "acme", "0044 207",
                                    "--var", f"{v.DIAL}=PJSIP/x", "--env",
                                    "callerid=2125550199", "--hangup-at", "1")
    assert code == 0, err
    assert out.splitlines() == [
        f'> GET VARIABLE "{v.DIAL}"',
        f'> SET VARIABLE "{v.RESULT}" "{v.ALLOW}"',
        f'> SET VARIABLE "{v.DIAL}" "PJSIP/x/acme+0044 207"',
        f'> SET VARIABLE "{v.CALL_ID}" "1:2125550199:True"',
        f"{v.RESULT}={v.ALLOW}",
        f"{v.DIAL}=PJSIP/x/acme+0044 207",
        f"{v.CALL_ID}=1:2125550199:True",
    ]
    assert "server closed the session" in err


@pytest_twisted.ensureDeferred
async def test_simulate_fails_when_the_server_does_not_close(server_port):
    out, err, code = await simulate(server_port, "hold", "--timeout", "0.5")
    assert code == 1
    assert out == ""
    assert "did not close the session within 0.5 s" in err


@pytest_twisted.ensureDeferred
async def test_simulate_fails_when_nothing_listens():
    out, err, code = await simulate(1, "health")
    assert code == 1 and "cannot connect to 127.0.0.1:1" in err


@pytest_twisted.ensureDeferred
async def test_simulate_types_the_keys_given(server_port):
    out, err, code = await simulate(server_port, "ask", "--keys", "501", "--keys", "-")
    assert code == 0, err
    assert out.splitlines()[:2] == ['> GET DATA "agent-user" "5000" "10"',
                                    '> GET DATA "agent-pass" "5000" "10"']
    assert f"{v.REASON}=501/True" in out.splitlines()


@pytest_twisted.ensureDeferred
async def test_simulate_exits_3_when_the_answer_is_reject(server_port):
    """The installed console script, so a shell script can branch on the answer."""
    env = {k: val for k, val in os.environ.items() if not k.startswith("ICTCONTACT_")}
    env["ICTCONTACT_CONFIG"] = os.devnull
    console_script = os.path.join(os.path.dirname(sys.executable), "ictcontact")
    out, err, code = await getProcessOutputAndValue(
        console_script, ["simulate", "refuse", "--connect", f"127.0.0.1:{server_port}"],
        env=env)
    assert code == 3, err
    assert f"{v.RESULT}=REJECT" in out.decode().splitlines()
    assert "server closed the session after" in err.decode()
    out, err, code = await simulate(server_port, "echo")  # ALLOW: still 0
    assert code == 0, err
