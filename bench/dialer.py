"""Benchmark: the campaign dialer's pacing, exactness and CPU (issue 12).

    .venv/bin/python bench/dialer.py                       # 10, 50, 100 calls/s; ~4 minutes
    .venv/bin/python bench/dialer.py --rates 100 --contacts 10000

Processes: a real `ictcontact serve` (FastAGI) and a real `ictcontact dialer` on this
machine's MariaDB, and in this process the fake PBX (fastagi.testing.fake_pbx): AMI over
TCP whose every Originate plays the campaign dialplan, i.e. a FastAGI `authorize` session,
the scripted outcome, then `settle`, so every call is admitted and billed for real.

For each rate a fresh campaign of `contacts` contacts (default: rate x 100 s of dialling,
so 10,000 at 100/s), one attempt each, outcomes scripted by the number: 60% answered
(ring 0.3 s, talk 0.5 s), 10% busy, 20% no answer, 10% congestion. Figures per run:
- originates/s achieved vs configured: Originate actions that reached the fake PBX, from
  the second one after the first (the first second is the bucket's one-second burst) to
  the last, and the error against the configured rate (target within 2% up to 100/s);
- double dials (a number originated while in flight), most calls in flight vs the
  campaign's cap, contacts whose state or outcome is not exactly the scripted one;
- the dialer's CPU (user + system of its process, all threads) per originated call.
A last run at the highest rate has a campaign cap (`--capped`, 40) that binds: the rate
is then what the cap allows, and the figure that counts is the most calls in flight.

Its own database `ict_bench_dialer_<pid>` on ICT_TEST_SERVER (default
root@127.0.0.1:3306), dropped at the end.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

# last digit of the number -> (dial status, expected contact status, expected last outcome):
# 60% answered, 10% busy, 20% no answer, 10% congestion
SCRIPT = {**{d: ("ANSWER", "answered", "answered") for d in "012345"},
          "6": ("BUSY", "failed", "busy"),
          "7": ("NOANSWER", "failed", "no-answer"), "8": ("NOANSWER", "failed", "no-answer"),
          "9": ("CONGESTION", "failed", "failed")}


def cpu_seconds(pid: int) -> float:
    """User + system CPU of a process so far (/proc/PID/stat fields 14 and 15)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def make_database():
    from bench_db import make_database as fresh
    return fresh("dialer", balance=1000000, channel_limit=2000, pool_size=4)


def add_campaign(engine, rate: float, contacts: int, first: int, cap: int) -> int:
    from sqlalchemy import text

    with engine.begin() as conn:
        client = conn.execute(text("SELECT id FROM clients WHERE code = 'bench'")).scalar_one()
        campaign = int(conn.execute(text(
            "INSERT INTO campaigns (client_id, name, recording, calls_per_second, max_channels, "
            "keep_free_channels, max_attempts, window_days, window_start, window_end) "
            "VALUES (:c, :n, 'custom/promo', :cps, :cap, 0, 1, "
            "'mon,tue,wed,thu,fri,sat,sun', '00:00:00', '23:59:59')"),
            {"c": client, "n": f"bench-{rate:g}-{first}", "cps": rate, "cap": cap}).lastrowid)
        conn.execute(text(
            "INSERT INTO contacts (client_id, campaign_id, phone) VALUES (:c, :g, :p)"),
            [{"c": client, "g": campaign, "p": f"44{n:010d}"}
             for n in range(first, first + contacts)])
    return campaign


def execute(engine, sql: str, **params) -> None:
    from sqlalchemy import text
    with engine.begin() as conn:
        conn.execute(text(sql), params)


def query(engine, sql: str, **params) -> list:
    from sqlalchemy import text
    with engine.connect() as conn:
        return list(conn.execute(text(sql), params))


async def one_run(reactor, engine, pbx, dialer_pid: int, rate: float, contacts: int,
                  first: int, cap: int) -> dict:
    from twisted.internet import task, threads

    campaign = await threads.deferToThread(add_campaign, engine, rate, contacts, first, cap)
    calls_before = len(pbx.calls)
    pbx.most_in_flight.clear()
    doubles_before = len(pbx.double_dials)
    cpu_before = cpu_seconds(dialer_pid)
    await threads.deferToThread(execute, engine,
                                "UPDATE campaigns SET status = 'running' WHERE id = :g",
                                g=campaign)
    started = time.monotonic()
    deadline = started + contacts / rate * 3 + 60
    while True:
        left = await threads.deferToThread(
            query, engine, "SELECT COUNT(*) FROM contacts WHERE campaign_id = :g "
                           "AND status IN ('new', 'retry', 'dialing')", g=campaign)
        if left[0][0] == 0:
            break
        if time.monotonic() > deadline:
            raise RuntimeError(f"{left[0][0]} contacts still not done after "
                               f"{time.monotonic() - started:.0f} s")
        await task.deferLater(reactor, 0.5, lambda: None)
    await pbx.when_idle()
    cpu = cpu_seconds(dialer_pid) - cpu_before
    calls = pbx.calls[calls_before:]
    times = sorted(c.at for c in calls)
    steady = [t for t in times if t >= times[0] + 1.0]
    achieved = (len(steady) - 1) / (steady[-1] - steady[0]) if len(steady) > 1 else 0.0
    wrong = 0
    for phone, status, outcome in await threads.deferToThread(
            query, engine, "SELECT phone, status, last_outcome FROM contacts "
                           "WHERE campaign_id = :g", g=campaign):
        if (status, outcome) != SCRIPT[phone[-1]][1:]:
            wrong += 1
    attempts = (await threads.deferToThread(
        query, engine, "SELECT COUNT(*), SUM(outcome IS NULL) FROM campaign_attempts "
                       "WHERE campaign_id = :g", g=campaign))[0]
    # The dialer's own pace: when it claimed each contact (attempt rows), same rule.
    claimed = sorted(r[0].timestamp() for r in await threads.deferToThread(
        query, engine, "SELECT started_at FROM campaign_attempts WHERE campaign_id = :g",
        g=campaign))
    claimed_steady = [t for t in claimed if t >= claimed[0] + 1.0]
    claim_rate = ((len(claimed_steady) - 1) / (claimed_steady[-1] - claimed_steady[0])
                  if len(claimed_steady) > 1 else 0.0)
    return {"rate": rate, "contacts": contacts, "originates": len(calls),
            "achieved": achieved, "error": (achieved - rate) / rate,
            "seconds": times[-1] - times[0], "cpu_ms": cpu / max(1, len(calls)) * 1000,
            "attempts": int(attempts[0]), "open": int(attempts[1] or 0), "wrong": wrong,
            "claimed": claim_rate, "most": pbx.most_in_flight["bench"],
            "doubles": len(pbx.double_dials) - doubles_before}


