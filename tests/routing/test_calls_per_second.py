"""trunks.calls_per_second enforced (issue 22) against the real database: the take checks
the trunk's schedule (trunk_states.cps_next_at) under its row lock, and call_attempts'
AFTER INSERT trigger (schema 172) moves it; a rate-limited trunk is skipped like a full
one, in authorize and failover alike."""

from __future__ import annotations

import threading
from datetime import datetime, timedelta
from decimal import Decimal

import pytest

from fastagi import reasons
from fastagi.billing import routing
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


def schedule(engine, trunk_id: int):
    return scalar(engine, "SELECT cps_next_at FROM trunk_states WHERE trunk_id = :t", t=trunk_id)


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


def test_a_trunk_takes_its_burst_then_one_every_interval(engine, world):
    a = route(engine, world, "a", 10, cps=2)
    route(engine, world, "b", 20)
    got = [authorize(engine, NOW).trunk for _ in range(3)]
    assert got == ["a", "a", "b"]
    assert schedule(engine, a) == at(1)
    assert authorize(engine, at(0.499)).trunk == "b"
    assert authorize(engine, at(0.5)).trunk == "a"
    assert authorize(engine, at(0.5)).trunk == "b"
    assert authorize(engine, at(1)).trunk == "a"
    assert schedule(engine, a) == at(2)
    # capacity is untouched by the rate: every call is still live
    assert scalar(engine, "SELECT COUNT(*) FROM call_attempts WHERE trunk_id = :t"
                  " AND state = 'live'", t=a) == 4


def test_fractional_rate(engine, world):
    a = route(engine, world, "a", 10, cps="0.5")
    route(engine, world, "b", 20)
    assert [authorize(engine, at(s)).trunk for s in (0, 0, 1.999, 2, 2)] == ["a", "b", "b", "a", "b"]
    assert schedule(engine, a) == at(4)


def test_without_a_limit_the_schedule_stays_empty(engine, world):
    a = route(engine, world, "a", 10)
    assert {authorize(engine, NOW).trunk for _ in range(20)} == {"a"}
    assert schedule(engine, a) is None
    assert scalar(engine, "SELECT admitted_attempts FROM trunk_states WHERE trunk_id = :t",
                  t=a) == 20


@pytest.mark.parametrize("cps", ["3", "0.5", "0.01", "2.5", "7299.27", "9999.99"])
def test_the_trigger_moves_the_schedule_as_the_rule_says(engine, world, cps):
    """Schema 172's integer arithmetic and routing.cps_after_take agree to the microsecond,
    from a take instant with microseconds (started_at keeps milliseconds)."""
    a = route(engine, world, "a", 10, cps=cps)
    when = NOW + timedelta(microseconds=123_456)
    assert authorize(engine, when).trunk == "a"
    expected = routing.cps_after_take(Decimal(cps), None, when)
    assert schedule(engine, a) == expected
    # the earliest next take the rule allows is taken, and moves it on by one interval
    burst_left = routing.cps_burst(Decimal(cps)) - 1
    tolerance = timedelta(microseconds=burst_left * routing.cps_interval_us(Decimal(cps)))
    nxt = max(expected - tolerance, routing.take_instant(when))
    assert authorize(engine, nxt).trunk == "a"
    assert schedule(engine, a) == routing.cps_after_take(Decimal(cps), expected, nxt)


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
    assert schedule(engine, a) == at(1)
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
    # failover finds none either: no-route, and the call record says so
    execute(engine, "UPDATE trunks SET calls_per_second = 1000 WHERE name = 'a'")
    call = authorize(engine, at(0.5)).call_id                       # on a (b waits to 1 s)
    execute(engine, "UPDATE trunks SET calls_per_second = 1 WHERE name = 'a'")
    moved = failover(engine, call, "a", at(0.5))
    assert moved.outcome == trunks.NO_ROUTE
    assert scalar(engine, "SELECT route_outcome FROM calls WHERE id = :i", i=call) == "no-route"
    # a second later both take again
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


def test_a_stale_full_row_save_of_trunks_keeps_the_schedule(engine, world):
    a = route(engine, world, "a", 10, cps=2)
    route(engine, world, "b", 20)
    form = dict(rows(engine, "SELECT * FROM trunks WHERE id = :t", t=a)[0]._mapping)
    assert [authorize(engine, NOW).trunk for _ in range(2)] == ["a", "a"]
    moved = schedule(engine, a)
    stale_full_row_save(engine, form, comments="new NOC number")
    assert schedule(engine, a) == moved == at(1)
    assert authorize(engine, NOW).trunk == "b"
    # the documented way to restart the schedule (docs/admin-sql.md)
    execute(engine, "UPDATE trunk_states SET cps_next_at = NULL WHERE trunk_id = :t", t=a)
    assert authorize(engine, NOW).trunk == "a"


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


def test_racing_takes_at_one_instant_never_exceed_the_burst(engine, world, two_servers):
    a = route(engine, world, "a", 10, cps=3)
    route(engine, world, "b", 20)
    answers = race(two_servers, 4, lambda n, i: NOW)
    assert len(answers) == 32 and all(g.admission.allowed for g in answers)
    assert sorted(g.trunk for g in answers) == ["a"] * 3 + ["b"] * 29
    assert scalar(engine, "SELECT admitted_attempts FROM trunk_states WHERE trunk_id = :t",
                  t=a) == 3


def test_racing_takes_over_two_seconds_keep_the_rate(engine, world, two_servers):
    """Eight clients on two servers, each calling every 100 ms for 2 s (their instants
    out of step): the takes of the 3-cps trunk, read back from call_attempts, never hold
    more than the rule allows in any span, and it is used up to its rate."""
    cps = Decimal(3)
    a = route(engine, world, "a", 10, cps=cps)
    route(engine, world, "b", 20)
    answers = race(two_servers, 20,
                   lambda n, i: NOW + timedelta(milliseconds=100 * i + 7 * n))
    assert len(answers) == 160 and all(g.admission.allowed for g in answers)
    starts = [r.started_at for r in rows(engine, "SELECT started_at FROM call_attempts"
                                         " WHERE trunk_id = :t", t=a)]
    assert breaks_rate(starts, cps) == []
    # in any second (999 ms between takes at most) the burst and 2 more; overall the burst,
    # then about 3 a second for the 2 s
    for s in starts:
        assert sum(1 for o in starts if s <= o < s + timedelta(seconds=1)) <= 3 + 2
    assert 3 + 4 <= len(starts) <= 3 + 5      # 3 + floor(1.949 s / T): the most it may take
