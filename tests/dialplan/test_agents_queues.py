"""The agent feature codes and the DIDs that ring queues, in the generated dialplan and
the shipped routines: they exist in every client context, reach only that client, and a
queue call is authorized and settled like any inbound call."""

from __future__ import annotations

import dataclasses
import re

import pytest
from sqlalchemy import text

from fastagi.dialplan import check, names
from fastagi.dialplan.confparse import dialplan_from_texts
from fastagi.dialplan.generate import GenerateError, render
from fastagi.store.dialplan import QueueDid, load_clients
from tests.agents.world import build_tenant
from tests.dialplan.helpers import DIALPLAN, EMERGENCY, EXTENSIONS_CONF, SAMPLE_CLIENTS, client


def with_queue_dids(base, *pairs):
    return dataclasses.replace(base, queue_dids=tuple(QueueDid(d, q) for d, q in pairs))


CLIENTS = [with_queue_dids(SAMPLE_CLIENTS[0], ("442079990000", "acme-sales")),
           with_queue_dids(SAMPLE_CLIENTS[1], ("33199990000", "beta-sales")),
           *SAMPLE_CLIENTS[2:]]


@pytest.fixture(scope="module")
def plan():
    return dialplan_from_texts(
        (str(EXTENSIONS_CONF), EXTENSIONS_CONF.read_text()),
        (str(DIALPLAN), DIALPLAN.read_text()),
        ("ictcontact-clients.conf", render(CLIENTS, EMERGENCY)))


def gosub(step):
    target = check.parse_target(step.args, step)
    return target, check.split_top(target.args, ",")


def test_the_whole_plan_checks_clean(plan):
    assert check.problems(plan) == []


@pytest.mark.parametrize("code", [c.code for c in CLIENTS])
@pytest.mark.parametrize("feature, routine, script", [
    (names.AGENT_LOGIN_CODE, names.AGENT_LOGIN, names.AGENT_LOGIN_SCRIPT),
    (names.AGENT_LOGOUT_CODE, names.AGENT_LOGOUT, names.AGENT_LOGOUT_SCRIPT),
])
def test_feature_codes_reach_the_agent_script_with_the_contexts_own_code(plan, code, feature,
                                                                         routine, script):
    steps = plan.contexts[names.client_context(code)].extensions[feature]
    target, args = gosub(steps[0])
    assert (target.context, args) == (routine, [code])
    agi = [s for s in check.reachable_steps(plan, names.client_context(code), feature)
           if s.app == "AGI"]
    assert len(agi) == 1
    url, client_arg, phone = check.split_top(agi[0].args, ",")
    assert url == f"${{{names.AGI_URL}}}/{script}"
    # the client is the context's literal; the phone is the authenticated endpoint
    assert client_arg == "${ARG1}" and phone == "${CHANNEL(endpoint)}"
    reached = check.reachable_steps(plan, names.client_context(code), feature)
    assert not any(s.app == "Dial" or s.app == "Queue" for s in reached)
    # a server that cannot be reached, or that refuses the request itself, plays a prompt
    fallback = [s for s in reached if s.app == "Playback"]
    assert [s.args for s in fallback] == ["im-sorry&please-try-call-later"]
    jumps = [s.args for s in reached if s.app == "GotoIf"]
    assert any('"${AGISTATUS}" != "SUCCESS"' in j and j.endswith("?failed") for j in jumps)
    assert any('"${ICT_REASON}" = "unavailable"' in j and '"bad-request"' in j for j in jumps)


def pattern_regex(pattern: str) -> str:
    """An Asterisk extension pattern (_X., _+X. ...) as a regex (the letters used here)."""
    table = {"X": "[0-9]", "Z": "[1-9]", "N": "[2-9]", ".": ".+", "!": ".*"}
    return "".join(table.get(ch, re.escape(ch)) for ch in pattern[1:])


def test_feature_codes_are_not_caught_by_the_outbound_patterns(plan):
    # exact extensions beat patterns anyway; and the codes match no pattern at all, so
    # even a client context without them could not send *11 out to the carrier
    context = plan.contexts["client-acme"]
    patterns = [e for e in context.extensions if e.startswith("_")]
    assert patterns == ["_X.", "_+X."]
    for code in (names.AGENT_LOGIN_CODE, names.AGENT_LOGOUT_CODE):
        assert not any(re.fullmatch(pattern_regex(p), code) for p in patterns)
        assert re.fullmatch(pattern_regex("_X."), "0044207")  # the converter works


def test_dids_ring_their_own_clients_queue(plan):
    carrier = plan.contexts[names.FROM_CARRIER]
    for shown in ("442079990000", "+442079990000"):
        target, args = gosub(carrier.extensions[shown][0])
        assert (target.context, args) == (names.INBOUND_QUEUE,
                                          ["acme", "442079990000", "acme-sales"])
    target, args = gosub(carrier.extensions["33199990000"][0])
    assert args == ["beta", "33199990000", "beta-sales"]
    # the extension DIDs are still there
    assert gosub(carrier.extensions["442071234567"][0])[0].context == names.INBOUND


