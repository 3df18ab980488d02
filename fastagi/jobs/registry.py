"""Periodic jobs `ictcontact serve` runs while it serves (e.g. the stale-call sweep).

`periodic_jobs(services)` returns (job, interval_seconds) pairs; serve starts each as a
LoopingCall on the reactor once it runs (first run immediately) and stops them on
shutdown. A job is called with no arguments and may return a Deferred or a coroutine; it
is not started again until that has finished; its failures are logged and do not stop it.
Add jobs to the list below: the one registry (with AMI, `ami` adds its jobs here too).
"""

from __future__ import annotations

from datetime import timedelta
from functools import partial
from typing import Any, Callable

from sqlalchemy.engine import Engine

from fastagi.clock import utc_now
from fastagi.jobs.ami_control import AmiControl
from fastagi.jobs.stale_sweep import sweep_stale_calls
from fastagi.services import Services
from fastagi.store import call_watch, db_logins

Job = Callable[[], Any]


LIVE_CALLS_SAMPLE_SECONDS = 15.0
CHANGE_LOG_PRUNE_SECONDS = 3600.0
CHANGE_LOG_KEEP = timedelta(days=1)
SLICE_CHECK_SECONDS = 5.0   # how often calls near the end of their slice are extended


def periodic_jobs(services: Services, ami: AmiControl | None = None) -> list[tuple[Job, float]]:
    # partials, not lambdas: a failure is logged under the job's own name
    jobs: list[tuple[Job, float]] = [
        (partial(sweep_stale_calls, services), services.config.stale_sweep_seconds),
    ]
    jobs.append((partial(prune_client_changes, services), CHANGE_LOG_PRUNE_SECONDS))
    if services.config.login_sync_seconds > 0:
        jobs.append((partial(sync_db_logins, services), services.config.login_sync_seconds))
    if services.config.metrics:
        jobs.append((partial(sample_live_calls, services), LIVE_CALLS_SAMPLE_SECONDS))
    config = services.config
    if ami is not None:
        jobs += [(ami.enforcer.poll, config.enforce_poll_seconds),
                 (ami.enforcer.catch_up, config.enforce_catch_up_seconds),
                 (ami.reconciler.run, config.reconcile_seconds)]
        if ami.extender is not None:
            jobs.append((ami.extender.run, SLICE_CHECK_SECONDS))
    return jobs


async def prune_client_changes(services: Services) -> int:
    """Drop client_changes rows older than a day (enforcement reads the last minute)."""
    return await services.db.run(call_watch.prune_changes,
                                 utc_now(services.clock) - CHANGE_LOG_KEEP)


async def sample_live_calls(services: Services) -> int:
    """Set the live-calls gauge from the database; fires with the count."""
    count = await services.db.run(call_watch.count_live)
    services.metrics.live_calls.set(count)
    return count


async def sync_db_logins(services: Services) -> None:
    """CALL sync_db_logins(): lock the logins of suspended clients and users.

    The db_login_sync event does the same every second, but on one node of a Galera cluster
    only (a replicated event is SLAVESIDE_DISABLED): this job keeps lock-outs going while
    any server's node lives. Runs on several servers at once are safe (docs/galera.md)."""
    await services.db.run(_sync)


def _sync(engine: Engine) -> None:
    with engine.begin() as conn:
        db_logins.sync(conn)
