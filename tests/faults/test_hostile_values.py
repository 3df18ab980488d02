"""Hostile values over real TCP against the real database: caller ID, client codes,
numbers and operator data with quotes, backslashes, line breaks, SQL fragments, 8 KB
strings, non-ASCII and invalid UTF-8.

Observed: every session ends with a definite answer (bad-request where the request is
invalid, never ALLOW for it); caller ID never changes the decision; nothing hostile is
stored where only validated values belong; the tables are intact; and every value the
server sends arrives at Asterisk's side exactly as meant (parsed with Asterisk's own
quoting rules by the fake Asterisk).
"""

from __future__ import annotations

from decimal import Decimal

import pytest
import pytest_twisted
from hypothesis import given, settings, strategies as st
from twisted.internet import reactor
from twisted.internet.defer import ensureDeferred, gatherResults

from fastagi import channel_vars as v, reasons
from fastagi.agi.errors import UnsafeValue
from fastagi.testing.fake_asterisk import run_session, split_args
from fastagi.agi.quoting import ENCODING, ERRORS, command_line
from fastagi.agi.server import AgiServerFactory
from tests.agi.helpers import make_services
from tests.callcontrol.agi_server import agi_server
from tests.callcontrol.tenants import add_client, add_plan, add_rate, default_plan_id, ledger_gap

from .conftest import scaled
from tests.support.sql import scalar

EIGHT_KB = "Z" * 8000
INVALID_UTF8 = b"\xff\xfe\xc3(".decode(ENCODING, ERRORS)   # arrives as surrogate escapes
HOSTILE = [
    '"', "\\", '\\"', 'a "b" c', "'; DROP TABLE calls; --", "1' OR '1'='1", "acme'--",
    "acme; DELETE FROM clients", "ümlaut ☎ 電話", "\u202eemca", INVALID_UTF8, EIGHT_KB,
    "${ICT_RESULT}", "$[1+1]", "acme,4411", "acme|x", "%0A", "\t", "\x7f", "ACME",
    " ", "", "+", "0044 207", "4411\x00",
]
SAFE_IN_ENV = [h for h in HOSTILE if "\n" not in h]
STORABLE = [h for h in SAFE_IN_ENV if h != INVALID_UTF8]
TABLES_AND_COUNTS = ("SELECT COUNT(*) FROM clients", "SELECT COUNT(*) FROM payments",
                     "SELECT COUNT(*) FROM rate_plans", "SELECT COUNT(*) FROM rates")


@pytest.fixture
def world(engine):
    """acme and victim, with a plan whose dial template (operator data) is itself awkward."""
    plan = add_plan(engine, "awkward", dial_template='PJSIP/{number}@"up link" \\ ☎')
    add_rate(engine, plan, "44", "0.60", initial=1, subsequent=1)
    add_rate(engine, default_plan_id(engine), "44", "0.60", initial=1, subsequent=1)
    acme = add_client(engine, "acme", balance="10", channel_limit=5, plan_id=plan)
    victim = add_client(engine, "victim", balance="10", channel_limit=5)
    before = {sql: scalar(engine, sql) for sql in TABLES_AND_COUNTS}
    return engine, {"acme": acme, "victim": victim}, before


def assert_intact(engine, before) -> None:
    assert {sql: scalar(engine, sql) for sql in TABLES_AND_COUNTS} == before
    for table in ("clients", "payments", "calls", "rate_plans", "rates"):
        assert scalar(engine, f"CHECK TABLE {table}") is not None  # the table still exists
    assert scalar(engine, "SELECT COUNT(*) FROM calls WHERE client_code NOT IN"
                          " ('acme', 'victim') OR number NOT REGEXP '^[+]?[0-9]{1,32}$'") == 0


def well_formed(received: bytes) -> list[list[str]]:
    """Every line the server sent: LF-terminated, no CR/NUL, parsed as Asterisk would."""
    assert received.endswith(b"\n")
    parsed = []
    for raw in received.split(b"\n")[:-1]:
        assert b"\r" not in raw and b"\x00" not in raw
        words = split_args(raw.decode(ENCODING, ERRORS))
        assert command_line(" ".join(words[:2]), *words[2:]) == raw + b"\n"
        parsed.append(words)
    return parsed


