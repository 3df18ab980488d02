"""Reseller logins: every view and procedure as the reseller r1, its sub-reseller s, the
sibling reseller r2, a plain client of master (p) and plain clients of resellers (k1, g).
Each sees its own subtree only, and changes only its own clients, plans and rates."""

from __future__ import annotations

from decimal import Decimal

import pymysql
import pytest
from sqlalchemy import text

from tests.tenant.helpers import error_code, query

DENIED_ROUTINE = 1370
DENIED_TABLE = 1142
SIGNAL = 1644

RESELLER_VIEWS = ["my_client_calls", "my_clients", "my_margins", "my_margins_daily", "my_plans",
                  "my_rates", "transfers"]


def call(conn, sql: str, args=None) -> list[tuple]:
    return query(conn, sql, args)


def refusal(conn, sql: str, args=None) -> tuple[int, str]:
    with pytest.raises(pymysql.MySQLError) as caught:
        query(conn, sql, args)
    return error_code(caught.value), str(caught.value.args[-1])


def test_each_login_sees_its_subtree_and_nothing_above_or_beside(resellers):
    c = resellers.codes
    expected = {
        "r1": {(c["s"], c["r1"], 1), (c["k1"], c["r1"], 1), (c["g"], c["s"], 2)},
        "s": {(c["g"], c["s"], 1)},
        "r2": {(c["k2"], c["r2"], 1)},
        "p": set(), "k1": set(), "g": set(),
    }
    for name, rows in expected.items():
        with resellers.login(name) as conn:
            tables = {r[0] for r in call(conn, "SHOW TABLES")}
            assert set(RESELLER_VIEWS) <= tables
            assert set(call(conn, "SELECT code, parent_code, depth FROM my_clients")) == rows, name
            seen = " ".join(str(v) for r in call(conn, "SELECT * FROM my_clients") for v in r)
            for other in ("master", c["r2"] if name != "r2" else c["r1"]):
                assert other not in seen, (name, other)
    with resellers.login("r1", "agent") as conn:   # every role reads
        assert len(call(conn, "SELECT * FROM my_clients")) == 3


def test_plans_and_rates_a_login_sees_are_its_own_and_what_it_pays(resellers):
    """r1 pays 0.02 (the operator's default plan) and sells at 0.05; s pays r1's 0.05 and
    never sees 0.02; g pays s's 0.09 and sees neither r1's plan nor the default's."""
    seen = {}
    for name in ("r1", "s", "g", "r2", "p"):
        with resellers.login(name) as conn:
            seen[name] = (call(conn, "SELECT rate_per_min FROM rates"),
                          call(conn, "SELECT plan, rate_per_min FROM my_rates"),
                          call(conn, "SELECT name FROM my_plans"))
    assert seen["r1"] == ([(Decimal("0.02"),)], [("r1-retail", Decimal("0.05"))], [("r1-retail",)])
    assert seen["s"] == ([(Decimal("0.05"),)], [("s-retail", Decimal("0.09"))], [("s-retail",)])
    assert seen["g"] == ([(Decimal("0.09"),)], [], [])
    assert seen["r2"] == ([(Decimal("0.02"),)], [("r2-retail", Decimal("0.07"))], [("r2-retail",)])
    assert seen["p"] == ([(Decimal("0.02"),)], [], [])


def test_a_reseller_creates_clients_under_itself_only(resellers):
    c = resellers.codes
    new = c["r1"] + "n"
    with resellers.login("r1") as conn:
        assert call(conn, "CALL create_my_client(%s, 'New One', 'r1-retail', 4)", (new,)) == [
            (new, "New One", "r1-retail", Decimal("0"), 4, "active")]
        assert (new, c["r1"], 1) in set(call(conn, "SELECT code, parent_code, depth FROM my_clients"))
        # a code or name someone else has: refused in words, without saying whose
        code, message = refusal(conn, "CALL create_my_client(%s, 'X', 'r1-retail', 1)", (c["k2"],))
        assert code == SIGNAL and "taken" in message and c["r2"] not in message
        code, message = refusal(conn, "CALL create_my_client(%s, %s, 'r1-retail', 1)",
                                (new + "x", f"Client {c['k2']}"))
        assert "taken" in message
        # another reseller's plan, or the operator's: refused
        for plan in ("r2-retail", "default", "s-retail"):
            code, message = refusal(conn, "CALL create_my_client(%s, 'Y', %s, 1)", (new + "y", plan))
            assert "your own plans" in message, plan
    with resellers.engine.connect() as conn:
        assert conn.execute(text(
            "SELECT p.code FROM clients c JOIN clients p ON p.id = c.parent_id WHERE c.code = :c"),
            {"c": new}).scalar_one() == c["r1"]
        assert conn.execute(text("SELECT COUNT(*) FROM client_tree t JOIN clients c ON c.id = t.client_id"
                                 " WHERE c.code = :c"), {"c": new}).scalar_one() == 3  # self, r1, master
    # the sub-reseller creates under itself, on its own plan
    with resellers.login("s") as conn:
        call(conn, "CALL create_my_client(%s, 'Deep', 's-retail', 1)", (c["s"] + "d",))
        assert (c["s"] + "d", c["s"], 1) in set(call(conn, "SELECT code, parent_code, depth FROM my_clients"))


