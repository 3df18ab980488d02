"""Fuzzing the FastAGI input with hypothesis: environment blocks, arguments, replies and
raw byte streams, against the production route table.

Deterministic and fast: the server protocol runs over StringTransport with an injected
Clock, and the database is a fake runner that answers like DbRunner does (a canned
result, a database error, Unavailable after the database timeout, or a late answer).
After every example:
- no exception escaped the protocol, and none was logged as unexpected;
- after the clock has run past every timeout the server has closed the connection, no
  delayed call is left on the clock and the factory has no live session;
- every byte the server wrote is a well-formed AGI command: one LF-terminated line, no CR
  or NUL, under Asterisk's 8192-byte buffer, a `SET VARIABLE` of a contract variable whose
  words parse back with Asterisk's quoting rules (`split_args`) to a value that quotes back
  to exactly the same bytes;
- with a cooperative peer, every session ends with a definite answer (ICT_RESULT set,
  and a REJECT carries a known reason and its cause).

CI runs a bounded, derandomized number of examples; ICT_FULL=1 runs many more, randomly.
"""

from __future__ import annotations

import gc
import logging
from decimal import Decimal

import pytest
from hypothesis import HealthCheck, event, given, settings, strategies as st
from sqlalchemy.exc import DBAPIError, IntegrityError, OperationalError
from twisted.internet.defer import Deferred, TimeoutError as DeferredTimeout, fail, succeed
from twisted.internet.error import ConnectionLost
from twisted.internet.task import Clock
from twisted.logger import globalLogPublisher
from twisted.python.failure import Failure

from fastagi import channel_vars as v, reasons
from fastagi.agi.errors import Unavailable
from fastagi.testing.fake_asterisk import GARBAGE, environment_pairs, split_args, usage_block
from fastagi.agi.quoting import ENCODING, ERRORS, MAX_LINE_BYTES, command_line
from fastagi.agi.server import AgiServerFactory
from fastagi.billing.admission import Admission
from fastagi.billing.rating import FREE, Rate
from fastagi.routes import ROUTES
from fastagi.services import ServeConfig, Services
from fastagi.store import calls
from fastagi.store.health import health_problem
from tests.support.chats import connect, finish

from .conftest import FULL, scaled

SESSION_TIMEOUT = 20.0
DB_TIMEOUT = 5.0

FUZZ = settings(
    max_examples=scaled(600, 20000), deadline=None, database=None, derandomize=not FULL,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large,
                           HealthCheck.filter_too_much])

HOSTILE = [
    '"', '\\', '\\"', '""', '" "', "'; DROP TABLE calls; --", "1' OR '1'='1", "acme\" \"x",
    "ümlaut ☎ 電話", "\u202e\u200b", "${ICT_RESULT}", "$[1+1]", "a,b", "a|b", "(x)", ")(",
    " ", "\t", "\x7f", "\udcff\udcfe", "x" * 8000, "1" * 40, "+", "+0044", "0", "-1",
    "ANSWER", "out", "in", "acme", "4411", "1", "999999999999999999",
]
TEXT = st.one_of(st.sampled_from(HOSTILE), st.text(max_size=30),
                 st.from_regex(r"\+?[0-9]{1,34}", fullmatch=True),
                 st.from_regex(r"[a-z0-9_-]{1,34}", fullmatch=True),
                 st.binary(max_size=30).map(lambda b: b.decode(ENCODING, ERRORS)))
# Arguments that pass validation (so the database and every answer are reached), the same
# with one argument replaced by something hostile, or anything at all.
VALID_ARGS = {
    "authorize": [["acme", "4411"], ["acme", "+442071234567", "in"], ["acme", "112", "out"],
                  [" acme ", "4411", ""], ["a-b_c", "1" * 32, "OUT"]],
    "settle": [["1", "ms=61000", "ANSWER"], ["999999999999999999", "ms=", ""],
               ["7", "ms=500", "busy"], ["3"], ["12", "10800", "NOANSWER"]],
    "health": [[]],
}


