"""`settle` arriving twice, at once, late, for an unknown call, or with nonsense values.

Over real TCP (the in-process server of tests/callcontrol/agi_server.py, several database
threads) against the real database. Every session gets a definite answer; nothing is
billed twice; a call is billed only by a settle that answered ALLOW, with the cost it
answered. (tests/callcontrol already covers a sequential repeat, `abc`, `-5`, a newline in
the status, an unknown id and a rejected attempt; these are the rest.)
"""

from __future__ import annotations

from datetime import datetime, timedelta
from decimal import Decimal

import pytest
import pytest_twisted
from sqlalchemy import text
from twisted.internet.defer import ensureDeferred, gatherResults
from twisted.internet.threads import deferToThread

from fastagi import channel_vars as v, reasons
from fastagi.store import calls
from tests.callcontrol.agi_server import agi_server
from tests.callcontrol.tenants import add_client, add_rate, default_plan_id, ledger_gap

from tests.support.sql import scalar
from tests.support.waiting import wait_until

D = Decimal
OPENING = D("50")
BAD = {v.RESULT: v.REJECT, v.REASON: reasons.BAD_REQUEST,
       v.CAUSE: str(reasons.cause_for(reasons.BAD_REQUEST))}


@pytest.fixture
def acme(engine):
    """A client billed 0.60/min per second (cost = 0.01 x seconds), no fee."""
    add_rate(engine, default_plan_id(engine), "1", "0.60", initial=1, subsequent=1)
    return add_client(engine, "acme", balance=str(OPENING), channel_limit=50)


def balance(engine, client_id: int) -> Decimal:
    return scalar(engine, "SELECT balance FROM client_accounts WHERE client_id = :i", i=client_id)


def call_row(engine, call_id: str):
    with engine.connect() as conn:
        return conn.execute(text("SELECT state, cost, answered_seconds, review_note"
                                 " FROM calls WHERE id = :i"), {"i": int(call_id)}).one()


async def answers(server, script: str, *args: str) -> dict[str, str]:
    got = await server.session(script, *args, timeout=15)
    assert got.server_closed, "the server must close every session itself"
    return dict(got.set_by_server)


@pytest_twisted.ensureDeferred
async def test_simultaneous_settles_of_one_call_bill_it_once(engine, acme):
    """Eight settles of the same call at once (a hangup handler retried, two servers...),
    each reporting a different talk time: one wins, every answer is its cost."""
    async with agi_server(engine, pool=8, max_call_seconds=600) as server:
        ids = [(await answers(server, "authorize", "acme", "15550100"))[v.CALL_ID]
               for _ in range(5)]
        for call_id in ids:
            got = await gatherResults([
                ensureDeferred(server.session("settle", call_id, str(10 + n), "ANSWER"))
                for n in range(8)])
            costs = {dict(g.set_by_server)[v.COST] for g in got}
            assert all(dict(g.set_by_server)[v.RESULT] == v.ALLOW for g in got)
            assert len(costs) == 1, costs
            row = call_row(engine, call_id)
            assert row.state == "settled" and f"{row.cost:.4f}" == costs.pop()
            assert row.cost == D("0.01") * row.answered_seconds
    billed = scalar(engine, "SELECT SUM(cost) FROM calls WHERE client_id = :i", i=acme)
    assert balance(engine, acme) == OPENING - billed
    assert ledger_gap(engine, acme) == 0


