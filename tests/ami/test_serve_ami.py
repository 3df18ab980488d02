"""`ictcontact serve --ami --metrics` as a real process: the call records its Asterisk,
a suspension in plain SQL hangs the call up over AMI, the metrics page is scraped over
HTTP; and the server runs on without AMI, saying that enforcement is off."""

from __future__ import annotations

import subprocess
import urllib.request

import pytest_twisted
from twisted.internet import reactor, threads

from fastagi import channel_vars as v
from fastagi.testing.fake_asterisk import run_session
from fastagi.testing.fake_ami import FakeAmi
from tests.ami.helpers import shipped_write_classes
from tests.callcontrol.tenants import add_client, add_rate, default_plan_id
from tests.serve_process import Server, environ, serve_command
from tests.support.sql import execute, scalar
from tests.support.waiting import wait_until

METRIC_NAMES = (
    "ictcontact_agi_sessions_total", "ictcontact_authorize_decisions_total",
    "ictcontact_authorize_seconds", "ictcontact_settle_seconds",
    "ictcontact_db_errors_total", "ictcontact_db_retries_total", "ictcontact_live_calls",
    "ictcontact_stale_calls_closed_total", "ictcontact_ami_connected",
    "ictcontact_ami_logins_total", "ictcontact_enforcement_hangups_total",
    "ictcontact_reconciliation_fixes_total", "ictcontact_reconciliation_runs_total")


def scrape(port: int) -> str:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10) as reply:
        assert reply.status == 200
        return reply.read().decode()


@pytest_twisted.ensureDeferred
async def test_suspension_hangs_up_a_live_call_of_a_served_session(db_url, engine):
    add_rate(engine, default_plan_id(engine), "44", "0.60")
    add_client(engine, "acme", balance="20")
    fake = FakeAmi(write_classes=shipped_write_classes())
    ami_port = fake.listen(reactor)
    server = Server(db_url, "--ami", f"127.0.0.1:{ami_port.getHost().port}",
                    "--metrics", "tcp:0:interface=127.0.0.1", env={
                        "ICTCONTACT_AMI_SECRET": "s3cret"})
    try:
        found = await threads.deferToThread(server.wait_for,
                                            r"metrics on 127\.0\.0\.1:(\d+)/metrics")
        metrics_port = int(found.group(1))
        await wait_until(lambda: bool(fake.actions_named("Login")), timeout=10)
        assert fake.actions_named("Login")[0]["Events"] == "off"   # serve parses no events
        uniqueid, channel = "1733000000.42", "PJSIP/acme-100-0000002a"
        fake.add_channel(channel, uniqueid, accountcode="acme")
        result = await run_session(reactor, "127.0.0.1", server.port, "authorize",
                                   ("acme", "442071234567"),
                                   env={"agi_uniqueid": uniqueid, "agi_channel": channel})
        assert result.variables[v.RESULT] == v.ALLOW
        call_id = int(result.variables[v.CALL_ID])
        assert scalar(engine, "SELECT asterisk FROM calls WHERE id = :id",
                      id=call_id) == "127.0.0.1"
        execute(engine, "UPDATE clients SET status = 'suspended' WHERE code = 'acme'")
        await wait_until(lambda: bool(fake.actions_named("Hangup")), timeout=5)
        assert [(a["Channel"], a["Cause"]) for a in fake.actions_named("Hangup")] == [
            (uniqueid, "21")]
        page = await threads.deferToThread(scrape, metrics_port)
        for name in METRIC_NAMES:
            assert f"# HELP {name} " in page, name
        assert 'ictcontact_authorize_decisions_total{reason="allowed"} 1.0' in page
        assert 'ictcontact_agi_sessions_total{outcome="ALLOW",script="authorize"} 1.0' in page
        assert "ictcontact_ami_connected 1.0" in page
        assert ('ictcontact_enforcement_hangups_total{reason="suspended",result="hungup"} 1.0'
                in page)
        assert "acme" not in page and "4420" not in page   # no client or number labels
    finally:
        server.process.terminate()
        code, log = await threads.deferToThread(server.finish)
        fake.drop_all()
        await ami_port.stopListening()
    assert code == 0, log
    assert "Logoff" in [a["Action"] for a in fake.actions]


def test_serves_without_ami_and_says_enforcement_is_off(db_url):
    server = Server(db_url)
    try:
        server.wait_for(r"AMI not configured .*enforcement and reconciliation are off")
    finally:
        server.process.terminate()
        code, _ = server.finish()
    assert code == 0


def test_ami_without_a_secret_is_refused(db_url):
    result = subprocess.run(serve_command("--db", db_url, "--listen", "tcp:0",
                                          "--ami", "127.0.0.1:5038"),
                            env=environ(), capture_output=True, text=True, timeout=60)
    assert result.returncode == 2
    assert "ICTCONTACT_AMI_SECRET" in result.stderr.splitlines()[-1]


@pytest_twisted.ensureDeferred
async def test_hostile_ami_never_delays_call_control(db_url, engine):
    """A manager that never answers, then floods garbage and a huge message: authorize
    and settle answer as fast as ever meanwhile."""
    add_rate(engine, default_plan_id(engine), "44", "0.60")
    add_client(engine, "acme", balance="1000")
    fake = FakeAmi(write_classes=shipped_write_classes())
    fake.silent.update({"CoreShowChannels", "Hangup"})
    ami_port = fake.listen(reactor)
    server = Server(db_url, "--ami", f"127.0.0.1:{ami_port.getHost().port}",
                    "--ami-timeout", "30", "--reconcile-seconds", "0.2",
                    env={"ICTCONTACT_AMI_SECRET": "s3cret"})
    try:
        await wait_until(lambda: bool(fake.actions_named("Login")), timeout=10)
        held = await run_session(reactor, "127.0.0.1", server.port, "authorize",
                                 ("acme", "442071234567"),
                                 env={"agi_uniqueid": "1733000002.1"})
        assert held.variables[v.RESULT] == v.ALLOW   # a live call: reconciliation asks AMI
        await wait_until(lambda: bool(fake.actions_named("CoreShowChannels")), timeout=10)
        fake.push(b"\x00\xff garbage\r\nno colon\r\n" * 100)
        for n in range(5):
            started = reactor.seconds()
            result = await run_session(reactor, "127.0.0.1", server.port, "authorize",
                                       ("acme", "442071234567"),
                                       env={"agi_uniqueid": f"1733000001.{n}"})
            assert result.variables[v.RESULT] == v.ALLOW
            settled = await run_session(reactor, "127.0.0.1", server.port, "settle",
                                        (result.variables[v.CALL_ID], "30", "ANSWER"))
            assert settled.variables[v.COST] == "0.6000"
            # Not held up by the hostile AMI: a session waiting on it would take its 30 s
            # timeout; 10 s leaves a loaded machine room.
            assert reactor.seconds() - started < 10
        fake.push(b"Event: Flood\r\n" + b"X: y\r\n" * 5000)   # over the bound: dropped
        await wait_until(lambda: len(fake.actions_named("Login")) >= 2, timeout=10)
        result = await run_session(reactor, "127.0.0.1", server.port, "authorize",
                                   ("acme", "442071234567"))
        assert result.variables[v.RESULT] == v.ALLOW
    finally:
        server.process.terminate()
        code, log = await threads.deferToThread(server.finish)
        fake.drop_all()
        await ami_port.stopListening()
    assert code == 0, log
