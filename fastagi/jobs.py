"""Periodic jobs `ictcontact serve` runs while it serves (e.g. the stale-call sweep).

`periodic_jobs(services)` returns (job, interval_seconds) pairs; serve starts each as a
LoopingCall on the reactor once it runs (first run immediately) and stops them on
shutdown. A job is called with no arguments and may return a Deferred or a coroutine; it
is not started again until that has finished; its failures are logged and do not stop it.
Add jobs to the list below.
"""

from __future__ import annotations

from typing import Any, Callable

from fastagi.services import Services
from fastagi.stale_sweep import sweep_stale_calls

Job = Callable[[], Any]


def periodic_jobs(services: Services) -> list[tuple[Job, float]]:
    return [
        (lambda: sweep_stale_calls(services), services.config.stale_sweep_seconds),
    ]
