"""Asterisk's side of a FastAGI session, for tests, benchmarks and `ictcontact simulate`.

`FakeAsterisk` connects like res_agi does: it sends the environment block (keys in
Asterisk's order, `agi_network_script` with its query string, `agi_arg_N`), then answers
each command line the server sends the way res_agi does — parsing it with Asterisk's
quoting rules and keeping a dict of channel variables — and never closes the connection
itself: like Asterisk, it waits for the server to close. `Faults` scripts the misbehaviour
tests need: HANGUP before a reply, a dead channel, garbage, silence, blank lines.
`keys` scripts what the caller types at each GET DATA, in order (see KEYS_*).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Mapping, Sequence

from twisted.internet.defer import Deferred
from twisted.internet.endpoints import TCP4ClientEndpoint, connectProtocol
from twisted.internet.error import ConnectionDone
from twisted.internet.interfaces import IDelayedCall, IReactorTCP, IReactorTime
from twisted.protocols.basic import LineOnlyReceiver
from twisted.python.failure import Failure

from fastagi.agi.quoting import ENCODING, ERRORS

MAX_ARGS = 128  # Asterisk truncates commands with more arguments

# The environment keys res_agi sends, in its order (the AGI() arguments follow).
ENVIRONMENT_KEYS = (
    "agi_network", "agi_network_script", "agi_request", "agi_channel", "agi_language",
    "agi_type", "agi_uniqueid", "agi_version", "agi_callerid", "agi_calleridname",
    "agi_callingpres", "agi_callingani2", "agi_callington", "agi_callingtns", "agi_dnid",
    "agi_rdnis", "agi_context", "agi_extension", "agi_priority", "agi_enhanced",
    "agi_accountcode", "agi_threadid",
)

# Commands res_agi still runs on a hung-up channel; the others get 511.
DEAD_OK = {"GET VARIABLE", "SET VARIABLE", "GET FULL VARIABLE", "VERBOSE", "NOOP", "EXEC",
           "DATABASE GET", "DATABASE PUT", "DATABASE DEL", "DATABASE DELTREE"}
KNOWN = DEAD_OK | {"ANSWER", "HANGUP", "STREAM FILE", "WAIT FOR DIGIT", "GET DATA",
                   "CHANNEL STATUS", "SAY DIGITS", "SET CONTEXT", "SET EXTENSION"}

INVALID = b"510 Invalid or unknown command\n"
DEAD = b"511 Command Not Permitted on a dead channel or intercept routine\n"
GARBAGE = b"\x16\x03\x01\x00\xa5 \xff\xfe<html>garbage</html>\n"

# Special entries of `keys`: nothing typed before the timeout, or the caller hangs up.
KEYS_TIMEOUT = None
KEYS_HANGUP = "HANGUP"


def usage_block(usage: str) -> bytes:
    """A multi-line 520 reply as res_agi sends it for a command's bad syntax."""
    return (b"520-Invalid command syntax.  Proper usage follows:\n"
            + usage.encode(ENCODING) + b"\n520 End of proper usage.\n")


def split_args(line: str) -> list[str]:
    """Split a command line as res_agi does: blanks separate words, `"` toggles quoting
    (a quote after blanks starts a word, so `""` is an empty word), `\\` makes the next
    character literal."""
    words: list[str] = []
    current: list[str] | None = None
    quoted = escaped = False
    for char in line:
        if escaped or (char not in '"\\' and (quoted or char not in " \t")):
            current = [] if current is None else current
            current.append(char)
            escaped = False
        elif char == "\\":
            escaped = True
            current = [] if current is None else current
        elif char == '"':
            quoted = not quoted
            current = [] if current is None else current
        elif current is not None:  # an unquoted blank ends the word
            words.append("".join(current))
            current = None
    if current is not None:
        words.append("".join(current))
    return words[:MAX_ARGS]


@dataclass(frozen=True)
class Faults:
    """Scripted misbehaviour; commands are counted from 1 in arrival order."""

    hangup_at: int | None = None     # write HANGUP when command k arrives, before its reply
    dead: bool = False               # the channel is already hung up (a hangup handler)
    silent_from: int | None = None   # never answer command k or any later one
    scripted: Mapping[int, bytes] = field(default_factory=dict)  # raw reply to command k
    env_garbage: bytes | None = None  # sent instead of the environment block
    env_stall: bool = False          # send half the environment block, then nothing
    blank_lines: int = 0             # extra empty lines after the environment block


