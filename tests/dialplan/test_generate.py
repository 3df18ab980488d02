"""Generated contexts: one per client, isolated, emergency before anything else."""

from __future__ import annotations

import pytest

from fastagi.dialplan import check, names
from fastagi.dialplan.confparse import dialplan_from_texts
from fastagi.dialplan.generate import GenerateError, render
from fastagi.services import ServeConfig
from tests.dialplan.helpers import DIALPLAN, EMERGENCY, SAMPLE_CLIENTS, client



def gosub_args(step):
    target = check.parse_target(step.args, step)
    return target, check.split_top(target.args, ",")


def test_one_context_per_client(plan):
    generated = {c for c in plan.contexts if c.startswith(names.CLIENT_CONTEXT_PREFIX)}
    assert generated == {"client-acme", "client-beta", "client-gamma-2", "client-empty"}


@pytest.mark.parametrize("code", [c.code for c in SAMPLE_CLIENTS])
def test_context_passes_only_its_own_code_and_endpoints(plan, code):
    context = plan.contexts[names.client_context(code)]
    own = {e.endpoint for c in SAMPLE_CLIENTS if c.code == code for e in c.extensions}
    assert not context.includes
    for exten, steps in context.extensions.items():
        first = steps[0]
        assert first.app == "Gosub"
        target, args = gosub_args(first)
        assert target.context in (names.EMERGENCY, names.INTERNAL, names.OUTBOUND,
                                  names.AGENT_LOGIN, names.AGENT_LOGOUT)
        # tenant identity: a literal, never caller input
        assert args[0] == code and "$" not in args[0]
        if target.context in (names.AGENT_LOGIN, names.AGENT_LOGOUT):
            assert args == [code]
            assert exten == {names.AGENT_LOGIN: names.AGENT_LOGIN_CODE,
                             names.AGENT_LOGOUT: names.AGENT_LOGOUT_CODE}[target.context]
        elif target.context == names.INTERNAL:
            assert args[1] in own and args[1] == f"{code}-{exten}"
        elif target.context == names.OUTBOUND:
            assert exten in ("_X.", "_+X.") and args[1] == "${EXTEN}"
        else:
            assert args[1] == exten and "$" not in args[1]
        assert all(s.app in ("Gosub", "Hangup") for s in steps)


def endpoints_reachable(plan, context):
    """Every literal endpoint any call entering `context` can be dialled to."""
    found = set()
    for steps in plan.contexts[context].extensions.values():
        for step in steps:
            for kind, target in check.step_targets(step):
                if kind == "gosub" and target.context in (names.INTERNAL, names.INBOUND):
                    found.add(check.split_top(target.args, ",")[-1])
    return found


def test_isolation_between_tenants(plan):
    acme = endpoints_reachable(plan, "client-acme")
    beta = endpoints_reachable(plan, "client-beta")
    assert acme == {"acme-1001", "acme-1002"}
    assert beta == {"beta-1001", "beta-2001"}
    # beta's 1001 is dialled from acme as its OWN 1001; beta's 2001 does not exist for
    # acme, so from acme it is just a number for the outbound route (authorize decides).
    assert "2001" not in plan.contexts["client-acme"].extensions
    # the shared routines dial only what they are given or what the server answers
    for routine in (names.INTERNAL, names.INBOUND, names.OUTBOUND, names.EMERGENCY):
        for step in check.reachable_steps(plan, routine, "s"):
            if step.app == "Dial":
                dial_to = check.split_top(step.args, ",")[0]
                assert dial_to in ("${ICT_DIAL}", "${ICTCONTACT_CONTACTS}",
                                   "PJSIP/${ARG2}@${ICTCONTACT_EMERGENCY_TRUNK}"), dial_to
            if step.app == "Set" and step.args.startswith("ICTCONTACT_CONTACTS="):
                assert step.args.endswith("${PJSIP_DIAL_CONTACTS(${ARG3})}") or \
                    step.args.endswith("${PJSIP_DIAL_CONTACTS(${ARG2})}")


