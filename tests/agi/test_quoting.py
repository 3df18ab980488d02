"""Values reach Asterisk exactly: escaped, quoted, never able to start a new command."""

import pytest
from hypothesis import given, strategies as st

from fastagi.agi.errors import CommandTooLong, UnsafeValue
from fastagi.testing.fake_asterisk import split_args
from fastagi.agi.quoting import MAX_LINE_BYTES, command_line, flatten, quote


@pytest.mark.parametrize("value, quoted", [
    ("plain", '"plain"'),
    ("", '""'),
    ("two words", '"two words"'),
    ('say "hi"', '"say \\"hi\\""'),
    ("back\\slash", '"back\\\\slash"'),
    ('\\"', '"\\\\\\""'),
    ("PJSIP/0044207@carrier,30,L(60000)", '"PJSIP/0044207@carrier,30,L(60000)"'),
])
def test_quote(value, quoted):
    assert quote(value) == quoted


@pytest.mark.parametrize("value", ["a\nSET VARIABLE X 1", "a\rb", "nul\x00", "\n"])
def test_line_breaks_and_nul_are_refused(value):
    with pytest.raises(UnsafeValue):
        quote(value)
    with pytest.raises(UnsafeValue):
        command_line("SET VARIABLE", "NAME", value)


def test_flatten_makes_human_text_safe():
    assert flatten("line1\nline2\r\x00end") == "line1 line2  end"


def test_command_line_bytes():
    assert command_line("SET VARIABLE", "NAME", "two words") == \
        b'SET VARIABLE "NAME" "two words"\n'
    assert command_line("NOOP") == b"NOOP\n"
    assert command_line("VERBOSE", "é") == 'VERBOSE "é"\n'.encode()


def test_line_limit():
    overhead = len(b'VERBOSE ""\n')
    fits = "x" * (MAX_LINE_BYTES - 1 - overhead)
    assert len(command_line("VERBOSE", fits)) == MAX_LINE_BYTES - 1
    with pytest.raises(CommandTooLong, match="at most 8191 bytes"):
        command_line("VERBOSE", fits + "x")
    # escaping counts: 4096 quotes become 8192 bytes
    with pytest.raises(CommandTooLong):
        command_line("VERBOSE", '"' * 4096)


@given(st.lists(st.text(alphabet=st.characters(blacklist_characters="\n\r\x00",
                                               blacklist_categories=("Cs",))),
                min_size=1, max_size=5))
def test_asterisk_parses_back_exactly_what_was_quoted(values):
    line = command_line("SET VARIABLE", *values).decode()
    assert line.count("\n") == 1 and line.endswith("\n")
    assert split_args(line[:-1]) == ["SET", "VARIABLE", *values]
