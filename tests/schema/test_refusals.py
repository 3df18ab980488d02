"""The database itself refuses bad values, with a clear error, because people edit rows by
hand. Table-driven: every case runs its `bad` statement(s) and expects the server's error
number and message (constraint name or SIGNAL text); its `good` twin, the same kind of
statement with an allowed value, must succeed, so a case cannot pass because of a typo.

The cases share one database built once for this module (a few clients, agents, campaigns,
payments, a call). Every case runs on a brand-new session inside a transaction that is
always rolled back, so no case sees another's rows or session variables.
"""

from __future__ import annotations

import re
from decimal import Decimal

import pytest
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError

from tests.builders import make_client, top_up
from tests.schema.refusal_world import (CHECK, DUPLICATE, HAS_CHILDREN, NO_PARENT, SIGNAL,
                                        TOO_LONG, TRUNCATED, Refusal, insert_client,
                                        insert_payment, insert_rate, run_and_roll_back,
                                        world)  # noqa: F401 (world is a fixture)


CASES = [
    # clients: channel limit and balance floor
    Refusal("negative channel limit", insert_client(channel_limit=-1),
            insert_client(channel_limit=0), CHECK, "ck_clients_channel_limit"),
    Refusal("negative channel limit by update",
            "UPDATE clients SET channel_limit = -1 WHERE id = :a",
            "UPDATE clients SET channel_limit = 0 WHERE id = :a", CHECK, "ck_clients_channel_limit"),
    Refusal("negative credit limit (balance floor)", insert_client(credit_limit=Decimal("-0.01")),
            insert_client(credit_limit=Decimal("0.01")), CHECK, "ck_clients_credit_limit"),
    Refusal("negative credit limit by update",
            "UPDATE clients SET credit_limit = -5 WHERE id = :a",
            "UPDATE clients SET credit_limit = 5 WHERE id = :a", CHECK, "ck_clients_credit_limit"),
    # clients: status
    Refusal("unknown status", insert_client(status="frozen"), insert_client(status="suspended"),
            TRUNCATED, "Data truncated for column 'status'"),
    Refusal("unknown status in a non-strict session",
            "UPDATE clients SET status = 'frozen' WHERE id = :a",
            "UPDATE clients SET status = 'suspended' WHERE id = :a",
            CHECK, "ck_clients_status", sql_mode=""),
    # clients: name and code
    Refusal("duplicate client name", insert_client(name="Alpha"), insert_client(name="Alpha 2"),
            DUPLICATE, "uq_clients_name"),
    Refusal("duplicate client name in other case", insert_client(name="ALPHA"),
            insert_client(name="ALPHA 2"), DUPLICATE, "uq_clients_name"),
    Refusal("duplicate client name by update", "UPDATE clients SET name = 'Alpha' WHERE id = :b",
            "UPDATE clients SET name = 'Beta 2' WHERE id = :b", DUPLICATE, "uq_clients_name"),
    Refusal("blank client name", insert_client(name="   "), insert_client(name="x"),
            CHECK, "ck_clients_name_not_blank"),
    Refusal("duplicate code", insert_client(code="alpha"), insert_client(code="alpha2"),
            DUPLICATE, "uq_clients_code"),
    Refusal("code in upper case", insert_client(code="Newc"), insert_client(code="newc"),
            CHECK, "ck_clients_code_slug"),
    Refusal("code with a space", insert_client(code="new c"), insert_client(code="new_c"),
            CHECK, "ck_clients_code_slug"),
    Refusal("code with a dot", insert_client(code="new.c"), insert_client(code="new-c"),
            CHECK, "ck_clients_code_slug"),
    Refusal("empty code", insert_client(code=""), insert_client(code="0"),
            CHECK, "ck_clients_code_slug"),
    Refusal("code too long", insert_client(code="c" * 33), insert_client(code="c" * 32),
            TOO_LONG, "Data too long for column 'code'"),
    Refusal("code change", "UPDATE clients SET code = 'alpha2' WHERE id = :a",
            "UPDATE clients SET name = 'Alpha renamed' WHERE id = :a",
            SIGNAL, r"^clients\.code cannot change"),
    # clients: plan
    Refusal("unknown rate plan", insert_client(rate_plan_id=999999), insert_client(rate_plan_id=1),
            NO_PARENT, "fk_clients_rate_plan"),
    Refusal("no default plan to give a client created without one",
            ("UPDATE rate_plans SET is_default = 0", insert_client()),
            ("UPDATE rate_plans SET is_default = 0", insert_client(rate_plan_id=1)),
            SIGNAL, "^no default rate plan"),
    # clients: the ledger
    Refusal("direct update of the balance",
            "UPDATE client_accounts SET balance = balance + 10 WHERE client_id = :a",
            insert_payment(), SIGNAL, r"^client_accounts\.balance is kept by the ledger"),
    Refusal("direct update of the balance to zero",
            "UPDATE client_accounts SET balance = 0 WHERE client_id = :a",
            "UPDATE client_accounts SET balance = balance WHERE client_id = :a",
            SIGNAL, r"^client_accounts\.balance is kept by the ledger"),
    Refusal("changing the admission count by hand",
            "UPDATE client_accounts SET admitted_calls = 1000 WHERE client_id = :a",
            "UPDATE client_accounts SET admitted_calls = admitted_calls WHERE client_id = :a",
            SIGNAL, r"^client_accounts\.admitted_calls is counted by the server"),
    Refusal("stamping the balance's time by hand",
            "UPDATE client_accounts SET balance_moved_at = '2020-01-01' WHERE client_id = :a",
            "UPDATE client_accounts SET balance_moved_at = balance_moved_at WHERE client_id = :a",
            SIGNAL, r"^client_accounts\.balance_moved_at is kept by the ledger"),
    Refusal("an account row by hand",
            "INSERT INTO client_accounts (client_id, balance) VALUES (:c, 1000)",
            insert_client(), SIGNAL, r"^client_accounts rows are kept by the system"),
    Refusal("deleting an account row",
            "DELETE FROM client_accounts WHERE client_id = :c",
            "DELETE FROM clients WHERE id = :c", SIGNAL,
            r"^client_accounts rows go with their client: DELETE FROM clients instead"),
    Refusal("changing the opening balance after the INSERT",
            "UPDATE clients SET opening_balance = 500 WHERE id = :a",
            "UPDATE clients SET opening_balance = opening_balance, notes = 'x' WHERE id = :a",
            SIGNAL, r"^clients\.opening_balance is read only when the client is created"),
    Refusal("deleting a client with payments", "DELETE FROM clients WHERE id = :p",
            "DELETE FROM clients WHERE id = :c", HAS_CHILDREN, "fk_payments_client"),
    # payments
    Refusal("payment of 0", insert_payment(amount="0"), insert_payment(amount="0.0001"),
            CHECK, "ck_payments_amount_not_zero"),
    Refusal("blank reference", insert_payment(reference="   "), insert_payment(reference="r 1"),
            CHECK, "ck_payments_reference_not_blank"),
    Refusal("empty reference", insert_payment(reference=""), insert_payment(reference="0"),
            CHECK, "ck_payments_reference_not_blank"),
    Refusal("duplicate reference for the client", insert_payment(reference="inv-1"),
            insert_payment(reference="inv-1", client=":b"),
            DUPLICATE, "uq_payments_client_reference"),
    Refusal("unknown payment kind in a non-strict session", insert_payment(kind="gift"),
            insert_payment(kind="correction"), CHECK, "ck_payments_kind", sql_mode=""),
    Refusal("payment for an unknown client", insert_payment(client="999999"), insert_payment(),
            NO_PARENT, "fk_payments_client"),
    Refusal("updating a payment", "UPDATE payments SET amount = 1 WHERE client_id = :a",
            insert_payment(amount="-1", kind="correction"),
            SIGNAL, "^payments are never changed"),
    Refusal("updating a payment's note", "UPDATE payments SET note = 'typo' WHERE client_id = :a",
            insert_payment(amount="-1", kind="correction"),
            SIGNAL, "^payments are never changed"),
    Refusal("deleting a payment", "DELETE FROM payments WHERE client_id = :a",
            insert_payment(amount="-100", kind="correction"),
            SIGNAL, "^payments are never deleted"),
    # rate plans and rates
    Refusal("non-digit prefix", insert_rate(prefix="44a"), insert_rate(prefix="440"),
            CHECK, "ck_rates_prefix_digits"),
    Refusal("prefix with a plus", insert_rate(prefix="+44"), insert_rate(prefix="0044"),
            CHECK, "ck_rates_prefix_digits"),
    Refusal("prefix with a space", insert_rate(prefix=" 44"), insert_rate(prefix="4"),
            CHECK, "ck_rates_prefix_digits"),
    Refusal("empty prefix", insert_rate(prefix=""), insert_rate(prefix="0"),
            CHECK, "ck_rates_prefix_digits"),
    Refusal("negative rate", insert_rate(rate="-0.000001"), insert_rate(rate="0"),
            CHECK, "ck_rates_rate_not_negative"),
    Refusal("negative connection fee", insert_rate(fee="-0.01"), insert_rate(fee="0.01"),
            CHECK, "ck_rates_fee_not_negative"),
    Refusal("zero initial increment", insert_rate(initial=0), insert_rate(initial=1),
            CHECK, "ck_rates_initial_increment"),
    Refusal("zero subsequent increment", insert_rate(subsequent=0), insert_rate(subsequent=1),
            CHECK, "ck_rates_subsequent_increment"),
    Refusal("duplicate prefix in a plan", insert_rate(prefix="44"),
            insert_rate(prefix="44", plan=":default_plan"), DUPLICATE, "uq_rates_plan_prefix"),
    Refusal("second default plan",
            "INSERT INTO rate_plans (name, is_default) VALUES ('another', 1)",
            "INSERT INTO rate_plans (name, is_default) VALUES ('another', 0)",
            DUPLICATE, "uq_rate_plans_default"),
    Refusal("second default plan by update",
            "UPDATE rate_plans SET is_default = 1 WHERE id = :plan",
            ("UPDATE rate_plans SET is_default = 0 WHERE id = :default_plan",
             "UPDATE rate_plans SET is_default = 1 WHERE id = :plan"),
            DUPLICATE, "uq_rate_plans_default"),
    Refusal("duplicate plan name", "INSERT INTO rate_plans (name) VALUES ('default')",
            "INSERT INTO rate_plans (name) VALUES ('default 2')", DUPLICATE, "uq_rate_plans_name"),
    Refusal("dial template without {number}",
            "UPDATE rate_plans SET dial_template = 'PJSIP/carrier' WHERE id = :plan",
            "UPDATE rate_plans SET dial_template = 'PJSIP/{number}@carrier' WHERE id = :plan",
            CHECK, "ck_rate_plans_dial_template"),
    # the tenant's world: nothing links two clients
    Refusal("user with another client's agent",
            "INSERT INTO users (client_id, agent_id, username) VALUES (:a, :b1, 'u-new')",
            "INSERT INTO users (client_id, agent_id, username) VALUES (:a, :a1, 'u-new')",
            NO_PARENT, "fk_users_agent_same_client"),
    Refusal("user moved to another client's agent",
            "UPDATE users SET agent_id = :b1 WHERE id = :ua",
            "UPDATE users SET agent_id = NULL WHERE id = :ua",
            NO_PARENT, "fk_users_agent_same_client"),
    Refusal("extension with another client's agent",
            "INSERT INTO extensions (client_id, agent_id, exten) VALUES (:a, :b1, '2001')",
            "INSERT INTO extensions (client_id, agent_id, exten) VALUES (:a, :a1, '2001')",
            NO_PARENT, "fk_extensions_agent_same_client"),
    Refusal("contact in another client's campaign",
            "INSERT INTO contacts (client_id, campaign_id, phone) VALUES (:a, :cb, '442071')",
            "INSERT INTO contacts (client_id, campaign_id, phone) VALUES (:a, :ca, '442071')",
            NO_PARENT, "fk_contacts_campaign_same_client"),
    Refusal("agent with users moved to another client",
            "UPDATE agents SET client_id = :b WHERE id = :a1",
            "UPDATE agents SET name = 'renamed' WHERE id = :a1",
            HAS_CHILDREN, "fk_(users|extensions)_agent_same_client"),
    Refusal("extension moved to another client",
            "UPDATE extensions SET client_id = :b WHERE id = :ea",
            "UPDATE extensions SET callerid = '\"A\" <1001>' WHERE id = :ea",
            SIGNAL, "^an extension cannot move to another client"),
    Refusal("exten renumbered without a new password",
            "UPDATE extensions SET exten = '1009' WHERE id = :ea",
            "UPDATE extensions SET exten = '1009', sip_password = 'n3w' WHERE id = :ea",
            SIGNAL, "^changing exten changes the SIP username"),
    Refusal("extension of an unknown client",
            "INSERT INTO extensions (client_id, exten) VALUES (999999, '2001')",
            "INSERT INTO extensions (client_id, exten) VALUES (:a, '2001')",
            NO_PARENT, "^extensions.client_id names no client"),
    Refusal("non-digit exten", "INSERT INTO extensions (client_id, exten) VALUES (:a, '20a1')",
            "INSERT INTO extensions (client_id, exten) VALUES (:a, '2001')",
            CHECK, "ck_extensions_exten_digits"),
    Refusal("plain text written into password_hash",
            "INSERT INTO users (client_id, username, password_hash) VALUES (:a, 'u2', 'hunter2')",
            "INSERT INTO users (client_id, username, password) VALUES (:a, 'u2', 'hunter2')",
            CHECK, "ck_users_hash_format"),
    Refusal("running campaign of a suspended client",
            "INSERT INTO campaigns (client_id, name, status) VALUES (:s, 'go', 'running')",
            "INSERT INTO campaigns (client_id, name, status) VALUES (:a, 'go', 'running')",
            SIGNAL, "^the client is suspended: its campaigns cannot run"),
    Refusal("campaign started while the client is suspended",
            "UPDATE campaigns SET status = 'running' WHERE id = :cs",
            "UPDATE campaigns SET status = 'running' WHERE id = :ca",
            SIGNAL, "^the client is suspended: its campaigns cannot run"),
    # calls are the other half of the ledger
    Refusal("deleting a charged call", "DELETE FROM calls WHERE id = :charged_call",
            "DELETE FROM calls WHERE id = :rejected_call",
            SIGNAL, "^a charged or live call cannot be deleted"),
    Refusal("negative call cost", "UPDATE calls SET cost = -1 WHERE id = :charged_call",
            "UPDATE calls SET cost = 1 WHERE id = :charged_call", CHECK, "ck_calls_cost"),
]


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_refused_with_a_clear_error(world, case: Refusal):
    engine, ids = world
    params = {**ids, **case.params}

    run_and_roll_back(engine, case.good, params, case.sql_mode)  # the rule, not a typo

    with pytest.raises(DBAPIError) as raised:
        run_and_roll_back(engine, case.bad, params, case.sql_mode)
    errno, message = raised.value.orig.args[:2]
    assert (errno, bool(re.search(case.message, message))) == (case.errno, True), message