def test_plain_clients_and_lower_roles_cannot_create_clients(resellers):
    c = resellers.codes
    for name in ("p", "k1", "g"):
        with resellers.login(name) as conn:
            code, message = refusal(conn, "CALL create_my_client(%s, 'Z', 'r1-retail', 1)",
                                    (c[name] + "z",))
            assert code == SIGNAL and "does not resell" in message, name
            code, message = refusal(conn, "CALL transfer_to_client(%s, 1, 'up')", (c["r1"],))
            assert "does not resell" in message
    with resellers.login("r1", "agent") as conn:
        for sql in ("CALL create_my_client('zz', 'Z', 'r1-retail', 1)",
                    "CALL transfer_to_client('zz', 1, 'x')", "CALL suspend_my_client('zz')"):
            assert refusal(conn, sql)[0] == DENIED_ROUTINE
    with resellers.engine.connect() as conn:
        assert conn.execute(text("SELECT COUNT(*) FROM clients WHERE code LIKE '%z'")).scalar_one() == 0


def test_transfers_move_money_down_one_level_with_both_ledger_rows(resellers):
    c = resellers.codes
    with resellers.login("r1") as conn:
        row = call(conn, "CALL transfer_to_client(%s, 12.34, 'inv-1')", (c["k1"],))[0]
        assert row[1:] == (c["k1"], Decimal("12.34"), Decimal("87.66"), Decimal("17.34"))
        assert call(conn, "SELECT direction, client, amount, reference FROM transfers") == [
            ("out", c["k1"], Decimal("12.34"), "inv-1")]
        assert call(conn, "SELECT amount, kind FROM payments ORDER BY id") == [
            (Decimal("100"), "opening"), (Decimal("-12.34"), "correction")]
        code, message = refusal(conn, "CALL transfer_to_client(%s, 1, 'inv-1')", (c["k1"],))
        assert "already made a transfer with this reference" in message
    with resellers.login("k1") as conn:
        assert call(conn, "SELECT direction, client, amount FROM transfers") == [
            ("in", None, Decimal("12.34"))]
        assert call(conn, "SELECT amount, kind FROM payments ORDER BY id") == [
            (Decimal("5"), "opening"), (Decimal("12.34"), "topup")]
    with resellers.engine.connect() as conn:
        linked = conn.execute(text(
            "SELECT f.client_id, f.amount, t.client_id, t.amount FROM transfers x"
            " JOIN payments f ON f.id = x.from_payment_id JOIN payments t ON t.id = x.to_payment_id")).all()
        assert linked == [(resellers.ids["r1"], Decimal("-12.34"), resellers.ids["k1"], Decimal("12.34"))]


@pytest.mark.parametrize("target, who", [
    ("g", "r1"),      # a grandchild: only through s
    ("k2", "r1"),     # a sibling's client
    ("r2", "r1"),     # a sibling
    ("r1", "s"),      # back up to the parent
    ("r1", "r1"),     # itself
    ("k1", "r2"),
])
def test_transfers_go_to_own_children_only(resellers, target, who):
    code = resellers.codes[target]
    with resellers.login(who) as conn:
        errno, message = refusal(conn, "CALL transfer_to_client(%s, 1, 'x')", (code,))
    assert errno == SIGNAL and "no client of yours has that code" in message
    assert resellers.balance(who) == {"r1": 100, "s": 20, "r2": 50}[who]


@pytest.mark.parametrize("amount, words", [
    ("0", "more than 0"), ("-1", "more than 0"), ("0.00001", "at most 4 decimals"),
    ("1.000001", "at most 4 decimals"), ("100.0001", "not enough credit"),
    ("10000000000", "too large"), (None, "more than 0"),
])
def test_bad_amounts_are_refused_in_words(resellers, amount, words):
    with resellers.login("r1") as conn:
        errno, message = refusal(conn, "CALL transfer_to_client(%s, %s, 'x')",
                                 (resellers.codes["k1"], amount))
    assert errno == SIGNAL and words in message
    assert (resellers.balance("r1"), resellers.balance("k1")) == (100, 5)


