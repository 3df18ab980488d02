"""Live calls as AMI enforcement and reconciliation see them: which to end, which are gone.

Each public function is one unit of work, `fn(engine, ...)`, for the database thread pool.
Calls are found by what the call record holds (client, state, `asterisk`, uniqueid,
channel), never by anything a caller sent. Emergency calls are never ended.

A call whose channel is gone from its Asterisk is settled through `calls.settle` (the
same idempotent path as the dialplan's hangup handler) from the call's CDR when Asterisk
wrote one (billsec, fractional: schema/140, and disposition), or else closed as stale for review, not billed; a
settle arriving later still bills it once (`calls.settle` takes stale calls).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Iterable, Sequence

from sqlalchemy import bindparam, text
from sqlalchemy.engine import Engine

from fastagi.db.retry import with_retry
from fastagi.billing.money import round_money
from fastagi.billing.rating import exact_cost
from fastagi.store import calls, resellers

SUSPENDED = "suspended"
NO_CREDIT = "no-credit"

_RECENT_CHANGES = text(
    "SELECT id, client_id, kind FROM client_changes"
    " WHERE created_at >= UTC_TIMESTAMP(3) - INTERVAL :window SECOND"
    " ORDER BY id LIMIT :limit")
# Clients with live calls on this Asterisk (or the given ones), with what decides whether
# their calls must end: status, the option, funds and the credit their live calls hold.
_CLIENT_STATES = (
    "SELECT c.id, c.status, c.end_calls_without_credit, a.balance + c.credit_limit AS funds,"
    " (SELECT COALESCE(SUM(r.reserved), 0) FROM calls r"
    "   WHERE r.client_id = c.id AND r.state = 'live') AS reserved"
    " FROM clients c JOIN client_accounts a ON a.client_id = c.id WHERE c.id IN ({ids})")
_CLIENTS_LIVE_ON = ("SELECT DISTINCT client_id FROM calls"
                    " WHERE asterisk = :asterisk AND state = 'live'")
_CALLS_OF = text(
    "SELECT id, client_id, uniqueid, channel FROM calls"
    " WHERE client_id IN :client_ids AND state = 'live' AND asterisk = :asterisk"
    " AND emergency = 0 ORDER BY id").bindparams(bindparam("client_ids", expanding=True))
_LIVE_ON = text(
    "SELECT id, client_id, uniqueid, channel FROM calls"
    " WHERE asterisk = :asterisk AND state = 'live' ORDER BY id")
_STILL_LIVE = text(
    "SELECT id, client_id, uniqueid, channel FROM calls"
    " WHERE id IN :ids AND state = 'live'").bindparams(bindparam("ids", expanding=True))
_CDR_OF = text(
    "SELECT billsec, disposition FROM cdr WHERE uniqueid = :uniqueid"
    " ORDER BY billsec DESC, id DESC LIMIT 1")
_CLOSE_GONE = text(
    "UPDATE calls SET state = 'stale', settled_at = :now, review_note = :note"
    " WHERE id = :call_id AND state = 'live'")
# Credit slices: live calls on this Asterisk whose limit ends before :before.
_DUE = text(
    "SELECT id, client_id, uniqueid, channel, authorized_at, max_seconds FROM calls"
    " WHERE asterisk = :asterisk AND state = 'live' AND emergency = 0"
    " AND max_seconds < :cap AND authorized_at + INTERVAL max_seconds SECOND < :before"
    " ORDER BY authorized_at")
# The call row first, then the client's account: the order settle takes them in (the
# clients row is read without a lock: admissions lock it before the account).
_CALL_FOR_EXTENSION = text(
    "SELECT id, client_id, state, emergency, max_seconds, reserved, authorized_at, prefix,"
    " rate_per_min, connection_fee, initial_increment, subsequent_increment, reseller_levels"
    " FROM calls WHERE id = :call_id FOR UPDATE")
_CLIENT_BALANCE = text(
    "SELECT balance FROM client_accounts WHERE client_id = :client_id FOR UPDATE")
# Not locked (a locking read of clients here would take it after the account, the other
# way round from an admission).
_CLIENT_CREDIT_LIMIT = text("SELECT credit_limit FROM clients WHERE id = :client_id")
# A reseller's own calls share its credit with what its subtree's calls hold of it.
_CLIENT_RESERVED = text(
    "SELECT (SELECT COALESCE(SUM(reserved), 0) FROM calls WHERE client_id = :client_id"
    " AND state = 'live') + (SELECT COALESCE(SUM(reserved), 0) FROM call_charges"
    " WHERE client_id = :client_id AND live = 1)")
_EXTEND = text(
    "UPDATE calls SET max_seconds = :max_seconds, reserved = :reserved,"
    " expires_at = authorized_at + INTERVAL :expiry SECOND"
    " WHERE id = :call_id AND state = 'live'")
_COUNT_LIVE = text("SELECT COUNT(*) FROM calls WHERE state = 'live'")
_PRUNE = text("DELETE FROM client_changes WHERE created_at < :before ORDER BY id LIMIT :batch")

# CDR disposition -> the DIALSTATUS settle rates by
DIAL_STATUS_OF_DISPOSITION = {"ANSWERED": "ANSWER", "NO ANSWER": "NOANSWER", "BUSY": "BUSY",
                              "FAILED": "CHANUNAVAIL", "CONGESTION": "CONGESTION"}


@dataclass(frozen=True)
class Change:
    id: int
    client_id: int
    kind: str


@dataclass(frozen=True)
class LiveCall:
    id: int
    client_id: int
    uniqueid: str
    channel: str


@dataclass(frozen=True)
class CallToEnd:
    call: LiveCall
    why: str              # SUSPENDED or NO_CREDIT


@dataclass(frozen=True)
class GoneOutcome:
    settled: tuple[int, ...]     # settled from their CDR
    closed: tuple[int, ...]      # closed as stale for review (nothing known)
    untouched: tuple[int, ...]   # already settled or closed by someone else


def recent_changes(engine: Engine, window_seconds: int = 60, limit: int = 1000) -> list[Change]:
    """The change-log rows of the last `window_seconds` (database clock), oldest first.
    One range read of the created_at index; callers skip the ids they have acted on."""
    with engine.connect() as conn:
        rows = conn.execute(_RECENT_CHANGES, {"window": window_seconds, "limit": limit})
        return [Change(r.id, r.client_id, r.kind) for r in rows]


def calls_to_end(engine: Engine, asterisk: str,
                 client_ids: Iterable[int] | None = None) -> list[CallToEnd]:
    """Live, non-emergency calls on `asterisk` that must end now: those of suspended
    clients, and of clients with end_calls_without_credit = 1 whose balance plus credit
    limit is below the credit their live calls hold. `client_ids` limits the check to
    those clients (a change-log read); None checks every client live on `asterisk`."""
    with engine.connect() as conn:
        if client_ids is None:
            ids_sql, params = _CLIENTS_LIVE_ON, {"asterisk": asterisk}
        else:
            wanted = sorted({int(i) for i in client_ids})
            if not wanted:
                return []
            ids_sql = ", ".join(f":c{n}" for n in range(len(wanted)))
            params = {f"c{n}": cid for n, cid in enumerate(wanted)}
        rows = conn.execute(text(_CLIENT_STATES.format(ids=ids_sql)), params).all()
        why = {}
        for row in rows:
            if row.status == "suspended":
                why[row.id] = SUSPENDED
            elif row.end_calls_without_credit and row.funds < row.reserved:
                why[row.id] = NO_CREDIT
        if not why:
            return []
        found = conn.execute(_CALLS_OF, {"client_ids": sorted(why), "asterisk": asterisk})
        return [CallToEnd(_live(r), why[r.client_id]) for r in found]


def live_calls_on(engine: Engine, asterisk: str) -> list[LiveCall]:
    """Every live call authorized through `asterisk` (index asterisk, state)."""
    with engine.connect() as conn:
        return [_live(r) for r in conn.execute(_LIVE_ON, {"asterisk": asterisk})]


def still_live(engine: Engine, call_ids: Sequence[int]) -> list[LiveCall]:
    if not call_ids:
        return []
    with engine.connect() as conn:
        return [_live(r) for r in conn.execute(_STILL_LIVE, {"ids": list(call_ids)})]


def close_gone(engine: Engine, gone: Sequence[LiveCall], asterisk: str,
               now: datetime) -> GoneOutcome:
    """Settle or close calls whose channel no longer exists on `asterisk`. Each call is
    its own transaction (settle's), conditional on the call still being live."""
    settled, closed, untouched = [], [], []
    for call in gone:
        cdr = _cdr_of(engine, call.uniqueid) if call.uniqueid else None
        if cdr is not None:
            answered_ms, disposition = cdr
            status = DIAL_STATUS_OF_DISPOSITION.get(disposition.upper(), disposition[:16])
            outcome = calls.settle(engine, call.id, answered_ms if status == "ANSWER" else None,
                                   status, now)
            (settled if outcome.changed else untouched).append(call.id)
            continue
        note = (f"channel gone from Asterisk {asterisk} before any settle and no CDR: "
                f"closed by reconciliation, not billed")

        def work(call_id: int = call.id) -> int:
            with engine.begin() as conn:
                return conn.execute(_CLOSE_GONE, {"now": now, "note": note[:255],
                                                  "call_id": call_id}).rowcount
        (closed if with_retry(work, idempotent=True) == 1 else untouched).append(call.id)
    return GoneOutcome(tuple(settled), tuple(closed), tuple(untouched))


@dataclass(frozen=True)
class DueCall:
    call: LiveCall
    authorized_at: datetime
    max_seconds: int


@dataclass(frozen=True)
class Extended:
    call_id: int
    max_seconds: int
    deadline: datetime        # authorized_at + max_seconds: when the call must end


def calls_due(engine: Engine, asterisk: str, before: datetime, cap_seconds: int) -> list[DueCall]:
    """Live non-emergency calls on `asterisk` whose limit ends before `before` and is
    still below `cap_seconds` (the longest call ever allowed)."""
    with engine.connect() as conn:
        rows = conn.execute(_DUE, {"asterisk": asterisk, "before": before, "cap": cap_seconds})
        return [DueCall(_live(r), r.authorized_at, int(r.max_seconds)) for r in rows]


def extend_call(engine: Engine, call_id: int, slice_seconds: int, cap_seconds: int,
                due_before: datetime, grace_seconds: int) -> Extended | None:
    """Extend one live call by up to a slice, reserving it first (one transaction, under
    the call's row lock and then the client account's). None when the call is no longer live or
    due (another server extended it) or no credit is left for another increment."""
    from fastagi.billing.rating import Rate
    from fastagi.billing.slices import extension

    def work() -> Extended | None:
        with engine.begin() as conn:
            call = conn.execute(_CALL_FOR_EXTENSION, {"call_id": call_id}).first()
            if call is None or call.state != "live" or call.emergency:
                return None
            deadline = call.authorized_at + timedelta(seconds=int(call.max_seconds))
            if deadline >= due_before:
                return None
            funds = (conn.execute(_CLIENT_BALANCE, {"client_id": call.client_id}).scalar_one()
                     + conn.execute(_CLIENT_CREDIT_LIMIT,
                                    {"client_id": call.client_id}).scalar_one())
            reserved = conn.execute(_CLIENT_RESERVED,
                                    {"client_id": call.client_id}).scalar_one()
            rate = Rate(call.prefix or "", call.rate_per_min, call.connection_fee,
                        call.initial_increment, call.subsequent_increment)
            grant = extension(rate, int(call.max_seconds), call.reserved,
                              funds - Decimal(reserved), slice_seconds, cap_seconds)
            if grant is None:
                return None
            new_max, new_reserved = grant
            if call.reseller_levels:  # every reseller above must pay for the slice too
                new_max = resellers.extend_levels(conn, call_id, int(call.max_seconds), new_max)
                if new_max is None:
                    return None
                new_reserved = round_money(exact_cost(rate, new_max, answered=True))
            conn.execute(_EXTEND, {"max_seconds": new_max, "reserved": new_reserved,
                                   "expiry": new_max + grace_seconds, "call_id": call_id})
            return Extended(call_id, new_max,
                            call.authorized_at + timedelta(seconds=new_max))
    return with_retry(work, idempotent=True)


def count_live(engine: Engine) -> int:
    """How many calls are live (all servers, all Asterisk boxes)."""
    with engine.connect() as conn:
        return int(conn.execute(_COUNT_LIVE).scalar_one())


def prune_changes(engine: Engine, before: datetime, batch: int = 1000) -> int:
    """Delete change-log rows older than `before`; the number deleted."""
    def work() -> int:
        with engine.begin() as conn:
            return conn.execute(_PRUNE, {"before": before, "batch": batch}).rowcount
    return with_retry(work, idempotent=True)


def _cdr_of(engine: Engine, uniqueid: str) -> tuple[int, str] | None:
    """(talk time in ms, disposition) of the call's CDR, or None."""
    with engine.connect() as conn:
        row = conn.execute(_CDR_OF, {"uniqueid": uniqueid}).first()
    if row is None:
        return None
    return billsec_ms(row.billsec), row.disposition or ""


def billsec_ms(billsec: Decimal | int) -> int:
    """A CDR's billsec in whole ms, rounded up: cdr_adaptive_odbc writes answer-to-end in
    microseconds into a DECIMAL column (4.568123 s -> 4,569 ms); an INTEGER column (a
    table older than schema/140) holds seconds already cut down by Asterisk."""
    return math.ceil(Decimal(billsec) * 1000)


def _live(row) -> LiveCall:
    return LiveCall(int(row.id), int(row.client_id), row.uniqueid or "", row.channel or "")
