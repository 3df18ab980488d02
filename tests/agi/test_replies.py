"""The AGI reply grammar, one pure function."""

import pytest

from fastagi.agi.replies import (AgiReply, MalformedReply, closes_block, is_hangup_event,
                                 opens_block, parse_reply)

CASES = [
    # line(s), code, result, data, endpos
    (["200 result=1"], 200, "1", None, None),
    (["200 result=0"], 200, "0", None, None),
    (["200 result=-1"], 200, "-1", None, None),
    (["200 result="], 200, "", None, None),
    (["200 result=1 (value)"], 200, "1", "value", None),
    (["200 result=1 ()"], 200, "1", "", None),
    (["200 result=1 (a (nested) value)"], 200, "1", "a (nested) value", None),
    (["200 result=1 (ends with paren))"], 200, "1", "ends with paren)", None),
    (["200 result=1 (endpos=9 inside)"], 200, "1", "endpos=9 inside", None),
    (["200 result=0 endpos=105920"], 200, "0", None, 105920),
    (["200 result=49 (timeout) endpos=8000"], 200, "49", "timeout", 8000),
    (["100 result=0 Trying..."], 100, "0", None, None),
    (["510 Invalid or unknown command"], 510, None, None, None),
    (["511 Command Not Permitted on a dead channel or intercept routine"], 511, None, None,
     None),
    (["520 Invalid command syntax.  Proper usage not available."], 520, None, None, None),
    (["520-Invalid command syntax.  Proper usage follows:",
      "Usage: SET VARIABLE <variablename> <value>", "",
      "520 End of proper usage."], 520, None, None, None),
]


@pytest.mark.parametrize("lines, code, result, data, endpos", CASES)
def test_parse_reply(lines, code, result, data, endpos):
    reply = parse_reply(lines)
    assert (reply.code, reply.result, reply.data, reply.endpos) == (code, result, data, endpos)
    assert reply.lines == tuple(lines)
    assert reply.text == "\n".join(lines)


@pytest.mark.parametrize("lines", [
    [], ["HANGUP"], ["garbage"], ["\x16\x03 tls"], ["200 noresult"], ["20 result=1"],
    ["200 result=1 (unclosed"], ["520-Usage: never ends"], ["200 result=1", "200 result=1"],
    ["510-not a block", "510 end"],
])
def test_malformed_replies_are_refused(lines):
    with pytest.raises(MalformedReply):
        parse_reply(lines)


def test_reply_helpers():
    assert parse_reply(["200 result=7"]).result_int == 7
    assert parse_reply(["200 result="]).result_int is None
    assert parse_reply(["200 result=1"]).ok and not parse_reply(["511 dead"]).ok
    assert is_hangup_event("HANGUP") and is_hangup_event("HANGUP\r")
    assert not is_hangup_event("200 result=1 (HANGUP)")
    assert opens_block("520-Invalid") and not opens_block("520 Invalid")
    assert closes_block("520 End of proper usage.") and not closes_block("520-x")
    with pytest.raises(Exception):
        parse_reply(["200 result=1"]).code = 500  # frozen
    assert isinstance(parse_reply(["200 result=1"]), AgiReply)
