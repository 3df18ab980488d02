"""Call-control transactions: authorize, settle, close stale calls.

Each public function is one unit of work, `fn(engine, ...)`, run on the database thread
pool, inside exactly one transaction (retried on deadlock / lock wait). Admission is
decided under the client's row locks (SELECT ... FOR UPDATE of its `clients` row, then of
its `client_accounts` row, always in that order), so the channel and credit checks and
the new live call are atomic across every server process. An admission also writes the
client's account (`client_accounts.admitted_calls`, never the `clients` row people edit):
on a Galera cluster, where row locks are local to one node, that makes concurrent
admissions of one client on different nodes conflict at certification, and the loser is
retried (docs/galera.md). A client under resellers has every reseller above it (master
excepted) locked, checked, charged and billed too: fastagi.store.resellers, which holds
the lock order.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Callable

from sqlalchemy import text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.engine import Connection, Engine

from fastagi.billing.admission import Admission, CallRequest, ClientSnapshot
from fastagi.billing.hierarchy import decide_levels
from fastagi.billing.rating import Rate
from fastagi.billing.routing import Candidate
from fastagi.billing.settlement import Charge, charge_for
from fastagi.db.retry import NotCommitted, with_retry
from fastagi.store import buy_side, resellers, trunks

MAX_PREFIX_LENGTH = 32
# A settle that gives up leaves its call unbilled (stale, for review), and running it
# again changes nothing once it has committed: on a Galera cluster, where it conflicts
# with admissions of the same client on other nodes, it gets more tries (~2.5 s of
# pauses at most) than an authorize, whose caller is waiting.
SETTLE_ATTEMPTS = 20

# What people set (clients) and what the system keeps (client_accounts), both locked: the
# clients row first (found by its unique code), then the account by its primary key.
_CLIENT_FOR_UPDATE = text(
    "SELECT c.id, c.code, c.status, a.balance, c.credit_limit, c.channel_limit, c.rate_plan_id,"
    " c.parent_id"
    " FROM clients c JOIN client_accounts a ON a.client_id = c.id"
    " WHERE c.code = :code FOR UPDATE")
# Read after the client's row lock is held (READ COMMITTED: a new read view per statement),
# so the live calls counted include every call committed by any server before the lock was
# granted. One round trip: the client's live usage, its plan, and the longest matching
# prefix (rate columns NULL if none). Every leading part of the digits is a candidate:
# LEFT(:digits, n) for n = 1..32 folds to constants, so the lookup is one range scan of
# the (rate_plan_id, prefix) key, with a single bound parameter to escape. `tree` tells
# how many clients are above this one (master included) and whether any is below it: a
# client of master without clients of its own learns in this query that it has no
# reseller level to lock and no subtree to count (docs/admin-sql.md, "Resellers").
# The routing columns (fastagi.store.trunks.usage_columns: the route table's version, and
# the buy rates of the server's routed trunks only when its copy of the route table holds
# none) come at the end of the select list.
_USAGE_PLAN_AND_RATE_SQL = (
    "SELECT u.live, u.reserved, p.dial_template, p.rate_inbound, r.prefix, r.rate_per_min,"
    " r.connection_fee, r.initial_increment, r.subsequent_increment,"
    # two probes of client_tree: how many clients are above this one, and whether any is
    # below it (EXISTS stops at the first: master's own calls do not count its tree)
    " (SELECT COUNT(*) FROM client_tree t WHERE t.client_id = :client_id AND t.depth > 0)"
    " + 1000 * EXISTS (SELECT 1 FROM client_tree t"
    "   WHERE t.ancestor_id = :client_id AND t.depth > 0) AS tree{routing}"
    " FROM rate_plans p"
    " CROSS JOIN (SELECT COUNT(*) AS live, COALESCE(SUM(reserved), 0) AS reserved FROM calls"
    "   WHERE client_id = :client_id AND state = 'live') u"
    " LEFT JOIN rates r ON r.rate_plan_id = p.id AND r.prefix IN ("
    + ", ".join(f"LEFT(:digits, {n})" for n in range(1, MAX_PREFIX_LENGTH + 1)) + ")"
    " WHERE p.id = :plan_id ORDER BY LENGTH(r.prefix) DESC LIMIT 1")


@lru_cache(maxsize=64)
def _usage_plan_and_rate(routing: str):
    """The usage query with `routing`'s columns, made once per distinct text."""
    return text(_USAGE_PLAN_AND_RATE_SQL.replace("{routing}", routing))