@st.composite
def requests(draw, scripts=None) -> tuple[str, list[str]]:
    """(script, args) for the route table, biased toward requests that pass validation."""
    if scripts is None:
        scripts = st.one_of(st.sampled_from(sorted(VALID_ARGS)), SCRIPTS)
    script = draw(scripts)
    valid = VALID_ARGS.get(script, [["acme", "4411"]])
    how = draw(st.sampled_from(["valid", "valid", "one-replaced", "random"]))
    args = list(draw(st.sampled_from(valid)))
    if how == "one-replaced":
        at = draw(st.integers(0, len(args)))
        args[at:at + 1] = [draw(TEXT)]
    elif how == "random":
        args = draw(st.lists(TEXT, max_size=5))
    return script, args


SCRIPTS = st.one_of(st.sampled_from(["authorize", "settle", "health", "nosuch", "",
                                     "authorize?x=1&y", "/settle", "AUTHORIZE", "health/"]),
                    TEXT)


# --- the fake database ---------------------------------------------------------------------
RATE = Rate("44", Decimal("0.100000"), Decimal("0.0500"), 60, 6)
DIAL_TARGETS = ["PJSIP/442071234567@carrier", 'PJSIP/"quoted"\\back slash@c', "SIP/電話@x", ""]
AUTHORIZATIONS = (
    [calls.Authorization(Admission(True, "", RATE, seconds, Decimal("1.0000"), target),
                         call_id, 7)
     for seconds, target, call_id in ((1, DIAL_TARGETS[0], 1), (10800, DIAL_TARGETS[1], 2**62),
                                      (60, DIAL_TARGETS[2], 3), (30, DIAL_TARGETS[3], 4))]
    + [calls.Authorization(Admission(True, "", FREE, 10800, Decimal(0), ""), 5, 7)]
    + [calls.Authorization(Admission(False, reason, rate), 9, client)
       for reason, rate, client in ((reasons.UNKNOWN_CLIENT, None, None),
                                    (reasons.SUSPENDED, None, 7), (reasons.NO_RATE, None, 7),
                                    (reasons.NO_CREDIT, RATE, 7),
                                    (reasons.CHANNEL_LIMIT, RATE, 7))])
# (The store never reports a stale call to settle: a settle racing the sweep reads again
# and bills it, see test_settle_faults.py::test_settle_racing_the_stale_sweep_still_bills_once.)
SETTLEMENTS = [calls.Settlement(True, "settled", Decimal("0.1600"), True),
               calls.Settlement(True, "settled", Decimal("0"), False),
               calls.Settlement(True, "settled", Decimal("123456.7891"), False),
               calls.Settlement(False, "", None, False),
               calls.Settlement(True, "rejected", None, False)]
ERRORS_RAISED = [OperationalError("SELECT 1", {}, Exception(2013, "Lost connection")),
                 IntegrityError("INSERT", {}, Exception(1062, "Duplicate")),
                 DBAPIError("UPDATE", {}, Exception(1205, "Lock wait timeout")),
                 Unavailable("pool exhausted"),
                 calls.Abandoned("the FastAGI session ended before the decision was committed")]

OUTCOMES = st.one_of(
    st.tuples(st.just("ok"), st.sampled_from(range(30))),      # a canned result
    st.tuples(st.just("raise"), st.sampled_from(ERRORS_RAISED)),
    st.tuples(st.just("later"), st.sampled_from([0.0, 0.5, DB_TIMEOUT - 0.1, DB_TIMEOUT + 1])),
    st.tuples(st.just("never"), st.just(None)),                  # Unavailable after the timeout
)


