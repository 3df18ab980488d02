"""The shipped dialplan, together with extensions.conf and a generated clients file, is
complete and consistent with the server's contract."""

from __future__ import annotations

import re

import pytest

from fastagi import channel_vars, reasons
from fastagi.dialplan import check, names
from fastagi.dialplan.confparse import dialplan_from_texts
from fastagi.routes import ROUTES
from fastagi.arguments.calls import parse_settle
from tests.dialplan.helpers import DIALPLAN, EXTENSIONS_CONF



def steps_in(plan, context):
    return [s for steps in plan.contexts[context].extensions.values() for s in steps]


def test_no_problems(plan):
    assert check.problems(plan) == []


def test_checker_catches_breakage():
    broken = DIALPLAN.read_text().replace("?ict-reject,s,1", "?ict-rejekt,s,1", 1) \
        .replace("${ICT_CALL_ID}", "${ICT_CALLID}", 1).replace("Progress()", "Progres()", 1) \
        .replace("Goto(hangup)", "Goto(hangupp)", 1)
    found = "\n".join(check.problems(dialplan_from_texts(
        (str(EXTENSIONS_CONF), EXTENSIONS_CONF.read_text()), ("broken", broken))))
    assert "ict-rejekt,s,1 does not exist" in found
    assert "${ICT_CALLID}" in found
    assert "unknown application Progres" in found
    assert "hangupp does not exist" in found


def test_ict_names_are_the_servers_constants():
    text = DIALPLAN.read_text()
    used = set(re.findall(r"\bICT_[A-Z_]+\b", text))
    assert used <= set(channel_vars.ALL), used - set(channel_vars.ALL)
    # and the dialplan reads everything authorize answers with that it needs
    for name in (channel_vars.RESULT, channel_vars.REASON, channel_vars.CAUSE,
                 channel_vars.CALL_ID, channel_vars.MAX_MS, channel_vars.DIAL):
        assert "${" + name + "}" in text, name
    assert f'"${{{channel_vars.RESULT}}}" != "{channel_vars.ALLOW}"' in text
    # dialplan-only globals stay out of the ICT_ namespace
    assert not any(g.startswith("ICT_") for g in names.GLOBALS)


def test_agi_scripts_are_served(plan):
    used = {script for _, script in check.agi_scripts(plan)}
    assert used == {names.AUTHORIZE, names.SETTLE_SCRIPT, names.HEALTH, names.FAILOVER,
                    names.AGENT_LOGIN_SCRIPT, names.AGENT_LOGOUT_SCRIPT}
    assert used <= set(ROUTES), f"the server does not route {sorted(used - set(ROUTES))}"


def test_script_sets_match_contract():
    every = {v for values in names.SCRIPT_SETS.values() for v in values}
    assert every == set(channel_vars.ALL)


def test_every_reason_has_its_own_prompt_branch(plan):
    compared = set()
    for step in steps_in(plan, names.REJECT):
        match = re.match(r'^\$\["\$\{ICT_REASON\}" = "([a-z-]+)"\]\?', step.args)
        if step.app == "GotoIf" and match:
            compared.add(match.group(1))
    assert compared == set(reasons.ALL)


def test_reasons_set_in_the_dialplan_use_the_servers_cause(plan):
    sets = [s.args for s in plan.steps() if s.app == "Set" and s.args.startswith("ICT_")]
    reason_values = [a.split("=", 1)[1] for a in sets if a.startswith("ICT_REASON=")]
    cause_values = [a.split("=", 1)[1] for a in sets if a.startswith("ICT_CAUSE=")]
    assert reason_values and len(reason_values) == len(cause_values)
    for reason, cause in zip(reason_values, cause_values):
        assert reason in reasons.ALL
        assert int(cause) == reasons.cause_for(reason)


def outbound_body(plan):
    return steps_in(plan, names.OUTBOUND)


