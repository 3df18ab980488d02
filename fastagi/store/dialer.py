"""The dialer's transactions. Each function is one unit of work `fn(engine, ...)` for
DbRunner.run; all decisions come from fastagi.campaigns.pacing.

Claiming (`claim`) locks every campaign row of the client, so every dialer process sees
the same calls in flight and the same calls-per-second clock: caps hold across dialers
and across the client's campaigns. It also claims no more contacts than the client's
available credit can admit (`credit_admits`): each call would be refused `no-credit`
otherwise, its contact held back for `requeue_seconds`. Contacts are taken with FOR
UPDATE SKIP LOCKED and marked `dialing` with an attempt row in the same transaction: a
contact is dialled once per attempt, never by two dialers at once.

What the dialer keeps about a campaign (its calls-per-second clock, why it skips it,
whether it found nothing left to dial) is the campaign's `campaign_runs` row (schema/095):
the dialer never writes a `campaigns` row, which holds only what people set, so an
admin's form saved whole (Adminer) or column by column (phpMyAdmin) neither undoes the
dialer's state nor misses a row the dialer worked. Lock order, everywhere: a client's
campaign rows (id order, through uq_campaigns_id_client), then their campaign_runs rows.

An attempt's outcome is written by the transaction that authorizes or settles its call
(triggers on `calls`, schema/061), matched by the uniqueid the dialer gave the channel.
`finish_attempts` then applies the retry rules to the contact; a claim whose dialer died
lapses (`claimed_until`) and any dialer finishes it. An attempt that never reached
authorize (the originate failed) is closed by `originate_failed` or, if its dialer died,
by `close_orphans`.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from sqlalchemy import bindparam, text
from sqlalchemy.engine import Connection, Engine

from fastagi.billing.admission import DEFAULT_CREDIT_SLICE_SECONDS, DEFAULT_MAX_CALL_SECONDS
from fastagi.billing.money import ZERO, round_money
from fastagi.billing.rating import Rate, affordable_seconds, exact_cost
from fastagi.campaigns import pacing
from fastagi.campaigns.channel_ids import attempt_uniqueid
from fastagi.campaigns.queue_status import QueueSnapshot
from fastagi.db.retry import with_retry
from fastagi.emergency import is_emergency
from fastagi.store import subtree

log = logging.getLogger(__name__)

CALLER_ID = re.compile(r"\+?[0-9]{1,31}")
# An answered contact reaches Queue() a moment after the dialer hears the answer: a
# queue status asked within this time may not show it yet, so its agent stays spoken for.
ANSWER_TO_QUEUE = timedelta(seconds=1)


@dataclass(frozen=True)
class Destination:
    """An operator-named place in the dialplan (a campaign_destinations row)."""

    context: str
    exten: str
    priority: int


@dataclass(frozen=True)
class DialOrder:
    """One call to originate: everything the dialplan routine needs, from the database.
    Where the answered contact goes is the originator's choice (fastagi.campaigns.originate):
    the queue, else the recording, else the operator-named `destination`."""

    attempt_id: int
    uniqueid: str         # the Local ;2 channel's uniqueid (OtherChannelId): authorize sees it
    campaign_id: int
    contact_id: int
    client_code: str      # from the campaign's client row, never from caller input
    phone: str
    caller_id: str | None
    recording: str | None
    queue: str | None = None        # progressive: the queue's Asterisk name
    queue_wait_seconds: int = 0     # progressive: longest wait there for an agent
    destination: Destination | None = None   # campaign_destinations row, if the campaign names one


@dataclass(frozen=True)
class RunningCampaign:
    id: int
    queue: str | None     # progressive: the Asterisk name of its queue
    wrapup_seconds: int   # ... and the queue's rest after a call


@dataclass(frozen=True)
class ClaimResult:
    orders: tuple[DialOrder, ...]
    limited_by: str       # why no more calls started (a cap, 'not running', ...)
    skipped: int          # contacts set aside (do-not-call, invalid, outside the window)


@dataclass(frozen=True)
class DialerLimits:
    dialer: str                       # this dialer's name (claimed_by)
    claim_seconds: float              # a claim lapses this long after its last renewal
    batch: int                        # most contacts claimed per campaign per transaction
    emergency_numbers: tuple[str, ...]
    requeue_seconds: float = pacing.REQUEUE_SECONDS  # after a refusal for the client's limits
    # What authorize reserves for a call, as `serve` is run: at most one credit slice
    # (serve --credit-slice-seconds, 300 by default with AMI; 0: slices off, a call
    # reserves up to --max-call-seconds). Claims stop where the credit admits no more.
    credit_slice_seconds: int = DEFAULT_CREDIT_SLICE_SECONDS
    max_call_seconds: int = DEFAULT_MAX_CALL_SECONDS

    @property
    def reservation_cap_seconds(self) -> int:
        """The longest talk time authorize reserves credit for at admission."""
        if self.credit_slice_seconds > 0:
            return min(self.credit_slice_seconds, self.max_call_seconds)
        return self.max_call_seconds


def running_campaigns(engine: Engine) -> list[RunningCampaign]:
    """Campaigns people set running, of active clients with no suspended reseller above
    them: not those the dialer found finished, unless contacts to dial were added since (the claim then clears it)."""
    with engine.begin() as conn:
        return [RunningCampaign(int(r.id), r.queue, int(r.wrapup or 0)) for r in conn.execute(text(
            "SELECT g.id, IF(g.mode = 'progressive', q.asterisk_name, NULL) AS queue, "
            "q.wrapup_seconds AS wrapup "
            "FROM campaigns g JOIN clients c ON c.id = g.client_id "
            "LEFT JOIN campaign_runs r ON r.campaign_id = g.id "
            "LEFT JOIN queues q ON q.id = g.queue_id "
            "WHERE g.status = 'running' AND c.status = 'active' "
            "AND NOT " + subtree.suspended_above("c.id") + " "
            "AND (r.finished IS NULL OR r.finished = 0 OR EXISTS (SELECT 1 FROM contacts k "
            "     WHERE k.campaign_id = g.id AND k.status IN ('new', 'retry'))) "
            "ORDER BY g.id"))]


_CLIENT_OF = text("SELECT client_id FROM campaigns WHERE id = :campaign")
# Every campaign row of the client, in id order: claims for any campaign of one client
# are serialized (client-wide channel accounting) without locking the client row, which
# authorize and settle lock (a claim waiting for it while they wait for the campaign row
# would deadlock), and in the order the suspension trigger locks them.
# Locked through uq_campaigns_id_client, the index the attempts' foreign key checks
# (which would otherwise take a shared lock on it after the row lock) and the one the
# optimizer picks for an admin's `UPDATE campaigns ... WHERE id = N`: both then take that
# index entry before the row, in the same order. Locking only the rows let a pause from
# phpMyAdmin deadlock with a claim (seen: 1213 on `UPDATE campaigns SET status = 'paused'`).
_CLIENT_CAMPAIGN_IDS = text("SELECT id FROM campaigns WHERE client_id = :client ORDER BY id")
_LOCK_CLIENT_CAMPAIGNS = text(
    "SELECT id FROM campaigns FORCE INDEX (uq_campaigns_id_client) "
    "WHERE id IN :ids AND client_id = :client ORDER BY id FOR UPDATE"
).bindparams(bindparam("ids", expanding=True))
# status: the effective one (suspended too while a reseller above is: store/subtree.py).
_CLIENT = text(
    "SELECT c.id, c.code, " + subtree.effective_status("c") + " AS status, c.channel_limit, a.balance + c.credit_limit AS credit, "
    "c.rate_plan_id FROM clients c JOIN client_accounts a ON a.client_id = c.id "
    "WHERE c.id = :client")
# The rate authorize will find for a number (calls._USAGE_PLAN_AND_RATE_SQL: longest prefix).
_RATE_OF = text(
    "SELECT prefix, rate_per_min, connection_fee, initial_increment, subsequent_increment"
    " FROM rates WHERE rate_plan_id = :plan AND prefix IN ("
    + ", ".join(f"LEFT(:digits, {n})" for n in range(1, 33)) + ")"
    " ORDER BY LENGTH(prefix) DESC LIMIT 1")
_PLAN_DEAREST = text(
    "SELECT MAX(rate_per_min) AS rate, MAX(connection_fee) AS fee,"
    " MAX(initial_increment) AS initial FROM rates WHERE rate_plan_id = :plan")
# Attempts of the client that authorize has not seen yet: each will reserve credit.
_NOT_YET_ADMITTED = text(
    "SELECT phone FROM campaign_attempts WHERE client_id = :client AND outcome IS NULL"
    " AND call_id IS NULL ORDER BY id")
_CAMPAIGN = text(
    "SELECT g.*, d.context AS d_context, d.exten AS d_exten, d.priority AS d_priority "
    "FROM campaigns g LEFT JOIN campaign_destinations d ON d.id = g.destination_id "
    "WHERE g.id = :campaign FOR UPDATE")
# The dialer's own state of the campaign, locked after the campaign rows (a locking read:
# another dialer's claim may have moved the clock since this transaction began).
_RUN = text("SELECT pacing_clock, dialer_note, finished FROM campaign_runs "
            "WHERE campaign_id = :campaign FOR UPDATE")
# A campaign row made without its trigger (a dump restored without triggers) gets one.
_ADD_RUN = text("INSERT IGNORE INTO campaign_runs (campaign_id) VALUES (:campaign)")
# Read without a lock: the queue's admins and agents' logins never wait for a claim.
_QUEUE = text("SELECT asterisk_name, status FROM queues WHERE id = :queue")
_LOAD = text(
    "SELECT "
    " (SELECT COUNT(*) FROM campaign_attempts WHERE campaign_id = :campaign AND outcome IS NULL),"
    " (SELECT COUNT(*) FROM calls WHERE client_id = :client AND state = 'live'),"
    " (SELECT COALESCE(SUM(reserved), 0) FROM calls WHERE client_id = :client AND state = 'live'),"
    " (SELECT COUNT(*) FROM campaign_attempts WHERE client_id = :client AND outcome IS NULL),"
    " (SELECT COUNT(*) FROM campaign_attempts a JOIN calls k ON k.id = a.call_id"
    "   WHERE a.client_id = :client AND a.outcome IS NULL AND k.state = 'live'),"
    " (SELECT COUNT(*) FROM campaign_attempts WHERE campaign_id = :campaign AND outcome IS NULL"
    "   AND (answered_at IS NULL OR answered_at >= :agents_counted_at))")
_DUE = (
    "SELECT id, phone, time_zone, attempts, on_do_not_call(client_id, phone) AS dnc "
    "FROM contacts WHERE campaign_id = :campaign AND status = :status "
    "AND (next_attempt_at IS NULL OR next_attempt_at <= :now) {own_zone_only} "
    "ORDER BY next_attempt_at, id LIMIT :limit FOR UPDATE SKIP LOCKED")


def campaign_problem(row, queue=None) -> str | None:
    """Why the dialer cannot dial this campaign (its row is bad), or None; `queue` is the
    (asterisk_name, status) row of a progressive campaign's queue."""
    if row.mode == "progressive":
        if queue is None:
            return f"queue_id {row.queue_id} names no queue"
        if queue.status != "active":
            return f"queue {queue.asterisk_name} is {queue.status}: no agent can take a call"
    elif row.recording is None and row.destination_id is None:
        return "no recording and no destination_id: nothing to do with an answered contact"
    if row.destination_id is not None and row.d_context is None:
        return f"destination_id {row.destination_id} names no campaign_destinations row"
    try:
        ZoneInfo(row.time_zone)
    except (ZoneInfoNotFoundError, ValueError):
        return f"time_zone {row.time_zone!r} is not an IANA time zone"
    if not row.window_days:
        return "window_days is empty: the calling window never opens"
    if row.caller_id is not None and not CALLER_ID.fullmatch(row.caller_id):
        return f"caller_id {row.caller_id[:40]!r} is not digits with an optional +"
    return None