class FakeDb:
    """Answers like DbRunner.run: fires with fn's result or errbacks with its exception,
    or with Unavailable when nothing came within the database timeout (on the clock)."""

    def __init__(self, clock: Clock, outcomes: list[tuple]) -> None:
        self.clock = clock
        self.outcomes = outcomes or [("ok", 0)]
        self.calls = 0

    def result_for(self, fn, pick: int):
        if fn is calls.authorize:
            return AUTHORIZATIONS[pick % len(AUTHORIZATIONS)]
        if fn is calls.settle:
            return SETTLEMENTS[pick % len(SETTLEMENTS)]
        if fn is health_problem:        # health: the database answers, every privilege held
            return None
        raise AssertionError(f"unexpected database function {fn!r}")

    def committed(self, fn, args, pick: int):
        """The result, or Abandoned when authorize's check (its last argument, called by
        the store just before the commit) says the answer can no longer be delivered."""
        if fn is calls.authorize and callable(args[-1]) and (why := args[-1]()):
            raise calls.Abandoned(f"authorize rolled back: {why}")
        return self.result_for(fn, pick)

    def run(self, fn, *args, **kwargs) -> Deferred:
        kind, value = self.outcomes[self.calls % len(self.outcomes)]
        self.calls += 1
        if kind == "ok":
            try:
                return succeed(self.committed(fn, args, value))
            except calls.Abandoned as exc:
                return fail(exc)
        if kind == "raise":
            if isinstance(value, calls.Abandoned) and fn is not calls.authorize:
                value = ERRORS_RAISED[0]  # only authorize can abandon its commit
            return fail(value)
        pending: Deferred = Deferred(lambda d: timer.cancel() if timer and timer.active()
                                     else None)
        timer = None
        if kind == "later":
            def answer() -> None:
                if not pending.called:
                    try:
                        pending.callback(self.committed(fn, args, 1))
                    except calls.Abandoned as exc:
                        pending.errback(exc)
            timer = self.clock.callLater(value, answer)
        pending.addTimeout(DB_TIMEOUT, self.clock)

        def timed_out(failure: Failure):
            if failure.check(DeferredTimeout):
                raise Unavailable(f"database gave no answer within {DB_TIMEOUT:g} s")
            return failure
        return pending.addErrback(timed_out)


# --- what the server wrote ------------------------------------------------------------------
def check_output(written: bytes) -> list[tuple[str, str]]:
    """Assert every written line is a well-formed SET VARIABLE; return (name, value)s."""
    assert written == b"" or written.endswith(b"\n"), f"partial line written: {written[-80:]!r}"
    settings_seen = []
    for raw in written.split(b"\n")[:-1]:
        assert b"\r" not in raw and b"\x00" not in raw, raw[:80]
        assert len(raw) + 1 < MAX_LINE_BYTES, len(raw)
        words = split_args(raw.decode(ENCODING, ERRORS))
        assert words[:2] == ["SET", "VARIABLE"] and len(words) == 4, raw[:200]
        name, value = words[2], words[3]
        assert name in v.ALL, name
        assert command_line("SET VARIABLE", name, value) == raw + b"\n", raw[:200]
        settings_seen.append((name, value))
    return settings_seen


def check_answer(sets: list[tuple[str, str]], cooperative: bool = False) -> dict[str, str]:
    """The variables as the channel ends up with them. With a peer that refused or broke
    some SET VARIABLE the answer may be incomplete (the dialplan checks ICT_MAX_MS and
    ICT_DIAL and fails closed); with a cooperative peer a REJECT is complete."""
    final = dict(sets)
    if v.RESULT in final:
        assert final[v.RESULT] in (v.ALLOW, v.REJECT), final
    if cooperative and final.get(v.RESULT) == v.REJECT:
        assert final[v.REASON] in reasons.ALL, final
        assert final[v.CAUSE] == str(reasons.cause_for(final[v.REASON])), final
    return final


class Problems(logging.Handler):
    """Log records that mean a crash rather than a handled fault."""

    def __init__(self) -> None:
        super().__init__(logging.ERROR)
        self.records: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        if record.exc_info or "session runner failed" in record.getMessage():
            self.records.append(self.format(record))


