"""agent_login / agent_logout over real TCP with the fake Asterisk and a real MariaDB:
every login path and refusal, the PIN lockout, moving and replacing sessions, logout,
suspension ending sessions, reactivation, and two clients with the same agent numbers
and queue names kept apart."""

from __future__ import annotations

import pytest
import pytest_twisted

from fastagi import channel_vars as v
from fastagi.testing.fake_asterisk import KEYS_HANGUP, KEYS_TIMEOUT, split_args
from tests.agents.world import PIN, PIN_502, build_tenant, log_rows, members, open_sessions
from tests.callcontrol.agi_server import agi_server
from tests.support.sql import execute, rows

ACME_PIN, BETA_PIN = PIN["acme"], PIN["beta"]
ASK_NUMBER, ASK_PIN, INCORRECT = ("GET DATA", "agent-user"), ("GET DATA", "agent-pass"), \
    ("GET DATA", "agent-incorrect")


def say(*sounds):
    return [("STREAM FILE", s) for s in sounds]


@pytest.fixture
def world(engine):
    return {"acme": build_tenant(engine, "acme"), "beta": build_tenant(engine, "beta")}


def heard(result) -> list[tuple[str, str]]:
    """The prompts and sounds the caller was played, in order."""
    out = []
    for line in result.commands:
        words = split_args(line)
        verb = " ".join(words[:2]).upper()
        if verb in ("GET DATA", "STREAM FILE"):
            out.append((verb, words[2]))
    return out


async def login(server, client, endpoint, *keys):
    result = await server.session("agent_login", client, endpoint, keys=list(keys))
    assert result.server_closed, "the server must close every session itself"
    return result


async def logout(server, client, endpoint):
    result = await server.session("agent_logout", client, endpoint)
    assert result.server_closed
    return result


def answer_of(result) -> tuple[str, str]:
    return result.set_by_server.get(v.RESULT), result.set_by_server.get(v.REASON)


@pytest_twisted.ensureDeferred
async def test_login_opens_a_session_and_makes_the_agent_a_queue_member(engine, world):
    async with agi_server(engine) as server:
        result = await login(server, "acme", "acme-1001", "501", ACME_PIN)
    assert answer_of(result) == (v.ALLOW, "")
    assert heard(result) == [ASK_NUMBER, ASK_PIN, *say("agent-loginok")]
    assert open_sessions(engine) == [("acme", "501", "acme-1001")]
    assert log_rows(engine) == [("acme", "login", "ok", "501")]
    assert members(engine) == [("acme-sales", "PJSIP/acme-1001")]


REFUSED_AT_ONCE = {
    "client suspended": ("acme", "acme-1001", "UPDATE clients SET status = 'suspended' WHERE code = 'acme'",
                         "client-suspended"),
    "extension of another client": ("acme", "beta-1001", None, "foreign-extension"),
    "no such extension": ("acme", "acme-1999", None, "foreign-extension"),
    "extension disabled": ("acme", "acme-1001",
                           "UPDATE extensions SET status = 'disabled' WHERE sip_username = 'acme-1001'",
                           "extension-disabled"),
    "unknown client": ("ghost", "ghost-1001", None, "unknown-client"),
}


@pytest.mark.parametrize("client, endpoint, setup, reason", REFUSED_AT_ONCE.values(),
                         ids=list(REFUSED_AT_ONCE))
@pytest_twisted.ensureDeferred
async def test_refused_before_anything_is_typed(engine, world, client, endpoint, setup, reason):
    if setup:
        execute(engine, setup)
    async with agi_server(engine) as server:
        result = await login(server, client, endpoint, "501", ACME_PIN)
    assert answer_of(result) == (v.REJECT, reason)
    assert heard(result) == say("ss-noservice")
    assert open_sessions(engine) == []
    assert log_rows(engine) == [(client, "refused", reason, None)]


@pytest_twisted.ensureDeferred
async def test_unknown_agent_and_wrong_pin_sound_alike_and_are_logged_apart(engine, world):
    async with agi_server(engine) as server:
        result = await login(server, "acme", "acme-1001", "777", "1234", "501", "0000",
                             "502", PIN_502)
    assert answer_of(result) == (v.ALLOW, "")
    assert heard(result) == [ASK_NUMBER, ASK_PIN, INCORRECT, ASK_PIN, INCORRECT, ASK_PIN,
                             *say("agent-loginok")]
    assert log_rows(engine) == [("acme", "refused", "unknown-agent", "777"),
                                ("acme", "refused", "wrong-pin", "501"),
                                ("acme", "login", "ok", "502")]
    assert open_sessions(engine) == [("acme", "502", "acme-1001")]
    assert rows(engine, "SELECT pin_failures FROM agents WHERE login_number = '501'"
                        " AND client_id = :c", c=world["acme"].id) == [(1,)]


