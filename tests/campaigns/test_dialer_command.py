"""`ictcontact dialer` as real processes against the fake PBX (AMI over TCP, each call's
FastAGI sessions against the real server): it dials a campaign to the end, one killed
with SIGKILL leaves its calls to another process, SIGTERM ends it cleanly, and bad
settings are refused with one line."""

from __future__ import annotations

import signal
import subprocess

import pytest_twisted
from twisted.internet import threads

from fastagi.testing.fake_pbx import Outcome
from tests.campaigns.helpers import (add_client_with_rate, assert_every_call_closed,
                                     campaign_status, contact_states, fast_campaign)
from tests.campaigns.rig import campaign_rig
from tests.serve_process import DialerProcess, dialer_command, environ
from tests.support.sql import execute, rows
from tests.support.waiting import wait_until

FAST = ("--status-seconds", "1", "--claim-seconds", "3")


@pytest_twisted.ensureDeferred
async def test_a_dialer_killed_mid_campaign_leaves_its_calls_to_another(db_url, engine):
    acme = add_client_with_rate(engine, "acme", balance="100", channel_limit=20)
    campaign = fast_campaign(engine, acme, 60, max_channels=6, calls_per_second=30)
    outcome = lambda n: Outcome("ANSWER", 10, ring_seconds=0.2, hold_seconds=0.5)  # noqa: E731
    async with campaign_rig(engine, outcome) as rig:
        port = rig.ami_port
        first = DialerProcess(db_url, port, "proc-1", *FAST)
        second = None
        try:
            await threads.deferToThread(first.wait_for, r"AMI logged in")
            execute(engine, "UPDATE campaigns SET status = 'running' WHERE id = :g", g=campaign)
            await wait_until(lambda: len(rig.pbx.calls) >= 12, what="12 calls by proc-1")
            first.process.send_signal(signal.SIGKILL)
            killed_with = len(rig.pbx.calls)
            second = DialerProcess(db_url, port, "proc-2", *FAST)
            await wait_until(lambda: campaign_status(engine, campaign) == "finished", timeout=60,
                             what="the campaign finished by proc-2")
            second.process.send_signal(signal.SIGTERM)
            code, log = await threads.deferToThread(second.finish)
        finally:
            for process in (first, second):
                if process is not None and process.process.poll() is None:
                    process.process.kill()
        pbx = rig.pbx
    assert code == 0, log
    assert "dialer proc-2 stopped" in log
    assert contact_states(engine, campaign) == {"answered": 60}
    assert pbx.double_dials == []
    assert pbx.most_in_flight["acme"] <= 6
    assert len(pbx.calls) == 60                  # every contact dialled exactly once
    by_dialer = dict(rows(engine, "SELECT dialer, COUNT(*) FROM campaign_attempts "
                                  "WHERE campaign_id = :g GROUP BY dialer", g=campaign))
    assert by_dialer["proc-1"] >= killed_with - 6 and by_dialer["proc-2"] > 0
    assert sum(by_dialer.values()) == 60
    assert_every_call_closed(engine, pbx)


def run_dialer(*options: str, **env: str) -> subprocess.CompletedProcess:
    return subprocess.run(dialer_command(*options), env=environ(**env), capture_output=True,
                          text=True, timeout=60)


def test_bad_settings_are_refused_with_one_line(db_url, engine):
    no_ami = run_dialer(ICTCONTACT_DB=db_url, ICTCONTACT_AMI_SECRET="x")
    assert no_ami.returncode == 2
    assert "the dialer needs --ami HOST:PORT" in no_ami.stderr
    no_secret = run_dialer("--ami", "127.0.0.1:5038", ICTCONTACT_DB=db_url)
    assert no_secret.returncode == 2
    assert "ICTCONTACT_AMI_SECRET" in no_secret.stderr
    bad_address = run_dialer("--ami", "127.0.0.1:99999", ICTCONTACT_DB=db_url,
                             ICTCONTACT_AMI_SECRET="x")
    assert bad_address.returncode == 2
    assert "AMI address must be HOST:PORT" in bad_address.stderr
    behind = db_url.rsplit("/", 1)[0] + "/ictcontact_no_such_database"
    no_schema = run_dialer("--ami", "127.0.0.1:5038", ICTCONTACT_DB=behind,
                           ICTCONTACT_AMI_SECRET="x")
    assert no_schema.returncode == 1
    assert "ictcontact db upgrade" in no_schema.stderr
    assert "Traceback" not in no_ami.stderr + no_secret.stderr + no_schema.stderr
