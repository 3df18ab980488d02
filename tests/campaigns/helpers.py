"""Fixture rows for campaign tests: a client with a rate, a campaign, contacts."""

from __future__ import annotations

from decimal import Decimal

from sqlalchemy import text
from sqlalchemy.engine import Engine

from tests import builders


def add_campaign(engine: Engine, client_id: int, name: str = "promo", *,
                 status: str = "draft", recording: str | None = "custom/promo",
                 **columns) -> int:
    """A campaign row; extra keyword arguments are campaign columns."""
    names = ["client_id", "name", "status", "recording", *columns]
    values = {"client_id": client_id, "name": name, "status": status,
              "recording": recording, **columns}
    with engine.begin() as conn:
        result = conn.execute(text(
            f"INSERT INTO campaigns ({', '.join(names)}) "
            f"VALUES ({', '.join(':' + n for n in names)})"), values)
        return int(result.lastrowid)


def add_client_with_rate(engine: Engine, code: str, balance: str = "100",
                         channel_limit: int = 10, rate: str = "0.06",
                         prefix: str = "44") -> int:
    with engine.begin() as conn:
        plan = builders.make_plan(conn, f"plan-{code}")
        builders.add_rate(conn, plan, prefix, Decimal(rate))
        return builders.make_client(conn, code, balance=Decimal(balance),
                                    channel_limit=channel_limit, plan=plan).id


def add_contacts(engine: Engine, client_id: int, campaign_id: int, phones: list[str],
                 time_zone: str | None = None) -> list[int]:
    ids = []
    with engine.begin() as conn:
        for phone in phones:
            result = conn.execute(text(
                "INSERT INTO contacts (client_id, campaign_id, phone, time_zone) "
                "VALUES (:client, :campaign, :phone, :tz)"),
                {"client": client_id, "campaign": campaign_id, "phone": phone, "tz": time_zone})
            ids.append(int(result.lastrowid))
    return ids


def rows(engine: Engine, sql: str, **params) -> list:
    with engine.connect() as conn:
        return list(conn.execute(text(sql), params))
