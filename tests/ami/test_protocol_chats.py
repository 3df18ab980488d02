"""Table-driven AMI chats over StringTransport with an injected clock.

Each chat is a list of steps: ("in", bytes) Asterisk sends; ("out", bytes) exactly what the
client wrote since the last "out"; ("send", name, action, fields[, options]) the client
sends an action and its Deferred is kept as `name`; ("ok", name, check) the Deferred fired
and check(result) is true; ("err", name, ErrorType[, text]) it errbacked with that error;
("pending", name) it has not fired; ("events", n) n events reached the subscriber;
("wait", s) advances the clock; ("open",) / ("closed",) the client's side of the
connection. After every chat no timer is left on the clock.
"""

from __future__ import annotations

import pytest
from twisted.internet.task import Clock
from twisted.internet.testing import StringTransport

from fastagi.ami.errors import (ActionFailed, ActionTimeout, ConnectionLost, LoginFailed,
                                ProtocolViolation)
from fastagi.ami.message import ActionTooLong, UnsafeValue
from fastagi.ami.protocol import AmiProtocol

TIMEOUT = 5.0
GREETING = b"Asterisk Call Manager/11.0.0\r\n"


def msg(*pairs: tuple[str, object]) -> bytes:
    return b"".join(f"{k}: {v}\r\n".encode() for k, v in pairs) + b"\r\n"


def action(name: str, action_id: str, *pairs: tuple[str, object]) -> bytes:
    return msg(("Action", name), ("ActionID", action_id), *pairs)


LOGIN_OUT = action("Login", "t-1", ("Username", "ictcontact"), ("Secret", "pw"),
                   ("Events", "off"))
ACCEPTED = msg(("Response", "Success"), ("ActionID", "t-1"),
               ("Message", "Authentication accepted"))
LOGGED_IN = [("in", GREETING), ("login", "login"), ("out", LOGIN_OUT), ("in", ACCEPTED),
             ("ok", "login", lambda r: r.response["Message"] == "Authentication accepted")]


def channel_item(action_id: str, uniqueid: str, channel: str) -> bytes:
    return msg(("Event", "CoreShowChannel"), ("ActionID", action_id), ("Channel", channel),
               ("ChannelStateDesc", "Up"), ("AccountCode", "acme"), ("Uniqueid", uniqueid),
               ("Linkedid", uniqueid), ("Application", "Dial"), ("Duration", "00:01:05"))


LIST_START = msg(("Response", "Success"), ("ActionID", "t-2"), ("EventList", "start"),
                 ("Message", "Channels will follow"))
LIST_DONE = msg(("Event", "CoreShowChannelsComplete"), ("ActionID", "t-2"),
                ("EventList", "Complete"), ("ListItems", 2))
UNRELATED = msg(("Event", "Hangup"), ("Privilege", "call,all"), ("Channel", "PJSIP/x-1"),
                ("Uniqueid", "1.9"), ("Cause", "16"))