class Session:
    """One server session on a StringTransport, its clock and fake database."""

    def __init__(self, outcomes: list[tuple]) -> None:
        self.clock = Clock()
        self.db = FakeDb(self.clock, outcomes)
        services = Services(clock=self.clock, db=self.db,
                            config=ServeConfig(session_timeout=SESSION_TIMEOUT,
                                               db_timeout=DB_TIMEOUT))
        self.factory = AgiServerFactory(ROUTES, services)
        self.problems = Problems()
        logging.getLogger("fastagi").addHandler(self.problems)
        self.protocol, self.transport = connect(self.factory)
        self.written = b""

    def feed(self, data: bytes) -> None:
        if not self.protocol.is_closed:
            self.protocol.dataReceived(data)

    def peer_closes(self) -> None:
        if not self.protocol.is_closed:
            self.protocol.connectionLost(Failure(ConnectionLost("peer went away")))

    def take_output(self) -> bytes:
        out = self.transport.value()
        self.transport.clear()
        self.written += out
        return out

    def end(self) -> list[tuple[str, str]]:
        """Run the clock past every timeout, deliver the close, check what is left."""
        try:
            for _ in range(int(4 * SESSION_TIMEOUT / 2.5) + 1):
                if self.transport.disconnecting or self.protocol.is_closed:
                    break
                self.take_output()
                self.clock.advance(2.5)
            self.take_output()
            assert self.transport.disconnecting or self.protocol.is_closed, \
                "the server never closed the session"
            finish(self.protocol, self.transport)
            self.clock.advance(0)
            assert self.clock.getDelayedCalls() == [], self.clock.getDelayedCalls()
            assert self.factory.live == set()
            assert self.problems.records == []
            return check_output(self.written)
        finally:
            logging.getLogger("fastagi").removeHandler(self.problems)


# --- environment blocks ---------------------------------------------------------------------
def env_lines(script: str, args: list[str], overrides: dict[str, str]) -> list[bytes]:
    return [f"{key}: {value}".encode(ENCODING, ERRORS)
            for key, value in environment_pairs(script, args, overrides)]


MUTATIONS = st.sampled_from(["drop", "duplicate", "no-colon", "huge", "binary", "swap",
                             "crlf", "blank-before", "arg-gap", "bad-key", "space-key",
                             "empty-value", "dup-arg"])


@st.composite
def environment_blocks(draw) -> bytes:
    script, args = draw(requests())
    overrides = draw(st.dictionaries(st.sampled_from(["callerid", "calleridname", "channel",
                                                      "uniqueid", "accountcode", "context",
                                                      "extension", "dnid"]), TEXT,
                                     max_size=3))
    lines = env_lines(script, args, overrides)
    for mutation in draw(st.lists(MUTATIONS, max_size=4)):
        at = draw(st.integers(0, max(len(lines) - 1, 0)))
        if not lines:
            break
        if mutation == "drop":
            del lines[at]
        elif mutation == "duplicate":
            lines.insert(at, lines[at])
        elif mutation == "no-colon":
            lines[at] = lines[at].replace(b":", b"")
        elif mutation == "huge":
            lines[at] = lines[at] + b"y" * draw(st.sampled_from([100, 8100, 9000]))
        elif mutation == "binary":
            lines[at] = lines[at] + draw(st.binary(min_size=1, max_size=20))
        elif mutation == "swap":
            other = draw(st.integers(0, len(lines) - 1))
            lines[at], lines[other] = lines[other], lines[at]
        elif mutation == "crlf":
            lines[at] = lines[at] + b"\r"
        elif mutation == "blank-before":
            lines.insert(0, b"")
        elif mutation == "arg-gap":
            lines.append(b"agi_arg_%d: %s" % (draw(st.integers(0, 99)),
                                              draw(TEXT).encode(ENCODING, ERRORS)))
        elif mutation == "bad-key":
            lines[at] = b"agi-" + lines[at]
        elif mutation == "space-key":
            lines[at] = b" " + lines[at]
        elif mutation == "empty-value":
            lines[at] = lines[at].split(b":")[0] + b":"
        elif mutation == "dup-arg":
            lines.append(b"agi_arg_1: " + draw(TEXT).encode(ENCODING, ERRORS))
    ending = draw(st.sampled_from([b"\n", b"\n\n\n", b"\r\n", b""]))  # b"": never ends
    return b"".join(line + b"\n" for line in lines) + ending


