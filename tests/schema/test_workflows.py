"""The seed's admin workflows, each done as plain INSERT/UPDATE statements and through the
stored-procedure one-liners, on a fresh database per test (docs/admin-sql.md shows them)."""

from __future__ import annotations

from decimal import Decimal

import pytest
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError

from tests.builders import (balance, default_plan_id, ledger_balance, make_campaign,
                            make_client, make_plan, top_up)
from tests.support.sql import scalar


def one(conn, sql: str, **params):
    return conn.execute(text(sql), params).one()


def payments_of(conn, client_id: int) -> list[tuple]:
    return [tuple(r) for r in conn.execute(text(
        "SELECT amount, kind, reference FROM payments WHERE client_id = :id ORDER BY id"),
        {"id": client_id})]


def client_list_row(conn, code: str) -> dict:
    return dict(conn.execute(text("SELECT * FROM client_list WHERE code = :code"),
                             {"code": code}).mappings().one())


def add_call(conn, client_id: int, code: str, state: str = "settled",
             cost: Decimal | None = None) -> int:
    return conn.execute(text(
        "INSERT INTO calls (client_id, client_code, number, state, cost, reserved, "
        "authorized_at) VALUES (:client, :code, '442071234567', :state, :cost, :reserved, "
        "UTC_TIMESTAMP(3))"),
        {"client": client_id, "code": code, "state": state, "cost": cost,
         "reserved": Decimal("1.2") if state == "live" else Decimal("0")}).lastrowid


# ---- the first install -------------------------------------------------------------------

def test_master_account_is_seeded(engine):
    with engine.connect() as conn:
        master = one(conn, "SELECT code, name, channel_limit, status, a.balance, credit_limit, "
                           "rate_plan_id FROM clients c JOIN client_accounts a "
                           "ON a.client_id = c.id")  # the only client of a new install
        plan = one(conn, "SELECT id, name FROM rate_plans WHERE is_default = 1")
        assert master == ("master", "master", 50, "active", Decimal("0"), Decimal("0"), plan.id)
        assert plan.name == "default"
        assert scalar(conn, "SELECT COUNT(*) FROM payments") == 0
        assert client_list_row(conn, "master") == {
            "id": 1, "code": "master", "name": "master", "balance": Decimal("0"),
            "plan": "default", "channels": 50, "status": "active", "live_calls": 0,
            "available_credit": Decimal("0")}


# ---- create a client ---------------------------------------------------------------------

def test_create_client_without_a_plan_gets_the_default_plan(engine):
    with engine.begin() as conn:
        conn.execute(text("INSERT INTO clients (code, name, channel_limit) "
                          "VALUES ('acme', 'Acme Ltd', 5)"))
        conn.execute(text("INSERT INTO clients (code, name, rate_plan_id) "
                          "VALUES ('bravo', 'Bravo', NULL)"))
        default = default_plan_id(conn)
        assert [tuple(r) for r in conn.execute(text(
            "SELECT code, rate_plan_id, channel_limit, status, a.balance FROM clients c "
            "JOIN client_accounts a ON a.client_id = c.id "
            "WHERE code IN ('acme', 'bravo') ORDER BY code"))] == [
            ("acme", default, 5, "active", Decimal("0")),
            ("bravo", default, 10, "active", Decimal("0"))]
        assert scalar(conn, "SELECT COUNT(*) FROM payments") == 0  # no opening balance


def test_create_client_with_a_plan(engine):
    with engine.begin() as conn:
        plan = make_plan(conn, "wholesale")
        conn.execute(text("INSERT INTO clients (code, name, rate_plan_id) VALUES "
                          "('acme', 'Acme', (SELECT id FROM rate_plans WHERE name = :p))"),
                     {"p": "wholesale"})
        assert scalar(conn, "SELECT rate_plan_id FROM clients WHERE code = 'acme'") == plan
        assert client_list_row(conn, "acme")["plan"] == "wholesale"