CHATS = {
    "login accepted": LOGGED_IN + [("open",)],
    "login refused": [
        ("in", GREETING), ("login", "login"), ("out", LOGIN_OUT),
        ("in", msg(("Response", "Error"), ("ActionID", "t-1"),
                   ("Message", "Authentication failed"))),
        ("err", "login", LoginFailed, "Authentication failed"), ("open",)],
    "hangup answered": LOGGED_IN + [
        ("send", "h", "Hangup", {"Channel": "1700.1", "Cause": 52}),
        ("out", action("Hangup", "t-2", ("Channel", "1700.1"), ("Cause", 52))),
        ("in", msg(("Response", "Success"), ("ActionID", "t-2"), ("Message", "Channel Hungup"))),
        ("ok", "h", lambda r: r.response.response == "Success" and r.events == ())],
    "no such channel is an ActionFailed": LOGGED_IN + [
        ("send", "h", "Hangup", {"Channel": "gone", "Cause": 16}),
        ("out", action("Hangup", "t-2", ("Channel", "gone"), ("Cause", 16))),
        ("in", msg(("Response", "Error"), ("ActionID", "t-2"), ("Message", "No such channel"))),
        ("err", "h", ActionFailed, "No such channel"), ("open",)],
    "answers matched by ActionID, not by order": LOGGED_IN + [
        ("send", "a", "Setvar", {"Channel": "c1", "Variable": "X", "Value": "1"}),
        ("send", "b", "Setvar", {"Channel": "c2", "Variable": "X", "Value": "2"}),
        ("out", action("Setvar", "t-2", ("Channel", "c1"), ("Variable", "X"), ("Value", "1"))
         + action("Setvar", "t-3", ("Channel", "c2"), ("Variable", "X"), ("Value", "2"))),
        ("in", msg(("Response", "Error"), ("ActionID", "t-3"), ("Message", "No such channel"))),
        ("pending", "a"), ("err", "b", ActionFailed, "No such channel"),
        ("in", msg(("Response", "Success"), ("ActionID", "t-2"), ("Message", "Variable Set"))),
        ("ok", "a", lambda r: r.response["Message"] == "Variable Set")],
    "a list is one result; other events go to subscribers": LOGGED_IN + [
        ("send", "l", "CoreShowChannels", {}),
        ("out", action("CoreShowChannels", "t-2")),
        ("in", LIST_START), ("in", channel_item("t-2", "1700.1", "PJSIP/acme-100-1")),
        ("in", UNRELATED), ("pending", "l"),
        ("in", channel_item("t-2", "1700.2", "PJSIP/acme-101-2")), ("in", LIST_DONE),
        ("ok", "l", lambda r: [e["Uniqueid"] for e in r.events] == ["1700.1", "1700.2"]
         and r.complete["ListItems"] == "2"),
        ("events", 1)],
    "an empty list": LOGGED_IN + [
        ("send", "l", "CoreShowChannels", {}), ("out", action("CoreShowChannels", "t-2")),
        ("in", LIST_START),
        ("in", msg(("Event", "CoreShowChannelsComplete"), ("ActionID", "t-2"),
                   ("EventList", "Complete"), ("ListItems", 0))),
        ("ok", "l", lambda r: r.events == () and r.complete["ListItems"] == "0")],
    "originate waits for OriginateResponse with its ActionID": LOGGED_IN + [
        ("send", "o", "Originate", {"Channel": "PJSIP/100", "Application": "Wait",
                                    "Async": "true"},
         {"final_event": "OriginateResponse", "final_timeout": 30}),
        ("out", action("Originate", "t-2", ("Channel", "PJSIP/100"), ("Application", "Wait"),
                       ("Async", "true"))),
        ("in", msg(("Response", "Success"), ("ActionID", "t-2"),
                   ("Message", "Originate successfully queued"))),
        ("wait", 20), ("pending", "o"),
        ("in", msg(("Event", "OriginateResponse"), ("Privilege", "call,all"),
                   ("ActionID", "other-server-7"), ("Response", "Success"))),
        ("pending", "o"), ("events", 1),
        ("in", msg(("Event", "OriginateResponse"), ("Privilege", "call,all"),
                   ("ActionID", "t-2"), ("Response", "Failure"), ("Reason", 5))),
        ("ok", "o", lambda r: r.final["Reason"] == "5"), ("open",)],
    "OriginateResponse before the response still completes": LOGGED_IN + [
        ("send", "o", "Originate", {"Channel": "PJSIP/100", "Exten": "1"},
         {"final_event": "OriginateResponse"}),
        ("out", action("Originate", "t-2", ("Channel", "PJSIP/100"), ("Exten", "1"))),
        ("in", msg(("Event", "OriginateResponse"), ("ActionID", "t-2"),
                   ("Response", "Success"), ("Reason", 4))),
        ("pending", "o"),
        ("in", msg(("Response", "Success"), ("ActionID", "t-2"))),
        ("ok", "o", lambda r: r.final["Reason"] == "4")],
    "no OriginateResponse in time fails only that action": LOGGED_IN + [
        ("send", "o", "Originate", {"Channel": "PJSIP/100", "Exten": "1"},
         {"final_event": "OriginateResponse", "final_timeout": 30}),
        ("out", action("Originate", "t-2", ("Channel", "PJSIP/100"), ("Exten", "1"))),
        ("in", msg(("Response", "Success"), ("ActionID", "t-2"))),
        ("wait", 30), ("err", "o", ActionTimeout, "OriginateResponse"), ("open",)],
    "an unanswered action drops the connection and fails every pending one": LOGGED_IN + [
        ("send", "a", "Hangup", {"Channel": "c1", "Cause": 16}),
        ("wait", 2),
        ("send", "b", "Hangup", {"Channel": "c2", "Cause": 16}),
        ("out", action("Hangup", "t-2", ("Channel", "c1"), ("Cause", 16))
         + action("Hangup", "t-3", ("Channel", "c2"), ("Cause", 16))),
        ("wait", 3), ("err", "a", ActionTimeout), ("err", "b", ActionTimeout), ("closed",)],
    "connection lost fails every pending action at once": LOGGED_IN + [
        ("send", "a", "CoreShowChannels", {}), ("send", "b", "Ping", {}),
        ("out", action("CoreShowChannels", "t-2") + action("Ping", "t-3")),
        ("in", LIST_START), ("lose",),
        ("err", "a", ConnectionLost), ("err", "b", ConnectionLost),
        ("send", "c", "Ping", {}), ("err", "c", ConnectionLost), ("out", b"")],
    "an unfinished list is bounded by the action timeout": LOGGED_IN + [
        ("send", "l", "CoreShowChannels", {}), ("out", action("CoreShowChannels", "t-2")),
        ("in", LIST_START), ("in", channel_item("t-2", "1700.1", "PJSIP/a-1")),
        ("wait", 5), ("err", "l", ActionTimeout), ("closed",)],
    "garbage lines are skipped and counted": [
        ("in", b"\r\n" + GREETING), ("in", b"\x16\x03\x01\xff\xfe<html>\r\n"),
        ("login", "login"), ("out", LOGIN_OUT),
        ("in", b"Response: Success\r\nnot a header line\r\nActionID: t-1\r\n\r\n"),
        ("ok", "login", lambda r: r.response["ActionID"] == "t-1"),
        ("in", b"no colon here\r\n\r\n\r\n"), ("ignored", 3), ("open",)],
    "bare LF lines are read too": [
        ("in", b"Asterisk Call Manager/11.0.0\n"), ("login", "login"), ("out", LOGIN_OUT),
        ("in", b"Response: Success\nActionID: t-1\n\n"),
        ("ok", "login", lambda r: True)],
    "a response for no pending action is dropped": LOGGED_IN + [
        ("in", msg(("Response", "Success"), ("ActionID", "t-99"))),
        ("in", msg(("Response", "Success"))), ("events", 0), ("open",)],
    "not a greeting": [("in", b"SSH-2.0-OpenSSH_9.2\r\n"), ("login", "login"),
                       ("err", "login", ProtocolViolation, "not an AMI greeting"), ("closed",)],
    "no greeting in time": [("wait", 5), ("closed",)],
    "a line over the limit": LOGGED_IN + [
        ("send", "p", "Ping", {}), ("out", action("Ping", "t-2")),
        ("in", b"Response: Success\r\nX: " + b"y" * 70000),
        ("err", "p", ProtocolViolation, "longer than"), ("closed",)],
    "a message with too many lines": LOGGED_IN + [
        ("send", "p", "Ping", {}), ("out", action("Ping", "t-2")),
        ("in", b"Event: Flood\r\n" + b"H: v\r\n" * 1000),
        ("err", "p", ProtocolViolation, "over 1000 lines"), ("closed",)],
    "cancelling drops the late answer": LOGGED_IN + [
        ("send", "p", "Ping", {}), ("out", action("Ping", "t-2")), ("cancel", "p"),
        ("in", msg(("Response", "Success"), ("ActionID", "t-2"), ("Ping", "Pong"))),
        ("events", 0), ("open",)],
}


