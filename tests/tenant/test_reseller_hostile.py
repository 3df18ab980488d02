"""Hostile SQL from reseller logins, and transfers racing each other and calls.

Every hostile statement fails with the error expected (or reads nothing), and afterwards
every row of the product, every AUTO_INCREMENT and every grant is as before. The races
run real parallel connections: whatever wins, no reseller's balance goes below its floor
(balance + credit_limit - what its live calls reserve >= 0), and the ledger is exact.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from datetime import datetime, timezone
from decimal import Decimal

import pymysql
import pytest
from sqlalchemy import text

from fastagi.billing.admission import CallRequest
from fastagi.store import calls
from tests.tenant.helpers import error_code, query

DENIED_TABLE = 1142
DENIED_DB = 1044
DENIED_ROUTINE = 1370
BAD_ROLE = 1959
SIGNAL = 1644


@dataclass(frozen=True)
class Hostile:
    what: str
    sql: str                 # statements separated by "; ", the last one judged
    error: int | None        # None: must run and return no row
    who: str = "r1"
    role: str = "admin"
    words: str = ""          # for SIGNAL: the refusal must say this


CASES = [
    Hostile("forge the transfer token, then write transfers",
            "SET @ict_transfer_from = {r1}; INSERT INTO transfers (amount, reference) VALUES (1, 'x')",
            DENIED_TABLE),
    Hostile("forge the ledger token, then change a child's balance",
            "SET @ict_ledger_client = {k1}; UPDATE my_clients SET balance = 1000", DENIED_TABLE),
    Hostile("REPLACE a sibling's client by its code", "REPLACE INTO my_clients (code) VALUES ('{c_k2}')",
            DENIED_TABLE),
    Hostile("delete a client", "DELETE FROM my_clients", DENIED_TABLE),
    Hostile("write a plan directly", "UPDATE my_rates SET rate_per_min = 0", DENIED_TABLE),
    Hostile("call the product procedure itself", "CALL {db}.reseller_transfer('{c_k1}', 1, 'x')",
            DENIED_ROUTINE),
    Hostile("call the session function", "SELECT {db}.reseller_of_session()", DENIED_ROUTINE),
    Hostile("read the base tables", "SELECT * FROM {db}.transfers", DENIED_TABLE),
    Hostile("read the tree", "SELECT * FROM {db}.client_tree", DENIED_TABLE),
    Hostile("create a procedure of its own", "CREATE PROCEDURE {tdb}.mine() SELECT 1", DENIED_DB),
    Hostile("replace a tenant procedure", "DROP PROCEDURE {tdb}.transfer_to_client", DENIED_ROUTINE),
    Hostile("lock the views", "LOCK TABLES my_clients READ", DENIED_DB),
    Hostile("agent takes the admin role", "SET ROLE {db}_tenant_admin", BAD_ROLE, role="agent"),
    Hostile("agent transfers", "CALL transfer_to_client('{c_k1}', 1, 'x')", DENIED_ROUTINE, role="agent"),
    Hostile("transfer naming a client by its id", "CALL transfer_to_client('{k2}', 1, 'x')", SIGNAL,
            words="no client of yours"),
    Hostile("transfer to a code in other case", "CALL transfer_to_client(UPPER('{c_k1}'), 1, 'x')",
            SIGNAL, words="no client of yours"),
    Hostile("transfer with a quote in the code", "CALL transfer_to_client('{c_k1}'' OR ''1', 1, 'x')",
            SIGNAL, words="no client of yours"),
    Hostile("transfer to a grandchild", "CALL transfer_to_client('{c_g}', 1, 'x')", SIGNAL,
            words="no client of yours"),
    Hostile("suspend a sibling's client", "CALL suspend_my_client('{c_k2}')", SIGNAL,
            words="no client of yours"),
    Hostile("suspend its own parent", "CALL suspend_my_client('{c_r1}')", SIGNAL,
            words="no client of yours", who="s"),
    Hostile("a sub-reseller transfers back up", "CALL transfer_to_client('{c_r1}', 1, 'x')", SIGNAL,
            words="no client of yours", who="s"),
    Hostile("a plain client transfers back up", "CALL transfer_to_client('{c_r1}', 1, 'x')", SIGNAL,
            words="does not resell", who="k1"),
    Hostile("a plain client of master creates a client",
            "CALL create_my_client('{c_p}x', 'X', 'default', 1)", SIGNAL, words="does not resell",
            who="p"),
    Hostile("set a plan of another reseller", "CALL update_my_client('{c_k1}', 'r2-retail', NULL, NULL, NULL)",
            SIGNAL, words="your own plans"),
    Hostile("rates of another reseller's plan", "CALL set_my_rate('r2-retail', '1', NULL, 0, 0, 1, 1)",
            SIGNAL, words="no plan with that name"),
    Hostile("transfer inside an open transaction, to hold the reseller's rows",
            "START TRANSACTION; CALL transfer_to_client('{c_k1}', 1, 'held')", SIGNAL,
            words="no transaction open"),
    Hostile("transfer with autocommit off", "SET autocommit = 0; CALL transfer_to_client('{c_k1}', 1, 'held')",
            SIGNAL, words="autocommit on"),
    Hostile("choose the new client's id", "SET insert_id = 4294967295; "
            "CALL create_my_client('{c_r1}x', 'X', 'r1-retail', 1)", SIGNAL, words="row ids"),
    Hostile("skip foreign keys", "SET foreign_key_checks = 0; "
            "CALL create_my_client('{c_r1}x', 'X', 'r1-retail', 1)", SIGNAL, words="every check on"),
    Hostile("skip checks on a transfer", "SET check_constraint_checks = 0; "
            "CALL transfer_to_client('{c_k1}', 1, 'x')", SIGNAL, words="every check on"),
    Hostile("forge the clock on a transfer", "SET timestamp = 1; CALL transfer_to_client('{c_k1}', 1, 'x')",
            SIGNAL, words="clock"),
    Hostile("read its parent's line", "SELECT * FROM my_clients WHERE code IN ('master', '{c_r1}')", None,
            who="s"),
    Hostile("read a sibling's subtree", "SELECT * FROM my_clients WHERE code = '{c_k2}'", None),
    Hostile("read the parent's plans", "SELECT * FROM my_plans WHERE name = 'r1-retail'", None, who="s"),
    Hostile("read the parent's buy rates", "SELECT * FROM my_rates WHERE plan <> 's-retail'", None, who="s"),
    Hostile("read a sibling's calls", "SELECT * FROM my_client_calls WHERE client = '{c_k2}'", None),
    Hostile("read the parent's margins", "SELECT * FROM my_margins", None, who="s"),
    Hostile("read other tenants' transfers", "SELECT * FROM transfers", None, who="r2"),
]


@pytest.fixture
def values(resellers):
    v = {"db": resellers.database, "tdb": resellers.tenant_database}
    v.update({name: i for name, i in resellers.ids.items()})
    v.update({f"c_{name}": code for name, code in resellers.codes.items()})
    return v


def checksums(resellers) -> dict[str, object]:
    snap: dict[str, object] = {}
    with resellers.engine.connect() as conn:
        for name, auto_increment in conn.execute(text(
                "SELECT table_name, auto_increment FROM information_schema.tables"
                " WHERE table_schema = DATABASE() AND table_type = 'BASE TABLE'"
                " AND table_name NOT IN ('tenant_sessions_ended', 'db_login_sync_problems',"
                " 'watchdog_blockers_seen')")).all():
            snap[name] = (conn.execute(text(f"CHECKSUM TABLE `{name}`")).one()[1], auto_increment)
        for account in resellers.accounts.values():
            snap[f"grants:{account}"] = sorted(
                r[0] for r in conn.execute(text("SHOW GRANTS FOR :u@'%'"), {"u": account}))
    return snap


def test_hostile_statements_fail_and_change_nothing(resellers, values):
    before = checksums(resellers)
    failures = []
    for case in CASES:
        with resellers.login(case.who, case.role) as conn:
            statements = case.sql.format(**values).split("; ")
            try:
                for sql in statements:
                    with conn.cursor() as cur:
                        cur.execute(sql)
                        rows = cur.fetchall()
            except pymysql.MySQLError as exc:
                if error_code(exc) != case.error or case.words not in str(exc.args[-1]):
                    failures.append(f"{case.what}: got {exc.args}, expected {case.error} {case.words!r}")
            else:
                if case.error is not None:
                    failures.append(f"{case.what}: accepted, expected error {case.error}")
                elif rows:
                    failures.append(f"{case.what}: read {rows!r}")
        after = checksums(resellers)
        if after != before:
            changed = [k for k in before if before[k] != after[k]]
            failures.append(f"{case.what}: changed {changed}")
            before = after
    assert failures == [], "\n".join(failures)


def test_the_table_covers_every_kind_of_login():
    assert {case.who for case in CASES} >= {"r1", "s", "r2", "k1", "p"}
    assert len(CASES) >= 35


def test_tenant_procedures_show_their_names_but_not_their_bodies(resellers):
    with resellers.login("r1") as conn:
        routines = query(conn, "SELECT routine_schema, routine_name, routine_definition "
                               "FROM information_schema.routines")
    assert {r[0] for r in routines} == {resellers.tenant_database}
    assert "transfer_to_client" in {r[1] for r in routines}
    assert all(r[2] is None for r in routines)
    with resellers.login("r1", "agent") as conn:
        assert query(conn, "SELECT routine_name FROM information_schema.routines") == []


def test_a_locking_read_of_the_reseller_views_does_not_stop_transfers_or_suspension(resellers):
    """The reseller views are TEMPTABLE: FOR UPDATE through them locks nothing."""
    c = resellers.codes
    hostile = resellers.login("r1")
    query(hostile, "START TRANSACTION")
    for view in ("my_clients", "my_plans", "my_rates", "transfers", "my_margins", "my_client_calls"):
        query(hostile, f"SELECT * FROM {view} FOR UPDATE")
    with resellers.login("r1") as conn:
        conn.cursor().execute("SET SESSION innodb_lock_wait_timeout = 2")
        query(conn, "CALL transfer_to_client(%s, 1, 'while-held')", (c["k1"],))
    with resellers.engine.begin() as conn:
        conn.execute(text("SET SESSION innodb_lock_wait_timeout = 2"))
        conn.execute(text("CALL suspend_client(:c)"), {"c": c["k1"]})
        conn.execute(text("CALL add_payment(:c, 1, 'held-topup')"), {"c": c["r1"]})
    query(hostile, "ROLLBACK")
    hostile.close()
    assert resellers.balance("k1") == 6


def test_parallel_transfers_never_take_more_than_the_credit(resellers):
    """8 connections (a login may hold 10) each try 3 transfers of 1.00 from r1, whose
    credit is exactly 10.00: 10 succeed, 14 are refused in words, the balance ends at 0."""
    c = resellers.codes
    with resellers.engine.begin() as conn:
        conn.execute(text("CALL add_payment(:c, -90, 'down-to-ten')"), {"c": c["r1"]})
    results: list[str] = []
    barrier = threading.Barrier(8, timeout=30)

    def one(n: int) -> None:
        with resellers.login("r1") as conn:
            barrier.wait()
            for k in range(3):
                try:
                    query(conn, "CALL transfer_to_client(%s, 1.00, %s)",
                          (c["k1"] if n % 2 else c["s"], f"p{n}-{k}"))
                    results.append("ok")
                except pymysql.MySQLError as exc:
                    results.append(str(exc.args[-1]))

    threads = [threading.Thread(target=one, args=(n,)) for n in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert len(results) == 24, results
    assert results.count("ok") == 10, results
    assert all(r == "ok" or "not enough credit" in r for r in results), results
    assert resellers.balance("r1") == 0
    assert resellers.balance("k1") + resellers.balance("s") == Decimal("5") + Decimal("20") + 10
    with resellers.engine.connect() as conn:
        assert conn.execute(text(
            "SELECT COUNT(*), SUM(p.amount) FROM transfers x JOIN payments p"
            " ON p.id IN (x.from_payment_id, x.to_payment_id)")).one() == (20, 0)


@pytest.mark.parametrize("caller, to", [("r1", "k1"), ("k1", "s")])
def test_a_transfer_racing_a_call_for_the_last_credit_never_passes_the_floor(resellers, caller, to):
    """Each round r1 has 1.00 left; a call (r1's own, or its client k1's, which reserves
    at r1's level too) and a transfer of the whole 1.00 from r1 start together. Whichever
    wins, the other is refused: r1's available credit is never below 0."""
    c = resellers.codes
    now = datetime.now(timezone.utc).replace(tzinfo=None)
    outcomes = []
    with resellers.engine.begin() as conn:
        conn.execute(text("CALL add_payment(:c, -99, 'down-to-one')"), {"c": c["r1"]})
    for round_ in range(6):
        got: dict[str, object] = {}
        barrier = threading.Barrier(2, timeout=30)

        def call_() -> None:
            barrier.wait()
            got["call"] = calls.authorize(resellers.engine, CallRequest(c[caller], "442071234567"),
                                          now, calls.Limits())

        def transfer() -> None:
            with resellers.login("r1") as conn:
                barrier.wait()
                try:
                    query(conn, "CALL transfer_to_client(%s, 1.00, %s)", (c[to], f"race{round_}"))
                    got["transfer"] = "ok"
                except pymysql.MySQLError as exc:
                    got["transfer"] = str(exc.args[-1])

        threads = [threading.Thread(target=call_), threading.Thread(target=transfer)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(60)
        admitted = got["call"].admission.allowed
        outcomes.append((admitted, got["transfer"] == "ok"))
        assert resellers.available("r1") >= 0, (round_, got)
        assert admitted != (got["transfer"] == "ok"), got   # 1.00 pays exactly one of them
        if admitted:
            assert "not enough credit" in got["transfer"]
            calls.settle(resellers.engine, got["call"].call_id, None, "NOANSWER", now)
        else:
            assert got["call"].admission.reason == "no-credit"
            with resellers.engine.begin() as conn:   # give the 1.00 back for the next round
                conn.execute(text("CALL add_payment(:c, 1, :r)"), {"c": c["r1"], "r": f"again{round_}"})
        assert resellers.available("r1") == 1


def transfer_until(resellers, tag: str, stop: float, barrier: threading.Barrier,
                   answers: list[str]) -> None:
    """r1 transfers 0.01 to k1 over and over until `stop` (time.monotonic()): "ok", or the
    error that ended it, in `answers`."""
    with resellers.login("r1") as conn:
        barrier.wait()
        k = 0
        while time.monotonic() < stop:
            try:
                query(conn, "CALL transfer_to_client(%s, 0.01, %s)",
                      (resellers.codes["k1"], f"{tag}-{k}"))
                answers.append("ok")
            except pymysql.MySQLError as exc:
                answers.append(str(exc.args))
                break
            k += 1


def test_the_watchdog_spares_transfers_that_make_others_wait(resellers):
    """8 connections transfer for 4 s (several watchdog rounds) while they wait for each
    other's locks: no session is ended, every answer is a transfer or a refusal in words."""
    answers: list[str] = []
    stop = time.monotonic() + 4
    barrier = threading.Barrier(8, timeout=30)

    threads = [threading.Thread(target=transfer_until, args=(resellers, f"w{n}", stop, barrier,
                                                          answers)) for n in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert answers and set(answers) == {"ok"}, [a for a in answers if a != "ok"][:3]
    with resellers.engine.connect() as conn:
        assert conn.execute(text("SELECT COUNT(*) FROM tenant_sessions_ended")).scalar_one() == 0


def test_a_running_statement_cannot_shelter_locks_for_long(resellers):
    """Locks of an open transaction, then a slow CALL (its argument sleeps 9 s): the
    watchdog gives a running statement one more look, then ends the session."""
    hostile = resellers.login("r1")
    query(hostile, "START TRANSACTION")
    query(hostile, "INSERT INTO agents (name) VALUES ('held')")
    time.sleep(1.2)   # the transaction began a second before the CALL
    slow = threading.Thread(target=lambda: _ignore(
        hostile, "CALL transfer_to_client(IF(SLEEP(9), 'x', 'x'), 1, 'x')"))
    slow.start()
    time.sleep(0.3)
    started = time.monotonic()
    with resellers.engine.begin() as conn:
        conn.execute(text("SET SESSION innodb_lock_wait_timeout = 20"))
        conn.execute(text("SELECT id FROM agents WHERE client_id = :c FOR UPDATE"),
                     {"c": resellers.ids["r1"]})
    waited = time.monotonic() - started
    slow.join(30)
    assert waited < 5, waited
    with resellers.engine.connect() as conn:
        assert conn.execute(text("SELECT COUNT(*) FROM tenant_sessions_ended")).scalar_one() == 1


def _ignore(conn, sql: str) -> None:
    try:
        query(conn, sql)
    except pymysql.MySQLError:
        pass


def test_the_watchdog_spares_transfers_idle_between_two_calls(resellers):
    """The watchdog called over and over while 8 connections transfer and wait for each
    other's locks: a session idle between two CALLs is never taken for an idle transaction
    holding locks. InnoDB's information_schema tables are a cache, refreshed only when
    nobody read them for 100 ms: here another reader (a monitor, another database's
    watchdog) refreshes it 30 ms before each round, so the watchdog's copy is older than
    its look at the sessions, as it often was in CI."""
    answers: list[str] = []
    rounds = []
    stop = time.monotonic() + 4
    barrier = threading.Barrier(9, timeout=30)

    def watchdog() -> None:
        with resellers.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            barrier.wait()
            while time.monotonic() < stop:
                time.sleep(0.11)
                conn.execute(text("SELECT COUNT(*) FROM information_schema.innodb_trx")).all()
                time.sleep(0.03)
                conn.execute(text("CALL end_hostile_tenant_sessions(@ended)"))
                rounds.append(conn.execute(text("SELECT @ended")).scalar_one())

    threads = [threading.Thread(target=transfer_until, args=(resellers, f"t{n}", stop, barrier,
                                                          answers)) for n in range(8)]
    threads.append(threading.Thread(target=watchdog))
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert len(rounds) >= 5, rounds
    with resellers.engine.connect() as conn:
        ended = conn.execute(text("SELECT reason FROM tenant_sessions_ended")).scalars().all()
    assert ended == [] and sum(rounds) == 0, ended
    assert answers and set(answers) == {"ok"}, [a for a in answers if a != "ok"][:3]