def test_the_cases_left_the_shared_world_untouched(world):
    engine, ids = world
    with engine.connect() as conn:
        assert conn.execute(text("SELECT balance FROM client_accounts WHERE client_id = :a"), ids
                            ).scalar_one() == Decimal("103.5")
        assert conn.execute(text("SELECT COUNT(*) FROM payments")).scalar_one() == 3


# ---- passwords: written in plain text, never stored in plain text -------------------------

def verify_user_password(conn, user_id: int, password: str) -> bool:
    return bool(conn.execute(text(
        "SELECT password_hash = CONCAT('sha512$', SUBSTRING(password_hash, 8, 32), '$', "
        "SHA2(CONCAT(SUBSTRING(password_hash, 8, 32), :pw), 512)) FROM users WHERE id = :id"),
        {"pw": password, "id": user_id}).scalar_one())


def row_text(conn, table: str, row_id: int) -> str:
    row = conn.execute(text(f"SELECT * FROM {table} WHERE id = :id"), {"id": row_id}).one()
    return "|".join("" if v is None else str(v) for v in row)


def test_user_password_is_stored_only_as_a_salted_hash(engine):
    with engine.begin() as conn:
        client = make_client(conn, "acme")
        users = [conn.execute(text(
            "INSERT INTO users (client_id, username, password) VALUES (:c, :u, :pw)"),
            {"c": client.id, "u": username, "pw": "correct horse"}).lastrowid
            for username in ("ann", "bob")]
    with engine.begin() as conn:
        hashes = []
        for user_id in users:
            password, password_hash = conn.execute(text(
                "SELECT password, password_hash FROM users WHERE id = :id"), {"id": user_id}).one()
            assert password is None
            assert re.fullmatch(r"sha512\$[0-9a-f]{32}\$[0-9a-f]{128}", password_hash)
            assert verify_user_password(conn, user_id, "correct horse")
            assert not verify_user_password(conn, user_id, "correct horse ")
            assert "correct horse" not in row_text(conn, "users", user_id)
            hashes.append(password_hash)
        assert hashes[0] != hashes[1]  # salted: the same password hashes differently

        conn.execute(text("UPDATE users SET password = :pw WHERE id = :id"),
                     {"pw": "battery staple", "id": users[0]})
        assert conn.execute(text("SELECT password FROM users WHERE id = :id"),
                            {"id": users[0]}).scalar_one() is None
        assert verify_user_password(conn, users[0], "battery staple")
        assert not verify_user_password(conn, users[0], "correct horse")


