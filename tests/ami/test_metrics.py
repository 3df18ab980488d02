"""Metric labels stay bounded whatever the sessions carry; retries and database failures
are counted."""

from __future__ import annotations

import pytest_twisted
from sqlalchemy.exc import OperationalError

from fastagi import channel_vars as v, reasons
from fastagi.db import retry
from fastagi.metrics import Metrics
from fastagi.services import DbRunner


def value(metrics: Metrics, name: str, **labels) -> float:
    return metrics.registry.get_sample_value(name, labels) or 0.0


def test_labels_are_bounded():
    metrics = Metrics()
    metrics.session("authorize", v.ALLOW, "", 0.004)
    metrics.session("authorize", v.REJECT, reasons.NO_CREDIT, 0.003)
    metrics.session("authorize", v.REJECT, "acme-4420712345", 0.003)   # not a reason
    metrics.session("../../etc/passwd?x=1", "-", "-", 0.001)            # not a route
    metrics.session("settle", v.ALLOW, None, 0.002)
    assert value(metrics, "ictcontact_authorize_decisions_total", reason="allowed") == 1
    assert value(metrics, "ictcontact_authorize_decisions_total", reason="no-credit") == 1
    assert value(metrics, "ictcontact_authorize_decisions_total", reason="other") == 1
    assert value(metrics, "ictcontact_agi_sessions_total", script="other", outcome="none") == 1
    assert value(metrics, "ictcontact_authorize_seconds_count") == 3
    assert value(metrics, "ictcontact_settle_seconds_count") == 1
    labels = {value for metric in metrics.registry.collect() for sample in metric.samples
              for value in sample.labels.values()}
    assert not any("acme" in label or "passwd" in label for label in labels)


def test_retries_and_database_failures_are_counted():
    metrics = Metrics()
    observer = lambda kind: metrics.db_retries.inc()  # noqa: E731 (as serve installs it)
    with retry.observed_by(observer):
        attempts = []

        def work():
            attempts.append(1)
            if len(attempts) == 1:
                from sqlalchemy.exc import OperationalError
                raise OperationalError("UPDATE", {}, Exception(1213, "Deadlock found"))
            return "done"
        assert retry.with_retry(work, pause_s=0) == "done"
    assert value(metrics, "ictcontact_db_retries_total") == 1
    metrics.db_failure("timeout")
    metrics.db_failure("weird")
    assert value(metrics, "ictcontact_db_errors_total", kind="timeout") == 1
    assert value(metrics, "ictcontact_db_errors_total", kind="other") == 1


def _deadlocks_once():
    attempts = []

    def work(_engine=None):
        def once():
            attempts.append(1)
            if len(attempts) == 1:
                raise OperationalError("UPDATE", {}, Exception(1213, "Deadlock found"))
            return "done"
        return retry.with_retry(once, pause_s=0)
    return work


@pytest_twisted.ensureDeferred
async def test_the_database_runner_reports_the_retries_of_its_own_work_only():
    from twisted.internet import reactor
    heard: list[str] = []
    runner = DbRunner(engine=None, reactor=reactor, clock=reactor, size=1, timeout=5)
    runner.on_retry = heard.append
    runner.start()
    try:
        assert await runner.run(_deadlocks_once()) == "done"
    finally:
        runner.pool.stop()
    assert heard == ["lock"]
    assert _deadlocks_once()() == "done"      # work run elsewhere reports to nobody
    assert heard == ["lock"]
