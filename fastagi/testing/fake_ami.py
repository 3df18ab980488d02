"""Asterisk's side of AMI over real TCP, for tests and benchmarks.

`FakeAmi` listens like manager.c does: it greets with `Asterisk Call Manager/11.0.0`,
checks Login against one user, refuses any action but Login/Logoff before it, checks the
write class of each action the way manager.c does (any class in common), and answers with
Asterisk's own response shapes: `Response: Success|Error` with the ActionID echoed, lists
as `EventList: start` … items … `EventList: Complete` + `ListItems`, `Goodbye` for Logoff.
It keeps a table of channels (`add_channel`); `Hangup` (by name or uniqueid, as
ast_channel_get_by_name does) removes one and broadcasts a `Hangup` event to sessions that
asked for events; `CoreShowChannels` lists them; `Setvar` sets a variable on one;
`Originate` (Async) answers "successfully queued" and then sends `OriginateResponse` with
the same ActionID (outcome from `originate_outcome`).

Every action received is recorded in `actions` (dicts, in order of arrival) with the time
it arrived (`received_at`, time.monotonic()). Misbehaviour for tests: `silent` (action
names never answered), `scripted` (action name -> function returning the raw bytes to send
instead), `push(raw)` (write anything to every session), `drop_all()`.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Callable

from twisted.internet.defer import Deferred
from twisted.internet.interfaces import IListeningPort
from twisted.internet.protocol import Factory
from twisted.protocols.basic import LineOnlyReceiver

from fastagi.ami.message import AmiMessage, parse_header

# manager.c ast_manager_register_xml_core: the write classes that allow each action
AUTHORITY = {
    "Hangup": {"system", "call"},
    "CoreShowChannels": {"system", "reporting"},
    "Setvar": {"call"},
    "Getvar": {"call", "reporting"},
    "Originate": {"originate"},
    "Reload": {"system", "config"},
    "Command": {"command"},
}
# Registered with no class (authority 0): any logged-in user may run them.
NO_AUTHORITY = {"Login", "Logoff", "Ping", "Events", "Challenge", "QueueStatus"}


def message(*pairs: tuple[str, object]) -> bytes:
    """One AMI message as Asterisk writes it: CRLF lines and an empty line."""
    return b"".join(f"{k}: {v}\r\n".encode() for k, v in pairs) + b"\r\n"


@dataclass
class FakeChannel:
    channel: str
    uniqueid: str
    accountcode: str = ""
    context: str = "ictcontact-dial"
    exten: str = "s"
    state: str = "Up"
    application: str = "Dial"
    duration: str = "00:00:10"
    variables: dict[str, str] = field(default_factory=dict)


class FakeAmiSession(LineOnlyReceiver):
    delimiter = b"\n"
    MAX_LENGTH = 65536

    def __init__(self, fake: "FakeAmi") -> None:
        self.fake = fake
        self.authenticated = False
        self.events_on = False
        self._lines: list[tuple[str, str]] = []
        self.action = AmiMessage(())       # the action being handled

    def connectionMade(self) -> None:
        self.fake.sessions.append(self)
        if self.fake.greeting is not None:
            self.transport.write(self.fake.greeting)

    def connectionLost(self, reason=None) -> None:
        if self in self.fake.sessions:
            self.fake.sessions.remove(self)

    def lineReceived(self, data: bytes) -> None:
        line = data.decode("utf-8", "replace").rstrip("\r")
        if line:
            header = parse_header(line)
            if header is not None:
                self._lines.append(header)
            return
        if not self._lines:
            return
        self.action = AmiMessage(self._lines)   # every header, repeated ones too
        headers, self._lines = dict(self._lines), []
        self.fake._received(headers)
        self._handle(headers)

    def write_message(self, *pairs: tuple[str, object]) -> None:
        self.transport.write(message(*pairs))

    def _respond(self, headers: dict[str, str], response: str, text: str | None,
                 *extra: tuple[str, object]) -> None:
        pairs: list[tuple[str, object]] = [("Response", response)]
        if headers.get("ActionID"):
            pairs.append(("ActionID", headers["ActionID"]))
        pairs.extend(extra)
        if text is not None:
            pairs.append(("Message", text))
        self.write_message(*pairs)

    def _handle(self, headers: dict[str, str]) -> None:
        fake = self.fake
        action = headers.get("Action", "")
        if action in fake.silent:
            return
        if action in fake.scripted:
            self.transport.write(fake.scripted[action](headers))
            return
        if not action:
            self._respond(headers, "Error", "Missing action in request")
            return
        if not self.authenticated and action not in ("Login", "Logoff", "Challenge"):
            self._respond(headers, "Error", "Permission denied")
            return
        handler = getattr(self, "_action_" + action.lower(), None)
        if handler is None:
            self._respond(headers, "Error", f"Invalid/unknown command: {action}. "
                          "Use Action: ListCommands to show available commands.")
            return
        if action not in NO_AUTHORITY and not (AUTHORITY.get(action, set())
                                               & fake.write_classes):
            self._respond(headers, "Error", "Permission denied")
            return
        handler(headers)

    def _action_login(self, headers: dict[str, str]) -> None:
        if self.authenticated:
            self._respond(headers, "Success", "Already authenticated")
            return
        if (headers.get("Username") != self.fake.username
                or headers.get("Secret") != self.fake.secret):
            self._respond(headers, "Error", "Authentication failed")
            self.transport.loseConnection()
            return
        self.authenticated = True
        self.events_on = headers.get("Events", "on").lower() not in ("off", "no", "false")
        self._respond(headers, "Success", "Authentication accepted")

    def _action_logoff(self, headers: dict[str, str]) -> None:
        self._respond(headers, "Goodbye", "Thanks for all the fish.")
        self.transport.loseConnection()

    def _action_ping(self, headers: dict[str, str]) -> None:
        self._respond(headers, "Success", None, ("Ping", "Pong"),
                      ("Timestamp", f"{time.time():.6f}"))

    def _action_hangup(self, headers: dict[str, str]) -> None:
        wanted = headers.get("Channel", "")
        if not wanted:
            self._respond(headers, "Error", "No channel specified")
            return
        found = self.fake.find(wanted)
        if found is None:
            self._respond(headers, "Error", "No such channel")
            return
        del self.fake.channels[found.uniqueid]
        self.fake.hangups.append((found.channel, headers.get("Cause", "")))
        self._respond(headers, "Success", "Channel Hungup")
        self.fake.broadcast_event(
            ("Event", "Hangup"), ("Privilege", "call,all"), ("Channel", found.channel),
            ("Uniqueid", found.uniqueid), ("AccountCode", found.accountcode),
            ("Cause", headers.get("Cause", "0")), ("Cause-txt", "Unknown"))

    def _action_coreshowchannels(self, headers: dict[str, str]) -> None:
        action_id = headers.get("ActionID")
        id_pair = [("ActionID", action_id)] if action_id else []
        self._respond(headers, "Success", "Channels will follow", ("EventList", "start"))
        channels = list(self.fake.channels.values())
        for chan in channels:
            self.write_message(
                ("Event", "CoreShowChannel"), *id_pair, ("Channel", chan.channel),
                ("ChannelState", "6"), ("ChannelStateDesc", chan.state),
                ("CallerIDNum", "100"), ("CallerIDName", "<unknown>"),
                ("ConnectedLineNum", "<unknown>"), ("ConnectedLineName", "<unknown>"),
                ("Language", "en"), ("AccountCode", chan.accountcode),
                ("Context", chan.context), ("Exten", chan.exten), ("Priority", "1"),
                ("Uniqueid", chan.uniqueid), ("Linkedid", chan.uniqueid),
                ("Application", chan.application), ("ApplicationData", ""),
                ("Duration", chan.duration), ("BridgeId", ""))
        self.write_message(("Event", "CoreShowChannelsComplete"), *id_pair,
                           ("EventList", "Complete"), ("ListItems", len(channels)))

    def _action_setvar(self, headers: dict[str, str]) -> None:
        if not headers.get("Variable"):
            self._respond(headers, "Error", "No variable specified")
            return
        found = self.fake.find(headers.get("Channel", ""))
        if found is None:
            self._respond(headers, "Error", "No such channel")
            return
        found.variables[headers["Variable"]] = headers.get("Value", "")
        self._respond(headers, "Success", "Variable Set")

    def _action_originate(self, headers: dict[str, str]) -> None:
        if not headers.get("Channel"):
            self._respond(headers, "Error", "Channel not specified")
            return
        self._respond(headers, "Success", "Originate successfully queued")
        success, reason = self.fake.originate_outcome(headers)
        self.fake.originated += 1
        uniqueid = headers.get("ChannelId") or f"1700000000.{9000 + self.fake.originated}"
        channel = f"{headers['Channel']}-{self.fake.originated:08x}"
        if success:
            self.fake.add_channel(channel, uniqueid, accountcode=headers.get("Account", ""))
        pairs: list[tuple[str, object]] = [("Event", "OriginateResponse"),
                                           ("Privilege", "call,all")]
        if headers.get("ActionID"):
            pairs.append(("ActionID", headers["ActionID"]))
        pairs += [("Response", "Success" if success else "Failure"), ("Channel", channel),
                  ("Context", headers.get("Context", "")), ("Exten", headers.get("Exten", "")),
                  ("Reason", reason), ("Uniqueid", uniqueid if success else "<unknown>"),
                  ("CallerIDNum", "<unknown>"), ("CallerIDName", "<unknown>")]
        self.fake.broadcast_event(*pairs)


class FakeAmi(Factory):
    """The fake Asterisk manager; `listen(reactor)` fires with the listening port."""

    def __init__(self, username: str = "ictcontact", secret: str = "s3cret",
                 write_classes: set[str] | None = None, version: str = "11.0.0") -> None:
        self.username = username
        self.secret = secret
        self.write_classes = (set(write_classes) if write_classes is not None
                              else {"call", "reporting", "originate"})
        self.greeting: bytes | None = f"Asterisk Call Manager/{version}\r\n".encode()
        self.channels: dict[str, FakeChannel] = {}
        self.sessions: list[FakeAmiSession] = []
        self.actions: list[dict[str, str]] = []
        self.received_at: list[float] = []
        self.hangups: list[tuple[str, str]] = []
        self.silent: set[str] = set()
        self.scripted: dict[str, Callable[[dict[str, str]], bytes]] = {}
        self.originate_outcome: Callable[[dict[str, str]], tuple[bool, int]] = \
            lambda headers: (True, 4)
        self.originated = 0
        self._waiters: list[tuple[Callable[[], bool], Deferred]] = []

    def buildProtocol(self, addr) -> FakeAmiSession:
        return FakeAmiSession(self)

    def listen(self, reactor, port: int = 0, interface: str = "127.0.0.1") -> IListeningPort:
        return reactor.listenTCP(port, self, interface=interface)

    # --- channels --------------------------------------------------------------------
    def add_channel(self, channel: str, uniqueid: str, **fields) -> FakeChannel:
        chan = FakeChannel(channel, uniqueid, **fields)
        self.channels[uniqueid] = chan
        return chan

    def find(self, name_or_uniqueid: str) -> FakeChannel | None:
        """By name first, then by uniqueid (ast_channel_get_by_name)."""
        for chan in self.channels.values():
            if chan.channel == name_or_uniqueid:
                return chan
        return self.channels.get(name_or_uniqueid)

    # --- what was received -----------------------------------------------------------
    def actions_named(self, name: str) -> list[dict[str, str]]:
        return [a for a in self.actions if a.get("Action") == name]

    def when(self, condition: Callable[[], bool]) -> Deferred[None]:
        """Fires once `condition()` is true (checked after every action received)."""
        waiter: Deferred[None] = Deferred()
        if condition():
            waiter.callback(None)
        else:
            self._waiters.append((condition, waiter))
        return waiter

    def _received(self, headers: dict[str, str]) -> None:
        self.actions.append(headers)
        self.received_at.append(time.monotonic())
        waiting, self._waiters = self._waiters, []
        for condition, waiter in waiting:
            if condition():
                waiter.callback(None)
            else:
                self._waiters.append((condition, waiter))

    # --- misbehaviour ----------------------------------------------------------------
    def broadcast_event(self, *pairs: tuple[str, object]) -> None:
        for session in list(self.sessions):
            if session.authenticated and session.events_on:
                session.write_message(*pairs)

    def push(self, raw: bytes) -> None:
        for session in list(self.sessions):
            session.transport.write(raw)

    def drop_all(self) -> None:
        for session in list(self.sessions):
            session.transport.abortConnection()