# The write that makes admissions of one client conflict across Galera nodes; it goes to
# the client's account, never to the clients row an admin's form writes back.
_COUNT_ADMISSION = text(
    "UPDATE client_accounts SET admitted_calls = admitted_calls + 1"
    " WHERE client_id = :client_id")
_INSERT_CALL = text(
    "INSERT INTO calls (client_id, client_code, direction, number, state, reason, rejected_by,"
    " reseller_levels, emergency,"
    " prefix, rate_per_min, connection_fee, initial_increment, subsequent_increment,"
    " max_seconds, reserved, uniqueid, channel, server, asterisk, trunk_id, buy_prefix,"
    " buy_rate_per_min, buy_connection_fee, buy_initial_increment, buy_subsequent_increment,"
    " authorized_at, expires_at) VALUES (:client_id, :client_code, :direction, :number, :state,"
    " :reason, :rejected_by, :reseller_levels, :emergency,"
    " :prefix, :rate_per_min, :connection_fee, :initial_increment, :subsequent_increment,"
    " :max_seconds, :reserved, :uniqueid, :channel, :server, :asterisk, :trunk_id, :buy_prefix,"
    " :buy_rate, :buy_fee, :buy_initial, :buy_subsequent, :now, :expires_at)")
_CALL_BY_ID = text(
    "SELECT id, client_id, state, emergency, prefix, rate_per_min, connection_fee,"
    " initial_increment, subsequent_increment, max_seconds, cost, billable_seconds,"
    " reseller_levels, " + buy_side.COLUMNS + " FROM calls WHERE id = :call_id")
_SETTLE = text(
    "UPDATE calls SET state = 'settled', settled_at = :now, answered_seconds = :answered,"
    " answered_ms = :answered_ms,"
    " dial_status = :dial_status, billable_seconds = :billable, cost = :cost,"
    " review_note = :review_note, buy_billable_seconds = :buy_billable, buy_cost = :buy_cost"
    " WHERE id = :call_id AND state = :seen_state")
_CLOSE_STALE = text(
    "UPDATE calls SET state = 'stale', settled_at = :now,"
    " review_note = 'never settled: channel and credit released at expiry, not billed'"
    " WHERE state = 'live' AND expires_at < :now ORDER BY expires_at LIMIT :batch")


@dataclass(frozen=True)
class CallContext:
    """Where the request came from, for the call record."""

    uniqueid: str = ""
    channel: str = ""
    server: str = ""
    asterisk: str = ""        # the Asterisk box's address (AMI enforcement scope)


@dataclass(frozen=True)
class Limits:
    max_call_seconds: int = 10800
    dial_template: str = "PJSIP/{number}@carrier"
    stale_grace_seconds: int = 300


@dataclass(frozen=True)
class Authorization:
    admission: Admission
    call_id: int | None       # the call record (live when allowed, rejected otherwise)
    client_id: int | None
    trunk: str = ""           # trunks.name the call was routed to ('' : no trunk route)
    rejected_by: str | None = None   # code of the client whose level refused the call


@dataclass(frozen=True)
class Settlement:
    found: bool
    state: str                # the call's state after this request
    cost: Decimal | None
    changed: bool             # False when the call was already settled (idempotent repeat)
    charge: Charge | None = None


class Abandoned(Exception):
    """The caller stopped waiting before the commit: the transaction was rolled back."""


AbandonCheck = Callable[[], "str | None"]


def rating_digits(number: str) -> str:
    """The digits a number is rated by: a leading + (E.164) is not part of any prefix."""
    return number.lstrip("+")


def authorize(engine: Engine, request: CallRequest, now: datetime, limits: Limits,
              context: CallContext = CallContext(),
              abandon_check: AbandonCheck | None = None) -> Authorization:
    """Decide `request` and record it; returns the Authorization (a rejection is a value;
    only database errors raise).

    `abandon_check`, called just before the commit (in this worker thread), returns why
    the answer can no longer reach the dialplan (session gone, deadline passed) or None:
    then the transaction is rolled back (Abandoned) instead of committing a live call that
    nobody would ever settle.
    """
    return with_retry(lambda: _authorize_once(engine, request, now, limits, context,
                                              abandon_check))