@pytest_twisted.ensureDeferred
async def test_late_settles_after_the_stale_sweep_bill_once(engine, acme):
    """Closed as stale (never settled in time), then two late settles at once and one
    more later: billed once, flagged for review, every answer the same cost."""
    async with agi_server(engine, pool=4, max_call_seconds=60,
                          stale_grace_seconds=0) as server:
        call_id = (await answers(server, "authorize", "acme", "15550100"))[v.CALL_ID]
        swept = await deferToThread(calls.close_stale, engine,
                                    datetime.utcnow() + timedelta(seconds=61))
        assert swept == 1 and call_row(engine, call_id).state == "stale"
        assert balance(engine, acme) == OPENING
        late = await gatherResults([
            ensureDeferred(server.session("settle", call_id, "42", "ANSWER"))
            for _ in range(2)])
        later = await answers(server, "settle", call_id, "59", "ANSWER")
    assert [dict(g.set_by_server) for g in late] == [
        {v.RESULT: v.ALLOW, v.COST: "0.4200"}] * 2
    assert later[v.COST] == "0.4200"
    row = call_row(engine, call_id)
    assert (row.state, row.cost) == ("settled", D("0.4200"))
    assert "stale" in row.review_note
    assert scalar(engine, "SELECT COUNT(*) FROM calls_for_review WHERE call_id = :i",
                  i=int(call_id)) == 1
    assert balance(engine, acme) == OPENING - D("0.42")
    assert ledger_gap(engine, acme) == 0


@pytest_twisted.ensureDeferred
async def test_settle_racing_the_stale_sweep_still_bills_once(engine, acme):
    """The sweep commits `stale` between the settle's read and its UPDATE: made
    deterministic by holding the sweep's transaction open until the settle waits on it."""
    async with agi_server(engine, pool=4, max_call_seconds=60,
                          stale_grace_seconds=0) as server:
        call_id = (await answers(server, "authorize", "acme", "15550100"))[v.CALL_ID]
        sweep_conn = engine.connect()
        sweep = sweep_conn.begin()
        try:
            # What close_stale does, left uncommitted: the row is locked, still `live` for
            # every other transaction (READ COMMITTED).
            sweep_conn.execute(text(
                "UPDATE calls SET state = 'stale', settled_at = UTC_TIMESTAMP(3),"
                " review_note = 'never settled' WHERE id = :i AND state = 'live'"),
                {"i": int(call_id)})
            settling = ensureDeferred(server.session("settle", call_id, "30", "ANSWER"))
            await wait_for_settle_update(engine)
            await deferToThread(sweep.commit)
        finally:
            sweep_conn.close()
        got = dict((await settling).set_by_server)
    row = call_row(engine, call_id)
    assert got == {v.RESULT: v.ALLOW, v.COST: "0.3000"}
    assert (row.state, row.cost) == ("settled", D("0.3000"))
    assert balance(engine, acme) == OPENING - D("0.30")
    assert ledger_gap(engine, acme) == 0


async def wait_for_settle_update(engine, timeout: float = 10) -> None:
    """Until the settle's UPDATE runs in the database (then it waits on the row lock)."""
    await wait_until(lambda: deferToThread(
        scalar, engine, "SELECT COUNT(*) FROM information_schema.processlist"
                        " WHERE db = DATABASE() AND info LIKE 'UPDATE calls SET state"
                        " = ''settled''%'"),
        timeout, what="the settle's UPDATE reaching the database", step=0.02)


EIGHT_KB = "7" * 8000
NONSENSE_ID = ["0", "-1", "1.0", "1e3", "0x1", "", "   ", "abc", "1;DROP TABLE calls",
               "1' OR '1'='1", "١", "１", "9" * 19, "18446744073709551616", EIGHT_KB,
               "999999999999999999"]   # the last is well-formed but unknown
NONSENSE_SECONDS = ["-1", "-0.5", "1e3", "nan", "inf", "0x10", "10,5", "10 20", "١٠",
                    "１０", "½", "+5", "5.", ".5", "1.0000001", "9" * 10, EIGHT_KB, "abc",
                    "'; UPDATE clients SET balance = 0; --",
                    # talk time in ms: whole non-negative milliseconds up to 31 days only
                    "ms=-1", "ms=1.5", "ms=1e3", "ms=+5", "ms=0x10", "ms= 5", "ms=5 ms",
                    "ms=abc", "MS=5", "ms==5", "5ms", "s=5", "ms=١٠", "ms=" + "9" * 11,
                    "ms=2678400001", "2678401", "ms=" + EIGHT_KB, "0.5", "12.0"]