def test_opening_balance_is_recorded_as_an_opening_payment(engine):
    with engine.begin() as conn:
        acme = make_client(conn, "acme", balance=Decimal("25.5"))
        assert balance(conn, acme.id) == Decimal("25.5000")
        assert payments_of(conn, acme.id) == [(Decimal("25.5"), "opening", "opening balance")]
        assert ledger_balance(conn, acme.id) == balance(conn, acme.id)


def test_negative_opening_balance_is_recorded_too(engine):
    with engine.begin() as conn:
        acme = make_client(conn, "acme", balance=Decimal("-3"), credit_limit=Decimal("10"))
        assert payments_of(conn, acme.id) == [(Decimal("-3"), "opening", "opening balance")]
        assert ledger_balance(conn, acme.id) == balance(conn, acme.id) == Decimal("-3")


def test_procedure_create_client_with_default_plan_and_opening_balance(engine):
    with engine.begin() as conn:
        listed = conn.execute(text("CALL create_client(:code, :name, NULL, 5, :opening)"),
                              {"code": "acme", "name": "Acme", "opening": Decimal("12.34")}
                              ).mappings().one()
    assert (listed["code"], listed["plan"], listed["channels"], listed["balance"],
            listed["status"]) == ("acme", "default", 5, Decimal("12.34"), "active")
    with engine.connect() as conn:
        client_id = scalar(conn, "SELECT id FROM clients WHERE code = 'acme'")
        assert payments_of(conn, client_id) == [(Decimal("12.34"), "opening", "opening balance")]


def test_procedure_create_client_with_a_named_plan_and_defaults(engine):
    with engine.begin() as conn:
        make_plan(conn, "wholesale")
        listed = conn.execute(text("CALL create_client('acme', 'Acme', 'wholesale', NULL, NULL)")
                              ).mappings().one()
    assert (listed["plan"], listed["channels"], listed["balance"]) == (
        "wholesale", 10, Decimal("0"))
    with engine.connect() as conn:
        assert scalar(conn, "SELECT COUNT(*) FROM payments") == 0


def test_procedure_create_client_refuses_an_unknown_plan(engine):
    with pytest.raises(DBAPIError, match="no rate plan with that name"):
        with engine.begin() as conn:
            conn.execute(text("CALL create_client('acme', 'Acme', 'nope', 5, 0)")).all()
    with engine.connect() as conn:
        assert scalar(conn, "SELECT COUNT(*) FROM clients WHERE code = 'acme'") == 0


# ---- top up and correct -------------------------------------------------------------------

def test_top_up_moves_the_balance_in_the_same_transaction(engine):
    with engine.begin() as conn:
        acme = make_client(conn, "acme", balance=Decimal("10"))

    with engine.connect() as admin, engine.connect() as other:
        with admin.begin():
            admin.execute(text("INSERT INTO payments (client_id, amount, reference) "
                               "VALUES (:id, :amount, :ref)"),
                          {"id": acme.id, "amount": Decimal("20.25"), "ref": "INV-1001"})
            assert balance(admin, acme.id) == Decimal("30.25")      # at once, same txn
            with other.begin():
                assert balance(other, acme.id) == Decimal("10")     # nobody else yet
        with other.begin():
            assert balance(other, acme.id) == Decimal("30.25")      # committed together

        with admin.begin() as transaction:
            top_up(admin, acme.id, Decimal("100"), "INV-1002")
            assert balance(admin, acme.id) == Decimal("130.25")
            transaction.rollback()
        with admin.begin():
            assert balance(admin, acme.id) == Decimal("30.25")      # undone together
            assert [p[2] for p in payments_of(admin, acme.id)] == ["opening balance",
                                                                   "INV-1001"]
            assert ledger_balance(admin, acme.id) == Decimal("30.25")