class Chat:
    def __init__(self) -> None:
        self.clock = Clock()
        self.events: list = []
        self.protocol = AmiProtocol(self.clock, TIMEOUT, id_prefix="t-",
                                    on_event=self.events.append, max_line=65536)
        self.transport = StringTransport()
        self.protocol.makeConnection(self.transport)
        self.deferreds: dict = {}
        self.results: dict = {}

    def keep(self, name, deferred) -> None:
        self.deferreds[name] = deferred
        deferred.addBoth(lambda outcome: self.results.__setitem__(name, outcome))

    def written(self) -> bytes:
        data = self.transport.value()
        self.transport.clear()
        return data


def closed(transport: StringTransport) -> bool:
    return transport.disconnecting or transport.disconnected


@pytest.mark.parametrize("steps", CHATS.values(), ids=CHATS.keys())
def test_chat(steps):
    chat = Chat()
    for step in steps:
        kind = step[0]
        if kind == "in":
            chat.protocol.dataReceived(step[1])
        elif kind == "out":
            assert chat.written() == step[1]
        elif kind == "login":
            chat.keep(step[1], chat.protocol.login("ictcontact", "pw"))
        elif kind == "send":
            options = step[4] if len(step) > 4 else {}
            chat.keep(step[1], chat.protocol.send_action(step[2], step[3], **options))
        elif kind == "ok":
            result = chat.results.get(step[1])
            assert result is not None and not hasattr(result, "check"), result
            assert step[2](result), result
        elif kind == "err":
            failure = chat.results.get(step[1])
            assert failure is not None and hasattr(failure, "check"), failure
            assert failure.check(step[2]), failure
            if len(step) > 3:
                assert step[3] in str(failure.value)
        elif kind == "pending":
            assert step[1] not in chat.results
        elif kind == "events":
            assert len(chat.events) == step[1]
        elif kind == "ignored":
            assert chat.protocol.ignored_lines == step[1]
        elif kind == "wait":
            chat.clock.advance(step[1])
        elif kind == "cancel":
            chat.deferreds[step[1]].cancel()
            chat.results.pop(step[1])
        elif kind == "lose":
            chat.protocol.connectionLost(None)
        elif kind == "open":
            assert not closed(chat.transport)
        elif kind == "closed":
            assert closed(chat.transport)
            chat.protocol.connectionLost(None)
        else:
            raise AssertionError(f"unknown step {step!r}")
    if not chat.protocol.is_closed:
        chat.protocol.connectionLost(None)
    assert chat.clock.getDelayedCalls() == []
    for name, outcome in chat.results.items():
        if hasattr(outcome, "check"):
            outcome.trap(Exception)  # observed above; keep them out of the gc log