def test_a_queue_call_is_authorized_as_inbound_then_queued_with_a_time_limit(plan):
    steps = check.reachable_steps(plan, names.INBOUND_QUEUE, "s")
    body = [s for s in steps if s.context == names.INBOUND_QUEUE]
    apps = [s.app for s in body]
    handler = next(i for i, s in enumerate(body) if s.args.startswith(
        "CHANNEL(hangup_handler_push)=" + names.SETTLE))
    authorize = next(i for i, s in enumerate(body) if s.app == "AGI")
    limit = next(i for i, s in enumerate(body) if "Set(TIMEOUT(absolute)=" in s.args)
    queue = apps.index("Queue")
    assert handler < authorize < limit < queue
    assert body[authorize].args == f"${{{names.AGI_URL}}}/authorize,${{ARG1}},${{ARG2}},in"
    assert body[limit].app == "ExecIf"
    assert body[limit].args.endswith("?Set(TIMEOUT(absolute)=$[${ICT_MAX_MS} / 1000])")
    assert check.split_top(body[queue].args, ",") == ["${ARG3}", "r"]
    assert "Answer" not in apps and "Dial" not in apps


@pytest.mark.parametrize("bad", [
    with_queue_dids(client("acme"), ("442079990000", "beta-sales")),
    with_queue_dids(client("acme"), ("442079990000", "acme-sa-les")),
    with_queue_dids(client("acme"), ("44x", "acme-sales")),
    with_queue_dids(client("acme", ["1001"], [("442079990000", "1001")]),
                    ("442079990000", "acme-sales")),
])
def test_unsafe_queue_dids_are_refused(bad):
    with pytest.raises(GenerateError):
        render([bad], EMERGENCY)


def test_generated_from_the_database(engine):
    acme, beta = build_tenant(engine, "acme"), build_tenant(engine, "beta")
    with engine.begin() as conn:
        conn.execute(text("INSERT INTO dids (client_id, did, queue_id) VALUES"
                          " (:a, '442079990000', :qa), (:b, '33199990000', :qb)"),
                     {"a": acme.id, "qa": acme.queue_id, "b": beta.id, "qb": beta.queue_id})
        conn.execute(text("INSERT INTO dids (client_id, did, exten) VALUES"
                          " (:a, '442071234567', '1001')"), {"a": acme.id})
    generated = dialplan_from_texts(("g", render(load_clients(engine), EMERGENCY)))
    carrier = generated.contexts[names.FROM_CARRIER]
    assert gosub(carrier.extensions["442079990000"][0])[1] == ["acme", "442079990000",
                                                               "acme-sales"]
    assert gosub(carrier.extensions["33199990000"][0])[1] == ["beta", "33199990000",
                                                              "beta-sales"]
    assert gosub(carrier.extensions["442071234567"][0])[1] == ["acme", "442071234567",
                                                               "acme-1001"]
    for code in ("acme", "beta"):
        assert gosub(generated.contexts[f"client-{code}"].extensions["*11"][0])[1] == [code]


def queue_limit_condition(plan) -> str:
    step = next(s for s in check.reachable_steps(plan, names.INBOUND_QUEUE, "s")
                if s.context == names.INBOUND_QUEUE and "Set(TIMEOUT(absolute)=" in s.args)
    return step.args.split("?", 1)[0]


def sets_the_limit(condition: str, timeout_absolute: str, max_ms: str) -> bool:
    """Evaluate the routine's $[...] condition the way Asterisk's expression parser reads
    this one (numbers, =, >, /, |), with the values the channel would substitute."""
    assert condition.startswith("$[") and condition.endswith("]"), condition
    expr = (condition[2:-1].replace("${TIMEOUT(absolute)}", timeout_absolute)
            .replace("${ICT_MAX_MS}", max_ms))
    assert re.fullmatch(r"[0-9. =>/|]+", expr), expr   # nothing left to substitute
    return bool(eval(expr.replace(" = ", " == ").replace("|", " or ")))


@pytest.mark.parametrize("timeout_absolute, max_ms, sets", [
    # credit slices: authorize set TIMEOUT(absolute) to the 300 s slice (func_timeout
    # reads the seconds left) and ICT_MAX_MS to --max-call-seconds: the slice must stand
    ("299.981", "10800000", False),
    ("0.512", "10800000", False),
    # no slices: nothing set yet (reads 0): the routine sets the authorized maximum
    ("0", "1188000", True),
    # a longer limit than authorized (set by anything else) is cut to the maximum
    ("20000.000", "1188000", True),
])
def test_a_queue_call_keeps_the_limit_authorize_set(plan, timeout_absolute, max_ms, sets):
    """Seen on a real Asterisk: under credit slices the routine overwrote the slice with
    --max-call-seconds, and a $0.10 client talked 30 s on a 10 s reservation."""
    assert sets_the_limit(queue_limit_condition(plan), timeout_absolute, max_ms) == sets