def _authorize_once(engine: Engine, request: CallRequest, now: datetime, limits: Limits,
                    context: CallContext, abandon_check: AbandonCheck | None) -> Authorization:
    with engine.connect() as conn:  # closing without commit rolls back
        try:
            row = conn.execute(_CLIENT_FOR_UPDATE, {"code": request.client_code}).first()
            client, rate, levels, seen = None, None, (), None
            if row is not None:
                client, rate, above, seen = _snapshot(conn, row, request)
                levels = resellers.lock_levels(conn, row.id, row.parent_id, above,
                                               rating_digits(request.number))
            decision = decide_levels(request, client, rate, levels, limits.max_call_seconds,
                                     limits.dial_template)
            # issue 22: the trunks (after every check of every level; no route group: as
            # before); under resellers, routing is the operator's side: the top level
            top = decision.charges[-1] if decision.charges else None
            admission, route = trunks.route_admission(conn, request, row, decision.admission,
                                                      top, seen)
            # a refusal after every level allowed the call (no-route) is the operator's
            rejected_by = None if decision.admission.allowed else decision.rejected_by

            def record(admission: Admission, trunk: Candidate | None) -> int:
                return _record(conn, request, client, admission, now, limits, context,
                               rejected_by, len(decision.charges) if admission.allowed else 0,
                               trunk)
            # a routed call's INSERT takes its trunk (schema 177): no-route if none would
            admission, route, call_id = trunks.record_routed(route, admission, request.number,
                                                             record)
            if admission.allowed:
                conn.execute(_COUNT_ADMISSION, {"client_id": client.id})
                resellers.record_charges(conn, call_id, decision.charges, now)
        except resellers.PathMoved as exc:
            raise NotCommitted(str(exc)) from exc
        except DBAPIError as exc:
            if exc.connection_invalidated:  # lost before COMMIT: nothing happened
                raise NotCommitted("connection lost before the commit") from exc
            raise
        why = abandon_check() if abandon_check is not None else None
        if why:
            raise Abandoned(f"authorize rolled back: {why}")
        conn.commit()  # a connection lost here leaves the outcome unknown: not retried
        return Authorization(admission, call_id, client.id if client else None,
                             route.trunk.name if route.trunk else "", rejected_by)


def _snapshot(conn: Connection, row, request: CallRequest
              ) -> tuple[ClientSnapshot, Rate | None, int, trunks.SeenRoutes]:
    # only an outbound, non-emergency call may be routed: no buy rates read for the others
    routable = request.direction == "out" and not request.emergency
    routing, routing_params = trunks.usage_columns(conn.engine, routable)
    plan = conn.execute(_usage_plan_and_rate(routing), {
        "digits": rating_digits(request.number), "client_id": row.id,
        "plan_id": row.rate_plan_id, **routing_params}).one()
    above, below = int(plan.tree) % 1000, int(plan.tree) // 1000
    live, reserved = plan.live, Decimal(plan.reserved)
    if below:  # a reseller: its own calls share its limits with its subtree's
        subtree_live, subtree_reserved = resellers.subtree_usage(conn, row.id)
        live, reserved = live + subtree_live, reserved + subtree_reserved
    client = ClientSnapshot(
        id=row.id, code=row.code, status=row.status, balance=row.balance,
        credit_limit=row.credit_limit, channel_limit=row.channel_limit, live_calls=live,
        reserved=Decimal(reserved), dial_template=plan.dial_template,
        rate_inbound=bool(plan.rate_inbound))
    rate = None
    if plan.prefix is not None:
        rate = Rate(plan.prefix, plan.rate_per_min, plan.connection_fee,
                    plan.initial_increment, plan.subsequent_increment)
    return client, rate, above, trunks.seen_routes(plan, routing_params)


def _record(conn: Connection, request: CallRequest, client: ClientSnapshot | None,
            admission: Admission, now: datetime, limits: Limits, context: CallContext,
            rejected_by: str | None = None, reseller_levels: int = 0,
            trunk: Candidate | None = None) -> int:
    """INSERT the call; `trunk`: the trunk a live call takes, its buy rate copied. The
    row's trigger inserts the call's first attempt on it (schema 177), or the database
    refuses the trunk and the INSERT with it (trunks.TRUNK_REFUSED)."""
    rate = admission.rate
    buy = trunk.buy if trunk is not None else None
    expires = None
    if admission.allowed:
        expires = now + timedelta(seconds=admission.max_seconds + limits.stale_grace_seconds)
    result = conn.execute(_INSERT_CALL, {
        "client_id": client.id if client else None,
        "client_code": request.client_code,
        "direction": request.direction,
        "number": request.number,
        "state": "live" if admission.allowed else "rejected",
        "reason": admission.reason or None,
        "rejected_by": rejected_by,
        "reseller_levels": reseller_levels,
        "emergency": int(request.emergency and admission.allowed),
        "prefix": rate.prefix if rate else None,
        "rate_per_min": rate.rate_per_min if rate else None,
        "connection_fee": rate.connection_fee if rate else None,
        "initial_increment": rate.initial_increment if rate else None,
        "subsequent_increment": rate.subsequent_increment if rate else None,
        "max_seconds": admission.max_seconds if admission.allowed else None,
        "reserved": admission.reservation,
        "uniqueid": context.uniqueid[:64] or None,
        "channel": context.channel[:128] or None,
        "server": context.server[:64] or None,
        "asterisk": context.asterisk[:64] or None,
        "trunk_id": trunk.trunk_id if trunk is not None else None,
        "buy_prefix": buy.prefix if buy else None,
        "buy_rate": buy.rate_per_min if buy else None,
        "buy_fee": buy.connection_fee if buy else None,
        "buy_initial": buy.initial_increment if buy else None,
        "buy_subsequent": buy.subsequent_increment if buy else None,
        "now": now,
        "expires_at": expires,
    })
    return int(result.lastrowid)