def test_the_exact_credit_is_accepted_and_one_cent_more_refused(resellers):
    c = resellers.codes
    with resellers.engine.begin() as conn:
        conn.execute(text("UPDATE clients SET credit_limit = 10 WHERE id = :c"), {"c": resellers.ids["r1"]})
    with resellers.login("r1") as conn:
        errno, message = refusal(conn, "CALL transfer_to_client(%s, 110.01, 'a')", (c["k1"],))
        assert "you may transfer at most 110.0000" in message
        call(conn, "CALL transfer_to_client(%s, 110.00, 'b')", (c["k1"],))
        errno, message = refusal(conn, "CALL transfer_to_client(%s, 0.01, 'c')", (c["s"],))
        assert "not enough credit" in message
    assert (resellers.balance("r1"), resellers.balance("k1")) == (Decimal("-10"), Decimal("115"))


def test_live_calls_reserve_what_a_transfer_may_take(resellers):
    """A live call of r1's own and one of its client's (at r1's level) hold credit."""
    ids = resellers.ids
    with resellers.engine.begin() as conn:
        conn.execute(text(
            "INSERT INTO calls (client_id, client_code, direction, number, state, reserved,"
            " authorized_at, expires_at) VALUES (:c, :code, 'out', '4420', 'live', 30,"
            " UTC_TIMESTAMP(), UTC_TIMESTAMP() + INTERVAL 1 HOUR)"),
            {"c": ids["r1"], "code": resellers.codes["r1"]})
    assert resellers.available("r1") == 70
    with resellers.login("r1") as conn:
        errno, message = refusal(conn, "CALL transfer_to_client(%s, 70.01, 'a')", (resellers.codes["k1"],))
        assert "at most 70.0000" in message
        call(conn, "CALL transfer_to_client(%s, 70, 'b')", (resellers.codes["k1"],))
    assert resellers.available("r1") == 0


def test_a_reseller_suspends_and_reactivates_its_own_clients_only(resellers):
    c = resellers.codes
    k1 = resellers.login("k1")
    assert call(k1, "SELECT code FROM client_list") == [(c["k1"],)]
    with resellers.login("r1") as conn:
        assert call(conn, "CALL suspend_my_client(%s)", (c["k1"],))[0][-1] == "suspended"
        try:   # blind at once, as any suspension (and ended by the sync within ~1.5 s)
            assert call(k1, "SELECT code FROM client_list") == []
        except pymysql.err.OperationalError:
            pass
        finally:
            k1.close()
        assert call(conn, "CALL activate_my_client(%s)", (c["k1"],))[0][-1] == "active"
        assert call(conn, "CALL suspend_my_client(%s)", (c["s"],))[0][-1] == "suspended"
        for other in ("g", "k2", "r2", "p", "r1"):
            errno, message = refusal(conn, "CALL suspend_my_client(%s)", (c[other],))
            assert "no client of yours" in message, other
        assert call(conn, "CALL activate_my_client(%s)", (c["s"],))[0][-1] == "active"
    with resellers.login("s") as conn:
        errno, message = refusal(conn, "CALL suspend_my_client(%s)", (c["r1"],))
        assert "no client of yours" in message
    with resellers.engine.connect() as conn:
        assert conn.execute(text("SELECT COUNT(*) FROM clients WHERE status <> 'active'")).scalar_one() == 0