@dataclass(frozen=True)
class SessionResult:
    """What one session looked like from Asterisk's side."""

    commands: tuple[str, ...]          # every command line the server sent, in order
    received: bytes                    # every byte the server sent
    variables: Mapping[str, str]       # the channel's variables at the end
    set_by_server: Mapping[str, str]   # variables the server set (last value), in order
    executed: tuple[tuple[str, ...], ...]  # EXEC commands: (app, data...)
    server_closed: bool                # the server closed the connection (we did not)
    hangup_sent: bool
    elapsed: float                     # seconds from connected to closed


def environment_pairs(script: str, args: Sequence[str] = (),
                      overrides: Mapping[str, str] | None = None,
                      host: str = "127.0.0.1", port: int = 4573,
                      uniqueid: str = "1700000000.1") -> list[tuple[str, str]]:
    """The environment block Asterisk sends for `AGI(agi://host:port/script,args...)`."""
    values = {
        "agi_network": "yes", "agi_network_script": script,
        "agi_request": f"agi://{host}:{port}/{script}",
        "agi_channel": "PJSIP/acme-00000001", "agi_language": "en", "agi_type": "PJSIP",
        "agi_uniqueid": uniqueid, "agi_version": "22.10.1",
        "agi_callerid": "2125550100", "agi_calleridname": "Acme Sales",
        "agi_callingpres": "0", "agi_callingani2": "0", "agi_callington": "0",
        "agi_callingtns": "0", "agi_dnid": "0044207", "agi_rdnis": "unknown",
        "agi_context": "client-acme", "agi_extension": "0044207", "agi_priority": "2",
        "agi_enhanced": "0.0", "agi_accountcode": "", "agi_threadid": "140243219187264",
    }
    extra: dict[str, str] = {}
    for key, value in (overrides or {}).items():
        key = key if key.startswith("agi_") else "agi_" + key
        (values if key in values else extra)[key] = value
    pairs = [(key, values[key]) for key in ENVIRONMENT_KEYS]
    pairs += list(extra.items())
    pairs += [(f"agi_arg_{n}", arg) for n, arg in enumerate(args, start=1)]
    return pairs