def claim(engine: Engine, campaign_id: int, now: datetime, limits: DialerLimits,
          agents: QueueSnapshot | None = None) -> ClaimResult:
    """Claim the contacts of one campaign that may be dialled now, within every cap;
    `agents` is what Asterisk said of a progressive campaign's queue (None: nothing
    known, so a progressive campaign dials nobody)."""
    return with_retry(lambda: _claim(engine, campaign_id, now, limits, agents))


def _claim(engine: Engine, campaign_id: int, now: datetime, limits: DialerLimits,
           agents: QueueSnapshot | None) -> ClaimResult:
    with engine.begin() as conn:
        client_id = conn.execute(_CLIENT_OF, {"campaign": campaign_id}).scalar()
        if client_id is None:
            return ClaimResult((), "no such campaign", 0)
        ids = list(conn.execute(_CLIENT_CAMPAIGN_IDS, {"client": client_id}).scalars())
        conn.execute(_LOCK_CLIENT_CAMPAIGNS, {"ids": ids, "client": client_id}).all()
        client = conn.execute(_CLIENT, {"client": client_id}).first()
        row = conn.execute(_CAMPAIGN, {"campaign": campaign_id}).first()
        if client is None or row is None:
            return ClaimResult((), "no such campaign", 0)
        if row.status != "running" or client.status != "active":
            return ClaimResult((), "not running", 0)
        run = conn.execute(_RUN, {"campaign": campaign_id}).first()
        if run is None:
            conn.execute(_ADD_RUN, {"campaign": campaign_id})
            run = conn.execute(_RUN, {"campaign": campaign_id}).one()
        queue = (conn.execute(_QUEUE, {"queue": row.queue_id}).first()
                 if row.queue_id is not None else None)
        problem = campaign_problem(row, queue)
        _note(conn, row, run, problem)
        if problem:
            return ClaimResult((), "bad campaign row", 0)
        progressive = row.mode == "progressive"
        if progressive and (agents is None or agents.queue != queue.asterisk_name):
            return ClaimResult((), "no queue status", 0)
        (campaign_in_flight, live_calls, reserved, client_in_flight, in_flight_live,
         ringing) = conn.execute(_LOAD, {
             "campaign": campaign_id, "client": client.id,
             "agents_counted_at": (agents.asked_at - ANSWER_TO_QUEUE if progressive
                                   else now)}).one()
        if client.credit - reserved <= 0:
            return ClaimResult((), "no credit", 0)
        caps = pacing.Caps(max_channels=row.max_channels, channel_limit=client.channel_limit,
                           keep_free_channels=row.keep_free_channels,
                           calls_per_second=float(row.calls_per_second),
                           free_agents=agents.free_agents if progressive else None)
        load = pacing.Load(int(campaign_in_flight), int(live_calls), int(client_in_flight),
                           int(in_flight_live), int(ringing))
        decision = pacing.pace(now, caps, load, run.pacing_clock, limits.batch)
        if decision.calls == 0:
            return ClaimResult((), decision.limited_by, 0)
        window = pacing.Window.from_row(row.window_days, row.window_start, row.window_end)
        zone = ZoneInfo(row.time_zone)
        campaign_open = pacing.window_open(window, zone, now)
        candidates = []
        for status in ("retry", "new"):
            wanted = decision.calls - len(candidates)
            if wanted <= 0:
                break
            sql = _DUE.format(own_zone_only="" if campaign_open else "AND time_zone IS NOT NULL")
            candidates += conn.execute(text(sql), {"campaign": campaign_id, "status": status,
                                                   "now": now, "limit": wanted}).all()
        orders, skipped = [], 0
        cap = limits.reservation_cap_seconds
        credit = client.credit - reserved
        # Enough credit for every call in flight and every candidate at the plan's dearest
        # rate: no call can be refused no-credit, so no rate need be looked up.
        pending = int(client_in_flight) - int(in_flight_live)
        check_credit = credit < (pending + len(candidates)) * _most_one_call_reserves(
            conn, client, cap)
        if check_credit:
            credit = _credit_after_pending(conn, client, credit, limits)
        out_of_credit = False
        for contact in candidates:
            verdict = _verdict(contact, window, zone, now, limits.emergency_numbers)
            if verdict is not None:
                _set_aside(conn, contact.id, *verdict)
                skipped += 1
                continue
            if check_credit:
                taken = credit_admits(_rate_of(conn, client, contact.phone), credit, cap)
                if taken is None:
                    out_of_credit = True   # this contact and the rest wait: nothing lost
                    break
                credit -= taken
            orders.append(_start_attempt(conn, client, row, contact, now, limits,
                                         queue.asterisk_name if queue is not None else None))
        if orders:
            started = pacing.pace(now, caps, load, run.pacing_clock, len(orders))
            # Dialling again: a campaign found finished before its new contacts is not.
            conn.execute(text("UPDATE campaign_runs SET pacing_clock = :clock, finished = 0 "
                              "WHERE campaign_id = :id"),
                         {"clock": started.pacing_clock, "id": campaign_id})
        limited_by = decision.limited_by if len(candidates) >= decision.calls else "no contacts due"
        if out_of_credit:
            limited_by = "no credit"
        return ClaimResult(tuple(orders), limited_by, skipped)