async def session(port: int, script: str, *args: str, env=None):
    got = await run_session(reactor, "127.0.0.1", port, script, args, env=env, timeout=15)
    assert got.server_closed
    return got


@pytest_twisted.ensureDeferred
async def test_hostile_client_codes_and_numbers_get_bad_request_and_touch_nothing(world):
    engine, ids, before = world
    async with agi_server(engine, pool=4) as server:
        requests = ([(h, "4411") for h in HOSTILE] + [("acme", h) for h in HOSTILE]
                    + [("acme", "4411", h) for h in HOSTILE if h.strip()])
        got = await gatherResults([ensureDeferred(session(server.port, "authorize", *args))
                                   for args in requests])
    for args, result in zip(requests, got):
        answer = dict(result.set_by_server)
        assert (answer[v.RESULT], answer[v.REASON], answer[v.CAUSE]) == (
            v.REJECT, reasons.BAD_REQUEST, "41"), (args, answer)
        well_formed(result.received)
    assert scalar(engine, "SELECT COUNT(*) FROM calls") == 0  # refused before any SQL
    assert_intact(engine, before)


@pytest_twisted.ensureDeferred
async def test_caller_id_and_channel_data_never_change_the_decision_or_leak(world):
    """Hostile caller ID (number and name), channel, uniqueid and account code: the call
    is decided on the dialplan's arguments alone; channel and uniqueid are stored as data
    (bound parameters, truncated to their columns), never as SQL."""
    engine, ids, before = world
    async with agi_server(engine, pool=4) as server:
        answers = []
        for hostile in SAFE_IN_ENV:
            env = {"callerid": hostile, "calleridname": hostile, "accountcode": hostile,
                   "dnid": hostile, "rdnis": hostile, "extension": hostile}
            if hostile in STORABLE:  # (invalid UTF-8 in stored fields: tested below)
                env.update(channel="PJSIP/" + hostile, uniqueid=hostile)
            got = await session(server.port, "authorize", "acme", "442071234567", env=env)
            answer = dict(got.set_by_server)
            assert answer[v.RESULT] == v.ALLOW, (hostile, answer)
            # The operator's awkward dial template arrives exactly, quotes and all.
            assert answer[v.DIAL] == 'PJSIP/442071234567@"up link" \\ ☎'
            well_formed(got.received)
            answers.append((hostile, answer[v.CALL_ID]))
            settled = await session(server.port, "settle", answer[v.CALL_ID], "3", "ANSWER")
            assert dict(settled.set_by_server)[v.COST] == "0.0300"
    for hostile, call_id in answers:
        with engine.connect() as conn:
            row = conn.exec_driver_sql(
                "SELECT client_code, number, channel, uniqueid FROM calls WHERE id = %s",
                (int(call_id),)).one()
        assert (row.client_code, row.number) == ("acme", "442071234567")
        if hostile in STORABLE:
            assert row.channel == ("PJSIP/" + hostile)[:128]
            assert (row.uniqueid or "") == hostile[:64]
    assert scalar(engine, "SELECT balance FROM client_list WHERE code = 'acme'") == \
        Decimal("10") - Decimal("0.03") * len(answers)
    assert scalar(engine, "SELECT balance FROM client_list WHERE code = 'victim'") == 10
    assert ledger_gap(engine, ids["acme"]) == 0
    assert_intact(engine, before)


@pytest_twisted.ensureDeferred
async def test_a_line_break_in_caller_id_cannot_pick_the_tenant(world):
    """res_agi does not escape values: a caller ID name holding a newline splits its line.
    Forged `agi_arg_N` lines and an early end of the block must not authorize another
    tenant: no ALLOW reaches the dialplan and the victim holds no call afterwards (the
    genuine rest of the block breaks the session, and authorize then rolls back)."""
    engine, ids, before = world
    forged = "x\nagi_arg_1: victim\nagi_arg_2: 442071234567\n"
    async with agi_server(engine, pool=4) as server:
        for name in (forged, forged + "\n", forged + "\nagi_network_script: authorize\n"):
            got = await session(server.port, "authorize", "acme", "442071234567",
                                env={"calleridname": name})
            answer = dict(got.set_by_server)
            assert answer.get(v.RESULT) != v.ALLOW or answer.get(v.CALL_ID) in (
                None, "") or scalar(engine, "SELECT client_code FROM calls WHERE id = :i",
                                    i=int(answer[v.CALL_ID])) == "acme", answer
    live_for_victim = scalar(engine, "SELECT COUNT(*) FROM calls WHERE client_id = :i",
                             i=ids["victim"])
    assert live_for_victim == 0


