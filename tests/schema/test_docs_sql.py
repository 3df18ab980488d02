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
        balance = db.execute(text("SELECT balance FROM client_list WHERE code = 'acme'")).scalar()
        did = db.execute(text("SELECT did, exten FROM dids")).one()
    assert tuple(endpoint) == ("acme-1001", "client-acme")
    assert balance == 20
    assert tuple(did) == ("442071234567", "1001")


ADMIN_DOCS = DOCS.with_name("admin-sql.md")
ASTERISK_STEPS = ("**An agent and a queue**", "**A broadcast campaign**",
                  "**A progressive campaign**")


def sql_block_after(path: Path, marker: str) -> list[str]:
    part = path.read_text().split(marker, 1)[1]
    block = re.search(r"```sql\n(.*?)```", part, re.S).group(1)
    lines = [line.split("--", 1)[0] for line in block.splitlines()]   # comments out
    return [s.strip() for s in "\n".join(lines).split(";") if s.strip()]


def test_the_campaign_sql_of_the_admin_guide_runs_as_written(engine):
    with engine.begin() as db:
        db.exec_driver_sql("INSERT INTO clients (code, name) VALUES ('acme', 'Acme')")
        db.exec_driver_sql("SET @client = (SELECT id FROM clients WHERE code = 'acme')")
        db.exec_driver_sql("INSERT INTO queues (client_id, name) VALUES (@client, 'sales')")
        for statement in sql_block_after(ADMIN_DOCS, "## Campaigns that dial"):
            db.exec_driver_sql(statement)
    with engine.connect() as db:
        campaigns = db.execute(text("SELECT campaign, mode, status, queue FROM campaign_progress "
                                    "ORDER BY campaign_id")).all()
        dnc = db.execute(text("SELECT status FROM contacts ORDER BY id")).scalars().all()
    assert [tuple(c) for c in campaigns] == [("Renewal reminder", "broadcast", "paused", None),
                                             ("Callbacks", "progressive", "draft", "acme-sales")]
    assert dnc == ["new", "new"]


def test_the_campaign_steps_of_the_asterisk_guide_run_as_written(engine):
    with engine.begin() as db:
        db.exec_driver_sql("INSERT INTO clients (code, name) VALUES ('acme', 'Acme')")
        for marker in ASTERISK_STEPS:
            for statement in sql_block_after(DOCS, marker):
                db.exec_driver_sql(statement)
    with engine.connect() as db:
        rows = db.execute(text("SELECT name, mode, recording, queue_id IS NOT NULL "
                               "FROM campaigns ORDER BY id")).all()
        members = db.execute(text("SELECT q.asterisk_name, a.name FROM queue_members m "
                                  "JOIN queues q ON q.id = m.queue_id "
                                  "JOIN agents a ON a.id = m.agent_id")).all()
    assert [tuple(r) for r in rows] == [("Spring offer", "broadcast", "custom/promo", 0),
                                        ("Renewals", "progressive", None, 1)]
    assert [tuple(m) for m in members] == [("acme-sales", "Alice")]