def credit_admits(rate: Rate | None, available: Decimal, cap_seconds: int) -> Decimal | None:
    """The credit authorize would reserve for one more call at `rate` from `available`
    (admission.decide: the longest affordable talk time up to `cap_seconds`), or None if
    it would refuse the call `no-credit`. A number without a rate takes nothing (authorize
    refuses it `no-rate`, which no credit changes)."""
    if rate is None:
        return ZERO
    longest = affordable_seconds(rate, available, cap_seconds)
    if longest == 0:
        return None
    return round_money(exact_cost(rate, longest, answered=True))


def _most_one_call_reserves(conn: Connection, client, cap_seconds: int) -> Decimal:
    """An upper bound of what authorize reserves for any one call of the client: the
    plan's dearest fee and rate for the longest reservation (the cap, or a longer initial
    increment)."""
    most = conn.execute(_PLAN_DEAREST, {"plan": client.rate_plan_id}).one()
    if most.rate is None:
        return ZERO   # no rates at all: every call is refused no-rate
    seconds = max(cap_seconds, int(most.initial))
    return round_money(most.fee + most.rate * seconds / 60)


def _rate_of(conn: Connection, client, phone: str) -> Rate | None:
    found = conn.execute(_RATE_OF, {"plan": client.rate_plan_id,
                                    "digits": phone.lstrip("+")}).first()
    if found is None:
        return None
    return Rate(found.prefix, found.rate_per_min, found.connection_fee,
                found.initial_increment, found.subsequent_increment)


