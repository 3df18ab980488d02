"""The SQL docs/alerts.md gives the operator runs as written, in order, and the webhook
verification example it gives receivers accepts what the notifier sends."""

from __future__ import annotations

import re
import time
from datetime import datetime
from decimal import Decimal
from pathlib import Path

from sqlalchemy import text

from fastagi.alerts import messages
from fastagi.store.alerts import AlertEvent
from tests.builders import make_client
from tests.support.sql import rows

DOC = (Path(__file__).resolve().parents[2] / "docs" / "alerts.md").read_text()


def blocks(language: str) -> list[str]:
    return re.findall(rf"```{language}\n(.*?)```", DOC, re.S)


def test_the_operators_sql_runs_in_order(engine):
    with engine.begin() as conn:
        acme = make_client(conn, "acme", balance=Decimal("50"))
    statements = [s.strip() for s in blocks("sql")[0].split(";\n") if s.strip()]
    with engine.begin() as conn:
        for statement in statements:
            conn.exec_driver_sql(statement.rstrip(";"))
        conn.execute(text("INSERT INTO payments (client_id, amount, kind, reference)"
                          " VALUES (:c, -40, 'correction', 'doc')"), {"c": acme.id})
    queued = rows(engine, "SELECT t.kind, t.address FROM alert_deliveries d"
                          " JOIN alert_destinations t ON t.id = d.destination_id ORDER BY t.id")
    assert [tuple(r) for r in queued] == [
        ("email", "billing@operator.example"),
        ("webhook", "https://crm.acme.example/ictcontact")]   # the accountant's: disabled


def test_the_receivers_python_example_verifies_a_real_signature():
    namespace: dict = {}
    exec(blocks("python")[0], namespace)
    event = AlertEvent("0b5f6a3e-1d2c-11f0-9c1a-0242ac120002", "low-balance", 7, "acme",
                       "Acme Ltd", Decimal("4.5"), Decimal("5"),
                       datetime(2026, 12, 6, 21, 0, 0))
    body = messages.webhook_body(event)
    headers = messages.webhook_headers(event, "a long random shared secret", int(time.time()), body)
    assert namespace["verify"](b"a long random shared secret", headers, body)
    assert not namespace["verify"](b"a long random shared secret", headers, body + b" ")
