"""The SQL docs/asterisk.md tells an administrator to run works as written.

Seen on a real install: the walkthrough's `INSERT INTO extensions ... SELECT ... FROM
clients` failed ("Field 'sip_username' doesn't have a default value").
"""

from __future__ import annotations

import re
from pathlib import Path

from sqlalchemy import text

DOCS = Path(__file__).resolve().parents[2] / "docs" / "asterisk.md"


def walkthrough_sql() -> list[str]:
    """The statements of the ```sql block of the 'A controlled tenant call' step."""
    step = DOCS.read_text().split("**A controlled tenant call.**", 1)[1]
    block = re.search(r"```sql\n(.*?)```", step, re.S).group(1)
    return [s.strip() for s in block.split(";\n") if s.strip()]


def test_the_tenant_call_walkthrough_runs_and_gives_a_phone(engine):
    statements = walkthrough_sql()
    assert any(s.startswith("INSERT INTO extensions") and "SELECT" in s for s in statements)
    with engine.begin() as db:
        for statement in statements:
            db.exec_driver_sql(statement.rstrip(";"))
    with engine.connect() as db:
        endpoint = db.execute(text("SELECT id, context FROM ps_endpoints")).one()
        balance = db.execute(text("SELECT balance FROM clients WHERE code = 'acme'")).scalar()
        did = db.execute(text("SELECT did, exten FROM dids")).one()
    assert tuple(endpoint) == ("acme-1001", "client-acme")
    assert balance == 20
    assert tuple(did) == ("442071234567", "1001")
