"""Who may log in, decided by pure functions over facts read in one transaction.

A refusal is a value (`LoginDecision.reason`), never an exception. The order of the checks
is part of the security design: the client and the extension are known before anything is
typed; an unknown agent number and a wrong PIN are told apart only in the log (the caller
hears the same prompt); a disabled agent is revealed only to someone who knows its PIN;
a locked agent is refused even with the right PIN, and those tries are not counted.
"""

from __future__ import annotations

import hashlib
import hmac
from dataclasses import dataclass
from datetime import datetime, timedelta

# Reasons, as stored in agent_login_log.reason (schema/042_agent_sessions.sql).
OK = "ok"
UNKNOWN_CLIENT = "unknown-client"
CLIENT_SUSPENDED = "client-suspended"
FOREIGN_EXTENSION = "foreign-extension"     # not an extension of this client (or none)
EXTENSION_DISABLED = "extension-disabled"
UNKNOWN_AGENT = "unknown-agent"
AGENT_DISABLED = "agent-disabled"
WRONG_PIN = "wrong-pin"
LOCKED = "locked"
NO_INPUT = "no-input"
NOT_LOGGED_IN = "not-logged-in"

# Refusals after which the caller may try again in the same call.
RETRYABLE = frozenset({UNKNOWN_AGENT, WRONG_PIN, NO_INPUT})


@dataclass(frozen=True)
class Request:
    """Where a login/logout comes from: the client code (a literal of the operator's
    dialplan) and the calling PJSIP endpoint (CHANNEL(endpoint))."""

    client_code: str
    endpoint: str


@dataclass(frozen=True)
class Policy:
    """agent_login_policy: wrong PINs that lock, for how long, tries per phone call."""

    max_pin_failures: int = 5
    lockout_minutes: int = 15
    tries_per_call: int = 3


@dataclass(frozen=True)
class Place:
    """Where the request comes from: the client (by the dialplan's literal code) and the
    calling PJSIP endpoint. `client_id` None: unknown code; `extension_client_id` None:
    no such endpoint."""

    client_id: int | None
    client_status: str | None
    extension_id: int | None
    extension_client_id: int | None
    extension_status: str | None


@dataclass(frozen=True)
class AgentRow:
    id: int
    status: str
    pin_hash: str | None
    pin_failures: int
    locked_until: datetime | None


@dataclass(frozen=True)
class LoginDecision:
    reason: str
    pin_failures: int | None = None        # new agents.pin_failures, None: unchanged
    locked_until: datetime | None = None   # new lock, when this try locked the agent
    lock_changed: bool = False             # write locked_until (set, or cleared on success)

    @property
    def allowed(self) -> bool:
        return self.reason == OK


def place_refusal(place: Place) -> str | None:
    """Why nobody may log in or out from this place, or None."""
    if place.client_id is None:
        return UNKNOWN_CLIENT
    if place.client_status != "active":
        return CLIENT_SUSPENDED
    if place.extension_id is None or place.extension_client_id != place.client_id:
        return FOREIGN_EXTENSION
    if place.extension_status != "active":
        return EXTENSION_DISABLED
    return None


def pin_matches(pin_hash: str | None, pin: str) -> bool:
    """True when `pin` is the PIN hashed as sha512$<salt>$<hex> by password_hash_of()
    (SHA2(CONCAT(salt, pin), 512)); compared in constant time."""
    if not pin_hash:
        return False
    parts = pin_hash.split("$")
    if len(parts) != 3 or parts[0] != "sha512":
        return False
    digest = hashlib.sha512((parts[1] + pin).encode("utf-8")).hexdigest()
    return hmac.compare_digest(digest, parts[2])


def decide_login(place: Place, agent: AgentRow | None, pin: str, now: datetime,
                 policy: Policy) -> LoginDecision:
    """The decision for one agent number + PIN typed at `place` at `now` (naive UTC)."""
    refused = place_refusal(place)
    if refused:
        return LoginDecision(refused)
    if agent is None:
        return LoginDecision(UNKNOWN_AGENT)
    if agent.locked_until is not None and agent.locked_until > now:
        return LoginDecision(LOCKED)
    if not pin_matches(agent.pin_hash, pin):
        failures = agent.pin_failures + 1
        if failures >= policy.max_pin_failures:
            return LoginDecision(WRONG_PIN, pin_failures=0, lock_changed=True,
                                 locked_until=now + timedelta(minutes=policy.lockout_minutes))
        return LoginDecision(WRONG_PIN, pin_failures=failures)
    if agent.status != "active":
        return LoginDecision(AGENT_DISABLED)
    return LoginDecision(OK, pin_failures=0, lock_changed=agent.locked_until is not None)
