"""trunks.calls_per_second enforced (issue 22) against the real database: the take counts
the trunk's attempts in the window (call_attempts.started_at) under its trunk_states row
lock; a rate-limited trunk is skipped like a full one, in authorize and failover alike."""

from __future__ import annotations

import threading
from datetime import datetime, timedelta
from decimal import Decimal

import pytest

from fastagi import reasons
from fastagi.billing.admission import CallRequest
from fastagi.store import calls, trunks
from tests.callcontrol.tenants import add_client, add_rate, default_plan_id
from tests.routing.carriers import add_buy_rate, add_group, add_route, add_trunk, breaks_rate
from tests.support.sql import execute, rows, scalar

NOW = datetime(2026, 12, 7, 12, 0, 0)
LIMITS = calls.Limits(max_call_seconds=3600, dial_template="PJSIP/{number}@carrier",
                      stale_grace_seconds=300)
UK = "442071234567"
CLIENTS = [f"c{n}" for n in range(8)]


def out(code: str = "c0", number: str = UK, emergency: bool = False) -> CallRequest:
    return CallRequest(client_code=code, number=number, direction="out", emergency=emergency)


def at(seconds: float) -> datetime:
    return NOW + timedelta(seconds=seconds)


def set_cps(engine, trunk_id: int, cps) -> None:
    execute(engine, "UPDATE trunks SET calls_per_second = :c WHERE id = :t", c=cps, t=trunk_id)


def starts(engine, trunk_id: int) -> list[datetime]:
    return [r.started_at for r in rows(engine, "SELECT started_at FROM call_attempts"
                                       " WHERE trunk_id = :t ORDER BY started_at", t=trunk_id)]


def route(engine, group: int, name: str, priority: int, cps=None) -> int:
    trunk = add_trunk(engine, name, capacity=1000)
    add_buy_rate(engine, trunk, "44", "0.05")
    add_route(engine, group, trunk, priority)
    if cps is not None:
        set_cps(engine, trunk, cps)
    return trunk


@pytest.fixture
def world(engine):
    """Eight clients with room to spare (so their own row locks do not queue the calls:
    the trunk's lock does); UK calls on `a` (priority 10) then `b` (20)."""
    plan = default_plan_id(engine)
    add_rate(engine, plan, "44", "0.10")
    for code in CLIENTS:
        add_client(engine, code, balance="1000", channel_limit=1000)
    return add_group(engine, "44")


def authorize(engine, when: datetime, code: str = "c0"):
    return calls.authorize(engine, out(code), when, LIMITS)


def test_a_trunk_takes_its_limit_in_any_second(engine, world):
    a = route(engine, world, "a", 10, cps=2)
    route(engine, world, "b", 20)
    got = [authorize(engine, NOW).trunk for _ in range(3)]
    assert got == ["a", "a", "b"]
    # the window is one second, whatever the spacing: nothing before 1 s after the first two
    assert authorize(engine, at(0.5)).trunk == "b"
    assert authorize(engine, at(0.999)).trunk == "b"
    assert [authorize(engine, at(1)).trunk for _ in range(3)] == ["a", "a", "b"]
    assert starts(engine, a) == [NOW, NOW, at(1), at(1)]
    # one at 1.5 s is in the window of the two at 1 s; at 2 s both have left it
    assert authorize(engine, at(1.5)).trunk == "b"
    assert authorize(engine, at(2)).trunk == "a"
    # capacity is untouched by the rate: every call is still live
    assert scalar(engine, "SELECT COUNT(*) FROM call_attempts WHERE trunk_id = :t"
                  " AND state = 'live'", t=a) == 5
    assert breaks_rate(starts(engine, a), Decimal(2)) == []


def test_ten_a_second_then_the_eleventh_a_second_after_the_first(engine, world):
    a = route(engine, world, "a", 10, cps=10)
    route(engine, world, "b", 20)
    assert [authorize(engine, NOW).trunk for _ in range(11)] == ["a"] * 10 + ["b"]
    assert authorize(engine, at(0.999)).trunk == "b"
    assert authorize(engine, at(1)).trunk == "a"
    assert len(starts(engine, a)) == 11


def test_decimals_above_one_are_floored(engine, world):
    a = route(engine, world, "a", 10, cps="2.5")
    route(engine, world, "b", 20)
    assert [authorize(engine, at(s)).trunk for s in (0, 0.4, 0.8, 1, 1.2, 1.4)] == [
        "a", "a", "b", "a", "b", "a"]
    assert breaks_rate(starts(engine, a), Decimal(2)) == []