def test_sip_password_is_stored_only_as_the_pjsip_md5_credential(engine):
    with engine.begin() as conn:
        client = make_client(conn, "acme")
        ext = conn.execute(text(
            "INSERT INTO extensions (client_id, exten, sip_password) VALUES (:c, '1001', :pw)"),
            {"c": client.id, "pw": "s3cret"}).lastrowid
    with engine.begin() as conn:
        def credential():
            return conn.execute(text(
                "SELECT sip_username, sip_password, md5_cred FROM extensions WHERE id = :id"),
                {"id": ext}).one()

        def md5(value: str) -> str:
            return conn.execute(text("SELECT MD5(:v)"), {"v": value}).scalar_one()

        assert tuple(credential()) == ("acme-1001", None, md5("acme-1001:asterisk:s3cret"))
        assert "s3cret" not in row_text(conn, "extensions", ext)

        conn.execute(text("UPDATE extensions SET sip_password = :pw WHERE id = :id"),
                     {"pw": "n3w", "id": ext})
        assert tuple(credential()) == ("acme-1001", None, md5("acme-1001:asterisk:n3w"))

        conn.execute(text("UPDATE extensions SET exten = '2002', sip_password = :pw "
                          "WHERE id = :id"), {"pw": "n3w", "id": ext})
        assert tuple(credential()) == ("acme-2002", None, md5("acme-2002:asterisk:n3w"))


