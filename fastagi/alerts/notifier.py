"""The notifier: claims due alert deliveries from the outbox, sends each on a worker thread,
and marks it delivered or failed (retried with exponential backoff). Nothing is dropped:
a delivery stays pending until a destination accepts it.

At least once, with a dedupe id: a notifier that dies after the destination accepted an
alert but before it marked the row leaves it leased; once the lease lapses any notifier
sends it again with the same id (the event's dedupe_id). Several notifiers may run at once
(`ictcontact notifier` on two hosts, `serve --alerts` on each server): the claim's
SELECT ... FOR UPDATE SKIP LOCKED and the lease keep two from sending the same delivery
at the same time.
"""

from __future__ import annotations

import logging
from typing import Any

from twisted.internet.defer import DeferredList, ensureDeferred

from fastagi.alerts.config import NotifierConfig
from fastagi.alerts.messages import retry_delay
from fastagi.alerts.senders import SendError, send
from fastagi.services import DbRun
from fastagi.store import alerts as outbox
from fastagi.store.alerts import Delivery
from fastagi.workers import WorkerPool

log = logging.getLogger(__name__)


class Notifier:
    """Sends the outbox. `tick()` is the periodic job (a LoopingCall of serve or of
    `ictcontact notifier`); `start()`/`stop()` run its sending threads."""

    def __init__(self, reactor: Any, db: DbRun, config: NotifierConfig) -> None:
        self.reactor = reactor
        self.db = db
        self.config = config
        self.name = config.name
        self.smtp = config.smtp()
        self.senders = WorkerPool(reactor, config.alert_batch, name="ictcontact-alerts")
        self.sent = 0
        self.failed = 0
        self.claiming = False

    def start(self) -> None:
        self.claiming = True
        self.senders.start()
        log.info("alert notifier %s: polling every %g s, e-mail %s", self.name,
                 self.config.alert_poll_seconds,
                 f"via {self.config.alert_smtp}" if self.smtp else "off (no --alert-smtp)")

    def stop_claiming(self) -> None:
        """The tick in progress claims no more (it sends and records what it holds)."""
        self.claiming = False

    def stop(self) -> None:
        """Claim no more and end the sending threads (a send ends within alert_timeout)."""
        self.stop_claiming()
        self.senders.stop()

    async def tick(self) -> int:
        """Send what is due: fires with the number of deliveries tried. Claims again while
        a whole batch came back (a backlog drains without waiting for the next poll)."""
        tried = 0
        while True:
            claimed: list[Delivery] = await self.db.run(
                outbox.claim, self.name, self.config.alert_lease_seconds, self.config.alert_batch)
            if not claimed:
                return tried
            outcomes = await DeferredList([ensureDeferred(self._deliver(d)) for d in claimed],
                                          consumeErrors=True)
            for ok, failure in outcomes:
                if not ok:  # the mark did not reach the database: sent again after the lease
                    log.error("alert notifier %s: cannot record a send: %s", self.name,
                              failure.getErrorMessage().strip().splitlines()[0]
                              if failure.getErrorMessage().strip() else failure.type.__name__)
            tried += len(claimed)
            # Stopping: another claim could wait a whole database timeout (a database that
            # answers nothing) and hold up the exit; the backlog waits for the next notifier.
            if len(claimed) < self.config.alert_batch or not self.claiming:
                return tried

    async def _deliver(self, delivery: Delivery) -> None:
        try:
            await self.senders.submit(send, delivery, self.smtp, self.config.alert_timeout)
        except SendError as exc:
            await self._failed(delivery, str(exc))
            return
        except Exception as exc:  # a bug must not stop the others: retried like a failure
            log.exception("alert %s: unexpected error", delivery.event.dedupe_id)
            await self._failed(delivery, f"{type(exc).__name__}: {exc}")
            return
        self.sent += 1
        await self.db.run(outbox.mark_delivered, delivery.id, self.name)
        log.info("alert %s (%s, client %s) delivered by %s to %s", delivery.event.dedupe_id,
                 delivery.event.kind, delivery.event.client_code, delivery.channel,
                 delivery.address)

    async def _failed(self, delivery: Delivery, reason: str) -> None:
        self.failed += 1
        wait = retry_delay(delivery.attempt, self.config.alert_retry_seconds,
                           self.config.alert_retry_max_seconds)
        log.warning("alert %s to %s %s: try %d failed (%s); again in %g s",
                    delivery.event.dedupe_id, delivery.channel, delivery.address,
                    delivery.attempt, reason, wait)
        await self.db.run(outbox.mark_failed, delivery.id, self.name, reason, wait)
