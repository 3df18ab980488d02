"""The environment block Asterisk sends first: `key: value` lines ending with an empty line.

Values are not escaped by Asterisk. `agi_network_script` is the text after `host/` in the
URL, query string included and not URL-decoded (`authorize?x=1`); the AGI() arguments
arrive as `agi_arg_1` ... `agi_arg_N`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Iterable, Mapping
from urllib.parse import parse_qsl

_KEY = re.compile(r"^[A-Za-z0-9_]+$")
_ARG = re.compile(r"^agi_arg_(\d+)$")


class MalformedEnvironment(ValueError):
    """A line of the environment block is not `key: value`."""


@dataclass(frozen=True)
class AgiEnvironment:
    """What Asterisk told us about the call, read-only.

    `script` is `agi_network_script` without its query string, `query` the query string's
    parameters (last value wins), `args` the `agi_arg_N` values in numeric order, `raw`
    every key as sent.
    """

    raw: Mapping[str, str]
    script: str
    query: Mapping[str, str]
    args: tuple[str, ...]
    network_script: str = field(repr=False, default="")

    def get(self, key: str, default: str = "") -> str:
        return self.raw.get(key, default)

    @property
    def uniqueid(self) -> str:
        return self.get("agi_uniqueid")

    @property
    def channel(self) -> str:
        return self.get("agi_channel")

    @property
    def callerid(self) -> str:
        return self.get("agi_callerid")

    @property
    def context(self) -> str:
        return self.get("agi_context")

    @property
    def extension(self) -> str:
        return self.get("agi_extension")

    @property
    def accountcode(self) -> str:
        return self.get("agi_accountcode")


def parse_line(line: str) -> tuple[str, str]:
    """One `key: value` line as (key, value). Raises MalformedEnvironment."""
    key, sep, value = line.partition(":")
    if not sep or not _KEY.match(key):
        raise MalformedEnvironment(f"environment line is not 'key: value': {line[:80]!r}")
    return key, value[1:] if value.startswith(" ") else value


def build_environment(pairs: Iterable[tuple[str, str]]) -> AgiEnvironment:
    """The environment for the given (key, value) pairs (a later key wins)."""
    raw = dict(pairs)
    network_script = raw.get("agi_network_script", "")
    script, _, query_string = network_script.partition("?")
    query = dict(parse_qsl(query_string, keep_blank_values=True))
    numbered = sorted((int(m.group(1)), value) for key, value in raw.items()
                      if (m := _ARG.match(key)))
    return AgiEnvironment(raw=MappingProxyType(raw), script=script.strip("/"),
                          query=MappingProxyType(query),
                          args=tuple(value for _, value in numbered),
                          network_script=network_script)


def parse_environment(lines: Iterable[str]) -> AgiEnvironment:
    """The environment for the block's lines (without the closing empty line)."""
    return build_environment(parse_line(line) for line in lines)
