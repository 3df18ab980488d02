"""Benchmark: the delay of a low-balance alert, from the commit that moved the balance below
the threshold to the alert's arrival at a local webhook receiver and a local SMTP server.

    .venv/bin/python bench/alert_delay.py [--rounds 200] [--poll-seconds 1] [--server URL]

Creates its own database `ict_bench_alerts_<pid>` with the schema, one client with a
threshold, a signed webhook and an e-mail destination, starts the receivers
(tests/support/alert_receivers.py: aiosmtpd and an HTTP server checking the signature) and
one `ictcontact notifier` subprocess with --alert-poll-seconds. Each round commits a charge
that crosses the threshold, waits until both receivers have the alert, then tops the
balance back up (re-arming it) and waits a random 0 to --poll-seconds, so commits do not fall in step
with the poll. Prints p50, p99 and max of commit -> arrival per channel, and checks that
every alert arrived exactly once with a valid signature (exit 1 otherwise).
Drops the database at the end.
"""

from __future__ import annotations

import argparse
import collections
import os
import random
import signal
import statistics
import sys
import time
from pathlib import Path

from sqlalchemy import text
from sqlalchemy.exc import DBAPIError

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from fastagi.db import migrate  # noqa: E402
from fastagi.db.engine import make_engine  # noqa: E402

SECRET = "bench webhook secret 0123456789"


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(share * (len(ordered) - 1))))]


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=200)
    parser.add_argument("--poll-seconds", type=float, default=1.0,
                        help="the notifier's --alert-poll-seconds (1 by default)")
    parser.add_argument("--server", default=os.environ.get("ICT_TEST_SERVER",
                                                           "mysql+pymysql://root@127.0.0.1:3306"))
    args = parser.parse_args()
    from tests.serve_process import PYTHON, LoggedProcess, environ
    from tests.support.alert_receivers import SmtpReceiver, WebhookReceiver

    name = f"ict_bench_alerts_{os.getpid()}"
    url = f"{args.server}/{name}"
    migrate.upgrade(url)
    engine = make_engine(url, pool_size=2)
    smtp = SmtpReceiver().start()
    hook = WebhookReceiver(SECRET).start()
    notifier = None
    try:
        with engine.begin() as conn:
            client = conn.execute(text(
                "INSERT INTO clients (code, name, balance, low_balance_threshold)"
                " VALUES ('bench', 'Bench', 100, 50)")).lastrowid
            conn.execute(text("INSERT INTO alert_destinations (client_id, kind, address, secret)"
                              " VALUES (:c, 'webhook', :u, :s), (NULL, 'email', 'ops@bench.example', NULL)"),
                         {"c": client, "u": hook.url, "s": SECRET})
        notifier = LoggedProcess(
            [PYTHON, "-m", "fastagi", "--log-level", "WARNING", "notifier",
             "--alert-poll-seconds", str(args.poll_seconds),
             "--alert-smtp", f"127.0.0.1:{smtp.port}"], environ(ICTCONTACT_DB=url))
        committed: dict[str, float] = {}
        restarts = 0
        for n in range(args.rounds):
            try:
                one_round(engine, client, n, committed, hook, smtp)
            except DBAPIError:   # the shared server restarted: that round does not count
                restarts += 1
                rearm(engine, client)
            time.sleep(random.uniform(0, args.poll_seconds))
        webhook = first_arrivals(hook.hooks, committed)
        mail = first_arrivals(smtp.mails, committed)
        print(f"{len(committed)} low-balance alerts, notifier polling every {args.poll_seconds:g} s,"
              f" webhook and e-mail on loopback")
        for label, values in (("commit -> webhook received", webhook),
                              ("commit -> e-mail received", mail)):
            print(f"{label:28s} p50 {statistics.median(values) * 1000:7.1f} ms"
                  f"  p99 {percentile(values, 0.99) * 1000:7.1f} ms"
                  f"  max {max(values) * 1000:7.1f} ms")
        counts = collections.Counter(hook.event_ids() + smtp.event_ids())
        missing = [i for i in committed if counts[i] < 2]
        twice = [i for i, c in counts.items() if c > 2]
        bad = [h.event_id for h in hook.hooks if not h.signature_ok]
        print(f"alerts measured: {len(committed)} (rounds lost to a database restart: "
              f"{restarts}); not received on both channels: {len(missing)}; received more "
              f"than once (same id): {len(twice)}; bad signatures: {len(bad)}")
        return 1 if missing or bad else 0
    finally:
        if notifier is not None:
            notifier.process.send_signal(signal.SIGTERM)
            notifier.finish()
        smtp.stop()
        hook.stop()
        drop(engine, name)
        engine.dispose()


def first_arrivals(received, committed: dict[str, float]) -> list[float]:
    """Seconds from commit to the first arrival of each measured alert."""
    first: dict[str, float] = {}
    for item in received:
        if item.event_id in committed and item.event_id not in first:
            first[item.event_id] = item.at - committed[item.event_id]
    return list(first.values())


def one_round(engine, client: int, n: int, committed: dict[str, float], hook, smtp) -> None:
    """Commit a crossing, wait for both receivers, re-arm."""
    with engine.begin() as conn:
        conn.execute(text("INSERT INTO payments (client_id, amount, kind, reference)"
                          " VALUES (:c, -60, 'correction', :r)"), {"c": client, "r": f"down-{n}"})
        event = conn.execute(text("SELECT dedupe_id FROM alert_events"
                                  " ORDER BY id DESC LIMIT 1")).scalar_one()
    committed[event] = time.time()
    deadline = time.monotonic() + 60
    while not (event in hook.event_ids() and event in smtp.event_ids()):
        if time.monotonic() > deadline:
            raise SystemExit(f"alert {event} not delivered within 60 s")
        time.sleep(0.002)
    with engine.begin() as conn:
        conn.execute(text("INSERT INTO payments (client_id, amount, reference)"
                          " VALUES (:c, 60, :r)"), {"c": client, "r": f"up-{n}"})


def rearm(engine, client: int) -> None:
    """After a restart: wait for the server, then bring the balance back to 100."""
    for _ in range(120):
        try:
            with engine.begin() as conn:
                balance = conn.execute(text("SELECT balance FROM clients WHERE id = :c"),
                                       {"c": client}).scalar_one()
                if balance < 100:
                    conn.execute(text("INSERT INTO payments (client_id, amount, reference)"
                                      " VALUES (:c, :a, UUID())"), {"c": client, "a": 100 - balance})
            return
        except DBAPIError:
            time.sleep(1)
    raise SystemExit("the database did not come back within 2 minutes")


def drop(engine, name: str) -> None:
    """Drop the bench database, waiting up to a minute for a server that restarts."""
    for _ in range(60):
        try:
            with engine.begin() as conn:
                conn.execute(text(f"DROP DATABASE IF EXISTS `{name}`"))
            return
        except Exception:
            time.sleep(1)


if __name__ == "__main__":
    sys.exit(main())