def test_fractional_rate(engine, world):
    a = route(engine, world, "a", 10, cps="0.5")
    route(engine, world, "b", 20)
    assert [authorize(engine, at(s)).trunk for s in (0, 0, 1.999, 2, 2)] == ["a", "b", "b", "a", "b"]
    assert starts(engine, a) == [NOW, at(2)]


def test_without_a_limit_nothing_is_counted(engine, world):
    a = route(engine, world, "a", 10)
    assert {authorize(engine, NOW).trunk for _ in range(20)} == {"a"}
    assert scalar(engine, "SELECT admitted_attempts FROM trunk_states WHERE trunk_id = :t",
                  t=a) == 20


def test_a_failed_attempt_counts_in_the_window(engine, world):
    """The carrier saw the INVITE: a take that failed over still counts for its second."""
    route(engine, world, "a", 10, cps=1)
    route(engine, world, "b", 20)
    first = authorize(engine, NOW, "c0")
    assert first.trunk == "a"
    assert failover(engine, first.call_id, "a", at(0.1)).trunk.name == "b"
    assert authorize(engine, at(0.2), "c1").trunk == "b"
    assert authorize(engine, at(1), "c2").trunk == "a"


def failover(engine, call_id, trunk, when=NOW):
    return trunks.failover(engine, call_id, "CONGESTION", 34, trunk, when)


def test_a_failover_take_counts_and_skips_a_rate_limited_trunk(engine, world):
    route(engine, world, "x", 10)
    a = route(engine, world, "a", 20, cps=1)
    route(engine, world, "b", 30)
    first = authorize(engine, NOW, "c0")
    second = authorize(engine, NOW, "c1")
    assert (first.trunk, second.trunk) == ("x", "x")
    assert failover(engine, first.call_id, "x").trunk.name == "a"
    assert starts(engine, a) == [NOW]
    assert failover(engine, second.call_id, "x").trunk.name == "b"
    # and a failover take limits authorize: a fresh call skips `a` until 1 s
    execute(engine, "UPDATE trunks SET status = 'disabled' WHERE name = 'x'")
    assert authorize(engine, at(0.999), "c2").trunk == "b"
    assert authorize(engine, at(1), "c3").trunk == "a"


def test_every_trunk_rate_limited_is_no_route(engine, world):
    route(engine, world, "a", 10, cps=1)
    route(engine, world, "b", 20, cps=1)
    assert [authorize(engine, NOW).trunk for _ in range(2)] == ["a", "b"]
    refused = authorize(engine, NOW)
    assert not refused.admission.allowed and refused.admission.reason == reasons.NO_ROUTE
    assert refused.admission.cause == 3
    # failover finds none either: no-route, and the call record says so (a change of the
    # limit applies at the next take: there is no schedule to catch up with)
    execute(engine, "UPDATE trunks SET calls_per_second = 1000 WHERE name = 'a'")
    call = authorize(engine, at(0.5)).call_id                       # on a (b waits to 1 s)
    execute(engine, "UPDATE trunks SET calls_per_second = 1 WHERE name = 'a'")
    moved = failover(engine, call, "a", at(0.5))
    assert moved.outcome == trunks.NO_ROUTE
    assert scalar(engine, "SELECT route_outcome FROM calls WHERE id = :i", i=call) == "no-route"
    # a second after a's last take it takes again
    assert authorize(engine, at(1.499)).trunk == "b"
    assert authorize(engine, at(1.5)).trunk == "a"


def test_emergency_calls_are_never_rate_limited(engine, world):
    route(engine, world, "a", 10, cps="0.01")
    authorize(engine, NOW)
    got = calls.authorize(engine, out(number="112", emergency=True), NOW, LIMITS)
    assert got.admission.allowed and got.trunk == ""


def stale_full_row_save(engine, form: dict, **changes) -> None:
    """Adminer's edit form: every column as loaded (changes applied) written back."""
    values = {**form, **changes}
    columns = [c for c in values if c not in ("id", "updated_at")]
    assignments = ", ".join(f"`{c}` = :{c}" for c in columns)
    execute(engine, f"UPDATE trunks SET {assignments}, updated_at = NOW() WHERE id = :id",
            **values)


def test_a_stale_full_row_save_of_trunks_changes_nothing(engine, world):
    a = route(engine, world, "a", 10, cps=2)
    route(engine, world, "b", 20)
    form = dict(rows(engine, "SELECT * FROM trunks WHERE id = :t", t=a)[0]._mapping)
    assert [authorize(engine, NOW).trunk for _ in range(2)] == ["a", "a"]
    stale_full_row_save(engine, form, comments="new NOC number")
    assert authorize(engine, NOW).trunk == "b"
    assert authorize(engine, at(1)).trunk == "a"
    assert len(starts(engine, a)) == 3


ROUNDED = "trunks.calls_per_second is 0.01-9999.99 calls a second with at most 2 decimals"


