"""Periodic jobs `ictcontact serve` runs while it serves (e.g. the stale-call sweep).

`periodic_jobs(services)` returns (job, interval_seconds) pairs; serve starts each as a
LoopingCall on the reactor once it runs (first run immediately) and stops them on
shutdown. A job is called with no arguments and may return a Deferred or a coroutine; it
is not started again until that has finished; its failures are logged and do not stop it.
Add jobs to the list below.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any, Callable

from fastagi.clock import utc_now
from fastagi.services import Services
from fastagi.jobs.stale_sweep import sweep_stale_calls
from fastagi.store import live_calls

Job = Callable[[], Any]


LIVE_CALLS_SAMPLE_SECONDS = 15.0
CHANGE_LOG_PRUNE_SECONDS = 3600.0
CHANGE_LOG_KEEP = timedelta(days=1)


def periodic_jobs(services: Services) -> list[tuple[Job, float]]:
    jobs: list[tuple[Job, float]] = [
        (lambda: sweep_stale_calls(services), services.config.stale_sweep_seconds),
    ]
    jobs.append((lambda: prune_client_changes(services), CHANGE_LOG_PRUNE_SECONDS))
    if services.config.metrics:
        jobs.append((lambda: sample_live_calls(services), LIVE_CALLS_SAMPLE_SECONDS))
    return jobs


async def prune_client_changes(services: Services) -> int:
    """Drop client_changes rows older than a day (enforcement reads the last minute)."""
    return await services.db.run(live_calls.prune_changes,
                                 utc_now(services.clock) - CHANGE_LOG_KEEP)


async def sample_live_calls(services: Services) -> int:
    """Set the live-calls gauge from the database; fires with the count."""
    count = await services.db.run(live_calls.count_live)
    services.metrics.live_calls.set(count)
    return count
