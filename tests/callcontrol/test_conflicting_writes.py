"""What keeps admission correct on a Galera cluster, checked on one server: every admission
writes its client's row, a certification failure (1213 at COMMIT) is retried with bounded
backoff, and one that outlasts the retries is a definite `unavailable` with nothing
recorded. The cluster itself is exercised in tests/faults/test_galera.py."""

from __future__ import annotations

import time
from datetime import datetime

import pymysql
import pytest
import pytest_twisted
from sqlalchemy.engine import Connection
from sqlalchemy.exc import OperationalError

from fastagi import channel_vars as v, reasons
from fastagi.billing.admission import CallRequest
from fastagi.db import galera, retry
from fastagi.db.retry import with_retry
from fastagi.store import calls
from tests.callcontrol.agi_server import agi_server
from tests.callcontrol.tenants import add_client, add_rate, default_plan_id
from tests.support.sql import execute, scalar

NOW = datetime(2026, 11, 25, 12, 0, 0)
LIMITS = calls.Limits(max_call_seconds=3600)
CERTIFICATION_FAILURE = (1213, "WSREP detected deadlock/conflict and aborted the transaction."
                               " Try restarting the transaction")


@pytest.fixture
def acme(engine):
    add_rate(engine, default_plan_id(engine), "44", "0.10")
    return add_client(engine, "acme", balance="50", channel_limit=1)


def test_an_admission_writes_the_client_row_and_a_rejection_does_not(engine, acme):
    execute(engine, "UPDATE clients SET updated_at = '2026-01-01 00:00:00' WHERE id = :id",
            id=acme)
    request = CallRequest(client_code="acme", number="442071234567")
    assert calls.authorize(engine, request, NOW, LIMITS).admission.allowed
    assert calls.authorize(engine, request, NOW, LIMITS).admission.reason == reasons.CHANNEL_LIMIT
    assert scalar(engine, "SELECT admitted_calls FROM client_accounts WHERE client_id = :id", id=acme) == 1
    # The write is for the cluster's certification, not an admin change.
    assert str(scalar(engine, "SELECT updated_at FROM clients WHERE id = :id", id=acme)) == \
        "2026-01-01 00:00:00"


def test_backoff_doubles_with_jitter_and_is_capped():
    for attempt in range(1, 12):
        ceiling = min(retry.MAX_PAUSE_S, 0.01 * 2 ** (attempt - 1))
        pauses = [retry.backoff(attempt, 0.01) for _ in range(50)]
        assert all(ceiling / 2 <= p <= ceiling for p in pauses)
        assert len(set(pauses)) > 1  # jittered


def test_certification_failures_are_retried_then_given_up_within_a_bound(monkeypatch):
    failures, pauses = [], []

    def work():
        failures.append(1)
        raise OperationalError("COMMIT", {}, pymysql.err.OperationalError(
            *CERTIFICATION_FAILURE))
    monkeypatch.setattr(time, "sleep", pauses.append)  # the pauses it chose, not the clock
    with pytest.raises(OperationalError):
        with_retry(work)
    assert len(failures) == 8 and len(pauses) == 7  # no pause after the last attempt
    # backoff ceilings 0.01, 0.02, 0.04, 0.08, then 0.16 x3: at most 0.63 s in all
    assert sum(pauses) <= 0.63 and all(p <= retry.MAX_PAUSE_S for p in pauses)


@pytest_twisted.ensureDeferred
async def test_certification_failure_at_every_commit_answers_unavailable(engine, acme,
                                                                        monkeypatch):
    commits = []

    def lose_certification(self):  # what a Galera node answers to COMMIT after a conflict
        commits.append(1)
        self.rollback()
        raise OperationalError("COMMIT", {}, pymysql.err.OperationalError(
            *CERTIFICATION_FAILURE))
    async with agi_server(engine) as server:
        monkeypatch.setattr(Connection, "commit", lose_certification)
        got = await server.variables("authorize", "acme", "442071234567")
        monkeypatch.undo()
    assert (got[v.RESULT], got[v.REASON]) == (v.REJECT, reasons.UNAVAILABLE)
    assert len(commits) == 8  # every try reached its COMMIT
    assert scalar(engine, "SELECT COUNT(*) FROM calls") == 0  # nothing half-done
    assert scalar(engine, "SELECT admitted_calls FROM client_accounts WHERE client_id = :id", id=acme) == 0


def test_a_server_without_wsrep_is_no_galera_node(engine):
    with engine.connect() as conn:
        assert galera.is_galera(conn) is False
        assert galera.node_problems(conn) == []
        assert conn.exec_driver_sql("SELECT @@SESSION.wsrep_sync_wait").scalar() == 0
