"""The alert outbox as the notifier sees it (schema/135): claim due deliveries under a
lease, then mark each delivered or failed.

Each public function is one unit of work, `fn(engine, ...)`, for the database thread pool.
All times are the database's clock (UTC_TIMESTAMP(6)), so notifiers on several hosts
agree on when a lease has lapsed. A claim takes rows with SELECT ... FOR UPDATE SKIP
LOCKED and stamps a lease on them in the same transaction: two notifiers never take the
same delivery while its lease runs. A notifier that dies holding a lease leaves the row to
be taken again once the lease lapses: the event is sent again, with the same dedupe id.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

from sqlalchemy import bindparam, text
from sqlalchemy.engine import Engine

from fastagi.db.retry import with_retry
from fastagi.store.privileges import first_refused_probe

_DUE = text(
    "SELECT id FROM alert_deliveries"
    " WHERE state = 'pending' AND next_attempt_at <= UTC_TIMESTAMP(6)"
    " AND (lease_until IS NULL OR lease_until <= UTC_TIMESTAMP(6))"
    " ORDER BY next_attempt_at, id LIMIT :limit FOR UPDATE SKIP LOCKED")
_LEASE = text(
    "UPDATE alert_deliveries SET attempts = attempts + 1, leased_by = :notifier,"
    " lease_until = UTC_TIMESTAMP(6) + INTERVAL :lease_us MICROSECOND"
    " WHERE id IN :ids").bindparams(bindparam("ids", expanding=True))
_CLAIMED = text(
    "SELECT d.id, d.attempts, t.kind AS channel, t.address, t.secret,"
    " e.dedupe_id, e.kind, e.client_id, c.code, c.name, e.balance, e.threshold, e.created_at"
    " FROM alert_deliveries d"
    " JOIN alert_destinations t ON t.id = d.destination_id"
    " JOIN alert_events e ON e.id = d.event_id"
    " JOIN clients c ON c.id = e.client_id"
    " WHERE d.id IN :ids ORDER BY d.id").bindparams(bindparam("ids", expanding=True))
_DELIVERED = text(
    "UPDATE alert_deliveries SET state = 'delivered', delivered_at = UTC_TIMESTAMP(6),"
    " lease_until = NULL, last_error = NULL, leased_by = :notifier"
    " WHERE id = :id AND state = 'pending'")
_FAILED = text(
    "UPDATE alert_deliveries SET lease_until = NULL, last_error = :error,"
    " next_attempt_at = UTC_TIMESTAMP(6) + INTERVAL :retry_us MICROSECOND"
    " WHERE id = :id AND state = 'pending' AND leased_by = :notifier")
_BACKLOG = text(
    "SELECT COUNT(*), MIN(next_attempt_at) FROM alert_deliveries WHERE state = 'pending'")


@dataclass(frozen=True)
class AlertEvent:
    """What happened, as every destination is told it."""

    dedupe_id: str
    kind: str                   # low-balance | suspended | reactivated
    client_id: int
    client_code: str
    client_name: str
    balance: Decimal | None
    threshold: Decimal | None
    created_at: datetime        # naive UTC


@dataclass(frozen=True)
class Delivery:
    """One event for one destination, claimed by this notifier until its lease lapses."""

    id: int
    attempt: int                # 1 for the first send
    channel: str                # email | webhook
    address: str
    secret: str | None
    event: AlertEvent


def claim(engine: Engine, notifier: str, lease_seconds: float, limit: int) -> list[Delivery]:
    """Take up to `limit` due deliveries no other notifier holds; lease them for
    `lease_seconds`. Returns them oldest first."""
    def work() -> list[Delivery]:
        with engine.begin() as conn:
            ids = [row[0] for row in conn.execute(_DUE, {"limit": limit})]
            if not ids:
                return []
            conn.execute(_LEASE, {"notifier": notifier, "ids": ids,
                                  "lease_us": int(lease_seconds * 1_000_000)})
            return [Delivery(id=r.id, attempt=r.attempts, channel=r.channel, address=r.address,
                             secret=r.secret,
                             event=AlertEvent(dedupe_id=r.dedupe_id, kind=r.kind,
                                              client_id=r.client_id, client_code=r.code,
                                              client_name=r.name, balance=r.balance,
                                              threshold=r.threshold, created_at=r.created_at))
                    for r in conn.execute(_CLAIMED, {"ids": ids})]
    return with_retry(work)


def mark_delivered(engine: Engine, delivery_id: int, notifier: str) -> bool:
    """The destination accepted it; False if it was already marked (by another notifier
    that took it after this one's lease lapsed)."""
    def work() -> bool:
        with engine.begin() as conn:
            return conn.execute(_DELIVERED, {"id": delivery_id, "notifier": notifier}).rowcount == 1
    return with_retry(work, idempotent=True)


def mark_failed(engine: Engine, delivery_id: int, notifier: str, error: str,
                retry_seconds: float) -> bool:
    """Send it again in `retry_seconds`; False if this notifier no longer holds it."""
    def work() -> bool:
        with engine.begin() as conn:
            return conn.execute(_FAILED, {"id": delivery_id, "notifier": notifier,
                                          "error": error[:255],
                                          "retry_us": int(retry_seconds * 1_000_000)}).rowcount == 1
    return with_retry(work, idempotent=True)


def backlog(engine: Engine) -> tuple[int, datetime | None]:
    """Deliveries still pending, and the earliest time one is due."""
    with engine.connect() as conn:
        count, due = conn.execute(_BACKLOG).one()
        return int(count), due


# What the notifier reads and writes, probed on no rows in a transaction rolled back (as
# fastagi.store.privileges does for serve): a missing privilege is the server's own line.
_PROBES = (
    "SELECT id, kind, address, secret FROM alert_destinations WHERE FALSE",
    "SELECT id, dedupe_id FROM alert_events WHERE FALSE",
    "SELECT id, code, name FROM clients WHERE FALSE",
    "UPDATE alert_deliveries SET state = state, lease_until = lease_until WHERE FALSE",
)


def missing_notifier_privilege(engine: Engine) -> str | None:
    """The server's one-line refusal of the first privilege the notifier's account lacks,
    or None."""
    with engine.connect() as conn:
        transaction = conn.begin()
        try:
            return first_refused_probe(conn, _PROBES)
        finally:
            transaction.rollback()
