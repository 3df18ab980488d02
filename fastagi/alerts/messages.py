"""What an alert says on each channel, and how a webhook is signed (pure: values in,
bytes out). docs/alerts.md documents the format for receivers.

Webhook: POST of a JSON object (UTF-8, keys sorted, money as strings with 4 decimals)
with the headers
  X-ICTContact-Event-Id:  the event's dedupe id (also `id` in the body)
  X-ICTContact-Timestamp: Unix seconds when this send started
  X-ICTContact-Signature: sha256=<hex HMAC-SHA256(secret, "<timestamp>." + body)>
The timestamp is signed with the body so a captured request cannot be replayed later
with a fresh timestamp; receivers refuse timestamps far from their clock.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from decimal import Decimal
from email.message import EmailMessage

from fastagi.store.alerts import AlertEvent

EVENT_HEADER = "X-ICTContact-Event-Id"
TIMESTAMP_HEADER = "X-ICTContact-Timestamp"
SIGNATURE_HEADER = "X-ICTContact-Signature"
SIGNATURE_PREFIX = "sha256="


def _money(value: Decimal | None) -> str | None:
    return None if value is None else f"{value:.4f}"


def event_document(event: AlertEvent) -> dict:
    """The event as a JSON-ready dict (the webhook body, and attached to each e-mail)."""
    return {
        "id": event.dedupe_id,
        "event": event.kind,
        "client": {"id": event.client_id, "code": event.client_code, "name": event.client_name},
        "balance": _money(event.balance),
        "threshold": _money(event.threshold),
        "currency": "USD",
        "occurred_at": event.created_at.strftime("%Y-%m-%dT%H:%M:%S.%fZ"),
    }


def webhook_body(event: AlertEvent) -> bytes:
    return json.dumps(event_document(event), sort_keys=True, separators=(",", ":"),
                      ensure_ascii=False).encode("utf-8")


def signature(secret: str, timestamp: int, body: bytes) -> str:
    """The X-ICTContact-Signature value of `body` sent at `timestamp`."""
    mac = hmac.new(secret.encode("utf-8"), str(timestamp).encode("ascii") + b"." + body,
                   hashlib.sha256)
    return SIGNATURE_PREFIX + mac.hexdigest()


def signature_ok(secret: str, timestamp: str, body: bytes, given: str) -> bool:
    """What a receiver checks (constant-time compare). The age of `timestamp` is the
    receiver's own policy (docs/alerts.md suggests 5 minutes)."""
    if not timestamp.isdigit():
        return False
    return hmac.compare_digest(signature(secret, int(timestamp), body), given)


def webhook_headers(event: AlertEvent, secret: str, timestamp: int, body: bytes) -> dict[str, str]:
    return {"Content-Type": "application/json; charset=utf-8",
            EVENT_HEADER: event.dedupe_id,
            TIMESTAMP_HEADER: str(timestamp),
            SIGNATURE_HEADER: signature(secret, timestamp, body),
            "User-Agent": "ictcontact-notifier"}


def _subject(event: AlertEvent) -> str:
    # a header is one line: a name holding a line break (names are free text) is flattened
    who = " ".join(f"{event.client_name} ({event.client_code})".split())
    if event.kind == "low-balance":
        return (f"Low balance: {who} has {_money(event.balance)} USD, below "
                f"{_money(event.threshold)} USD")
    if event.kind == "suspended":
        return f"Suspended: {who}"
    return f"Reactivated: {who}"


def email_message(event: AlertEvent, sender: str, recipient: str) -> EmailMessage:
    """The alert as an e-mail; its Message-ID is the dedupe id, so a mailbox (or a
    receiver) that gets it twice can tell."""
    message = EmailMessage()
    message["From"] = sender
    message["To"] = recipient
    message["Subject"] = _subject(event)
    message["Message-ID"] = f"<{event.dedupe_id}@alerts.ictcontact>"
    message[EVENT_HEADER] = event.dedupe_id
    message["Date"] = event.created_at.strftime("%a, %d %b %Y %H:%M:%S +0000")
    lines = [_subject(event), "",
             " ".join(f"Client: {event.client_name} ({event.client_code}, id "
                      f"{event.client_id})".split()),
             f"Event: {event.kind}",
             f"Balance: {_money(event.balance)} USD"]
    if event.threshold is not None:
        lines.append(f"Threshold: {_money(event.threshold)} USD")
    lines += [f"When (UTC): {event.created_at:%Y-%m-%d %H:%M:%S}",
              f"Alert id: {event.dedupe_id}", "",
              json.dumps(event_document(event), sort_keys=True)]
    message.set_content("\n".join(lines) + "\n")
    return message


def retry_delay(attempt: int, first_seconds: float, max_seconds: float) -> float:
    """Seconds before the next try after failed try number `attempt` (1, 2, ...):
    first_seconds doubled each time, never more than max_seconds."""
    return min(max_seconds, first_seconds * 2 ** min(max(attempt - 1, 0), 30))