class FakeAsterisk(LineOnlyReceiver):
    """res_agi's side of one session. `done` fires with a SessionResult when the
    connection closes (by the server, or by `give_up`)."""

    delimiter = b"\n"
    MAX_LENGTH = 1 << 20

    def __init__(self, clock: IReactorTime, env: Sequence[tuple[str, str]],
                 variables: Mapping[str, str] | None = None,
                 faults: Faults | None = None, keys: Sequence[str | None] = ()) -> None:
        self._clock = clock
        self._keys = list(keys)
        self._env = list(env)
        self.faults = faults or Faults()
        self.variables: dict[str, str] = dict(variables or {})
        self.set_by_server: dict[str, str] = {}
        self.commands: list[str] = []
        self.executed: list[tuple[str, ...]] = []
        self.received = bytearray()
        self.dead = self.faults.dead
        self.hangup_sent = False
        self.gave_up = False
        self.started = 0.0
        self.done: Deferred[SessionResult] = Deferred()
        self._timer: IDelayedCall | None = None

    def connectionMade(self) -> None:
        self.started = self._clock.seconds()
        faults = self.faults
        if faults.env_garbage is not None:
            self.transport.write(faults.env_garbage)
            return
        lines = [f"{key}: {value}\n".encode(ENCODING, ERRORS) for key, value in self._env]
        if faults.env_stall:
            self.transport.write(b"".join(lines[:len(lines) // 2]))
            return
        self.transport.write(b"".join(lines) + b"\n" + b"\n" * faults.blank_lines)

    def dataReceived(self, data: bytes) -> None:
        self.received += data
        super().dataReceived(data)

    def lineReceived(self, data: bytes) -> None:
        line = data.decode(ENCODING, ERRORS)
        self.commands.append(line)
        step = len(self.commands)
        faults = self.faults
        if faults.silent_from is not None and step >= faults.silent_from:
            return
        if faults.hangup_at == step:
            self.transport.write(b"HANGUP\n")
            self.hangup_sent = self.dead = True
        scripted = faults.scripted.get(step)
        self.transport.write(scripted if scripted is not None else self.answer(line))

    def answer(self, line: str) -> bytes:
        """res_agi's reply to one command line."""
        words = split_args(line)
        verb = _match_verb(words)
        if verb is None:
            return INVALID
        if self.dead and verb not in DEAD_OK:
            return DEAD
        args = words[len(verb.split()):]
        if verb == "SET VARIABLE":
            if len(args) != 2:
                return usage_block("Usage: SET VARIABLE <variablename> <value>\n"
                                   " Sets a variable to the current channel.")
            self.variables[args[0]] = args[1]
            self.set_by_server.pop(args[0], None)
            self.set_by_server[args[0]] = args[1]
            return b"200 result=1\n"
        if verb == "GET VARIABLE":
            if len(args) != 1:
                return usage_block("Usage: GET VARIABLE <variablename>\n"
                                   " Returns 0 if <variablename> is not set.")
            return _value_reply(self.variables.get(args[0]))
        if verb == "GET FULL VARIABLE":
            if len(args) not in (1, 2):
                return usage_block("Usage: GET FULL VARIABLE <expression> [<channelname>]")
            expanded = re.sub(r"\$\{([^}]*)\}",
                              lambda m: self.variables.get(m.group(1), ""), args[0])
            return _value_reply(expanded)
        if verb == "VERBOSE":
            if len(args) not in (1, 2):
                return usage_block("Usage: VERBOSE <message> <level>")
            return b"200 result=1\n"
        if verb == "EXEC":
            if not args:
                return usage_block("Usage: EXEC <application> <options>")
            self.executed.append(tuple(args))
            return b"200 result=0\n"
        if verb == "HANGUP":
            self.dead = True
            return b"200 result=1\n"
        if verb == "GET DATA":
            if not args:
                return usage_block("Usage: GET DATA <file to be streamed> [timeout] [maxdigits]")
            typed = self._keys.pop(0) if self._keys else KEYS_TIMEOUT
            if typed == KEYS_HANGUP:
                self.dead = self.hangup_sent = True
                return b"200 result=-1\nHANGUP\n"
            if typed is None:
                return b"200 result= (timeout)\n"
            limit = int(args[2]) if len(args) > 2 and args[2].isdigit() else 1024
            return b"200 result=" + typed[:limit].encode(ENCODING, ERRORS) + b"\n"
        if verb == "STREAM FILE":
            if len(args) not in (2, 3):
                return usage_block("Usage: STREAM FILE <filename> <escape digits> [sample offset]")
            return b"200 result=0 endpos=8000\n"
        return b"200 result=0\n"  # NOOP, ANSWER and the rest: accepted, nothing to do

    def give_up(self) -> None:
        """Close from our side (a test's own time limit); `server_closed` will be False."""
        self.gave_up = True
        self.transport.abortConnection()

    def connectionLost(self, reason: Failure = ConnectionDone()) -> None:
        if self._timer is not None and self._timer.active():
            self._timer.cancel()
        self.done.callback(SessionResult(
            commands=tuple(self.commands), received=bytes(self.received),
            variables=MappingProxyType(dict(self.variables)),
            set_by_server=MappingProxyType(dict(self.set_by_server)),
            executed=tuple(self.executed), server_closed=not self.gave_up,
            hangup_sent=self.hangup_sent, elapsed=self._clock.seconds() - self.started))


def _match_verb(words: list[str]) -> str | None:
    upper = [w.upper() for w in words]
    for size in (3, 2, 1):
        verb = " ".join(upper[:size])
        if len(upper) >= size and verb in KNOWN:
            return verb
    return None


def _value_reply(value: str | None) -> bytes:
    if value is None:
        return b"200 result=0\n"
    return b"200 result=1 (" + value.encode(ENCODING, ERRORS) + b")\n"


def run_session(reactor: IReactorTCP, host: str, port: int, script: str,
                args: Sequence[str] = (), variables: Mapping[str, str] | None = None,
                env: Mapping[str, str] | None = None, faults: Faults | None = None,
                timeout: float = 30.0,
                keys: Sequence[str | None] = ()) -> Deferred[SessionResult]:
    """Play one FastAGI session against host:port, like `AGI(agi://host:port/script,args)`.

    Fires with the SessionResult when the server closes the connection, or after
    `timeout` seconds (then `server_closed` is False). Errbacks if it cannot connect.
    """
    pairs = environment_pairs(script, args, env, host, port,
                              uniqueid=f"{reactor.seconds():.6f}")
    fake = FakeAsterisk(reactor, pairs, variables, faults, keys)
    endpoint = TCP4ClientEndpoint(reactor, host, port, timeout=max(1, int(timeout)))

    def connected(protocol: FakeAsterisk) -> Deferred[SessionResult]:
        protocol._timer = reactor.callLater(timeout, protocol.give_up)
        return protocol.done

    return connectProtocol(endpoint, fake).addCallback(connected)
