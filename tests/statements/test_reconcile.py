"""Statements reconcile with the ledger to the ten-thousandth, over random ledgers.

Random payments, corrections and calls (charged, free, emergency, unanswered, stale,
live, re-rated), some exactly on a month boundary, are written through the real triggers;
every monthly statement must then give: opening = the ledger's balance at the period start,
closing = opening + payments + corrections - usage = the ledger's balance at the period
end, each closing = the next opening, and the last closing = client_list's balance.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from decimal import Decimal

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from fastagi.billing.statement import Period
from fastagi.store import statements
from tests.builders import add_rate, default_plan_id, make_client
from tests.support.ledger import call, ledger_at, pay
from tests.support.sql import rows, scalar

FIRST, LAST = Period(2026, 9), Period(2027, 1)
NOW = datetime(2027, 3, 1)

# instants from mid-August to the end of January, with month boundaries and their last
# millisecond drawn often
BOUNDARIES = [datetime(2026, m, 1) for m in (9, 10, 11, 12)] + [datetime(2027, 1, 1)]
instants = st.one_of(
    st.datetimes(min_value=datetime(2026, 8, 20), max_value=datetime(2027, 1, 31, 23, 59, 59)),
    st.sampled_from(BOUNDARIES),
    st.sampled_from(BOUNDARIES).map(lambda b: b - timedelta(milliseconds=1)),
)
money = st.integers(min_value=1, max_value=10_000_000).map(lambda n: Decimal(n) / 10_000)

payment = st.tuples(st.sampled_from(["topup", "correction-", "correction+"]), money, instants)
call_kind = st.sampled_from(["charged", "free-rate", "emergency", "unanswered", "stale",
                             "live", "rerated", "inbound"])
a_call = st.tuples(call_kind, money, st.integers(min_value=1, max_value=7200), instants)


def write_ledger(conn, client, payments, calls):
    for kind, amount, at in payments:
        at = at.replace(microsecond=0)          # payments.created_at keeps whole seconds
        if kind == "topup":
            pay(conn, client.id, amount, at)
        else:
            pay(conn, client.id, -amount if kind == "correction-" else amount, at, "correction")
    for kind, cost, seconds, at in calls:
        at = at.replace(microsecond=at.microsecond // 1000 * 1000)   # DATETIME(3)
        if kind == "charged":
            call(conn, client.id, client.code, at, cost=cost, answered_seconds=seconds,
                 billable_seconds=seconds)
        elif kind == "free-rate":
            call(conn, client.id, client.code, at, cost=Decimal("0"), answered_seconds=seconds,
                 billable_seconds=seconds)
        elif kind == "emergency":
            call(conn, client.id, client.code, at, cost=Decimal("0"), answered_seconds=seconds,
                 emergency=True, prefix=None, number="911")
        elif kind == "unanswered":
            call(conn, client.id, client.code, at, cost=Decimal("0"), answered_seconds=None)
        elif kind == "stale":
            call(conn, client.id, client.code, at, state="stale", answered_seconds=None)
        elif kind == "live":
            call(conn, client.id, client.code, None, state="live", answered_seconds=None)
        elif kind == "inbound":
            call(conn, client.id, client.code, at, cost=cost, answered_seconds=seconds,
                 billable_seconds=seconds, direction="in", prefix="44")
        else:   # an admin re-rates a call: the cost changes, the balance moves by the difference
            call_id = call(conn, client.id, client.code, at, cost=cost,
                           answered_seconds=seconds, billable_seconds=seconds)
            conn.exec_driver_sql(f"UPDATE calls SET cost = cost * 2 WHERE id = {call_id}")


def periods():
    period = FIRST
    while True:
        yield period
        if period == LAST:
            return
        period = period.next()


@settings(max_examples=40, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(payments=st.lists(payment, max_size=12), calls=st.lists(a_call, max_size=16),
       noise=st.lists(payment, max_size=3))
def test_statements_reconcile_with_the_ledger_and_chain(engine, payments, calls, noise):
    with engine.begin() as conn:
        client = make_client(conn)
        neighbour = make_client(conn)          # another client's ledger is never counted
        write_ledger(conn, client, payments, calls)
        write_ledger(conn, neighbour, noise, [("charged", Decimal("1"), 60, BOUNDARIES[2])])

    made = [statements.statement(engine, client.code, p, NOW) for p in periods()]

    with engine.connect() as conn:
        assert made[0].opening_balance == ledger_at(conn, client.id, FIRST.start)
        for s in made:
            assert s.opening_balance == ledger_at(conn, client.id, s.period.start)
            assert s.closing_balance == ledger_at(conn, client.id, s.period.end)
            assert s.closing_balance == (s.opening_balance + s.payments + s.corrections
                                         - s.usage_cost)
            billed_calls = scalar(
                conn, "SELECT COUNT(*) FROM calls WHERE client_id = :id AND state = 'settled'"
                " AND (answered_seconds > 0 OR cost <> 0)"
                " AND settled_at >= :start AND settled_at < :end",
                id=client.id, start=s.period.start, end=s.period.end)
            assert s.calls == billed_calls
            assert not s.is_open
        for before, after in zip(made, made[1:]):
            assert before.closing_balance == after.opening_balance
        assert made[-1].closing_balance == scalar(
            conn, "SELECT balance FROM client_list WHERE id = :id", id=client.id)
        # the DBA's monthly view says the same for every month with a movement
        view = {r.period: r for r in rows(conn, "SELECT * FROM statements WHERE client_id = :id",
                                          id=client.id)}
    by_period = {str(s.period): s for s in made}
    for period, row in view.items():
        if period in by_period:
            s = by_period[period]
            assert (row.opening_balance, row.payments, row.corrections, row.usage_cost,
                    row.closing_balance, row.calls) == (
                s.opening_balance, s.payments, s.corrections, s.usage_cost,
                s.closing_balance, s.calls)


def test_a_call_is_on_the_statement_of_the_month_it_ended_in(engine):
    with engine.begin() as conn:
        add_rate(conn, default_plan_id(conn), "1", Decimal("0.01"),
                 description="United States/Canada")
        client = make_client(conn)
        pay(conn, client.id, Decimal("10"), datetime(2026, 11, 1))
        # started on 30 November, ended (settled) on 1 December
        call(conn, client.id, client.code, datetime(2026, 12, 1, 0, 5), cost=Decimal("0.06"),
             answered_seconds=360, billable_seconds=360, prefix="1", number="12125550123")
        call(conn, client.id, client.code, datetime(2026, 11, 30, 23, 59, 59, 999000),
             cost=Decimal("0.0100"), answered_seconds=60, billable_seconds=60, prefix="1")

    november = statements.statement(engine, client.code, Period(2026, 11), NOW)
    december = statements.statement(engine, client.code, Period(2026, 12), NOW)

    assert [(u.destination, u.calls, u.cost) for u in november.usage] == [
        ("United States/Canada", 1, Decimal("0.0100"))]
    assert [(u.destination, u.calls, u.seconds, u.cost) for u in december.usage] == [
        ("United States/Canada", 1, 360, Decimal("0.0600"))]
    assert november.closing_balance == december.opening_balance == Decimal("9.99")


def test_emergency_calls_are_shown_free_with_their_talk_time(engine):
    with engine.begin() as conn:
        client = make_client(conn)
        call(conn, client.id, client.code, datetime(2026, 11, 2), cost=Decimal("0"),
             answered_seconds=125, emergency=True, prefix=None, number="911")
        call(conn, client.id, client.code, datetime(2026, 11, 3), cost=Decimal("0"),
             answered_seconds=None, emergency=True, prefix=None, number="112")   # not answered

    s = statements.statement(engine, client.code, Period(2026, 11), NOW)

    assert [(u.destination, u.emergency, u.calls, u.seconds, u.minutes, u.cost)
            for u in s.usage] == [("Emergency calls (free)", True, 1, 125, Decimal("2.08"),
                                   Decimal("0"))]
    assert s.usage_cost == 0 and s.closing_balance == 0


def test_the_opening_payment_of_a_new_client_is_a_payment_of_its_month(engine):
    with engine.begin() as conn:
        client = make_client(conn, balance=Decimal("25.5"))
        created = scalar(conn, "SELECT created_at FROM payments WHERE client_id = :id",
                         id=client.id)
    period = Period(created.year, created.month)

    s = statements.statement(engine, client.code, period, created + timedelta(seconds=1))

    assert s.opening_balance == 0
    assert [(p.kind, p.reference, p.amount) for p in s.payment_rows] == [
        ("opening", "opening balance", Decimal("25.5"))]
    assert s.payments == s.closing_balance == s.current_balance == Decimal("25.5")
    assert s.is_open


def test_an_unknown_client_is_refused(engine):
    try:
        statements.statement(engine, "nobody", Period(2026, 11), NOW)
    except statements.ClientNotFound as exc:
        assert "no client with code 'nobody'" in str(exc)
    else:
        raise AssertionError("an unknown client made a statement")