@pytest_twisted.ensureDeferred
async def test_tries_per_call_are_bounded(engine, world):
    async with agi_server(engine) as server:
        result = await login(server, "acme", "acme-1001", "501", "1", "501", "2", "501", "3",
                             "501", ACME_PIN)
    assert answer_of(result) == (v.REJECT, "wrong-pin")
    assert heard(result) == [ASK_NUMBER, ASK_PIN, INCORRECT, ASK_PIN, INCORRECT, ASK_PIN,
                             *say("im-sorry", "goodbye")]
    assert [r[2] for r in log_rows(engine)] == ["wrong-pin"] * 3
    assert open_sessions(engine) == []


@pytest_twisted.ensureDeferred
async def test_nothing_typed_asks_again_then_says_goodbye(engine, world):
    async with agi_server(engine) as server:
        result = await login(server, "acme", "acme-1001", KEYS_TIMEOUT, "501", KEYS_TIMEOUT,
                             KEYS_TIMEOUT)
    assert answer_of(result) == (v.REJECT, "no-input")
    assert heard(result) == [ASK_NUMBER, ASK_NUMBER, ASK_PIN, ASK_NUMBER, *say("goodbye")]
    assert log_rows(engine) == [("acme", "refused", "no-input", None),
                                ("acme", "refused", "no-input", "501"),
                                ("acme", "refused", "no-input", None)]


@pytest_twisted.ensureDeferred
async def test_hangup_while_typing_ends_quietly(engine, world):
    async with agi_server(engine) as server:
        result = await login(server, "acme", "acme-1001", "501", KEYS_HANGUP)
    assert answer_of(result) == (v.REJECT, "no-input")
    assert heard(result) == [ASK_NUMBER, ASK_PIN]
    assert open_sessions(engine) == [] and log_rows(engine) == []


@pytest_twisted.ensureDeferred
async def test_disabled_agent_is_told_only_after_the_right_pin(engine, world):
    execute(engine, "UPDATE agents SET status = 'disabled' WHERE id = :a",
            a=world["acme"].agents["501"])
    async with agi_server(engine) as server:
        wrong = await login(server, "acme", "acme-1001", "501", "0000", KEYS_TIMEOUT,
                            KEYS_TIMEOUT, KEYS_TIMEOUT)
        right = await login(server, "acme", "acme-1001", "501", ACME_PIN)
    assert answer_of(wrong)[1] == "no-input" and log_rows(engine)[0][2] == "wrong-pin"
    assert answer_of(right) == (v.REJECT, "agent-disabled")
    assert heard(right) == [ASK_NUMBER, ASK_PIN, *say("im-sorry", "goodbye")]
    assert log_rows(engine)[-1] == ("acme", "refused", "agent-disabled", "501")
    assert open_sessions(engine) == []


@pytest_twisted.ensureDeferred
async def test_pin_lockout_refuses_even_the_right_pin_until_it_expires(engine, world):
    execute(engine, "UPDATE agent_login_policy SET max_pin_failures = 2, lockout_minutes = 30")
    agent = world["acme"].agents["501"]
    async with agi_server(engine) as server:
        first = await login(server, "acme", "acme-1001", "501", "1111", "501", "2222")
        locked_until = rows(engine, "SELECT locked_until FROM agents WHERE id = :a", a=agent)[0][0]
        second = await login(server, "acme", "acme-1002", "501", ACME_PIN)
        # 30 minutes later (the lock is moved back instead of waiting):
        execute(engine, "UPDATE agents SET locked_until = UTC_TIMESTAMP() - INTERVAL 1 SECOND"
                        " WHERE id = :a", a=agent)
        third = await login(server, "acme", "acme-1002", "501", ACME_PIN)
    assert answer_of(first) == (v.REJECT, "wrong-pin")
    assert heard(first) == [ASK_NUMBER, ASK_PIN, INCORRECT, ASK_PIN,
                            *say("im-sorry", "please-try-call-later")]
    assert locked_until is not None
    assert answer_of(second) == (v.REJECT, "locked")
    assert heard(second) == [ASK_NUMBER, ASK_PIN, *say("im-sorry", "please-try-call-later")]
    assert answer_of(third) == (v.ALLOW, "")
    assert [r[2] for r in log_rows(engine)] == ["wrong-pin", "wrong-pin", "locked", "ok"]
    assert rows(engine, "SELECT pin_failures, locked_until FROM agents WHERE id = :a",
                a=agent) == [(0, None)]


@pytest_twisted.ensureDeferred
async def test_logging_in_elsewhere_moves_the_session_and_replaces_another_agent(engine, world):
    async with agi_server(engine) as server:
        await login(server, "acme", "acme-1001", "501", ACME_PIN)
        await login(server, "acme", "acme-1002", "501", ACME_PIN)      # moves
        assert open_sessions(engine) == [("acme", "501", "acme-1002")]
        await login(server, "acme", "acme-1002", "502", PIN_502)       # replaces 501
        again = await login(server, "acme", "acme-1002", "502", PIN_502)  # already here
    assert answer_of(again) == (v.ALLOW, "")
    assert open_sessions(engine) == [("acme", "502", "acme-1002")]
    assert rows(engine, "SELECT a.login_number, e.exten, s.end_reason FROM agent_sessions s"
                        " JOIN agents a ON a.id = s.agent_id JOIN extensions e"
                        " ON e.id = s.extension_id ORDER BY s.id") == [
        ("501", "1001", "moved"), ("501", "1002", "replaced"), ("502", "1002", None)]
    assert [r[1:3] for r in log_rows(engine)] == [
        ("login", "ok"), ("logout", "moved"), ("login", "ok"), ("logout", "replaced"),
        ("login", "ok"), ("login", "ok")]