async def main(reactor, args) -> None:
    from twisted.internet import threads

    from fastagi.testing.fake_pbx import FakePbx, Outcome
    from tests.serve_process import DialerProcess, Server

    url, engine, drop = make_database()
    server = dialer = None
    port = None
    try:
        server = Server(url, "--db-pool-size", "8", "--max-call-seconds", "600")

        def outcome(number: str) -> Outcome:
            status = SCRIPT[number[-1]][0]
            return Outcome(status, 1, ring_seconds=0.3,
                           hold_seconds=0.5 if status == "ANSWER" else 0.0)
        pbx = FakePbx(reactor, server.port, outcome)
        port = pbx.listen(reactor)
        dialer = DialerProcess(url, port.getHost().port, "bench-1", "--status-seconds", "3600")
        await threads.deferToThread(dialer.wait_for, r"AMI logged in")
        results, first = [], 0
        runs = [(rate, args.contacts or int(rate * args.seconds), args.cap)
                for rate in args.rates]
        if args.capped_contacts:   # the campaign's cap binds: never one call over it
            runs.append((max(args.rates), args.capped_contacts, args.capped))
        for rate, contacts, cap in runs:
            print(f"rate {rate:g}/s, cap {cap}: {contacts} contacts ...", flush=True)
            result = await one_run(reactor, engine, pbx, dialer.process.pid, rate, contacts,
                                   first, cap)
            result["cap"] = cap
            first += contacts
            results.append(result)
            print(f"  {result['originates']} originates in {result['seconds']:.1f} s: "
                  f"{result['achieved']:.2f}/s ({result['error'] * 100:+.2f}%; claimed "
                  f"{result['claimed']:.2f}/s), "
                  f"dialer CPU {result['cpu_ms']:.2f} ms/originate", flush=True)
        print()
        print("| configured/s | contacts | originates | received/s at the PBX | error "
              "| claimed/s by the dialer | double dials | most in flight (cap) "
              "| wrong outcomes | open attempts | dialer CPU/originate |")
        print("|---|---|---|---|---|---|---|---|---|---|---|")
        for r in results:
            print(f"| {r['rate']:g} | {r['contacts']} | {r['originates']} | {r['achieved']:.2f} "
                  f"| {r['error'] * 100:+.2f}% | {r['claimed']:.2f} | {r['doubles']} "
                  f"| {r['most']} ({r['cap']}) | {r['wrong']} | {r['open']} "
                  f"| {r['cpu_ms']:.2f} ms |")
        print(f"\ncalls not admitted by authorize: "
              f"{sum(1 for c in pbx.calls if c.result != 'ALLOW')}")
        bad = [r for r in results if r["wrong"] or r["open"] or r["originates"] != r["contacts"]]
        if pbx.double_dials or bad or any(r["most"] > r["cap"] for r in results):
            raise SystemExit("dialer benchmark: exactness check FAILED")
    finally:
        for process in (dialer, server):
            if process is not None:
                process.process.terminate()
                await threads.deferToThread(process.finish)
        if port is not None:
            await port.stopListening()
        drop()


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rates", type=float, nargs="+", default=[10, 50, 100])
    parser.add_argument("--seconds", type=float, default=100,
                        help="dialling time per rate (contacts = rate x seconds)")
    parser.add_argument("--contacts", type=int, default=0, help="contacts per rate instead")
    parser.add_argument("--cap", type=int, default=400, help="the campaign's max_channels")
    parser.add_argument("--capped", type=int, default=40,
                        help="max_channels of the last run, which its cap limits")
    parser.add_argument("--capped-contacts", type=int, default=2000,
                        help="contacts of that run at the highest rate (0: no such run)")
    return parser.parse_args(argv)


if __name__ == "__main__":
    from twisted.internet.defer import ensureDeferred
    from twisted.internet.task import react

    options = parse_args()
    react(lambda reactor: ensureDeferred(main(reactor, options)))