def test_correction_is_a_new_negative_row(engine):
    with engine.begin() as conn:
        acme = make_client(conn, "acme")
        top_up(conn, acme.id, Decimal("50"), "INV-7")
        conn.execute(text("INSERT INTO payments (client_id, amount, kind, reference, note) "
                          "VALUES (:id, :amount, 'correction', 'INV-7 fix', :note)"),
                     {"id": acme.id, "amount": Decimal("-45"), "note": "INV-7 was 5, not 50"})
        assert payments_of(conn, acme.id) == [(Decimal("50"), "topup", "INV-7"),
                                              (Decimal("-45"), "correction", "INV-7 fix")]
        assert balance(conn, acme.id) == ledger_balance(conn, acme.id) == Decimal("5")


def test_procedure_add_payment_tops_up_and_corrects(engine):
    with engine.begin() as conn:
        make_client(conn, "acme")
        topped = conn.execute(text("CALL add_payment('acme', :amount, 'INV-1')"),
                              {"amount": Decimal("40")}).mappings().one()
    assert topped["balance"] == Decimal("40")
    with engine.begin() as conn:
        corrected = conn.execute(text("CALL add_payment('acme', :amount, 'INV-1 fix')"),
                                 {"amount": Decimal("-15.5")}).mappings().one()
        assert corrected["balance"] == Decimal("24.5")
        client_id = scalar(conn, "SELECT id FROM clients WHERE code = 'acme'")
        assert payments_of(conn, client_id) == [(Decimal("40"), "topup", "INV-1"),
                                                (Decimal("-15.5"), "correction", "INV-1 fix")]
    with pytest.raises(DBAPIError, match="no client with that code"):
        with engine.begin() as conn:
            conn.execute(text("CALL add_payment('nobody', 1, 'x')")).all()


# ---- suspend and reactivate ---------------------------------------------------------------

SUSPEND = "UPDATE clients SET status = 'suspended' WHERE code = :code"
ACTIVATE = "UPDATE clients SET status = 'active' WHERE code = :code"
CALL_SUSPEND = "CALL suspend_client(:code)"
CALL_ACTIVATE = "CALL activate_client(:code)"


def campaign_states(conn, client_id: int) -> dict[str, tuple[str, str]]:
    """name -> (status people set, state shown on the board)."""
    return {r.name: (r.status, r.state) for r in conn.execute(text(
        "SELECT g.name, g.status, p.state FROM campaigns g "
        "JOIN campaign_progress p ON p.campaign_id = g.id WHERE g.client_id = :id"),
        {"id": client_id})}


def campaigns_row(conn, client_id: int) -> list:
    """Every column of the client's campaign rows, as a form would load them."""
    return [tuple(r) for r in conn.execute(text(
        "SELECT * FROM campaigns WHERE client_id = :id ORDER BY id"), {"id": client_id})]


@pytest.mark.parametrize("suspend, activate", [(SUSPEND, ACTIVATE),
                                               (CALL_SUSPEND, CALL_ACTIVATE)],
                         ids=["plain SQL", "procedures"])
