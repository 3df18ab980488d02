"""The database side of `ictcontact contacts import`: find the campaign, refuse numbers
already in it or on a do-not-call list, insert the rest in multi-row batches.

Each `insert_chunk` is one transaction: an import that stops half-way (database gone,
Ctrl-C) leaves whole chunks behind, and running it again finds those lines in the
campaign instead of inserting them twice (`--resume` counts them as already imported).
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import bindparam, text
from sqlalchemy.engine import Connection

from fastagi.campaigns.contact_rows import (REASON_DNC, REASON_DUPLICATE, BadLine,
                                            ContactRow)


class CampaignNotFound(LookupError):
    """No campaign with that client code and name; the message says which part is wrong."""


@dataclass(frozen=True)
class CampaignRef:
    client_id: int
    campaign_id: int
    label: str


def find_campaign(conn: Connection, client_code: str, name: str) -> CampaignRef:
    row = conn.execute(text(
        "SELECT c.id AS client_id, g.id AS campaign_id FROM clients c "
        "LEFT JOIN campaigns g ON g.client_id = c.id AND g.name = :name "
        "WHERE c.code = :code"), {"code": client_code, "name": name}).first()
    if row is None:
        raise CampaignNotFound(f"no client with code {client_code!r}")
    if row.campaign_id is None:
        raise CampaignNotFound(f"client {client_code!r} has no campaign named {name!r}")
    return CampaignRef(int(row.client_id), int(row.campaign_id), f"{client_code}/{name}")


_EXISTING = text(
    "SELECT TRIM(LEADING '+' FROM phone) AS digits FROM contacts "
    "WHERE campaign_id = :campaign AND phone IN :phones").bindparams(
        bindparam("phones", expanding=True))
_DNC = text(
    "SELECT digits FROM do_not_call WHERE scope IN (0, :client) AND digits IN :digits"
).bindparams(bindparam("digits", expanding=True))
_INSERT = text(
    "INSERT INTO contacts (client_id, campaign_id, phone, first_name, last_name, email, "
    "time_zone) VALUES (:client, :campaign, :phone, :first_name, :last_name, :email, "
    ":time_zone)")


def insert_chunk(conn: Connection, campaign: CampaignRef, rows: list[ContactRow]
                 ) -> list[BadLine]:
    """Insert the rows that are neither in the campaign already nor on a do-not-call
    list (the client's or the operator's); return the refused ones as BadLines."""
    if not rows:
        return []
    phones = sorted({r.digits for r in rows} | {"+" + r.digits for r in rows})
    existing = set(conn.execute(_EXISTING, {"campaign": campaign.campaign_id,
                                            "phones": phones}).scalars())
    dnc = set(conn.execute(_DNC, {"client": campaign.client_id,
                                  "digits": sorted({r.digits for r in rows})}).scalars())
    bad: list[BadLine] = []
    keep: list[dict] = []
    for row in rows:
        if row.digits in existing:
            bad.append(BadLine(row.line, REASON_DUPLICATE,
                               f"{row.phone} is already in the campaign", in_campaign=True))
        elif row.digits in dnc:
            bad.append(BadLine(row.line, REASON_DNC, row.phone))
        else:
            keep.append({"client": campaign.client_id, "campaign": campaign.campaign_id,
                         "phone": row.phone, "first_name": row.first_name,
                         "last_name": row.last_name, "email": row.email,
                         "time_zone": row.time_zone})
    if keep:
        # The lists were checked above for the whole chunk: spare the per-row trigger lookup.
        conn.execute(text("SET @ict_contacts_dnc_checked = 1"))
        conn.execute(_INSERT, keep)
        conn.execute(text("SET @ict_contacts_dnc_checked = NULL"))
    return bad