@pytest.mark.parametrize("fields, error", [
    ({"Channel": "PJSIP/a\r\nAction: Originate"}, UnsafeValue),
    ({"Channel": "a\nb"}, UnsafeValue),
    ({"Channel": "a\0"}, UnsafeValue),
    ({"Bad:Name": "x"}, UnsafeValue),
    ({"Data": "x" * 1100}, ActionTooLong),
])
def test_unsafe_values_are_refused_and_nothing_is_written(fields, error):
    chat = Chat()
    chat.protocol.dataReceived(GREETING)
    with pytest.raises(error):
        chat.protocol.send_action("Originate", fields)
    assert chat.written() == b""
    assert chat.protocol.pending_count == 0
    chat.protocol.connectionLost(None)
    assert chat.clock.getDelayedCalls() == []


def test_list_over_its_bound_drops_the_connection():
    clock = Clock()
    protocol = AmiProtocol(clock, TIMEOUT, id_prefix="t-", max_list_items=3)
    transport = StringTransport()
    protocol.makeConnection(transport)
    protocol.dataReceived(GREETING)
    outcome = []
    protocol.send_action("CoreShowChannels").addBoth(outcome.append)
    protocol.dataReceived(LIST_START.replace(b"t-2", b"t-1"))
    for n in range(4):
        protocol.dataReceived(channel_item("t-1", f"1.{n}", f"PJSIP/a-{n}"))
    assert outcome and outcome[0].check(ProtocolViolation)
    assert closed(transport)
    protocol.connectionLost(None)
    assert clock.getDelayedCalls() == []