def _credit_after_pending(conn: Connection, client, available: Decimal,
                          limits: DialerLimits) -> Decimal:
    """What is left of `available` once the attempts already originated but not yet
    authorized have taken what authorize will reserve for them."""
    for phone in conn.execute(_NOT_YET_ADMITTED, {"client": client.id}).scalars():
        taken = credit_admits(_rate_of(conn, client, phone), available,
                              limits.reservation_cap_seconds)
        available -= taken if taken is not None else ZERO
    return available


def _note(conn: Connection, row, run, problem: str | None) -> None:
    """Say in the campaign's campaign_runs row why the dialer skips it (None: it dials)."""
    if problem != run.dialer_note:
        conn.execute(text("UPDATE campaign_runs SET dialer_note = :note WHERE campaign_id = :id"),
                     {"note": problem, "id": row.id})
        if problem:
            log.warning("campaign %s (%s) skipped: %s", row.id, row.name, problem)


def _verdict(contact, window: pacing.Window, campaign_zone: ZoneInfo, now: datetime,
             emergency: tuple[str, ...]) -> tuple[str, str | None, datetime | None] | None:
    """None: dial it now; else (status, reason, next_attempt_at) to set it aside."""
    if contact.dnc:
        return ("do-not-call", "on a do-not-call list", None)
    if is_emergency(contact.phone, emergency):
        return ("invalid", "an emergency number: never dialled by a campaign", None)
    zone = campaign_zone
    if contact.time_zone:
        try:
            zone = ZoneInfo(contact.time_zone)
        except (ZoneInfoNotFoundError, ValueError):
            return ("invalid", f"time_zone {contact.time_zone!r} is not an IANA time zone", None)
    if not pacing.window_open(window, zone, now):
        opening = pacing.next_window_opening(window, zone, now)
        return (None, None, opening)
    return None


