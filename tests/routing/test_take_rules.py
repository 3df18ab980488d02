"""The rules checked when a trunk is taken, as tables, against the database that enforces
them (schema 177): call_attempts' BEFORE INSERT trigger counts under the trunk's
trunk_states row lock and refuses with error 32022 (trunks.TRUNK_REFUSED) in words. Each
take here is a real INSERT of a live call and its attempt: the trigger's counts and its
rules are both under test."""

from __future__ import annotations

from datetime import datetime, timedelta
from decimal import Decimal

import pytest
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError

from fastagi.db.retry import mysql_errno
from fastagi.store import trunks
from tests.callcontrol.tenants import add_client
from tests.routing.carriers import add_trunk
from tests.support.sql import execute, scalar

NOW = datetime(2026, 12, 7, 12, 0, 0)
MS = timedelta(milliseconds=1)
D = Decimal


@pytest.fixture
def trunk(engine):
    add_client(engine, "acme", balance="50", channel_limit=1000)
    return add_trunk(engine, "t1", capacity=1000)


def take(engine, trunk_id: int, at: datetime, number: str = "442071234567") -> str | None:
    """A live call on `trunk_id` at `at` (its calls row, then its attempt): None when the
    take is accepted, else the database's refusal in words."""
    with engine.begin() as conn:
        call_id = conn.execute(text(
            "INSERT INTO calls (client_id, client_code, direction, number, state, authorized_at)"
            " VALUES ((SELECT id FROM clients WHERE code = 'acme'), 'acme', 'out', :n, 'live',"
            " :at)"), {"n": number, "at": at}).lastrowid
        try:
            conn.execute(text("INSERT INTO call_attempts (call_id, attempt, trunk_id, state,"
                              " started_at) VALUES (:c, 1, :t, 'live', :at)"),
                         {"c": call_id, "t": trunk_id, "at": at})
        except DBAPIError as exc:
            assert mysql_errno(exc) == trunks.TRUNK_REFUSED, exc
            return str(exc.orig.args[1])
    return None


def replay(engine, trunk_id: int, cps, offsets) -> list[bool]:
    """Takes of the trunk at NOW + each offset (ms, or a timedelta): which were accepted."""
    execute(engine, "UPDATE trunks SET calls_per_second = :c WHERE id = :t", c=cps, t=trunk_id)
    got = []
    for offset in offsets:
        at = NOW + offset * MS if isinstance(offset, int) else NOW + offset
        got.append(take(engine, trunk_id, at) is None)
    return got


@pytest.mark.parametrize("cps, offsets_ms, allowed", [
    # 10 at the same instant, the 11th refused until 1 s after the first
    ("10", [0] * 11, [True] * 10 + [False]),
    ("10", [0] * 10 + [1, 500, 999, 1000, 1000],
     [True] * 10 + [False, False, False, True, True]),
    # spread out: the window slides, each take waits for the one 1 s before it to leave
    ("10", [0, 100, 200, 300, 400, 500, 600, 700, 800, 900, 950, 1000, 1050, 1099, 1100],
     [True] * 10 + [False, True, False, False, True]),
    ("2", [0, 0, 0, 499, 500, 999, 1000, 1000, 1000],
     [True, True, False, False, False, False, True, True, False]),
    # decimals above 1 are floored: 2.5 allows 2 in any second
    ("2.5", [0, 0, 0, 400, 999, 1000, 1000, 1000], [True, True] + [False] * 3 + [True, True, False]),
    ("1.99", [0, 0, 999, 1000], [True, False, False, True]),
    # below 1: 0.5 is one per 2 s, 0.25 one per 4 s, 0.33 one per 3,031 ms (rounded up:
    # never faster than the limit), 0.01 one per 100 s
    ("0.5", [0, 0, 1999, 2000, 3999, 4000], [True, False, False, True, False, True]),
    ("0.25", [0, 3999, 4000, 4000], [True, False, True, False]),
    ("0.33", [0, 3030, 3031], [True, False, True]),
    ("0.99", [0, 1010, 1011], [True, False, True]),
    ("0.01", [0, 99_999, 100_000], [True, False, True]),
    # after a quiet spell the whole second's worth is back, never more
    ("2", [0, 0, 10_000, 10_000, 10_000], [True, True, True, True, False]),
    # NULL: no limit
    (None, [0] * 30, [True] * 30),
])
def test_sliding_window(engine, trunk, cps, offsets_ms, allowed):
    assert replay(engine, trunk, cps, offsets_ms) == allowed