NONSENSE_STATUS = ["ANSWER'; --", "ANS WER", "ÄNSWER", "A" * 17, "ANSWER\\", EIGHT_KB,
                   "answer;busy"]


@pytest_twisted.ensureDeferred
async def test_nonsense_settles_get_bad_request_and_change_nothing(engine, acme):
    async with agi_server(engine, pool=4, max_call_seconds=600) as server:
        call_id = (await answers(server, "authorize", "acme", "15550100"))[v.CALL_ID]
        attempts = (
            [(bad, "10", "ANSWER") for bad in NONSENSE_ID]
            + [(call_id, bad, "ANSWER") for bad in NONSENSE_SECONDS]
            + [(call_id, "10", bad) for bad in NONSENSE_STATUS]
            + [(call_id, "10", "ANSWER", "extra"), (call_id, "10", "ANSWER", "", "")])
        got = await gatherResults([ensureDeferred(server.session("settle", *args))
                                   for args in attempts])
        wrong = [(args, dict(g.set_by_server)) for args, g in zip(attempts, got)
                 if dict(g.set_by_server) != BAD or not g.server_closed]
        assert wrong == []
        row = call_row(engine, call_id)
        assert (row.state, row.cost) == ("live", None)   # nothing touched it
        assert balance(engine, acme) == OPENING
        # The real settle still works, once.
        assert (await answers(server, "settle", call_id, "ms=11001", "ANSWER"))[v.COST] == "0.1200"
        assert (await answers(server, "settle", call_id, "ms=11001", "ANSWER"))[v.COST] == "0.1200"
    assert balance(engine, acme) == OPENING - D("0.12")
    assert scalar(engine, "SELECT COUNT(*) FROM calls WHERE cost IS NOT NULL") == 1
    assert ledger_gap(engine, acme) == 0
    # The SQL fragments were data, never SQL: the tables are intact.
    assert scalar(engine, "SELECT COUNT(*) FROM calls") == 1


@pytest.mark.parametrize("seconds, status, cost, flagged", [
    ("ms=2678400000", "ANSWER", "1.0000", True),  # 31 days: billed at the 100 s limit
    ("ms=100000", "ANSWER", "1.0000", False),    # exactly the limit
    ("ms=100999", "ANSWER", "1.0000", False),    # L() jitter above the limit: not flagged
    ("ms=101000", "ANSWER", "1.0000", True),     # a second above it: flagged
    ("ms=0", "ANSWER", "0.0100", False),         # answered under 1 ms: the initial increment
    ("ms=1", "ANSWER", "0.0100", False),         # a started second is a second
    ("ms=4568", "ANSWER", "0.0500", False),      # 4.568 s -> 5 s
    ("ms=", "", "0.0000", False),                # ANSWEREDTIME_MS and DIALSTATUS both empty
    ("", "", "0.0000", False),
    (" ms=7000 ", "answer", "0.0700", False),    # blanks and case are tolerated
    # whole seconds from a dialplan older than ANSWEREDTIME_MS: still billed, as seconds
    ("2678400", "ANSWER", "1.0000", True),
    ("0", "ANSWER", "0.0100", False),
    (" 7 ", "answer", "0.0700", False),
])
@pytest_twisted.ensureDeferred
async def test_extreme_but_valid_settles_are_definite(engine, acme, seconds, status, cost,
                                                      flagged):
    async with agi_server(engine, pool=2, max_call_seconds=100) as server:
        call_id = (await answers(server, "authorize", "acme", "15550100"))[v.CALL_ID]
        got = await answers(server, "settle", call_id, seconds, status)
    assert got == {v.RESULT: v.ALLOW, v.COST: cost}
    row = call_row(engine, call_id)
    assert (row.state, f"{row.cost:.4f}") == ("settled", cost)
    assert (row.review_note is not None) == flagged
    assert balance(engine, acme) == OPENING - D(cost)