def split_points(data: bytes, cuts: list[int]) -> list[bytes]:
    points = sorted({c % (len(data) + 1) for c in cuts} | {0, len(data)})
    return [data[a:b] for a, b in zip(points, points[1:])]


# --- replies --------------------------------------------------------------------------------
OK = b"200 result=1\n"
REPLIES = [
    OK, b"200 result=0\n", b"200 result=1 (some (data))\n", b"200 result=\n",
    b"200 result=1 endpos=1234\n", b"HANGUP\n" + OK, b"HANGUP\n", b"HANGUP\nHANGUP\n" + OK,
    b"100 result=0 Trying...\n" + OK, b"510 Invalid or unknown command\n",
    b"511 Command Not Permitted on a dead channel or intercept routine\n",
    b"520 Invalid command syntax.  Proper usage not available.\n",
    usage_block("Usage: SET VARIABLE <variablename> <value>"), b"520-no end\n", GARBAGE,
    b"200 result=1", b"200 res", b"", b"\n", OK.replace(b"\n", b"\r\n"), b"x" * 9000 + b"\n",
    OK + OK,  # one reply too many: a line with no command pending
]
PEER_CLOSES = None  # Asterisk restarted, the network dropped: the connection is lost
REPLY = st.one_of(st.sampled_from(REPLIES), st.binary(max_size=40), st.just(PEER_CLOSES))
WAITS = st.sampled_from([0.0, 0.0, 0.0, 0.1, DB_TIMEOUT, SESSION_TIMEOUT - 0.01, SESSION_TIMEOUT])


# --- the properties ------------------------------------------------------------------------
@pytest.fixture(scope="module", autouse=True)
def unhandled_errors():
    """Twisted log events of failures nobody handled, for the whole module."""
    seen: list[dict] = []

    def observer(event: dict) -> None:
        if event.get("log_failure") is not None or "Unhandled" in str(event.get("log_format")):
            seen.append(event)

    globalLogPublisher.addObserver(observer)
    yield seen
    globalLogPublisher.removeObserver(observer)


@FUZZ
@given(block=environment_blocks(), cuts=st.lists(st.integers(0, 10**6), max_size=6),
       outcomes=st.lists(OUTCOMES, max_size=4), data=st.data())
def test_fuzzed_sessions_never_crash_leak_or_write_a_bad_line(block, cuts, outcomes, data):
    session = Session(outcomes)
    for piece in split_points(block, cuts):
        session.feed(piece)
    answered = 0
    for _ in range(12):  # answer (or not) each command the server writes
        out = session.take_output()
        check_output(session.written)
        if session.transport.disconnecting:
            break
        if out:
            answered += 1
            reply = data.draw(REPLY)
            if reply is PEER_CLOSES:
                session.peer_closes()
                break
            for piece in split_points(reply, data.draw(st.lists(
                    st.integers(0, 100), max_size=2))):
                session.feed(piece)
        session.clock.advance(data.draw(WAITS))
    final = check_answer(session.end())
    event(f"{final.get(v.RESULT)} {final.get(v.REASON) or ''}, {answered} commands answered")


@FUZZ
@given(stream=st.binary(max_size=600), prefix=st.booleans(),
       cuts=st.lists(st.integers(0, 10**6), max_size=8),
       outcomes=st.lists(OUTCOMES, max_size=3), then_close=st.booleans())
def test_arbitrary_byte_streams_split_anywhere(stream, prefix, cuts, outcomes, then_close):
    if prefix:  # garbage after a valid block lands where replies are expected
        stream = b"".join(line + b"\n" for line in env_lines("authorize", ["acme", "4411"],
                                                              {})) + b"\n" + stream
    session = Session(outcomes)
    for piece in split_points(stream, cuts):
        session.feed(piece)
        session.take_output()
        check_output(session.written)
    if then_close:
        session.peer_closes()
    check_answer(session.end())


