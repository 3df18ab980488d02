"""The periodic job that closes calls never settled (see docs/contract.md, Stale calls)."""

from __future__ import annotations

import logging

from fastagi.clock import utc_now
from fastagi.services import Services
from fastagi.store import calls

log = logging.getLogger(__name__)


async def sweep_stale_calls(services: Services) -> int:
    """Close every live call past its expiry; fires with how many were closed."""
    closed = await services.db.run(calls.close_stale, utc_now(services.clock))
    if closed:
        services.metrics.stale_closed.inc(closed)
        log.warning("closed %d stale call(s): channel and credit released, not billed; "
                    "see the calls_for_review view", closed)
    return closed
