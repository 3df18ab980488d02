"""The environment block Asterisk sends first."""

import pytest

from fastagi.agi.environment import MalformedEnvironment, parse_environment, parse_line
from fastagi.testing.fake_asterisk import ENVIRONMENT_KEYS, environment_pairs


def block(script, args=(), **overrides):
    return [f"{k}: {v}" for k, v in environment_pairs(script, args, overrides)]


def test_script_query_and_args_in_numeric_order():
    args = [f"a{n}" for n in range(1, 13)]
    lines = block("authorize?x=1&y=two%20words&empty=", args)
    lines.reverse()  # order of lines must not matter for the args
    env = parse_environment(lines)
    assert env.script == "authorize"
    assert env.network_script == "authorize?x=1&y=two%20words&empty="
    assert dict(env.query) == {"x": "1", "y": "two words", "empty": ""}
    assert env.args == tuple(args)  # agi_arg_10 after agi_arg_9
    assert env.uniqueid == "1700000000.1"
    assert env.channel == "PJSIP/acme-00000001"
    assert env.accountcode == ""
    assert set(ENVIRONMENT_KEYS) <= set(env.raw)


def test_values_are_taken_verbatim():
    env = parse_environment(["agi_network_script: health", "agi_calleridname: A: B \"c\"",
                             "agi_accountcode:", "agi_arg_1:  two spaces"])
    assert env.get("agi_calleridname") == 'A: B "c"'
    assert env.accountcode == ""
    assert env.args == (" two spaces",)
    assert env.script == "health" and dict(env.query) == {}


def test_no_script_is_empty():
    assert parse_environment(["agi_network: yes"]).script == ""


@pytest.mark.parametrize("line", ["garbage", "no colon here", ": value", "bad key: x"])
def test_malformed_lines(line):
    with pytest.raises(MalformedEnvironment):
        parse_line(line)