def test_suspend_stops_running_campaigns_without_writing_them_and_reactivate_resumes_them(
        engine, suspend, activate):
    """schema/150: a suspension writes no campaign row; the board shows 'suspended' for
    the running ones, and reactivation gives back exactly what people had set."""
    with engine.begin() as conn:
        acme = make_client(conn, "acme", balance=Decimal("7"))
        other = make_client(conn, "other")
        for name, status in [("run1", "running"), ("run2", "running"),
                             ("held", "paused"), ("draft", "draft"), ("done", "running")]:
            make_campaign(conn, acme.id, name, status)
        make_campaign(conn, other.id, "theirs", "running")
        # the dialer found nothing left to dial in 'done' (schema/095: its finding, not a status)
        conn.execute(text("UPDATE campaign_runs r JOIN campaigns g ON g.id = r.campaign_id "
                          "SET r.finished = 1, r.finished_at = UTC_TIMESTAMP() "
                          "WHERE g.name = 'done'"))
        rows_before = campaigns_row(conn, acme.id)

    with engine.begin() as conn:
        conn.execute(text(suspend), {"code": "acme"})
    with engine.begin() as conn:
        assert scalar(conn, "SELECT status FROM clients WHERE id = :id", id=acme.id) == "suspended"
        assert scalar(conn, "SELECT suspended_at IS NOT NULL FROM clients WHERE id = :id",
                      id=acme.id) == 1
        assert campaigns_row(conn, acme.id) == rows_before      # not one column written
        assert campaign_states(conn, acme.id) == {
            "run1": ("running", "suspended"), "run2": ("running", "suspended"),
            "held": ("paused", "paused"), "draft": ("draft", "draft"),
            "done": ("running", "suspended")}
        assert campaign_states(conn, other.id) == {"theirs": ("running", "running")}
        # during the suspension the admin sets one of the stopped campaigns back to draft
        conn.execute(text("UPDATE campaigns SET status = 'draft' WHERE name = 'run2'"))

    with engine.begin() as conn:
        conn.execute(text(activate), {"code": "acme"})
    with engine.begin() as conn:
        assert client_list_row(conn, "acme")["status"] == "active"
        assert campaign_states(conn, acme.id) == {
            "run1": ("running", "running"), "run2": ("draft", "draft"),
            "held": ("paused", "paused"), "draft": ("draft", "draft"),
            "done": ("running", "finished")}
        assert balance(conn, acme.id) == Decimal("7")  # nothing deleted or charged


def test_a_suspended_clients_paused_campaign_cannot_be_started_but_a_running_one_can_be_saved(
        engine):
    """Starting a campaign of a suspended client is refused in words; saving one that was
    left running (its status unchanged) goes through and it stays stopped."""
    with engine.begin() as conn:
        acme = make_client(conn, "acme")
        make_campaign(conn, acme.id, "run", "running")
        make_campaign(conn, acme.id, "held", "paused")
        conn.execute(text(SUSPEND), {"code": "acme"})
    with pytest.raises(DBAPIError, match="the client is suspended: its campaigns cannot run"):
        with engine.begin() as conn:
            conn.execute(text("UPDATE campaigns SET status = 'running' WHERE name = 'held'"))
    with engine.begin() as conn:
        conn.execute(text("UPDATE campaigns SET status = 'running', max_channels = 3 "
                          "WHERE name = 'run'"))
        assert campaign_states(conn, acme.id) == {"run": ("running", "suspended"),
                                                  "held": ("paused", "paused")}


def test_suspending_twice_and_activating_an_active_client_change_nothing(engine):
    with engine.begin() as conn:
        acme = make_client(conn, "acme")
        make_campaign(conn, acme.id, "run", "running")
        conn.execute(text(SUSPEND), {"code": "acme"})
        conn.execute(text(SUSPEND), {"code": "acme"})
        assert campaign_states(conn, acme.id) == {"run": ("running", "suspended")}
        conn.execute(text(ACTIVATE), {"code": "acme"})
        conn.execute(text(ACTIVATE), {"code": "acme"})
        assert campaign_states(conn, acme.id) == {"run": ("running", "running")}


@pytest.mark.parametrize("call", [CALL_SUSPEND, CALL_ACTIVATE])
def test_suspend_and_activate_procedures_refuse_an_unknown_code(engine, call):
    with pytest.raises(DBAPIError, match="no client with that code"):
        with engine.begin() as conn:
            conn.execute(text(call), {"code": "nobody"}).all()


# ---- list ---------------------------------------------------------------------------------