def test_outbound_order_of_operations(plan):
    steps = outbound_body(plan)
    apps = [s.app for s in steps]
    agi = apps.index("AGI")
    assert steps[agi].args.endswith("/authorize,${ARG1},${ARG2},out")
    push = next(i for i, s in enumerate(steps)
                if s.args.startswith("CHANNEL(hangup_handler_push)=ict-settle,s,1"))
    dial = apps.index("Dial")
    validate = next(i for i, s in enumerate(steps) if "FILTER(+0123456789,${ARG2})" in s.args)
    assert validate < push < agi < dial
    assert steps[agi].args == "${ICTCONTACT_AGI}/authorize,${ARG1},${ARG2},out"
    # right after the AGI: fail closed when it could not run, then reject, then the limit
    assert steps[agi + 1].args == '$["${AGISTATUS}" != "SUCCESS"]?ict-fail-closed,s,1'
    assert steps[agi + 2].args == '$["${ICT_RESULT}" != "ALLOW"]?ict-reject,s,1'
    assert "0${ICT_MAX_MS} < 1" in steps[agi + 3].args
    assert steps[dial].args == \
        "${ICT_DIAL},${ICTCONTACT_RING_TIMEOUT},L(${ICT_MAX_MS}:60000:30000)"
    assert "Answer" not in apps


def test_outbound_failover_loop(plan):
    """After Dial: only with a trunk route (ICT_TRUNK) and only on CHANUNAVAIL/CONGESTION
    does the call go to `failover`; its answer is checked (fail closed, DONE, REJECT, no
    target) before it loops back to the same Dial, at most 10 Dials per call."""
    steps = outbound_body(plan)
    dial = next(i for i, s in enumerate(steps) if s.app == "Dial")
    assert steps[dial].label == "dial"
    after = steps[dial + 1:]
    assert after[0].args == '$["${ICT_TRUNK}" = ""]?ict-after-dial,s,1'
    assert after[1].args == ('$["${DIALSTATUS}" != "CHANUNAVAIL" & "${DIALSTATUS}" != '
                             '"CONGESTION"]?ict-after-dial,s,1')
    assert after[2].args == "$[${ICTCONTACT_TRIES} >= 10]?ict-after-dial,s,1"
    agi = next(i for i, s in enumerate(after) if s.app == "AGI")
    args = check.split_top(after[agi].args, ",")
    assert args == ["${ICTCONTACT_AGI}/failover", "${FILTER(0123456789,${ICT_CALL_ID})}",
                    "${DIALSTATUS}", "${FILTER(0123456789,${HANGUPCAUSE})}",
                    "${FILTER(-_abcdefghijklmnopqrstuvwxyz0123456789,${ICT_TRUNK})}"]
    assert after[agi + 1].args == '$["${AGISTATUS}" != "SUCCESS"]?ict-fail-closed,s,1'
    assert after[agi + 2].args == '$["${ICT_RESULT}" = "DONE"]?ict-after-dial,s,1'
    assert after[agi + 3].args == '$["${ICT_RESULT}" != "ALLOW"]?ict-reject,s,1'
    assert "0${ICT_MAX_MS} < 1" in after[agi + 4].args and '"${ICT_TRUNK}" = ""' in after[agi + 4].args
    assert (after[agi + 5].app, after[agi + 5].args) == ("Goto", "dial")
    # the counter starts before the loop, grows before each failover
    start = next(i for i, s in enumerate(steps) if s.args == "ICTCONTACT_TRIES=1")
    assert start < dial
    assert any(s.args == "ICTCONTACT_TRIES=$[${ICTCONTACT_TRIES} + 1]" for s in after[:agi])


def test_inbound_order_of_operations(plan):
    steps = steps_in(plan, names.INBOUND)
    apps = [s.app for s in steps]
    agi = apps.index("AGI")
    assert steps[agi].args == "${ICTCONTACT_AGI}/authorize,${ARG1},${ARG2},in"
    assert steps[agi + 1].args == '$["${AGISTATUS}" != "SUCCESS"]?ict-fail-closed,s,1'
    assert steps[agi + 2].args == '$["${ICT_RESULT}" != "ALLOW"]?ict-reject,s,1'
    dial = apps.index("Dial")
    assert "L(${ICT_MAX_MS}:60000:30000)" in steps[dial].args
    assert "Answer" not in apps


# The agent feature codes are internal calls (no carrier, never billed) that must answer
# to play prompts and read keys; no call that is billed ever reaches them.
AGENT_ROUTINES = (names.AGENT_LOGIN, names.AGENT_LOGOUT)


