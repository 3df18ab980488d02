"""Money is exact or refused (schema/090_money_exact.sql): a value with more decimals than
its column keeps is refused, never rounded, in any sql_mode and through procedures; a
payment's sign fits its kind; channel limits have an upper bound.

Same table-driven shape as test_refusals.py (and its shared world): each case's `good`
twin must pass, its `bad` statement must fail with the words given.
"""

from __future__ import annotations

import re
from decimal import Decimal

import pytest
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError

from tests.builders import make_client, top_up
from tests.schema.refusal_world import (SIGNAL, Refusal, insert_client, insert_payment,
                                        insert_rate, run_and_roll_back, world)  # noqa: F401

ROUNDED_AMOUNT = r"^payments\.amount takes at most 4 decimals and is never rounded"
ROUNDED_RATE = r"^rates\.rate_per_min takes at most 6 decimals and is never rounded"
NOTES_OFF = r"is not written with sql_notes off"


def payment_with_flag(amount: str, flag: int, client: str = ":a") -> str:
    return ("INSERT INTO payments (client_id, amount, kind, reference, allow_below_floor) "
            f"VALUES ({client}, {amount}, 'correction', 'fix-1', {flag})")


CASES = [
    # amounts and rates: more decimals than stored is refused, whatever the sql_mode
    Refusal("payment with 6 decimals", insert_payment(amount="10.123456"),
            insert_payment(amount="10.1234"), SIGNAL, ROUNDED_AMOUNT),
    Refusal("payment with 6 decimals as text", insert_payment(amount="'10.123456'"),
            insert_payment(amount="'10.1234'"), SIGNAL, ROUNDED_AMOUNT),
    Refusal("payment with 6 decimals, non-strict", insert_payment(amount="10.123456"),
            insert_payment(amount="10.1234"), SIGNAL, ROUNDED_AMOUNT, sql_mode=""),
    Refusal("payment that is not a number, non-strict", insert_payment(amount="'ten'"),
            insert_payment(amount="'10'"), SIGNAL, ROUNDED_AMOUNT, sql_mode=""),
    Refusal("one inexact row of three", (
        "INSERT INTO payments (client_id, amount, reference) VALUES "
        "(:a, 1, 'm-1'), (:a, 2.00001, 'm-2'), (:a, 3, 'm-3')"), (
        "INSERT INTO payments (client_id, amount, reference) VALUES "
        "(:a, 1, 'm-1'), (:a, 2.0001, 'm-2'), (:a, 3, 'm-3')"), SIGNAL, ROUNDED_AMOUNT),
    Refusal("payment with sql_notes off", ("SET sql_notes = 0", insert_payment(amount="10")),
            ("SET sql_notes = 1", insert_payment(amount="10")), SIGNAL, NOTES_OFF),
    Refusal("rate that would round to free", insert_rate(rate="0.0000004"),
            insert_rate(rate="0.000001"), SIGNAL, ROUNDED_RATE),
    Refusal("rate that would round to free, non-strict", insert_rate(rate="0.0000004"),
            insert_rate(rate="0.000001"), SIGNAL, ROUNDED_RATE, sql_mode=""),
    Refusal("rate that is not a number, non-strict", insert_rate(rate="'free'"),
            insert_rate(rate="'0'"), SIGNAL, ROUNDED_RATE, sql_mode=""),
    Refusal("rate rounded by update",
            "UPDATE rates SET rate_per_min = 0.0000004 WHERE rate_plan_id = :plan",
            "UPDATE rates SET rate_per_min = 0.000001 WHERE rate_plan_id = :plan",
            SIGNAL, ROUNDED_RATE),
    Refusal("connection fee with 7 decimals", insert_rate(fee="0.0100001"),
            insert_rate(fee="0.010001"), SIGNAL, r"^rates\.connection_fee takes at most 6"),
    Refusal("opening balance with 5 decimals", insert_client(opening_balance=Decimal("1.23456")),
            insert_client(opening_balance=Decimal("1.2345")), SIGNAL,
            r"^clients\.opening_balance takes at most 4"),
    Refusal("credit limit with 5 decimals",
            "UPDATE clients SET credit_limit = 0.00001 WHERE id = :b",
            "UPDATE clients SET credit_limit = 0.0001 WHERE id = :b",
            SIGNAL, r"^clients\.credit_limit takes at most 4"),
    Refusal("call re-rated with 5 decimals",
            "UPDATE calls SET cost = 1.00001 WHERE id = :charged_call",
            "UPDATE calls SET cost = 1.0001 WHERE id = :charged_call",
            SIGNAL, r"^calls\.cost takes at most 4"),
    Refusal("buy cost re-rated with 5 decimals",
            "UPDATE calls SET buy_cost = 0.00001 WHERE id = :charged_call",
            "UPDATE calls SET buy_cost = 0.0001 WHERE id = :charged_call",
            SIGNAL, r"^calls\.buy_cost takes at most 4"),
    Refusal("buy cost written with sql_notes off",
            ("SET sql_notes = 0", "UPDATE calls SET buy_cost = 0.0002 WHERE id = :charged_call"),
            ("SET sql_notes = 1", "UPDATE calls SET buy_cost = 0.0002 WHERE id = :charged_call"),
            SIGNAL, NOTES_OFF),
    # 155's fast path skips the checks only for a statement with no condition at all:
    # a rounded row after clean ones, notes off, or no room for notes is still refused
    Refusal("rounded rate after two clean rows of one insert", (
        "INSERT INTO rates (rate_plan_id, prefix, rate_per_min, connection_fee) VALUES "
        "(:plan, '4497', 0.01, 0), (:plan, '4498', 0.02, 0), (:plan, '4499', 0.0000004, 0)"), (
        "INSERT INTO rates (rate_plan_id, prefix, rate_per_min, connection_fee) VALUES "
        "(:plan, '4497', 0.01, 0), (:plan, '4498', 0.02, 0), (:plan, '4499', 0.000001, 0)"),
        SIGNAL, ROUNDED_RATE),
    Refusal("rate with sql_notes off", ("SET sql_notes = 0", insert_rate(rate="0.02")),
            ("SET sql_notes = 1", insert_rate(rate="0.02")), SIGNAL, NOTES_OFF),
    Refusal("rate with no room for notes", ("SET max_error_count = 0", insert_rate(rate="0.02")),
            ("SET max_error_count = 64", insert_rate(rate="0.02")), SIGNAL, NOTES_OFF),
    Refusal("rate changed with sql_notes off",
            ("SET sql_notes = 0", "UPDATE rates SET rate_per_min = 0.5 WHERE rate_plan_id = :plan"),
            ("SET sql_notes = 1", "UPDATE rates SET rate_per_min = 0.5 WHERE rate_plan_id = :plan"),
            SIGNAL, NOTES_OFF),
    Refusal("call re-rated with no room for notes",
            ("SET max_error_count = 0", "UPDATE calls SET cost = 1.0002 WHERE id = :charged_call"),
            ("SET max_error_count = 64", "UPDATE calls SET cost = 1.0002 WHERE id = :charged_call"),
            SIGNAL, NOTES_OFF),
    Refusal("top-up through add_payment with 6 decimals",
            "CALL add_payment('alpha', 10.123456, 'p-1')",
            "CALL add_payment('alpha', 10.1234, 'p-1')", SIGNAL, ROUNDED_AMOUNT),
    Refusal("opening balance through create_client with 5 decimals",
            "CALL create_client('newc', 'New', NULL, 1, 1.00001)",
            "CALL create_client('newc', 'New', NULL, 1, 1.0001)",
            SIGNAL, r"^clients\.opening_balance takes at most 4"),
    # a payment's sign fits its kind
    Refusal("negative top-up", insert_payment(amount="-5"),
            insert_payment(amount="-5", kind="correction"), SIGNAL,
            r"^a topup is money received and must be positive: .*kind = 'correction'"),
    Refusal("opening payment written by hand", insert_payment(kind="opening"),
            insert_payment(kind="topup"), SIGNAL,
            r"^kind opening is written only by INSERT INTO clients"),
    Refusal("correction below a prepaid floor", payment_with_flag("-100000", 0),
            payment_with_flag("-100000", 1), SIGNAL,
            r"^this payment would take the balance below its floor .*allow_below_floor = 1"),
    Refusal("correction through add_payment below the floor",
            "CALL add_payment('alpha', -103.5001, 'p-1')",
            "CALL add_payment('alpha', -103.5, 'p-1')", SIGNAL,
            r"^this payment would take the balance below its floor"),
    Refusal("negative opening balance below the floor",
            insert_client(opening_balance=Decimal("-3"), credit_limit=Decimal("2")),
            insert_client(opening_balance=Decimal("-3"), credit_limit=Decimal("3")), SIGNAL,
            r"^this payment would take the balance below its floor"),
    # channel limits have an upper bound
    Refusal("channel limit above 10000", insert_client(channel_limit=10001),
            insert_client(channel_limit=10000), SIGNAL,
            r"^clients\.channel_limit is at most 10000 simultaneous calls"),
    Refusal("channel limit raised above 10000",
            "UPDATE clients SET channel_limit = 100000 WHERE id = :b",
            "UPDATE clients SET channel_limit = 10000 WHERE id = :b", SIGNAL,
            r"^clients\.channel_limit is at most 10000"),
    Refusal("campaign max_channels above 10000",
            "INSERT INTO campaigns (client_id, name, max_channels) VALUES (:a, 'big', 10001)",
            "INSERT INTO campaigns (client_id, name, max_channels) VALUES (:a, 'big', 10000)",
            SIGNAL, r"^campaigns\.max_channels is at most 10000"),
    Refusal("campaign max_channels raised above 10000",
            "UPDATE campaigns SET max_channels = 10001 WHERE id = :ca",
            "UPDATE campaigns SET max_channels = NULL WHERE id = :ca", SIGNAL,
            r"^campaigns\.max_channels is at most 10000"),
]


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_money_refused_with_a_clear_error(world, case: Refusal):  # noqa: F811
    engine, ids = world
    params = {**ids, **case.params}
    run_and_roll_back(engine, case.good, params, case.sql_mode)
    with pytest.raises(DBAPIError) as raised:
        run_and_roll_back(engine, case.bad, params, case.sql_mode)
    errno, message = raised.value.orig.args[:2]
    assert (errno, bool(re.search(case.message, message))) == (case.errno, True), message