@pytest.mark.parametrize("value, refusal", [
    ("0", "trunks.calls_per_second must be above 0"),
    ("-2", "trunks.calls_per_second must be above 0"),
    ("0.001", ROUNDED),              # would be 0.00
    ("0.335", ROUNDED),              # would be 0.34: faster than the carrier allows
    ("10000", "Out of range value for column 'calls_per_second'"),   # strict mode's own
])
def test_a_bad_calls_per_second_is_refused_in_words(engine, world, value, refusal):
    a = route(engine, world, "a", 10, cps=2)
    with pytest.raises(Exception, match=refusal):
        set_cps(engine, a, value)
    with pytest.raises(Exception, match=refusal):
        execute(engine, "INSERT INTO trunks (name, endpoint, calls_per_second)"
                " VALUES ('bad', 'bad', :c)", c=value)
    assert scalar(engine, "SELECT calls_per_second FROM trunks WHERE id = :t", t=a) == 2


def test_a_limit_clipped_or_unseen_in_a_loose_session_is_refused_too(engine, world):
    """An admin tool's session without strict mode clips 10000 to 9999.99; one with notes
    off cannot show a rounding: both refused, and a save of the old value still passes."""
    a = route(engine, world, "a", 10, cps="2.5")
    with engine.connect() as conn:
        conn.exec_driver_sql("SET SESSION sql_mode = ''")
        with pytest.raises(Exception, match=ROUNDED):
            conn.execute(trunks.text("UPDATE trunks SET calls_per_second = 10000 WHERE id = :t"),
                         {"t": a})
        conn.rollback()
        conn.exec_driver_sql("SET SESSION sql_notes = 0")
        with pytest.raises(Exception, match="not written with sql_notes off"):
            conn.execute(trunks.text("UPDATE trunks SET calls_per_second = 3 WHERE id = :t"),
                         {"t": a})
        conn.rollback()
        conn.execute(trunks.text("UPDATE trunks SET calls_per_second = 2.5, comments = 'x'"
                                 " WHERE id = :t"), {"t": a})
        conn.commit()
        conn.invalidate()                  # its loose session does not go back to the pool
    assert scalar(engine, "SELECT calls_per_second FROM trunks WHERE id = :t", t=a) == Decimal("2.5")


# ---- racing servers -----------------------------------------------------------------------

def race(engines, calls_per_thread: int, instants) -> list:
    """One thread per client, half on each engine (two servers' pools), each authorizing
    at the given instants; every answer."""
    answers, errors = [], []

    def run(n: int) -> None:
        try:
            for i in range(calls_per_thread):
                answers.append(calls.authorize(engines[n % len(engines)], out(CLIENTS[n]),
                                               instants(n, i), LIMITS))
        except Exception as exc:  # noqa: BLE001 - reported below, in the test
            errors.append(exc)
    threads = [threading.Thread(target=run, args=(n,)) for n in range(len(CLIENTS))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(120)
    assert errors == []
    return answers


@pytest.fixture
def two_servers(engine, db_url):
    from fastagi.db.engine import make_engine
    other = make_engine(db_url, pool_size=8)
    mine = make_engine(db_url, pool_size=8)
    yield [mine, other]
    other.dispose()
    mine.dispose()


def test_racing_takes_at_one_instant_never_exceed_the_limit(engine, world, two_servers):
    a = route(engine, world, "a", 10, cps=3)
    route(engine, world, "b", 20)
    answers = race(two_servers, 4, lambda n, i: NOW)
    assert len(answers) == 32 and all(g.admission.allowed for g in answers)
    assert sorted(g.trunk for g in answers) == ["a"] * 3 + ["b"] * 29
    assert scalar(engine, "SELECT admitted_attempts FROM trunk_states WHERE trunk_id = :t",
                  t=a) == 3


def test_racing_takes_over_two_seconds_keep_the_rate(engine, world, two_servers):
    """Eight clients on two servers, each calling every 100 ms for 2 s (their instants
    out of step, and not in the order the takes get the lock): the takes of the 3-cps
    trunk, read back from call_attempts, never hold more than 3 in any one second, and it
    is used up to its limit."""
    cps = Decimal(3)
    a = route(engine, world, "a", 10, cps=cps)
    route(engine, world, "b", 20)
    answers = race(two_servers, 20,
                   lambda n, i: NOW + timedelta(milliseconds=100 * i + 7 * n))
    assert len(answers) == 160 and all(g.admission.allowed for g in answers)
    taken = starts(engine, a)
    assert breaks_rate(taken, cps) == []
    # the first second full; over 1.949 s of instants, 3 a second: 6 at most
    assert 3 < len(taken) <= 6