@pytest_twisted.ensureDeferred
async def test_channel_names_that_are_not_utf8_are_stored_not_refused(world):
    engine, ids, before = world
    async with agi_server(engine, pool=2) as server:
        got = await session(server.port, "authorize", "acme", "442071234567",
                            env={"channel": "PJSIP/" + INVALID_UTF8, "uniqueid": INVALID_UTF8})
    assert dict(got.set_by_server)[v.RESULT] == v.ALLOW
    assert_intact(engine, before)


# (lone surrogates other than surrogate escapes cannot come from bytes, so no Cs in text)
NO_BREAKS = st.characters(blacklist_characters="\n\r\x00", blacklist_categories=("Cs",))
VALUES = st.text(alphabet=NO_BREAKS, max_size=60) | \
    st.binary(max_size=30).map(lambda b: b.replace(b"\n", b"").replace(b"\r", b"")
                               .replace(b"\x00", b"").decode(ENCODING, ERRORS)) | \
    st.sampled_from([h for h in HOSTILE if not set(h) & set("\n\r\x00")])


@pytest_twisted.ensureDeferred
async def test_every_value_set_over_tcp_arrives_exactly():
    """Through the real stack (Channel.set_variable -> protocol -> TCP -> Asterisk's
    quoting rules), values with quotes, backslashes, blanks, UTF-8, invalid UTF-8 and
    near the 8 KB line limit arrive unchanged; values with a line break are refused and
    the session still gets a definite REJECT."""
    values = [h for h in HOSTILE if not set(h) & set("\r\x00")] + [
        "x" * 8150, '"' * 4000, "\\" * 4000, " a  b ", "a\tb", "é" * 2000]
    unsafe = ["line\nbreak", "cr\rhere", "nul\x00here"]

    async def echo(channel, services):
        value = channel.env.get("agi_calleridname") if channel.args[0] == "env" else \
            (values + unsafe)[int(channel.args[0])]
        await channel.set_variable(v.DIAL, value)
        await channel.set_variable(v.RESULT, v.ALLOW)

    factory = AgiServerFactory({"echo": echo}, make_services(reactor, session_timeout=10,
                                                             db_timeout=1))
    port = reactor.listenTCP(0, factory, interface="127.0.0.1")
    try:
        got = await gatherResults([
            run_session(reactor, "127.0.0.1", port.getHost().port, "echo", (str(n),),
                        timeout=15) for n in range(len(values) + len(unsafe))])
    finally:
        await port.stopListening()
    for value, result in zip(values, got):
        assert dict(result.set_by_server) == {v.DIAL: value, v.RESULT: v.ALLOW}
        well_formed(result.received)
    for result in got[len(values):]:
        assert dict(result.set_by_server)[v.RESULT] == v.REJECT
        assert v.DIAL not in result.set_by_server
        well_formed(result.received)
    assert factory.live == set()


@settings(max_examples=scaled(300, 5000), deadline=None, database=None)
@given(name=st.text(alphabet=NO_BREAKS, max_size=20),
       value=VALUES)
def test_quoted_commands_parse_back_exactly_even_with_invalid_utf8(name, value):
    """The unit property of tests/agi/test_quoting.py, extended to the bytes that are not
    UTF-8 (surrogate escapes) the server may receive and echo."""
    try:
        line = command_line("SET VARIABLE", name or "X", value)
    except UnsafeValue:
        raise AssertionError(f"{value!r} was refused")
    text = line.decode(ENCODING, ERRORS)
    assert text.count("\n") == 1 and line.endswith(b"\n") and b"\r" not in line
    assert split_args(text[:-1]) == ["SET", "VARIABLE", name or "X", value]