@FUZZ
@given(request=requests(st.sampled_from(["authorize", "settle", "health", "nosuch"])),
       overrides=st.dictionaries(st.sampled_from(["callerid", "calleridname", "channel"]),
                                 TEXT.map(lambda t: t.replace("\n", " ")), max_size=3),
       outcomes=st.lists(OUTCOMES, max_size=3), hangup=st.booleans())
def test_cooperative_peer_always_gets_a_definite_answer(request, overrides, outcomes, hangup):
    """Any arguments, any caller ID, any database outcome: a peer that answers like
    Asterisk (optionally after a HANGUP) always ends with ICT_RESULT set."""
    script, args = request
    args = [a.replace("\n", " ") for a in args]  # a newline would end the env line
    block = b"".join(line + b"\n" for line in env_lines(script, args, overrides)) + b"\n"
    session = Session(outcomes)
    session.feed(block)
    if hangup:
        session.feed(b"HANGUP\n")
    for _ in range(20):
        out = session.take_output()
        if session.transport.disconnecting:
            break
        if out:
            session.feed(OK * out.count(b"\n"))
        else:
            session.clock.advance(0.5)
    final = check_answer(session.end(), cooperative=True)
    event(f"{script}: {final.get(v.RESULT)} {final.get(v.REASON) or ''}")
    assert final.get(v.RESULT) in (v.ALLOW, v.REJECT), final
    if final[v.RESULT] == v.REJECT:
        assert final.get(v.REASON) in reasons.ALL and v.CAUSE in final, final


def expected_answer(result) -> dict[str, str]:
    """What the dialplan must end up with for a canned database result."""
    if isinstance(result, calls.Authorization):
        a = result.admission
        if a.allowed:
            return {v.RESULT: v.ALLOW, v.CALL_ID: str(result.call_id),
                    v.MAX_MS: str(a.max_seconds * 1000), v.DIAL: a.dial_target,
                    v.RATE: f"{a.rate.rate_per_min:.6f}"}
        return {v.RESULT: v.REJECT, v.REASON: a.reason, v.CAUSE: str(a.cause), v.CALL_ID: ""}
    if not result.found or result.state == "rejected":
        return {v.RESULT: v.REJECT, v.REASON: reasons.BAD_REQUEST, v.CAUSE: "41"}
    return {v.RESULT: v.ALLOW, v.COST: f"{result.cost:.4f}"}


@pytest.mark.parametrize("hangup", [False, True], ids=["live", "hung-up"])
@pytest.mark.parametrize("pick", range(len(AUTHORIZATIONS) + len(SETTLEMENTS)))
def test_every_database_answer_reaches_the_channel_exactly(pick, hangup):
    """Each canned store result (allowed with a dial target full of quotes, backslashes
    and UTF-8; every rejection; every settlement) arrives as exactly the contract's
    variables, parsed back with Asterisk's quoting rules, even after a HANGUP."""
    script = "authorize" if pick < len(AUTHORIZATIONS) else "settle"
    args = VALID_ARGS[script][0]
    session = Session([("ok", pick if script == "authorize" else pick - len(AUTHORIZATIONS))])
    session.feed(b"".join(line + b"\n" for line in env_lines(script, args, {})) + b"\n")
    if hangup:
        session.feed(b"HANGUP\n")
    while (out := session.take_output()):
        session.feed(OK * out.count(b"\n"))
    final = check_answer(session.end(), cooperative=True)
    canned = session.db.result_for(calls.authorize if script == "authorize" else calls.settle,
                                   session.db.outcomes[0][1])
    assert final == expected_answer(canned)


def test_no_unhandled_errors_left_in_garbage_deferreds(unhandled_errors):
    """Failures nobody handled are reported when their Deferred is collected: after the
    fuzzed sessions above (this test runs last in the module), collect and expect none."""
    gc.collect()
    assert unhandled_errors == []
