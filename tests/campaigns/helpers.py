"""Fixture rows for campaign tests: a client with a rate, a campaign, contacts."""

from __future__ import annotations

from decimal import Decimal

from sqlalchemy import text
from sqlalchemy.engine import Engine

from tests import builders
from tests.support.sql import rows


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


ALWAYS_OPEN = dict(window_days="mon,tue,wed,thu,fri,sat,sun", window_start="00:00:00",
                   window_end="23:59:59")


def numbers(first: int, count: int) -> list[str]:
    return [f"4420{n:08d}" for n in range(first, first + count)]


def contact_states(engine, campaign: int) -> dict[str, int]:
    return {status: n for status, n in rows(
        engine, "SELECT status, COUNT(*) FROM contacts WHERE campaign_id = :g GROUP BY status",
        g=campaign)}


def campaign_status(engine, campaign: int) -> str:
    """What the campaign is doing: what people set, or `finished` once the dialer found
    nothing left to dial (campaign_progress.state)."""
    return rows(engine, "SELECT state FROM campaign_progress WHERE campaign_id = :g",
                g=campaign)[0][0]


def fast_campaign(engine, client: int, contacts: int, first: int = 0, **columns) -> int:
    columns.setdefault("calls_per_second", 20)
    columns.setdefault("keep_free_channels", 0)
    campaign = add_campaign(engine, client, columns.pop("name", "fast"), **ALWAYS_OPEN, **columns)
    add_contacts(engine, client, campaign, numbers(first, contacts))
    return campaign


def assert_every_call_closed(engine, pbx) -> None:
    """No call left live, no attempt left open, no call the server could not serve."""
    assert rows(engine, "SELECT COUNT(*) FROM calls WHERE state = 'live'")[0][0] == 0
    assert rows(engine, "SELECT COUNT(*) FROM campaign_attempts WHERE outcome IS NULL")[0][0] == 0
    assert [c.result for c in pbx.calls if c.result in ("FAILED", "REJECT:unavailable")] == []
    assert len(pbx.settles) == sum(1 for c in pbx.calls if c.result == "ALLOW")