def test_no_answer_anywhere_before_dial(plan):
    billed = [s for s in plan.steps() if s.context not in AGENT_ROUTINES]
    assert not any(s.app == "Answer" for s in billed)
    for step in billed:
        if step.app == "Playback":
            assert step.args.endswith(",noanswer"), step
    for routine in (names.OUTBOUND, names.INBOUND, names.INBOUND_QUEUE, names.INTERNAL):
        reached = {s.context for s in check.reachable_steps(plan, routine, "s")}
        assert not reached & set(AGENT_ROUTINES), routine


def test_fail_closed_is_cause_41(plan):
    steps = steps_in(plan, names.FAIL_CLOSED)
    assert steps[-1].app == "Hangup" and steps[-1].args == "41"
    assert not any(s.app == "Dial" for s in check.reachable_steps(plan, names.FAIL_CLOSED, "s"))
    reject = check.reachable_steps(plan, names.REJECT, "s")
    assert not any(s.app == "Dial" for s in reject)
    assert reject[-1].args.startswith("${IF") and "${ICT_CAUSE}" in reject[-1].args


def test_settle_handler(plan):
    steps = steps_in(plan, names.SETTLE)
    agi = next(s for s in steps if s.app == "AGI")
    args = check.split_top(agi.args, ",")
    assert args[0] == "${ICTCONTACT_AGI}/settle"
    # milliseconds: ANSWEREDTIME is cut down to whole seconds (app_dial set_duration_var)
    assert args[1:3] == ["${ICT_CALL_ID}", "ms=${ANSWEREDTIME_MS}"]
    assert "${DIALSTATUS}" in args[3]
    assert steps[-1].app == "Return", "a hangup handler must Return()"
    # every path through the handler ends in Return (the skip jumps to it)
    skip = steps[0]
    assert skip.app == "GotoIf" and skip.args.endswith("?done")
    assert steps[-1].label == "done"


@pytest.mark.parametrize("answered_ms, dial_status, expected_ms, expected_status", [
    ("4568", "ANSWER", 4568, "ANSWER"),    # 4.568 s talked: billed from 4,568 ms
    ("0", "ANSWER", 0, "ANSWER"),          # answered for under 1 ms: Asterisk says 0
    ("", "NOANSWER", None, "NOANSWER"),    # never bridged: app_dial leaves it empty
    ("", "", None, "CANCEL"),              # caller hung up first: no DIALSTATUS
])
def test_settle_handler_arguments_are_what_settle_parses(plan, answered_ms, dial_status,
                                                         expected_ms, expected_status):
    """The handler's AGI arguments, with the values Asterisk substitutes, parse to the
    talk time in ms that settle bills."""
    agi = next(s for s in steps_in(plan, names.SETTLE) if s.app == "AGI")
    args = check.split_top(agi.args, ",")[1:]
    status = args[2]
    assert status.startswith("${IF(") and ":${DIALSTATUS})}" in status
    values = [a.replace("${ICT_CALL_ID}", "17").replace("${ANSWEREDTIME_MS}", answered_ms)
              for a in args[:2]] + [dial_status or "CANCEL"]
    request = parse_settle(tuple(values))
    assert (request.call_id, request.answered_ms, request.dial_status,
            request.whole_seconds) == (17, expected_ms, expected_status, False)


def test_queue_call_counts_as_answered_from_milliseconds(plan):
    """Queue() leaves no DIALSTATUS: the routine derives ANSWER from ANSWEREDTIME_MS, so a
    0.3 s talk (ANSWEREDTIME 0) still counts as answered."""
    steps = steps_in(plan, names.INBOUND_QUEUE)
    derive = [s for s in steps if s.app == "ExecIf" and "DIALSTATUS=ANSWER" in s.args]
    assert [s.args.split("?")[0] for s in derive] == ["$[0${ANSWEREDTIME_MS} > 0]"]


def test_emergency_routine_never_reaches_the_agi(plan):
    reached = check.reachable_steps(plan, names.EMERGENCY, "s")
    assert not any(s.app == "AGI" for s in reached)
    assert any(s.app == "Dial" and "${ICTCONTACT_EMERGENCY_TRUNK}" in s.args for s in reached)
