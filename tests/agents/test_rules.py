"""The pure login rules: the order of the checks, the lockout arithmetic, the PIN hash."""

from __future__ import annotations

import hashlib
from datetime import datetime, timedelta

import pytest

from fastagi.agents import prompts, rules
from fastagi.agents.rules import AgentRow, Place, Policy, decide_login, pin_matches

NOW = datetime(2026, 12, 3, 9, 0, 0)
SALT = "0123456789abcdef0123456789abcdef"
HASH = f"sha512${SALT}$" + hashlib.sha512((SALT + "1234").encode()).hexdigest()
HERE = Place(client_id=1, client_status="active", extension_id=10, extension_client_id=1,
             extension_status="active")
POLICY = Policy(max_pin_failures=3, lockout_minutes=15, tries_per_call=3)


def agent(status="active", failures=0, locked_until=None, pin_hash=HASH):
    return AgentRow(7, status, pin_hash, failures, locked_until)


@pytest.mark.parametrize("place, reason", [
    (Place(None, None, 10, 1, "active"), rules.UNKNOWN_CLIENT),
    (Place(1, "suspended", 10, 1, "active"), rules.CLIENT_SUSPENDED),
    (Place(1, "active", None, None, None), rules.FOREIGN_EXTENSION),
    (Place(1, "active", 10, 2, "active"), rules.FOREIGN_EXTENSION),
    (Place(1, "active", 10, 1, "disabled"), rules.EXTENSION_DISABLED),
])
def test_the_place_is_checked_first_even_with_the_right_pin(place, reason):
    assert decide_login(place, agent(), "1234", NOW, POLICY).reason == reason


@pytest.mark.parametrize("row, pin, reason", [
    (None, "1234", rules.UNKNOWN_AGENT),
    (agent(), "1234", rules.OK),
    (agent(), "4321", rules.WRONG_PIN),
    (agent(pin_hash=None), "1234", rules.WRONG_PIN),
    (agent(status="disabled"), "1234", rules.AGENT_DISABLED),
    (agent(status="disabled"), "0000", rules.WRONG_PIN),   # disabled is not revealed
    (agent(locked_until=NOW + timedelta(seconds=1)), "1234", rules.LOCKED),
    (agent(locked_until=NOW), "1234", rules.OK),           # a lock ends at its time
])
def test_agent_checks(row, pin, reason):
    assert decide_login(HERE, row, pin, NOW, POLICY).reason == reason


def test_wrong_pins_count_then_lock_for_the_policy_minutes():
    first = decide_login(HERE, agent(failures=0), "0", NOW, POLICY)
    assert (first.pin_failures, first.lock_changed) == (1, False)
    last = decide_login(HERE, agent(failures=2), "0", NOW, POLICY)
    assert last.reason == rules.WRONG_PIN
    assert (last.pin_failures, last.lock_changed) == (0, True)
    assert last.locked_until == NOW + timedelta(minutes=15)
    locked = decide_login(HERE, agent(failures=0, locked_until=last.locked_until), "0", NOW,
                          POLICY)
    assert locked.reason == rules.LOCKED and locked.pin_failures is None  # not counted


def test_success_clears_failures_and_an_expired_lock():
    ok = decide_login(HERE, agent(failures=2, locked_until=NOW - timedelta(minutes=1)), "1234",
                      NOW, POLICY)
    assert (ok.allowed, ok.pin_failures, ok.lock_changed) == (True, 0, True)


@pytest.mark.parametrize("stored", [HASH.replace("sha512", "md5"), "sha512$x", "", None,
                                    HASH[:-1] + ("0" if HASH[-1] != "0" else "1")])
def test_malformed_or_other_hashes_never_match(stored):
    assert not pin_matches(stored, "1234")


# The words of Debian's asterisk-core-sounds-en 1.6.1 (core-sounds-en.txt) for each name.
CORE_SOUNDS = {"agent-user", "agent-pass", "agent-incorrect", "agent-loginok",
               "agent-loggedoff", "ss-noservice", "im-sorry", "please-try-call-later",
               "beeperr", "goodbye"}


def test_every_prompt_is_a_core_sound_and_every_refusal_has_one():
    assert set(prompts.ALL) <= CORE_SOUNDS
    for reason in (rules.UNKNOWN_CLIENT, rules.CLIENT_SUSPENDED, rules.FOREIGN_EXTENSION,
                   rules.EXTENSION_DISABLED, rules.UNKNOWN_AGENT, rules.AGENT_DISABLED,
                   rules.WRONG_PIN, rules.LOCKED, rules.NO_INPUT, rules.NOT_LOGGED_IN):
        assert reason in prompts.REFUSAL_SOUNDS
        assert set(prompts.refusal_sounds(reason)) <= CORE_SOUNDS