def _set_aside(conn: Connection, contact_id: int, status: str | None, reason: str | None,
               next_attempt_at: datetime | None) -> None:
    if status is None:   # outside its window: wait for the next opening
        conn.execute(text("UPDATE contacts SET next_attempt_at = :at WHERE id = :id"),
                     {"at": next_attempt_at, "id": contact_id})
    else:
        conn.execute(text("UPDATE contacts SET status = :status, last_reason = :reason, "
                          "next_attempt_at = NULL WHERE id = :id"),
                     {"status": status, "reason": reason, "id": contact_id})


def _start_attempt(conn: Connection, client, row, contact, now: datetime,
                   limits: DialerLimits, queue_name: str | None) -> DialOrder:
    uniqueid = attempt_uniqueid()
    attempt_id = int(conn.execute(text(
        "INSERT INTO campaign_attempts (client_id, campaign_id, contact_id, attempt_no, phone, "
        "dialer, uniqueid, started_at) VALUES (:client, :campaign, :contact, :no, :phone, "
        ":dialer, :uniqueid, :now)"),
        {"client": client.id, "campaign": row.id, "contact": contact.id,
         "no": contact.attempts + 1, "phone": contact.phone, "dialer": limits.dialer,
         "uniqueid": uniqueid, "now": now}).lastrowid)
    conn.execute(text(
        "UPDATE contacts SET status = 'dialing', attempts = attempts + 1, last_attempt_at = :now, "
        "next_attempt_at = NULL, claimed_by = :dialer, claimed_until = :until, "
        "current_attempt_id = :attempt WHERE id = :id"),
        {"now": now, "dialer": limits.dialer, "attempt": attempt_id, "id": contact.id,
         "until": now + timedelta(seconds=limits.claim_seconds)})
    queue = queue_name if row.mode == "progressive" else None
    destination = (Destination(row.d_context, row.d_exten, int(row.d_priority))
                   if row.d_context is not None else None)
    return DialOrder(attempt_id=attempt_id, uniqueid=uniqueid, campaign_id=row.id,
                     contact_id=contact.id, client_code=client.code, phone=contact.phone,
                     caller_id=row.caller_id, recording=row.recording, queue=queue,
                     queue_wait_seconds=int(row.queue_wait_seconds) if queue else 0,
                     destination=destination)