def test_client_list_shows_the_seed_columns_and_live_calls(engine):
    with engine.begin() as conn:
        plan = make_plan(conn, "gold")
        acme = make_client(conn, "acme", name="Acme Ltd", balance=Decimal("12.5"),
                           channel_limit=3, plan=plan, credit_limit=Decimal("5"))
        add_call(conn, acme.id, "acme", "live")
        add_call(conn, acme.id, "acme", "live")
        add_call(conn, acme.id, "acme", "settled", Decimal("0.5"))
        conn.execute(text(SUSPEND), {"code": "acme"})

    with engine.connect() as conn:
        result = conn.execute(text("SELECT * FROM client_list ORDER BY name"))
        columns = list(result.keys())
        rows = [dict(r) for r in result.mappings()]
    assert {"name", "balance", "plan", "channels", "status", "live_calls"} <= set(columns)
    assert [(r["name"], r["balance"], r["plan"], r["channels"], r["status"], r["live_calls"])
            for r in rows] == [
        ("Acme Ltd", Decimal("12"), "gold", 3, "suspended", 2),
        ("master", Decimal("0"), "default", 50, "active", 0)]
    assert rows[0]["available_credit"] == Decimal("12") + Decimal("5") - 2 * Decimal("1.2")


# ---- the ledger ---------------------------------------------------------------------------

def test_balance_always_equals_payments_minus_charged_calls(engine):
    with engine.begin() as conn:
        acme = make_client(conn, "acme", balance=Decimal("20"))
        other = make_client(conn, "other", balance=Decimal("3"))

        def check() -> None:
            for client in (acme, other):
                assert balance(conn, client.id) == ledger_balance(conn, client.id)

        top_up(conn, acme.id, Decimal("5.0001"))
        check()
        charged = add_call(conn, acme.id, "acme", "settled", Decimal("1.2345"))
        check()
        live = add_call(conn, acme.id, "acme", "live")
        assert balance(conn, acme.id) == Decimal("23.7656")  # a live call charges nothing
        conn.execute(text("UPDATE calls SET state = 'settled', cost = :cost, "
                          "settled_at = UTC_TIMESTAMP(3) WHERE id = :id"),
                     {"cost": Decimal("0.75"), "id": live})
        check()
        conn.execute(text("UPDATE calls SET cost = :cost, review_note = 'rerated' "
                          "WHERE id = :id"), {"cost": Decimal("1.0000"), "id": charged})
        check()
        conn.execute(text("UPDATE calls SET cost = NULL WHERE id = :id"), {"id": live})
        check()
        top_up(conn, acme.id, Decimal("-0.0001"), kind="correction")
        check()
        assert balance(conn, acme.id) == Decimal("20") + Decimal("5.0001") - Decimal("1") \
            - Decimal("0.0001")
        assert balance(conn, other.id) == Decimal("3")


def test_top_up_by_code_reads_clients_in_the_same_statement(engine):
    """As docs/admin-sql.md says: the ledger moves client_accounts, not clients, so a
    payment INSERT may look the client up by code itself (before schema 093 that was error
    1442); a statement that reads client_accounts while it moves a balance still is."""
    with engine.begin() as conn:
        acme = make_client(conn, "acme")
    with engine.connect() as conn:
        with conn.begin():
            conn.execute(text("INSERT INTO payments (client_id, amount, reference) VALUES "
                              "((SELECT id FROM clients WHERE code = :code), 5, 'R-1')"),
                         {"code": "acme"})
            conn.execute(text("INSERT INTO payments (client_id, amount, reference) "
                              "SELECT id, 2.5, 'R-2' FROM clients WHERE code = :code"),
                         {"code": "acme"})
            assert balance(conn, acme.id) == Decimal("7.5")
        with pytest.raises(DBAPIError) as raised:
            with conn.begin():
                conn.execute(text("INSERT INTO payments (client_id, amount, reference) "
                                  "SELECT client_id, 1, 'R-3' FROM client_accounts "
                                  "WHERE client_id = :id"), {"id": acme.id})
        assert raised.value.orig.args[0] == 1442
        assert balance(conn, acme.id) == Decimal("7.5")