def settle(engine: Engine, call_id: int, answered_ms: int | None, dial_status: str,
           now: datetime) -> Settlement:
    """Rate and close a call that talked `answered_ms` milliseconds (None: not answered or
    not reported); a repeat changes nothing and reports the first cost."""
    return with_retry(lambda: _settle_once(engine, call_id, answered_ms, dial_status, now),
                      attempts=SETTLE_ATTEMPTS, idempotent=True)


def _settle_once(engine: Engine, call_id: int, answered_ms: int | None, dial_status: str,
                 now: datetime) -> Settlement:
    with engine.begin() as conn:
        # The UPDATE is conditional on the state read: if a concurrent settle or the stale
        # sweep changed it in between, read again (a call only moves live -> stale ->
        # settled, so this ends within three reads).
        for _ in range(3):
            call = conn.execute(_CALL_BY_ID, {"call_id": call_id}).first()
            if call is None:
                return Settlement(found=False, state="", cost=None, changed=False)
            if call.state in ("settled", "rejected"):
                return Settlement(found=True, state=call.state, cost=call.cost, changed=False)
            charge = _charge(call, answered_ms, dial_status)
            buy = buy_side.carrier_charge(call, answered_ms, dial_status)
            updated = conn.execute(_SETTLE, {
                "now": now, "answered": _started_seconds(answered_ms), "answered_ms": answered_ms,
                "dial_status": dial_status[:16] or None, "billable": charge.billable_seconds,
                "cost": charge.cost, "review_note": _review_note(call, charge, answered_ms),
                "call_id": call_id, "seen_state": call.state,
                "buy_billable": buy.billable_seconds if buy else None,
                "buy_cost": buy.cost if buy else None,
            }).rowcount
            if updated == 1:
                # the call's live attempt (a trunk's unit) ended with it: calls' AFTER
                # UPDATE trigger (schema 179)
                if call.reseller_levels:
                    resellers.bill_levels(conn, call, charge, answered_ms, dial_status, now)
                return Settlement(found=True, state="settled", cost=charge.cost, changed=True,
                                  charge=charge)
        raise RuntimeError(f"call {call_id} kept changing state while being settled")


def _charge(call, answered_ms: int | None, dial_status: str) -> Charge:
    rate = Rate(call.prefix or "", call.rate_per_min, call.connection_fee,
                call.initial_increment, call.subsequent_increment)
    return charge_for(rate, call.max_seconds, answered_ms, dial_status,
                      bool(call.emergency))


def _started_seconds(answered_ms: int | None) -> int | None:
    """calls.answered_seconds: the seconds started (4,568 ms -> 5), for views and reports;
    the exact figure is answered_ms."""
    return None if answered_ms is None else -(-answered_ms // 1000)


def _review_note(call, charge: Charge, answered_ms: int | None) -> str | None:
    notes = []
    if call.state == "stale":
        notes.append("settled after it was closed as stale")
    if charge.flagged:
        notes.append(f"talk time {answered_ms} ms reported above the "
                     f"{call.max_seconds}s limit: billed {call.max_seconds}s")
    return "; ".join(notes) or None


def close_stale(engine: Engine, now: datetime, batch: int = 1000) -> int:
    """Close live calls past their expiry as stale (channel and credit released, not
    billed, kept for review). Safe with many servers: the UPDATE is conditional."""
    def work() -> int:
        with engine.begin() as conn:
            # their trunk attempts end with them: calls' AFTER UPDATE trigger (schema 179)
            return conn.execute(_CLOSE_STALE, {"now": now, "batch": batch}).rowcount
    return with_retry(work, idempotent=True)