def answered(engine: Engine, attempt_id: int, now: datetime) -> None:
    """The dialer saw the contact answer (OriginateResponse Success)."""
    def work() -> None:
        with engine.begin() as conn:
            conn.execute(text("UPDATE campaign_attempts SET answered_at = :now "
                              "WHERE id = :id AND answered_at IS NULL"),
                         {"now": now, "id": attempt_id})
    with_retry(work, idempotent=True)


def originate_failed(engine: Engine, attempt_id: int, reason: str, now: datetime) -> bool:
    """Close an attempt whose call never reached authorize (Originate refused or failed):
    True if it was still open. An attempt authorize has seen is left to its call."""
    def work() -> bool:
        with engine.begin() as conn:
            return conn.execute(text(
                "UPDATE campaign_attempts SET outcome = 'failed', reason = :reason, ended_at = :now "
                "WHERE id = :id AND outcome IS NULL AND call_id IS NULL"),
                {"reason": reason[:128], "now": now, "id": attempt_id}).rowcount == 1
    return with_retry(work, idempotent=True)


_FINISHED = text(
    "SELECT c.id, c.campaign_id, c.attempts, a.outcome, a.reason "
    "FROM contacts c JOIN campaign_attempts a ON a.id = c.current_attempt_id "
    "WHERE c.status = 'dialing' AND (c.claimed_by = :dialer OR c.claimed_until < :now) "
    "AND a.outcome IS NOT NULL ORDER BY c.id LIMIT 1000 FOR UPDATE SKIP LOCKED")
_RULES = text(
    "SELECT id, max_attempts, retry_busy_seconds, retry_no_answer_seconds, retry_failed_seconds "
    "FROM campaigns WHERE id IN :ids").bindparams(bindparam("ids", expanding=True))


def finish_attempts(engine: Engine, now: datetime, limits: DialerLimits) -> int:
    """Apply the retry rules to contacts whose attempt has ended (this dialer's, and any
    whose claim lapsed); renew this dialer's other claims. Returns how many finished."""
    def work() -> int:
        with engine.begin() as conn:
            done = conn.execute(_FINISHED, {"dialer": limits.dialer, "now": now}).all()
            if done:
                rules = {r.id: pacing.RetryRules(r.max_attempts, r.retry_busy_seconds,
                                                 r.retry_no_answer_seconds, r.retry_failed_seconds)
                         for r in conn.execute(_RULES, {"ids": sorted({d.campaign_id for d in done})})}
                updates = []
                for d in done:
                    step = pacing.after_attempt(d.outcome, d.reason, d.attempts,
                                                rules[d.campaign_id], now,
                                                limits.requeue_seconds)
                    updates.append({"id": d.id, "status": step.status, "at": step.next_attempt_at,
                                    "attempts": step.attempts, "outcome": d.outcome,
                                    "reason": (step.reason or "")[:128] or None})
                conn.execute(text(
                    "UPDATE contacts SET status = :status, next_attempt_at = :at, "
                    "attempts = :attempts, last_outcome = :outcome, last_reason = :reason, "
                    "claimed_by = NULL, claimed_until = NULL WHERE id = :id"), updates)
            conn.execute(text(
                "UPDATE contacts SET claimed_until = :until WHERE status = 'dialing' "
                "AND claimed_by = :dialer"),
                {"until": now + timedelta(seconds=limits.claim_seconds), "dialer": limits.dialer})
            return len(done)
    return with_retry(work, idempotent=True)