def test_a_reseller_sets_its_clients_plan_limits_and_reselling(resellers):
    c = resellers.codes
    with resellers.login("r1") as conn:
        call(conn, "CALL create_my_plan('r1-gold', 'cheaper')")
        call(conn, "CALL set_my_rate('r1-gold', '44', 'UK', 0.04, 0, 30, 6)")
        call(conn, "CALL set_my_rate('r1-gold', '44', 'UK', 0.045, 0.01, 30, 6)")   # changes it
        assert call(conn, "SELECT plan, prefix, rate_per_min, connection_fee, initial_increment "
                          "FROM my_rates WHERE plan = 'r1-gold'") == [
            ("r1-gold", "44", Decimal("0.045"), Decimal("0.01"), 30)]
        assert call(conn, "CALL update_my_client(%s, 'r1-gold', 3, 2.5, 1)", (c["k1"],))[0][2:5] == (
            "r1-gold", Decimal("5"), 3)
        assert call(conn, "SELECT plan, credit_limit, resells FROM my_clients WHERE code = %s",
                    (c["k1"],)) == [("r1-gold", Decimal("2.5"), 1)]
        for sql, words in [
            ("CALL update_my_client(%s, 'r2-retail', NULL, NULL, NULL)", "your own plans"),
            ("CALL update_my_client(%s, NULL, NULL, 0.00001, NULL)", "at most 4 decimals"),
            ("CALL update_my_client(%s, NULL, NULL, -1, NULL)", "0 or more"),
            ("CALL update_my_client(%s, NULL, -1, NULL, NULL)", "channels"),
        ]:
            assert words in refusal(conn, sql, (c["k1"],))[1], sql
        assert "no client of yours" in refusal(conn, "CALL update_my_client(%s, NULL, 1, NULL, NULL)",
                                               (c["g"],))[1]
        assert "at most 6 decimals" in refusal(conn, "CALL set_my_rate('r1-gold', '1', NULL, 0.0000001, 0, 60, 60)")[1]
        assert "1-32 digits" in refusal(conn, "CALL set_my_rate('r1-gold', '44x', NULL, 0.1, 0, 60, 60)")[1]
        assert "no plan with that name" in refusal(conn, "CALL set_my_rate('r2-retail', '1', NULL, 0.1, 0, 60, 60)")[1]
        assert "still uses this plan" in refusal(conn, "CALL delete_my_plan('r1-gold')")[1]
        assert "taken" in refusal(conn, "CALL create_my_plan('r2-retail', NULL)")[1]
        call(conn, "CALL delete_my_rate('r1-gold', '44')")
        assert call(conn, "SELECT COUNT(*) FROM my_rates WHERE plan = 'r1-gold'") == [(0,)]
    # k1 now resells: it may create a client of its own, on a plan of its own
    with resellers.login("k1") as conn:
        call(conn, "CALL create_my_plan('k1-plan', NULL)")
        call(conn, "CALL create_my_client(%s, 'K1 kid', 'k1-plan', 1)", (c["k1"] + "k",))
    with resellers.login("r1") as conn:
        assert (c["k1"] + "k", c["k1"], 2) in set(call(conn, "SELECT code, parent_code, depth FROM my_clients"))
    with resellers.login("r2") as conn:
        assert "no plan with that name" in refusal(conn, "CALL delete_my_rate('r1-retail', '44')")[1]
        assert "no plan with that name" in refusal(conn, "CALL delete_my_plan('r1-retail')")[1]


def test_the_operator_is_told_to_use_its_own_procedures(engine, resellers):
    with pytest.raises(Exception) as caught, engine.begin() as conn:
        conn.execute(text("CALL reseller_transfer(:c, 1, 'x')"), {"c": resellers.codes["k1"]})
    assert "reseller's database login" in str(caught.value)


def test_subtree_calls_and_margins_are_read_at_each_level(resellers):
    """One answered minute for k1 (r1's client) and for g (s's client, under r1): each
    reseller reads its subtree's calls and its own margin on them, nobody else's."""
    from datetime import datetime, timezone

    from fastagi.billing.admission import CallRequest
    from fastagi.store import calls

    c = resellers.codes
    now = datetime.now(timezone.utc).replace(tzinfo=None)
    for name in ("k1", "g"):
        got = calls.authorize(resellers.engine, CallRequest(c[name], "442071234567"), now,
                              calls.Limits())
        assert got.admission.allowed, got
        calls.settle(resellers.engine, got.call_id, 60000, "ANSWER", now)
    seen = {}
    for name in ("r1", "s", "r2", "k1", "g", "p"):
        with resellers.login(name) as conn:
            seen[name] = (set(call(conn, "SELECT client, depth, cost FROM my_client_calls")),
                          set(call(conn, "SELECT client, depth, sell, cost, margin FROM my_margins")),
                          call(conn, "SELECT calls, sell, cost, margin FROM my_margins_daily"))
    D = Decimal
    assert seen["r1"] == (
        {(c["k1"], 1, D("0.05")), (c["g"], 2, D("0.09"))},
        {(c["k1"], 1, D("0.05"), D("0.02"), D("0.03")), (c["g"], 2, D("0.05"), D("0.02"), D("0.03"))},
        [(2, D("0.10"), D("0.04"), D("0.06"))])
    assert seen["s"] == ({(c["g"], 1, D("0.09"))}, {(c["g"], 1, D("0.09"), D("0.05"), D("0.04"))},
                         [(1, D("0.09"), D("0.05"), D("0.04"))])
    for name in ("r2", "k1", "g", "p"):
        assert seen[name] == (set(), set(), []), name


def test_a_sub_reseller_transfers_to_its_own_client_from_what_it_was_given(resellers):
    c = resellers.codes
    with resellers.login("r1") as conn:
        call(conn, "CALL transfer_to_client(%s, 5, 'to-s')", (c["s"],))
    with resellers.login("s") as conn:
        call(conn, "CALL transfer_to_client(%s, 25, 'to-g')", (c["g"],))
        assert "at most 0.0000" in refusal(conn, "CALL transfer_to_client(%s, 0.0001, 'more')", (c["g"],))[1]
        assert call(conn, "SELECT direction, client, amount FROM transfers ORDER BY id") == [
            ("in", None, Decimal("5")), ("out", c["g"], Decimal("25"))]
    assert [resellers.balance(n) for n in ("r1", "s", "g")] == [95, 0, 28]
