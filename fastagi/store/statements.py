"""A client's monthly statement, read from the ledger views of schema/132_statements.sql
(and 157, 176 for resellers).

Every figure comes from the payments and call charges (`statement_payments`,
`statement_calls`, and a reseller's charges for its clients' calls, `statement_charges`),
never from the balance column, so the closing balance is the ledger's
balance at the period's end by construction. The reads run in one REPEATABLE READ
transaction: one consistent snapshot, so a payment landing meanwhile is either wholly in
the statement or wholly out of it.
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal

from sqlalchemy import text
from sqlalchemy.engine import Engine

from fastagi.billing.statement import ClientCharge, Payment, Period, Statement, Usage

_CLIENT = text("SELECT id, code, name, balance FROM client_list WHERE code = :code")
_PAID_BEFORE = text(
    "SELECT COALESCE(SUM(amount), 0) FROM statement_payments"
    " WHERE client_id = :client_id AND at < :start")
_CHARGED_BEFORE = text(
    "SELECT COALESCE(SUM(cost), 0) FROM statement_calls"
    " WHERE client_id = :client_id AND at < :start")
_CLIENTS_CHARGED_BEFORE = text(
    "SELECT COALESCE(SUM(cost), 0) FROM statement_charges"
    " WHERE client_id = :client_id AND at < :start")
_PAYMENTS = text(
    "SELECT at, section, kind, reference, note, amount FROM statement_payments"
    " WHERE client_id = :client_id AND at >= :start AND at < :end"
    " ORDER BY at, payment_id")
# One line per destination: the client's calls grouped, then named from its plan's rates.
_USAGE = text(
    "SELECT CASE WHEN u.emergency = 1 THEN 'Emergency calls (free)'"
    "            WHEN u.direction = 'in' THEN 'Inbound calls'"
    "            ELSE COALESCE(r.description, CONCAT('Prefix ', COALESCE(u.prefix, '-')))"
    "       END AS destination, u.prefix, u.emergency, u.direction, u.calls, u.seconds, u.cost"
    " FROM (SELECT emergency, direction, prefix, COUNT(*) AS calls, SUM(seconds) AS seconds,"
    "              SUM(cost) AS cost FROM statement_calls"
    "        WHERE client_id = :client_id AND at >= :start AND at < :end"
    "        GROUP BY emergency, direction, prefix) u"
    " LEFT JOIN rates r ON r.rate_plan_id = (SELECT rate_plan_id FROM clients WHERE id = :client_id)"
    "  AND r.prefix = u.prefix AND u.emergency = 0 AND u.direction = 'out'"
    " ORDER BY u.emergency, u.direction, u.prefix")
# A reseller's charges, one line per client of its own: the call's charge one level down
# names it, or at depth 1 the call's own client (schema/157).
_CLIENT_CHARGES = text(
    "SELECT d.code, d.name, COUNT(*) AS calls, SUM(s.seconds) AS seconds,"
    " SUM(s.sold) AS sold, SUM(s.cost) AS cost"
    " FROM statement_charges s JOIN calls k ON k.id = s.call_id"
    " LEFT JOIN call_charges b ON b.call_id = s.call_id AND b.depth = s.depth - 1"
    " JOIN clients d ON d.id = COALESCE(b.client_id, k.client_id)"
    " WHERE s.client_id = :client_id AND s.at >= :start AND s.at < :end"
    " GROUP BY d.id, d.code, d.name ORDER BY d.code")


class ClientNotFound(LookupError):
    pass


def statement(engine: Engine, code: str, period: Period, now: datetime) -> Statement:
    """The statement of client `code` for `period` (ClientNotFound if there is none)."""
    with engine.connect().execution_options(isolation_level="REPEATABLE READ") as conn:
        with conn.begin():
            client = conn.execute(_CLIENT, {"code": code}).first()
            if client is None:
                raise ClientNotFound(f"no client with code {code!r} "
                                     f"(SELECT code FROM client_list lists them)")
            bounds = {"client_id": client.id, "start": period.start, "end": period.end}
            opening = (Decimal(conn.execute(_PAID_BEFORE, bounds).scalar_one())
                       - Decimal(conn.execute(_CHARGED_BEFORE, bounds).scalar_one())
                       - Decimal(conn.execute(_CLIENTS_CHARGED_BEFORE, bounds).scalar_one()))
            payments = tuple(
                Payment(row.at, "transfer" if row.section == "transfer" else row.kind,
                        row.reference, row.note, Decimal(row.amount))
                for row in conn.execute(_PAYMENTS, bounds))
            usage = tuple(
                Usage(row.destination, row.prefix, bool(row.emergency), row.direction == "in",
                      int(row.calls), int(row.seconds), Decimal(row.cost))
                for row in conn.execute(_USAGE, bounds))
            client_charges = tuple(
                ClientCharge(row.code, row.name, int(row.calls), int(row.seconds),
                             Decimal(row.sold), Decimal(row.cost))
                for row in conn.execute(_CLIENT_CHARGES, bounds))
    return Statement(client.code, client.name, period, opening, payments, usage,
                     client_charges, current_balance=Decimal(client.balance), made_at=now)