def test_the_window_is_open_at_its_start_and_the_check_cuts_to_the_millisecond(engine, trunk):
    """call_attempts.started_at keeps milliseconds: the take is checked at the instant it
    is stored at. 2 cps after two takes at 0: refused through .999, allowed at 1.000 s (in
    (0, 1 s] the takes at 0 are out); a take at 1.000999 is stored at 1.000."""
    assert replay(engine, trunk, "2", [0, 0, timedelta(microseconds=999_999),
                                       timedelta(microseconds=1_000_999)]) == [
        True, True, False, True]


def test_a_take_stamped_ahead_of_the_next_one_counts(engine, trunk):
    """A server whose clock is ahead stamps a take later than this one's: it is in the
    count (no upper bound), so the limit still holds."""
    assert replay(engine, trunk, "0.5", [5000, 0]) == [True, False]
    other = add_trunk(engine, "t2", capacity=1000)
    assert replay(engine, other, "1", [5000, 0]) == [True, False]


def test_capacity_counts_live_attempts(engine, trunk):
    execute(engine, "UPDATE trunks SET capacity = 2 WHERE id = :t", t=trunk)
    assert take(engine, trunk, NOW) is None
    assert take(engine, trunk, NOW) is None
    assert take(engine, trunk, NOW) == "trunk t1 is full: 2 live calls, capacity 2"
    # the call leaving 'live' releases its unit (its trigger ends the attempt); an UPDATE
    # of calls may not read call_attempts then (MariaDB error 1442): the id first
    first = scalar(engine, "SELECT MIN(call_id) FROM call_attempts WHERE trunk_id = :t", t=trunk)
    execute(engine, "UPDATE calls SET state = 'stale', settled_at = :n WHERE id = :c",
            n=NOW, c=first)
    assert take(engine, trunk, NOW) is None
    # as does the attempt ending (failed over) while its call is still live
    execute(engine, "UPDATE call_attempts SET state = 'failed', ended_at = :n WHERE id = "
            "(SELECT MAX(id) FROM call_attempts WHERE trunk_id = :t)", n=NOW, t=trunk)
    assert take(engine, trunk, NOW) is None
    assert take(engine, trunk, NOW) is not None


@pytest.mark.parametrize("cooled_until, refused", [
    (NOW + MS, "trunk t1 is cooling down until 2026-12-07 12:00:00.001 UTC after failing"
               " too often in a row"),
    (NOW, None),          # cool-down over at the instant: tried again
    (None, None),
])
def test_cooling_down(engine, trunk, cooled_until, refused):
    execute(engine, "UPDATE trunk_states SET cooled_until = :u WHERE trunk_id = :t",
            u=cooled_until, t=trunk)
    assert take(engine, trunk, NOW) == refused


def test_disabled_and_zero_capacity(engine, trunk):
    execute(engine, "UPDATE trunks SET status = 'disabled' WHERE id = :t", t=trunk)
    assert take(engine, trunk, NOW) == "trunk t1 is disabled: trunks.status is disabled"
    execute(engine, "UPDATE trunks SET status = 'active', capacity = 0 WHERE id = :t", t=trunk)
    assert take(engine, trunk, NOW) == "trunk t1 is full: 0 live calls, capacity 0"


@pytest.mark.parametrize("cps, offsets_ms, refused", [
    ("2.5", [0, 0, 0], "trunk t1 took 2 calls in the last second: its limit is 2.50 calls a"
                       " second"),
    ("0.33", [0, 1], "trunk t1 took a call at 2026-12-07 12:00:00.000 UTC: its limit of 0.33"
                     " calls a second allows one in any 3031 ms"),
])
def test_rate_refusals_in_words(engine, trunk, cps, offsets_ms, refused):
    replay(engine, trunk, cps, offsets_ms[:-1])
    assert take(engine, trunk, NOW + offsets_ms[-1] * MS) == refused


def test_a_lost_state_row_is_made_again_and_locked(engine, trunk):
    execute(engine, "DELETE FROM trunk_states WHERE trunk_id = :t", t=trunk)
    assert take(engine, trunk, NOW) is None
    assert scalar(engine, "SELECT admitted_attempts FROM trunk_states WHERE trunk_id = :t",
                  t=trunk) == 1