def close_orphans(engine: Engine, now: datetime, orphan_seconds: float) -> int:
    """Attempts open for `orphan_seconds` that authorize never saw (the channel never
    reached the dialplan, and the dialer that knew why is gone): failed."""
    def work() -> int:
        with engine.begin() as conn:
            return conn.execute(text(
                "UPDATE campaign_attempts SET outcome = 'failed', ended_at = :now, "
                "reason = 'no call: the originated channel never reached authorize' "
                "WHERE outcome IS NULL AND call_id IS NULL AND started_at < :before"),
                {"now": now, "before": now - timedelta(seconds=orphan_seconds)}).rowcount
    return with_retry(work, idempotent=True)


# A campaign's finish, the dialer's finding: running, with contacts, none left to dial
# (new, retry or dialing) -> finished; found finished but given contacts to dial since
# (added, or set back to 'new' by people) -> not finished. Candidates are read without a
# lock, their campaign rows then locked in id order through uq_campaigns_id_client (as a
# claim locks them: a contact's insert checks its campaign there, and a claim holds them
# while it takes contacts) and read again, so no contact arrives or is taken in between.
_WAITING = ("EXISTS (SELECT 1 FROM contacts k WHERE k.campaign_id = g.id "
            "AND k.status IN ('new', 'retry', 'dialing'))")
_FINISH_OR_REOPEN = (
    "SELECT g.id, r.finished FROM campaigns g JOIN campaign_runs r ON r.campaign_id = g.id "
    "WHERE {only} ((g.status = 'running' AND r.finished = 0 "
    "        AND EXISTS (SELECT 1 FROM contacts k WHERE k.campaign_id = g.id) "
    "        AND NOT " + _WAITING + ") "
    "   OR (r.finished = 1 AND " + _WAITING + ")) ORDER BY g.id")
_FINISH_CANDIDATES = text(_FINISH_OR_REOPEN.format(only=""))
_FINISH_RECHECK = text(_FINISH_OR_REOPEN.format(only="g.id IN :ids AND")).bindparams(
    bindparam("ids", expanding=True))
_LOCK_CAMPAIGNS = text(
    "SELECT id FROM campaigns FORCE INDEX (uq_campaigns_id_client) "
    "WHERE id IN :ids ORDER BY id FOR UPDATE").bindparams(bindparam("ids", expanding=True))
_SET_FINISHED = text(
    "UPDATE campaign_runs SET finished = 1, finished_at = UTC_TIMESTAMP() "
    "WHERE campaign_id IN :ids AND finished = 0").bindparams(bindparam("ids", expanding=True))
_SET_REOPENED = text(
    "UPDATE campaign_runs SET finished = 0 WHERE campaign_id IN :ids AND finished = 1"
).bindparams(bindparam("ids", expanding=True))


def finish_campaigns(engine: Engine) -> list[int]:
    """Running campaigns with contacts and nothing left to dial are found `finished`
    (campaign_runs.finished, stamped finished_at); finished ones given contacts to dial
    are not any more. Returns the campaigns found finished now."""
    def work() -> list[int]:
        with engine.begin() as conn:
            candidates = [int(i) for i in conn.execute(_FINISH_CANDIDATES).scalars()]
            if not candidates:
                return []
            conn.execute(_LOCK_CAMPAIGNS, {"ids": candidates}).all()
            found = conn.execute(_FINISH_RECHECK, {"ids": candidates}).all()
            finish = [int(r.id) for r in found if not r.finished]
            reopen = [int(r.id) for r in found if r.finished]
            if finish:
                conn.execute(_SET_FINISHED, {"ids": finish})
            if reopen:
                conn.execute(_SET_REOPENED, {"ids": reopen})
            return finish
    return with_retry(work, idempotent=True)
