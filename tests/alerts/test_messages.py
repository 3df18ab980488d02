"""What an alert says and how it is signed (pure), the backoff rule, the settings."""

from __future__ import annotations

import hashlib
import hmac
import json
from datetime import datetime
from decimal import Decimal

import pytest

from fastagi.alerts import messages
from fastagi.alerts.config import NotifierConfig
from fastagi.settings import SettingsError, SettingsSource
from fastagi.alerts.config import load_notifier_config
from fastagi.store.alerts import AlertEvent

EVENT = AlertEvent("0b5f6a3e-1d2c-11f0-9c1a-0242ac120002", "low-balance", 7, "acme",
                   "Acme \"Ltd\" ✓", Decimal("4.5"), Decimal("5"),
                   datetime(2026, 12, 6, 21, 0, 0, 123456))


def test_the_webhook_body_is_stable_json_with_money_as_text():
    body = messages.webhook_body(EVENT)
    assert body == messages.webhook_body(EVENT)
    assert json.loads(body) == {
        "id": EVENT.dedupe_id, "event": "low-balance", "currency": "USD",
        "client": {"id": 7, "code": "acme", "name": "Acme \"Ltd\" ✓"},
        "balance": "4.5000", "threshold": "5.0000",
        "occurred_at": "2026-12-06T21:00:00.123456Z"}


def test_the_signature_is_hmac_sha256_over_timestamp_dot_body():
    body = messages.webhook_body(EVENT)
    headers = messages.webhook_headers(EVENT, "s" * 20, 1765000000, body)
    expected = hmac.new(b"s" * 20, b"1765000000." + body, hashlib.sha256).hexdigest()
    assert headers["X-ICTContact-Signature"] == "sha256=" + expected
    assert headers["X-ICTContact-Timestamp"] == "1765000000"
    assert headers["X-ICTContact-Event-Id"] == EVENT.dedupe_id
    assert messages.signature_ok("s" * 20, "1765000000", body, headers["X-ICTContact-Signature"])
    assert not messages.signature_ok("s" * 20, "1765000001", body,
                                     headers["X-ICTContact-Signature"])
    assert not messages.signature_ok("t" * 20, "1765000000", body,
                                     headers["X-ICTContact-Signature"])
    assert not messages.signature_ok("s" * 20, "-1", body, headers["X-ICTContact-Signature"])


def test_the_email_carries_the_dedupe_id_and_no_header_injection():
    hostile = AlertEvent(EVENT.dedupe_id, "suspended", 7, "acme", "Evil\r\nBcc: x@evil.example",
                         Decimal("1"), None, EVENT.created_at)
    message = messages.email_message(hostile, "alerts@op.example", "ops@op.example")
    text = message.as_string()
    assert f"Message-ID: <{EVENT.dedupe_id}@alerts.ictcontact>" in text
    headers = text.split("\n\n", 1)[0]
    assert "Bcc" not in message and "\nBcc:" not in headers and "\nBcc:" not in text
    assert message["Subject"].startswith("Suspended: Evil")


@pytest.mark.parametrize("attempt, wait", [(1, 5), (2, 10), (3, 20), (7, 320), (8, 600),
                                           (50, 600), (0, 5)])
def test_backoff_doubles_up_to_the_maximum(attempt, wait):
    assert messages.retry_delay(attempt, 5, 600) == wait


@pytest.mark.parametrize("values, said", [
    ({"alert_lease_seconds": 20, "alert_timeout": 10}, "at least 3 x alert-timeout"),
    ({"alert_smtp_security": "ssl"}, "one of none, starttls, tls"),
    ({"alert_smtp_user": "bob"}, "ICTCONTACT_ALERT_SMTP_PASSWORD"),
    ({"alert_smtp": "mail.example:99999"}, "HOST:PORT"),
    ({"alert_batch": 0}, "alert-batch must be positive"),
])
def test_settings_that_cannot_work_are_refused(values, said):
    with pytest.raises(ValueError, match=said):
        NotifierConfig(**values)


def test_the_smtp_password_comes_from_the_environment_or_file_only():
    source = SettingsSource(cli={"alert_smtp": "mail.example:587", "alert_smtp_user": "bob"},
                            environ={"ICTCONTACT_ALERT_SMTP_PASSWORD": "pw"})
    config = load_notifier_config(source)
    assert config.smtp().password == "pw" and config.smtp().port == 587
    assert "pw" not in repr(config) and "pw" not in repr(config.smtp())
    with pytest.raises(SettingsError, match="password is empty"):
        load_notifier_config(SettingsSource(cli={"alert_smtp_user": "bob"}, environ={}))