def test_an_exact_payment_is_kept_to_the_last_decimal(engine):
    with engine.begin() as conn:
        acme = make_client(conn, "acme")
        top_up(conn, acme.id, Decimal("10.1235"), "INV-1")
        conn.execute(text("CALL add_payment('acme', 0.0001, 'INV-2')")).all()
    with engine.connect() as conn:
        assert conn.execute(text("SELECT balance FROM client_accounts WHERE client_id = :id"),
                            {"id": acme.id}).scalar_one() == Decimal("10.1236")


def test_a_refused_rate_leaves_no_free_rate_behind(engine):
    with engine.begin() as conn:
        plan = conn.execute(text("SELECT id FROM rate_plans WHERE is_default = 1")).scalar_one()
    with pytest.raises(DBAPIError, match="never rounded"):
        with engine.begin() as conn:
            conn.execute(text("SET SESSION sql_mode = ''"))
            conn.execute(text("INSERT INTO rates (rate_plan_id, prefix, rate_per_min) "
                              "VALUES (:p, '999', 0.0000004)"), {"p": plan})
    with engine.connect() as conn:
        assert conn.execute(text("SELECT COUNT(*) FROM rates WHERE prefix = '999'")
                            ).scalar_one() == 0


def test_an_allowed_correction_below_the_floor_is_recorded_with_its_flag(engine):
    with engine.begin() as conn:
        acme = make_client(conn, "acme", balance=Decimal("115"))
        conn.execute(text("INSERT INTO payments (client_id, amount, kind, reference, "
                          "allow_below_floor) "
                          "VALUES (:id, -100000, 'correction', 'chargeback', 1)"),
                     {"id": acme.id})
    with engine.connect() as conn:
        assert conn.execute(text("SELECT balance FROM client_accounts WHERE client_id = :id"),
                            {"id": acme.id}).scalar_one() == Decimal("-99885")
        assert conn.execute(text("SELECT allow_below_floor FROM payments WHERE reference = "
                                 "'chargeback'")).scalar_one() == 1
