"""Agent login and logout transactions (the `agent_login` / `agent_logout` scripts).

Each public function is one unit of work `fn(engine, ...)` run on the database thread
pool, in exactly one transaction (retried on deadlock / lock wait). The client row is read
with a shared lock, so a concurrent suspension waits for a login in flight and then ends
the session it opened (its trigger, schema/042); the agent row is locked for update, so
two phones typing the same agent's PIN count every failure. The decision itself is
fastagi.agents.rules.decide_login; every outcome is written to agent_login_log.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import text
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.exc import DBAPIError

from fastagi.agents import rules
from fastagi.agents.rules import AgentRow, Place, Policy, Request
from fastagi.db.retry import NotCommitted, with_retry

_PLACE = text(
    "SELECT c.id AS client_id, c.status AS client_status,"
    " e.id AS extension_id, e.client_id AS extension_client_id, e.status AS extension_status"
    " FROM (SELECT 1) one"
    " LEFT JOIN clients c ON c.code = :code"
    " LEFT JOIN extensions e ON e.sip_username = :endpoint"
    " LOCK IN SHARE MODE")
# A reseller above the client suspended (store/subtree.py): read with share locks, so a
# login and the reseller's suspension (whose trigger ends the subtree's sessions) take
# turns: the login sees the suspension, or the suspension ends the new session.
_SUSPENDED_ABOVE = text(
    "SELECT b.status FROM client_tree t JOIN clients b ON b.id = t.ancestor_id"
    " WHERE t.client_id = :client_id AND t.depth > 0 AND b.parent_id IS NOT NULL"
    " ORDER BY t.depth LOCK IN SHARE MODE")
_POLICY = text(
    "SELECT max_pin_failures, lockout_minutes, tries_per_call FROM agent_login_policy"
    " WHERE id = 1")
_AGENT_FOR_UPDATE = text(
    "SELECT id, status, pin_hash, pin_failures, locked_until FROM agents"
    " WHERE client_id = :client_id AND login_number = :number FOR UPDATE")
_SET_FAILURES = text("UPDATE agents SET pin_failures = :failures WHERE id = :agent_id")
_SET_FAILURES_AND_LOCK = text(
    "UPDATE agents SET pin_failures = :failures, locked_until = :locked_until"
    " WHERE id = :agent_id")
_LOCK_EXTENSION = text("SELECT id FROM extensions WHERE id = :extension_id FOR UPDATE")
_OPEN_SESSION_OF_AGENT = text(
    "SELECT id, extension_id FROM agent_sessions"
    " WHERE open_agent_id = :agent_id FOR UPDATE")
_OPEN_SESSION_AT_EXTENSION = text(
    "SELECT id, agent_id FROM agent_sessions"
    " WHERE open_extension_id = :extension_id FOR UPDATE")
_END_SESSIONS = text("CALL end_agent_sessions(:client_id, :agent_id, :extension_id, :reason)")
_START_SESSION = text(
    "INSERT INTO agent_sessions (client_id, agent_id, extension_id, started_at)"
    " VALUES (:client_id, :agent_id, :extension_id, :now)")
_END_ONE = text(
    "UPDATE agent_sessions SET ended_at = GREATEST(:now, started_at), end_reason = :reason"
    " WHERE id = :session_id AND ended_at IS NULL")
_LOG = text(
    "INSERT INTO agent_login_log (client_id, client_code, event, reason, agent_id,"
    " extension_id, session_id, login_number, endpoint, at)"
    " VALUES (:client_id, :client_code, :event, :reason, :agent_id, :extension_id,"
    " :session_id, :login_number, :endpoint, :now)")

LOGIN, LOGOUT, REFUSED = "login", "logout", "refused"


@dataclass(frozen=True)
class PlaceCheck:
    refusal: str | None        # None: agents may log in / out here
    policy: Policy


@dataclass(frozen=True)
class LoginOutcome:
    reason: str                # rules.OK or a refusal
    session_id: int | None = None
    now_locked: bool = False   # this wrong PIN locked the agent
    moved: bool = False        # the agent was logged in at another extension: ended there

    @property
    def allowed(self) -> bool:
        return self.reason == rules.OK


@dataclass(frozen=True)
class LogoutOutcome:
    reason: str                # rules.OK, rules.NOT_LOGGED_IN or a place refusal
    session_id: int | None = None


def check_place(engine: Engine, request: Request, now: datetime) -> PlaceCheck:
    """May agents log in or out at this place? A refusal is logged."""
    def work() -> PlaceCheck:
        with engine.begin() as conn:
            place = _place(conn, request)
            policy = _policy(conn)
            refusal = rules.place_refusal(place)
            if refusal:
                _log(conn, request, place, REFUSED, refusal, now)
            return PlaceCheck(refusal, policy)
    return with_retry(work)


def log_refusal(engine: Engine, request: Request, reason: str, login_number: str | None,
                now: datetime) -> None:
    """Record a refusal decided without the database (e.g. nothing typed)."""
    def work() -> None:
        with engine.begin() as conn:
            _log(conn, request, _place(conn, request), REFUSED, reason, now,
                 login_number=login_number)
    with_retry(work)


def attempt_login(engine: Engine, request: Request, login_number: str, pin: str,
                  now: datetime) -> LoginOutcome:
    """Check one agent number + PIN and, when right, open the agent's session at this
    extension (ending its session elsewhere, and another agent's session here)."""
    return with_retry(lambda: _attempt_once(engine, request, login_number, pin, now))


def _attempt_once(engine: Engine, request: Request, login_number: str, pin: str,
                  now: datetime) -> LoginOutcome:
    with engine.connect() as conn:  # closing without commit rolls back
        try:
            outcome = _attempt(conn, request, login_number, pin, now)
        except DBAPIError as exc:
            if exc.connection_invalidated:  # lost before COMMIT: nothing happened
                raise NotCommitted("connection lost before the commit") from exc
            raise
        conn.commit()
        return outcome


def _attempt(conn: Connection, request: Request, login_number: str, pin: str,
             now: datetime) -> LoginOutcome:
    place = _place(conn, request)
    agent = None
    if rules.place_refusal(place) is None:
        row = conn.execute(_AGENT_FOR_UPDATE, {"client_id": place.client_id,
                                               "number": login_number}).first()
        if row is not None:
            agent = AgentRow(row.id, row.status, row.pin_hash, row.pin_failures,
                             row.locked_until)
    decision = rules.decide_login(place, agent, pin, now, _policy(conn))
    agent_id = agent.id if agent else None
    if agent is not None and decision.pin_failures is not None:
        if decision.lock_changed:
            conn.execute(_SET_FAILURES_AND_LOCK, {"failures": decision.pin_failures,
                                                  "locked_until": decision.locked_until,
                                                  "agent_id": agent_id})
        elif decision.pin_failures != agent.pin_failures:
            conn.execute(_SET_FAILURES, {"failures": decision.pin_failures,
                                         "agent_id": agent_id})
    if not decision.allowed:
        _log(conn, request, place, REFUSED, decision.reason, now, agent_id=agent_id,
             login_number=login_number)
        return LoginOutcome(decision.reason, now_locked=decision.locked_until is not None)
    session_id, moved = _open_session(conn, place, agent_id, now)
    _log(conn, request, place, LOGIN, rules.OK, now, agent_id=agent_id,
         session_id=session_id, login_number=login_number)
    return LoginOutcome(rules.OK, session_id=session_id, moved=moved)


def _open_session(conn: Connection, place: Place, agent_id: int,
                  now: datetime) -> tuple[int, bool]:
    """The agent's open session at this extension: kept if it is already logged in here,
    else a new one (its session elsewhere ends as `moved`, another agent's session here
    as `replaced`). Returns (session id, moved). The extension's row lock makes two
    agents logging in at one phone at once take turns."""
    conn.execute(_LOCK_EXTENSION, {"extension_id": place.extension_id})
    mine = conn.execute(_OPEN_SESSION_OF_AGENT, {"agent_id": agent_id}).first()
    if mine is not None and mine.extension_id == place.extension_id:
        return int(mine.id), False
    if mine is not None:
        conn.execute(_END_SESSIONS, {"client_id": place.client_id, "agent_id": agent_id,
                                     "extension_id": None, "reason": "moved"})
    here = conn.execute(_OPEN_SESSION_AT_EXTENSION,
                        {"extension_id": place.extension_id}).first()
    if here is not None:
        conn.execute(_END_SESSIONS, {"client_id": place.client_id, "agent_id": None,
                                     "extension_id": place.extension_id, "reason": "replaced"})
    result = conn.execute(_START_SESSION, {"client_id": place.client_id, "agent_id": agent_id,
                                           "extension_id": place.extension_id, "now": now})
    return int(result.lastrowid), mine is not None


def logout(engine: Engine, request: Request, now: datetime) -> LogoutOutcome:
    """End the session open at the calling extension (whoever is logged in there)."""
    def work() -> LogoutOutcome:
        with engine.begin() as conn:
            place = _place(conn, request)
            refusal = rules.place_refusal(place)
            if refusal:
                _log(conn, request, place, REFUSED, refusal, now)
                return LogoutOutcome(refusal)
            here = conn.execute(_OPEN_SESSION_AT_EXTENSION,
                                {"extension_id": place.extension_id}).first()
            if here is None:
                _log(conn, request, place, REFUSED, rules.NOT_LOGGED_IN, now)
                return LogoutOutcome(rules.NOT_LOGGED_IN)
            conn.execute(_END_ONE, {"now": now, "reason": "logout", "session_id": here.id})
            _log(conn, request, place, LOGOUT, "logout", now, agent_id=here.agent_id,
                 session_id=here.id)
            return LogoutOutcome(rules.OK, session_id=int(here.id))
    return with_retry(work, idempotent=True)


def _place(conn: Connection, request: Request) -> Place:
    row = conn.execute(_PLACE, {"code": request.client_code,
                                "endpoint": request.endpoint}).one()
    status = row.client_status
    if status == "active" and _suspended_above(conn, int(row.client_id)):
        status = "suspended"    # its reseller's suspension stops its agents too
    return Place(row.client_id, status, row.extension_id,
                 row.extension_client_id, row.extension_status)


def _suspended_above(conn: Connection, client_id: int) -> bool:
    above = conn.execute(_SUSPENDED_ABOVE, {"client_id": client_id}).scalars().all()
    return "suspended" in above


def _policy(conn: Connection) -> Policy:
    row = conn.execute(_POLICY).first()
    if row is None:  # the row was deleted by hand: the shipped defaults
        return Policy()
    return Policy(row.max_pin_failures, row.lockout_minutes, row.tries_per_call)


def _log(conn: Connection, request: Request, place: Place, event: str, reason: str,
         now: datetime, agent_id: int | None = None, session_id: int | None = None,
         login_number: str | None = None) -> None:
    own_extension = (place.extension_id if place.extension_client_id == place.client_id
                     and place.client_id is not None else None)
    conn.execute(_LOG, {
        "client_id": place.client_id, "client_code": request.client_code[:64],
        "event": event, "reason": reason, "agent_id": agent_id,
        "extension_id": own_extension, "session_id": session_id,
        "login_number": (login_number if login_number and login_number.isdigit()
                         and len(login_number) <= 10 else None),
        "endpoint": request.endpoint[:64] or None, "now": now,
    })