@pytest.mark.parametrize("side", ["payment", "call charge"])
def test_a_failed_ledger_update_does_not_open_the_balance_to_hand_edits(engine, side):
    """User variables survive a failed statement; the ledger's token must not."""
    opening = Decimal("25") if side == "payment" else Decimal("-9999999999")
    with engine.begin() as conn:  # a negative opening balance must be within the floor
        client = make_client(conn, "acme", balance=opening, credit_limit=-min(opening, 0))
    with engine.connect() as conn:  # one session throughout
        with pytest.raises(DBAPIError) as overflow:
            with conn.begin():  # either way the balance leaves DECIMAL(14,4)'s range
                if side == "payment":
                    top_up(conn, client.id, Decimal("9999999999"))
                else:
                    conn.execute(text(
                        "INSERT INTO calls (client_id, client_code, number, state, cost, "
                        "authorized_at) VALUES (:id, 'acme', '4420', 'settled', 1, "
                        "UTC_TIMESTAMP(3))"), {"id": client.id})
        assert overflow.value.orig.args[0] == 1264
        with pytest.raises(DBAPIError) as refused:
            with conn.begin():
                conn.execute(text("UPDATE client_accounts SET balance = 1000000 "
                                  "WHERE client_id = :id"),
                             {"id": client.id})
        assert "kept by the ledger" in refused.value.orig.args[1]
        assert conn.execute(text("SELECT balance FROM client_accounts WHERE client_id = :id"),
                            {"id": client.id}).scalar_one() == opening
