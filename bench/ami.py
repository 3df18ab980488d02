"""Benchmark: AMI enforcement and reconciliation figures of issue 11.

    .venv/bin/python bench/ami.py suspend   [--calls 100] [--trials 5]
    .venv/bin/python bench/ami.py reconcile [--calls 1000] [--gone 100] [--trials 5]

`suspend`: a real `ictcontact serve --ami` process (enforcement poll every 1 s) against the
fake AMI server in this process; `--calls` live calls of one client, authorized through
the authorize transaction for channels the fake Asterisk has. The figure is the time from
the commit of `UPDATE clients SET status='suspended'` to the arrival of the last Hangup
action at the fake AMI (and of the first), per trial.

`reconcile`: the Reconciler in this process against the fake AMI in a child process (its
CPU is not counted), `--calls` live calls in the database and as many channels, less
`--gone` that have disappeared. The figure is this process's CPU time (all threads:
reactor and database workers) and wall time for one reconciliation pass: one with every
channel present, one that closes the gone calls (the confirmation wait is idle time).

Each run uses its own database `ict_bench_ami_<pid>` on ICT_TEST_SERVER (default
root@127.0.0.1:3306) and drops it at the end.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
HERE = "127.0.0.1"


def make_database():
    from bench_db import make_database as fresh
    return fresh("ami", balance=100000, channel_limit=5000, pool_size=8)


def authorize_calls(engine, count: int, first: int) -> list[tuple[str, str]]:
    """`count` live calls of client bench on HERE; their (uniqueid, channel)."""
    from fastagi.billing.admission import CallRequest
    from fastagi.store import calls

    made = []
    now = __import__("datetime").datetime.utcnow()
    for n in range(first, first + count):
        uniqueid, channel = f"1700000000.{n}", f"PJSIP/bench-100-{n:08x}"
        got = calls.authorize(engine, CallRequest("bench", "442071234567"), now,
                              calls.Limits(max_call_seconds=600),
                              calls.CallContext(uniqueid, channel, "bench", HERE))
        assert got.admission.allowed, got.admission
        made.append((uniqueid, channel))
    return made


def execute(engine, sql: str, **params) -> None:
    from sqlalchemy import text
    with engine.begin() as conn:
        conn.execute(text(sql), params)


# --- suspend -------------------------------------------------------------------------
async def suspend_trials(reactor, engine, url: str, count: int, trials: int) -> list:
    from twisted.internet import task, threads

    from fastagi.testing.fake_ami import FakeAmi
    from tests.serve_process import Server

    fake = FakeAmi()
    port = fake.listen(reactor)
    server = Server(url, "--ami", f"{HERE}:{port.getHost().port}",
                    "--reconcile-seconds", "3600", env={"ICTCONTACT_AMI_SECRET": "s3cret"})
    figures = []
    try:
        while not fake.actions_named("Login"):
            await task.deferLater(reactor, 0.05, lambda: None)
        for trial in range(trials):
            execute(engine, "UPDATE calls SET state = 'stale', settled_at = UTC_TIMESTAMP() "
                    "WHERE state = 'live'")
            execute(engine, "UPDATE clients SET status = 'active' WHERE code = 'bench'")
            for uniqueid, channel in authorize_calls(engine, count, 1 + trial * count):
                fake.add_channel(channel, uniqueid, accountcode="bench")
            await task.deferLater(reactor, 1.3, lambda: None)   # a random poll phase
            before = len(fake.actions_named("Hangup"))
            await threads.deferToThread(
                execute, engine, "UPDATE clients SET status = 'suspended' WHERE code = 'bench'")
            committed = time.monotonic()
            deadline = committed + 10
            while len(fake.actions_named("Hangup")) < before + count:
                if time.monotonic() > deadline:
                    raise RuntimeError("the Hangup actions did not all arrive within 10 s")
                await task.deferLater(reactor, 0.005, lambda: None)
            times = [t for a, t in zip(fake.actions, fake.received_at)
                     if a.get("Action") == "Hangup"][before:]
            figures.append((min(times) - committed, max(times) - committed))
            print(f"trial {trial + 1}: first Hangup {figures[-1][0] * 1000:.0f} ms, "
                  f"last (#{count}) {figures[-1][1] * 1000:.0f} ms after the UPDATE",
                  flush=True)
    finally:
        server.process.terminate()
        await threads.deferToThread(server.finish)
        fake.drop_all()
        await port.stopListening()
    return figures


# --- reconcile -------------------------------------------------------------------------
def fake_ami_child(channels: int, skip: int) -> None:
    from twisted.internet import reactor

    from fastagi.testing.fake_ami import FakeAmi

    fake = FakeAmi()
    for n in range(1 + skip, channels + 1):
        fake.add_channel(f"PJSIP/bench-100-{n:08x}", f"1700000000.{n}", accountcode="bench")
    port = fake.listen(reactor)
    print(port.getHost().port, flush=True)
    reactor.run()


async def reconcile_trials(reactor, engine, count: int, gone: int, trials: int) -> list:
    """CPU of a pass that finds every channel present (the steady state)."""
    from twisted.internet import task
    from twisted.internet.endpoints import TCP4ClientEndpoint

    from fastagi.ami.client import AmiClient
    from fastagi.jobs.reconciliation import Reconciler
    from fastagi.metrics import Metrics
    from fastagi.services import DbRunner

    execute(engine, "UPDATE calls SET state = 'stale', settled_at = UTC_TIMESTAMP() "
            "WHERE state = 'live'")
    authorize_calls(engine, count, 1)
    child = subprocess.Popen([sys.executable, __file__, "fake-ami", str(count), "0"],
                             stdout=subprocess.PIPE, text=True)
    ami_port = int(child.stdout.readline())
    db = DbRunner(engine, reactor, reactor, 4, 30.0)
    db.start()
    client = AmiClient(TCP4ClientEndpoint(reactor, HERE, ami_port), reactor,
                       "ictcontact", "s3cret", action_timeout=30.0)
    reconciler = Reconciler(client, db, reactor, lambda: HERE, Metrics(), confirm_seconds=0.2)
    client.start()
    await client.when_connected()
    while reconciler.passes < 1:              # the pass run at login
        await task.deferLater(reactor, 0.05, lambda: None)
    results = []
    for trial in range(trials):
        cpu, wall = time.process_time(), time.perf_counter()
        outcome = await reconciler.run()
        cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
        assert outcome is not None and not outcome.closed and not outcome.settled, outcome
        results.append((cpu, wall))
        print(f"trial {trial + 1}: {count} live calls, every channel present: "
              f"{cpu * 1000:.1f} ms CPU, {wall * 1000:.1f} ms wall", flush=True)
    await client.stop()
    db.pool.stop()
    child.terminate()
    child.wait()
    return results


async def reconcile_closing(reactor, engine, count: int, gone: int, trials: int) -> list:
    """CPU of a pass that finds and closes `gone` calls (measured around run())."""
    from twisted.internet import task
    from twisted.internet.endpoints import TCP4ClientEndpoint

    from fastagi.ami.client import AmiClient
    from fastagi.jobs.reconciliation import Reconciler
    from fastagi.metrics import Metrics
    from fastagi.services import DbRunner

    results = []
    for trial in range(trials):
        execute(engine, "UPDATE calls SET state = 'stale', settled_at = UTC_TIMESTAMP() "
                "WHERE state = 'live'")
        execute(engine, "DELETE FROM calls WHERE state = 'stale'")
        authorize_calls(engine, count, 1)
        child = subprocess.Popen([sys.executable, __file__, "fake-ami", str(count), str(gone)],
                                 stdout=subprocess.PIPE, text=True)
        ami_port = int(child.stdout.readline())
        db = DbRunner(engine, reactor, reactor, 4, 30.0)
        db.start()
        client = AmiClient(TCP4ClientEndpoint(reactor, HERE, ami_port), reactor,
                           "ictcontact", "s3cret", action_timeout=30.0)
        reconciler = Reconciler(client, db, reactor, lambda: None, Metrics(),
                                confirm_seconds=0.2)   # no pass at login (scope unknown)
        client.start()
        await client.when_connected()
        await task.deferLater(reactor, 0.2, lambda: None)
        reconciler._asterisk = lambda: HERE
        cpu, wall = time.process_time(), time.perf_counter()
        outcome = await reconciler.run()
        cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
        assert outcome is not None and len(outcome.closed) == gone, outcome
        results.append((cpu, wall))
        print(f"trial {trial + 1}: {count} live calls, {gone} gone: the pass closing them "
              f"took {cpu * 1000:.1f} ms CPU, {wall * 1000:.1f} ms wall (incl. 200 ms wait)",
              flush=True)
        await client.stop()
        db.pool.stop()
        child.terminate()
        child.wait()
    return results


def main() -> int:
    if len(sys.argv) > 1 and sys.argv[1] == "fake-ami":
        fake_ami_child(int(sys.argv[2]), int(sys.argv[3]))
        return 0
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("what", choices=("suspend", "reconcile"))
    parser.add_argument("--calls", type=int)
    parser.add_argument("--gone", type=int, default=100)
    parser.add_argument("--trials", type=int, default=5)
    args = parser.parse_args()
    from twisted.internet import reactor
    from twisted.internet.defer import ensureDeferred

    url, engine, drop = make_database()
    outcome: dict = {}

    async def run() -> None:
        try:
            if args.what == "suspend":
                outcome["suspend"] = await suspend_trials(reactor, engine, url,
                                                          args.calls or 100, args.trials)
            else:
                count = args.calls or 1000
                outcome["steady"] = await reconcile_trials(reactor, engine, count, 0,
                                                           args.trials)
                outcome["closing"] = await reconcile_closing(reactor, engine, count,
                                                             args.gone, args.trials)
        finally:
            reactor.stop()

    def report_failure(failure):
        print(failure.getTraceback(), file=sys.stderr)
        outcome["failed"] = True

    reactor.callWhenRunning(lambda: ensureDeferred(run()).addErrback(report_failure))
    reactor.run()
    drop()
    if outcome.get("failed"):
        return 1
    if "suspend" in outcome:
        lasts = sorted(last for _, last in outcome["suspend"])
        print(f"UPDATE -> last of {args.calls or 100} Hangup actions: median "
              f"{statistics.median(lasts) * 1000:.0f} ms, max {lasts[-1] * 1000:.0f} ms "
              f"over {len(lasts)} trials (poll every 1 s)")
    if "steady" in outcome:
        cpus = [cpu for cpu, _ in outcome["steady"]]
        print(f"reconciling {args.calls or 1000} live calls, all channels present: median "
              f"{statistics.median(cpus) * 1000:.1f} ms CPU per pass")
        closing = [cpu for cpu, _ in outcome["closing"]]
        print(f"reconciling {args.calls or 1000} live calls with {args.gone} gone: median "
              f"{statistics.median(closing) * 1000:.1f} ms CPU per pass (closing them)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
