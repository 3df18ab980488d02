"""When a transaction runs again: deadlocks, and lost connections only when it is safe."""

from __future__ import annotations

from datetime import datetime

import pytest
from sqlalchemy import text
from sqlalchemy.exc import OperationalError

from fastagi.billing.admission import CallRequest
from fastagi.db.engine import make_engine
from fastagi.db.retry import NotCommitted, with_retry
from fastagi.store import calls
from tests.callcontrol.tenants import add_client, add_rate, default_plan_id
from tests.support.sql import scalar

NOW = datetime(2026, 11, 25, 12, 0, 0)


def mysql_error(errno: int, invalidated: bool = False) -> OperationalError:
    error = OperationalError("SELECT 1", {}, Exception(errno, "test"))
    error.connection_invalidated = invalidated
    return error


class Flaky:
    """Raises the given errors in turn, then returns 'done'; counts its runs."""

    def __init__(self, *errors: BaseException) -> None:
        self.errors = list(errors)
        self.runs = 0

    def __call__(self) -> str:
        self.runs += 1
        if self.errors:
            raise self.errors.pop(0)
        return "done"


def not_committed() -> NotCommitted:
    try:
        raise NotCommitted("lost before commit") from mysql_error(2013, invalidated=True)
    except NotCommitted as exc:
        return exc


def test_deadlocks_and_lock_waits_are_retried_up_to_the_limit():
    work = Flaky(mysql_error(1213), mysql_error(1205))
    assert with_retry(work, pause_s=0) == "done" and work.runs == 3
    with pytest.raises(OperationalError):
        with_retry(Flaky(*[mysql_error(1213)] * 3), attempts=3, pause_s=0)


def test_a_lost_connection_before_the_commit_is_retried_once():
    work = Flaky(not_committed())
    assert with_retry(work) == "done" and work.runs == 2
    with pytest.raises(OperationalError) as raised:
        with_retry(Flaky(not_committed(), not_committed()))
    assert raised.value.orig.args[0] == 2013


def test_a_lost_connection_is_retried_for_idempotent_work_only():
    lost = mysql_error(2013, invalidated=True)
    work = Flaky(lost)
    assert with_retry(work, idempotent=True) == "done" and work.runs == 2
    work = Flaky(mysql_error(2013, invalidated=True))
    with pytest.raises(OperationalError):
        with_retry(work)  # the commit may have happened: never run it twice
    assert work.runs == 1


def test_other_errors_are_not_retried():
    work = Flaky(mysql_error(1146))
    with pytest.raises(OperationalError):
        with_retry(work)
    assert work.runs == 1


def kill_pooled_connection(engine, db_url) -> None:
    """Kill the one pooled connection from outside, as a MariaDB restart would."""
    with engine.connect() as conn:
        victim = conn.execute(text("SELECT CONNECTION_ID()")).scalar_one()
    killer = make_engine(db_url, pool_size=1)
    try:
        with killer.connect() as conn:
            conn.execute(text(f"KILL CONNECTION {int(victim)}"))
    finally:
        killer.dispose()


def test_authorize_and_settle_survive_a_killed_pooled_connection(engine, db_url):
    add_rate(engine, default_plan_id(engine), "44", "0.10")
    add_client(engine, "acme", balance="10", channel_limit=5)
    single = make_engine(db_url, pool_size=1)
    try:
        kill_pooled_connection(single, db_url)
        got = calls.authorize(single, CallRequest("acme", "4411"), NOW, calls.Limits())
        assert got.admission.allowed
        kill_pooled_connection(single, db_url)
        settled = calls.settle(single, got.call_id, 60000, "ANSWER", NOW)
        assert settled.changed and str(settled.cost) == "0.1000"
    finally:
        single.dispose()
    assert scalar(engine, "SELECT COUNT(*) FROM calls") == 1
