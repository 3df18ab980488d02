"""`ictcontact serve` syncs client logins itself (--login-sync-seconds), so a suspension
locks the client's logins even where the db_login_sync event does not run (a Galera node
where it is SLAVESIDE_DISABLED, a server with the event scheduler off)."""

from __future__ import annotations

import signal
import time

from sqlalchemy import text

from tests.serve_process import Server
from tests.tenant.helpers import can_connect

SERVE_BOUND_S = 2.0  # the documented lock-out bound


def _set_client_status(engine, world, letter: str, status: str) -> None:
    with engine.begin() as conn:
        conn.execute(text("UPDATE clients SET status = :s WHERE id = :id"),
                     {"s": status, "id": world.clients[letter].id})


def _seconds_until(predicate, bound: float) -> float:
    start = time.monotonic()
    while not predicate():
        assert time.monotonic() - start < bound, f"not within {bound} s"
        time.sleep(0.05)
    return time.monotonic() - start


def test_serve_locks_a_suspended_login_with_the_event_disabled(world, engine, db_url):
    with engine.begin() as conn:
        conn.execute(text("ALTER EVENT db_login_sync DISABLE"))
    _set_client_status(engine, world, "a", "suspended")
    time.sleep(2.5)
    # nothing syncs yet: the event is off (this is what a dead Galera node leaves)
    assert can_connect(world, "a", "admin")

    server = Server(db_url)  # --login-sync-seconds 1 by default
    try:
        # its first run is at start
        _seconds_until(lambda: not can_connect(world, "a", "admin"), SERVE_BOUND_S)
        _set_client_status(engine, world, "a", "active")
        _seconds_until(lambda: can_connect(world, "a", "admin"), SERVE_BOUND_S)

        _set_client_status(engine, world, "b", "suspended")
        took = _seconds_until(lambda: not can_connect(world, "b", "agent"), SERVE_BOUND_S)
        assert can_connect(world, "a", "agent")  # the other client is untouched
    finally:
        server.process.send_signal(signal.SIGTERM)
    code, log = server.finish()
    assert code == 0, log
    assert "failed" not in log, log
    print(f"locked {took:.2f} s after the suspension")


def test_with_the_job_off_serve_does_not_sync(world, engine, db_url):
    with engine.begin() as conn:
        conn.execute(text("ALTER EVENT db_login_sync DISABLE"))
    server = Server(db_url, "--login-sync-seconds", "0")
    try:
        _set_client_status(engine, world, "a", "suspended")
        time.sleep(2.5)
        assert can_connect(world, "a", "admin")
    finally:
        server.process.send_signal(signal.SIGTERM)
    code, log = server.finish()
    assert code == 0, log