def test_the_agi_client_code_comes_from_the_context(plan):
    for routine in (names.OUTBOUND, names.INBOUND):
        agi = [s for s in check.reachable_steps(plan, routine, "s") if s.app == "AGI"
               and "/authorize," in s.args]
        assert agi and all(check.split_top(s.args, ",")[1] == "${ARG1}" for s in agi)
    text = DIALPLAN.read_text()
    assert "authorize,${CALLERID" not in text and "authorize,${EXTEN}" not in text


@pytest.mark.parametrize("code", [c.code for c in SAMPLE_CLIENTS])
@pytest.mark.parametrize("number", EMERGENCY)
def test_emergency_is_an_exact_extension_without_agi(plan, code, number):
    context = plan.contexts[names.client_context(code)]
    # Asterisk prefers an exact extension to any pattern, so _X. cannot take it
    steps = context.extensions[number]
    target, args = gosub_args(steps[0])
    assert target.context == names.EMERGENCY and args == [code, number]
    reached = check.reachable_steps(plan, context.name, number)
    assert not any(s.app == "AGI" for s in reached)
    # and it comes first in the context
    assert list(context.extensions)[:len(EMERGENCY)] == list(EMERGENCY)


def test_extension_equal_to_an_emergency_number_is_not_generated():
    text = render([client("acme", ["112", "1001"])], EMERGENCY)
    plan = dialplan_from_texts(("g", text))
    steps = plan.contexts["client-acme"].extensions["112"]
    assert check.parse_target(steps[0].args, steps[0]).context == names.EMERGENCY


def test_dids_ring_their_own_client_only(plan):
    carrier = plan.contexts[names.FROM_CARRIER]
    assert set(carrier.extensions) == {"442071234567", "+442071234567",
                                       "33140000000", "+33140000000"}
    for exten, steps in carrier.extensions.items():
        target, args = gosub_args(steps[0])
        assert target.context == names.INBOUND
        code, did, endpoint = args
        assert did == exten.lstrip("+")
        assert endpoint.startswith(code + "-") and endpoint[len(code) + 1:].isdigit()
    _, args = gosub_args(carrier.extensions["442071234567"][0])
    assert args == ["acme", "442071234567", "acme-1001"]


def test_generation_is_deterministic_and_ordered():
    shuffled = list(reversed(SAMPLE_CLIENTS))
    assert render(shuffled, EMERGENCY) == render(SAMPLE_CLIENTS, EMERGENCY)


@pytest.mark.parametrize("bad", [
    client("Bad Code"),
    client("acme", ["10a1"]),
    client("acme", dids=[("0x12", "1001")]),
])
def test_unsafe_values_are_refused(bad):
    with pytest.raises(GenerateError):
        render([bad], EMERGENCY)


def test_endpoint_of_another_client_is_refused():
    from fastagi.store.dialplan import Client, Extension
    sneaky = Client("acme", "Acme", "active", (Extension("1001", "beta-1001"),))
    with pytest.raises(GenerateError):
        render([sneaky], EMERGENCY)


def test_duplicate_did_is_refused():
    with pytest.raises(GenerateError):
        render([client("a", ["10"], [("123", "10")]), client("b", ["10"], [("123", "10")])])


def test_a_client_name_cannot_inject_dialplan():
    evil = client("acme", name="x\n[client-beta]\nexten => _X.,1,Dial(PJSIP/beta-1001)")
    text = render([evil, client("beta", ["1001"])], EMERGENCY)
    plan = dialplan_from_texts(("g", text))
    assert "_X." in plan.contexts["client-beta"].extensions
    assert all(s.app in ("Gosub", "Hangup") for s in plan.steps())


def test_emergency_numbers_agree_with_the_server():
    from fastagi.emergency import DEFAULT_NUMBERS as DEFAULT_EMERGENCY_NUMBERS
    assert set(DEFAULT_EMERGENCY_NUMBERS) == set(ServeConfig().emergency_numbers)