@pytest_twisted.ensureDeferred
async def test_logout_ends_the_session_at_the_phone(engine, world):
    async with agi_server(engine) as server:
        await login(server, "acme", "acme-1001", "501", ACME_PIN)
        out = await logout(server, "acme", "acme-1001")
        again = await logout(server, "acme", "acme-1001")
        foreign = await logout(server, "acme", "beta-1001")
    assert answer_of(out) == (v.ALLOW, "") and heard(out) == say("agent-loggedoff")
    assert answer_of(again) == (v.REJECT, "not-logged-in")
    assert heard(again) == say("beeperr", "goodbye")
    assert answer_of(foreign) == (v.REJECT, "foreign-extension")
    assert open_sessions(engine) == [] and members(engine) == []
    assert [r[1:3] for r in log_rows(engine)] == [
        ("login", "ok"), ("logout", "logout"), ("refused", "not-logged-in"),
        ("refused", "foreign-extension")]


@pytest_twisted.ensureDeferred
async def test_suspension_logs_everyone_out_and_reactivation_logs_nobody_in(engine, world):
    async with agi_server(engine) as server:
        await login(server, "acme", "acme-1001", "501", ACME_PIN)
        await login(server, "acme", "acme-1002", "502", PIN_502)
        await login(server, "beta", "beta-1001", "501", BETA_PIN)
        execute(engine, "CALL suspend_client('acme')")
        assert open_sessions(engine) == [("beta", "501", "beta-1001")]
        assert members(engine) == [("beta-sales", "PJSIP/beta-1001")]
        refused = await login(server, "acme", "acme-1001", "501", ACME_PIN)
        execute(engine, "UPDATE clients SET status = 'active' WHERE code = 'acme'")
        assert open_sessions(engine) == [("beta", "501", "beta-1001")]
        assert members(engine) == [("beta-sales", "PJSIP/beta-1001")]
        back = await login(server, "acme", "acme-1001", "501", ACME_PIN)
    assert answer_of(refused) == (v.REJECT, "client-suspended")
    assert answer_of(back) == (v.ALLOW, "")
    assert rows(engine, "SELECT end_reason FROM agent_sessions WHERE client_id = :c"
                        " ORDER BY id", c=world["acme"].id) == [
        ("suspended",), ("suspended",), (None,)]
    acme_log = [r[1:3] for r in log_rows(engine) if r[0] == "acme"]
    assert acme_log == [("login", "ok"), ("login", "ok"), ("logout", "suspended"),
                        ("logout", "suspended"), ("refused", "client-suspended"),
                        ("login", "ok")]


@pytest_twisted.ensureDeferred
async def test_same_agent_numbers_in_two_clients_never_mix(engine, world):
    async with agi_server(engine) as server:
        # beta's PIN for agent 501, typed at an acme phone: acme's 501 is checked
        crossed = await login(server, "acme", "acme-1001", "501", BETA_PIN, KEYS_TIMEOUT,
                              KEYS_TIMEOUT, KEYS_TIMEOUT)
        # an acme phone claiming to be in beta's context
        foreign = await login(server, "beta", "acme-1001", "501", BETA_PIN)
        ok = await login(server, "beta", "beta-1002", "501", BETA_PIN)
    assert log_rows(engine)[0] == ("acme", "refused", "wrong-pin", "501")
    assert answer_of(foreign) == (v.REJECT, "foreign-extension")
    assert answer_of(ok) == (v.ALLOW, "")
    assert rows(engine, "SELECT c.code, a.pin_failures FROM agents a JOIN clients c"
                        " ON c.id = a.client_id WHERE a.login_number = '501'"
                        " ORDER BY c.code") == [("acme", 1), ("beta", 0)]
    assert open_sessions(engine) == [("beta", "501", "beta-1002")]
    assert members(engine) == [("beta-sales", "PJSIP/beta-1002")]
    assert answer_of(crossed)[0] == v.REJECT


@pytest.mark.parametrize("args", [(), ("acme",), ("acme", "1001"), ("ACME", "acme-1001"),
                                  ("acme", "acme-1001", "x"), ("acme", 'acme-1001"; --')])
@pytest_twisted.ensureDeferred
async def test_bad_arguments_are_refused_as_bad_requests(engine, world, args):
    async with agi_server(engine) as server:
        result = await server.session("agent_login", *args)
    assert result.set_by_server[v.RESULT] == v.REJECT
    assert result.set_by_server[v.REASON] == "bad-request"
    assert heard(result) == [] and log_rows(engine) == []
