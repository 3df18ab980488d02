"""The routed trunks' buy rates in each server's copy of the route table (issue 22
performance): every write of trunk_rates gives the route table a new version (schema 119),
so a copy holding buy rates is never used after one changed; the copy's lookup is the
table's; above MAX_BUY_RATES none are copied and calls read them as before."""

from __future__ import annotations

import random
from datetime import datetime
from decimal import Decimal

import pytest
from hypothesis import HealthCheck, given, settings, strategies as st
from sqlalchemy import text

from fastagi import reasons
from fastagi.billing.admission import CallRequest
from fastagi.store import calls, route_table, trunks
from tests.routing.carriers import add_buy_rate, add_group, add_route, add_trunk
from tests.routing.test_route_table_copy import Statements
from tests.serve_process import run_ictcontact
from tests.support.sql import execute, scalar

NOW = datetime(2026, 12, 7, 12, 0, 0)
LIMITS = calls.Limits(max_call_seconds=3600, dial_template="PJSIP/{number}@carrier",
                      stale_grace_seconds=300)
UK = "442071234567"


def out(number: str = UK) -> CallRequest:
    return CallRequest(client_code="acme", number=number, direction="out", emergency=False)


def version(engine) -> str:
    return scalar(engine, "SELECT version FROM route_table_version")


def authorize(engine) -> tuple[calls.Authorization, list[str]]:
    """One call, and the statements it sent."""
    statements = Statements(engine)
    try:
        return calls.authorize(engine, out(), NOW, LIMITS), statements.sent
    finally:
        statements.close()


def reads_no_buy_rates(sent: list[str]) -> bool:
    """No lookup of the number's buy rates (a copy made meanwhile reads them all)."""
    return not any("trunk_rates" in sql and "LEFT(" in sql for sql in sent)


def priority_pair(engine, ordering: str = "priority") -> tuple[int, int]:
    first, second = add_trunk(engine, "first"), add_trunk(engine, "second")
    add_buy_rate(engine, first, "44", "0.05")
    add_buy_rate(engine, second, "44", "0.06")
    group = add_group(engine, "44", ordering=ordering)
    add_route(engine, group, first, 10)
    add_route(engine, group, second, 20)
    return first, second


# ---- the version: every write of trunk_rates, by anyone --------------------------------------

def test_every_write_of_a_buy_rate_gives_a_new_version(engine, plan):
    trunk = add_trunk(engine, "first")
    seen = {version(engine)}

    def changed() -> bool:
        now = version(engine)
        new = now not in seen
        seen.add(now)
        return new

    add_buy_rate(engine, trunk, "44", "0.05")
    assert changed(), "INSERT"
    for sql in ("UPDATE trunk_rates SET rate_per_min = 0.04",
                "UPDATE trunk_rates SET connection_fee = 0.01",
                "UPDATE trunk_rates SET initial_increment = 30",
                "UPDATE trunk_rates SET subsequent_increment = 6",
                "UPDATE trunk_rates SET prefix = '4420'",
                "DELETE FROM trunk_rates"):
        execute(engine, sql)
        assert changed(), sql
    # what the copy does not hold keeps the version (a copy stays in use)
    add_buy_rate(engine, trunk, "44", "0.05")
    changed()
    execute(engine, "UPDATE trunk_rates SET description = 'United Kingdom'")
    assert not changed()
    # a due change moved in by apply_due_rates() (the event, `rates apply-due`)
    execute(engine, "INSERT INTO trunk_rate_pending (trunk_id, prefix, change_kind, rate_per_min,"
            " connection_fee, initial_increment, subsequent_increment, effective_at)"
            " VALUES (:t, '44', 'set', 0.03, 0, 60, 60, UTC_TIMESTAMP() - INTERVAL 1 SECOND)",
            t=trunk)
    assert not changed()                        # pending: not in effect, not in the copy
    execute(engine, "CALL apply_due_rates()")
    assert scalar(engine, "SELECT rate_per_min FROM trunk_rates") == Decimal("0.03")
    assert changed(), "apply_due_rates"


def test_a_buy_deck_import_gives_a_new_version_and_the_next_call_uses_it(
        db_url, engine, plan, copy, tmp_path):
    first, second = priority_pair(engine)
    got, sent = authorize(engine)
    got, sent = authorize(engine)
    assert got.trunk == "first" and reads_no_buy_rates(sent)
    before = version(engine)
    deck = tmp_path / "first.csv"
    deck.write_text("prefix,description,rate_per_min,connection_fee,initial_increment,"
                    "subsequent_increment\n44,United Kingdom,0.2000,0,60,60\n", encoding="utf-8")
    done = run_ictcontact("rates", "import", "--trunk", "first", str(deck), "--db", db_url,
                          "--progress", "never")
    assert done.returncode == 0, done.stderr
    assert version(engine) != before
    # first now loses money on the call: the margin check skips it
    assert calls.authorize(engine, out(), NOW, LIMITS).trunk == "second"


def test_a_buy_deck_import_writes_the_version_once_and_leaves_no_deferral(
        db_url, engine, plan, tmp_path):
    """Schema 178: the import defers the per-row version writes and writes one at the
    end; a failed import owes none and leaves its session as it found it."""
    from fastagi.commands.rates import import_rows
    from fastagi.db.engine import make_engine
    priority_pair(engine)
    execute(engine, "CREATE TABLE version_writes (n INT)")
    execute(engine, "CREATE TRIGGER count_version_writes AFTER UPDATE ON route_table_version"
                    " FOR EACH ROW INSERT INTO version_writes VALUES (1)")
    deck = tmp_path / "first.csv"
    deck.write_text("prefix,rate_per_min\n" + "".join(f"44{n:03},0.0{n % 9 + 1}\n"
                                                       for n in range(500)), encoding="utf-8")
    done = run_ictcontact("rates", "import", "--trunk", "first", str(deck), "--db", db_url,
                          "--progress", "never")
    assert done.returncode == 0, done.stderr
    assert scalar(engine, "SELECT COUNT(*) FROM trunk_rates") == 501
    assert scalar(engine, "SELECT COUNT(*) FROM version_writes") == 1
    # a plain INSERT (no deferral in its session) still writes one a row
    execute(engine, "INSERT INTO trunk_rates (trunk_id, prefix, rate_per_min) SELECT id, '4499',"
                    " 0.01 FROM trunks WHERE name = 'first'")
    assert scalar(engine, "SELECT COUNT(*) FROM version_writes") == 2
    # an import that fails while writing: rolled back, and its pooled session not deferred
    one = make_engine(db_url, pool_size=1)
    try:
        execute(engine, "CREATE TRIGGER refuse_4455 BEFORE INSERT ON trunk_rates FOR EACH ROW"
                        " IF NEW.prefix = '4455' THEN SIGNAL SQLSTATE '45000'"
                        " SET MESSAGE_TEXT = 'no'; END IF")
        from fastagi.billing.decks import read_deck
        rows, errors = read_deck(["prefix,rate_per_min\n", "4455,0.01\n"])
        assert errors == []
        with pytest.raises(Exception, match="no"):
            import_rows(one, "trunk", "first", rows, None)
        with one.connect() as conn:
            assert conn.exec_driver_sql("SELECT @ict_route_version_deferred").scalar() is None
    finally:
        one.dispose()
    assert scalar(engine, "SELECT COUNT(*) FROM version_writes") == 2


# ---- a buy rate changed by plain SQL is used by the very next call -------------------------

def test_an_updated_buy_rate_is_used_by_the_next_call(engine, plan, copy):
    first, _ = priority_pair(engine)
    authorize(engine)
    got, sent = authorize(engine)
    assert got.trunk == "first" and reads_no_buy_rates(sent)       # the copy's rates
    execute(engine, "UPDATE trunk_rates SET rate_per_min = 0.15 WHERE trunk_id = :t", t=first)
    got, sent = authorize(engine)
    assert got.trunk == "second"                   # first loses money now: skipped
    assert reads_no_buy_rates(sent)                # from the new copy, made at the new version
    assert scalar(engine, "SELECT buy_rate_per_min FROM call_attempts WHERE call_id = :i",
                  i=got.call_id) == Decimal("0.06")


def test_an_inserted_buy_rate_is_used_by_the_next_call(engine, plan, copy):
    _, second = priority_pair(engine, ordering="least-cost")
    authorize(engine)
    got, sent = authorize(engine)
    assert got.trunk == "first" and reads_no_buy_rates(sent)
    add_buy_rate(engine, second, "4420", "0.01")    # longer prefix, cheaper for London
    got, _ = authorize(engine)
    assert got.trunk == "second"
    assert scalar(engine, "SELECT CONCAT(buy_prefix, '|', buy_rate_per_min) FROM call_attempts"
                  " WHERE call_id = :i", i=got.call_id) == "4420|0.010000"


def test_a_deleted_buy_rate_is_gone_for_the_next_call(engine, plan, copy):
    only = add_trunk(engine, "only")
    add_buy_rate(engine, only, "44", "0.05")
    add_buy_rate(engine, only, "4420", "0.20")      # London loses money: refused
    add_route(engine, add_group(engine, "44"), only, 10)
    authorize(engine)
    got, sent = authorize(engine)
    assert got.admission.reason == reasons.NO_ROUTE and reads_no_buy_rates(sent)
    execute(engine, "DELETE FROM trunk_rates WHERE prefix = '4420'")
    got, _ = authorize(engine)
    assert got.trunk == "only"
    assert scalar(engine, "SELECT buy_prefix FROM call_attempts WHERE call_id = :i",
                  i=got.call_id) == "44"


def test_a_stale_copy_s_buy_rates_are_not_used(engine, plan, monkeypatch):
    """The copy is not made again (a load is slow or failing): the call's transaction read
    another version than the copy's, so it reads the buy rates from the table."""
    first, _ = priority_pair(engine)
    copy = route_table.copy_of(engine)
    copy.load_now(engine)
    monkeypatch.setattr(route_table.RouteTableCopy, "refresh", lambda self, engine: None)
    got, sent = authorize(engine)
    assert got.trunk == "first" and reads_no_buy_rates(sent)
    execute(engine, "UPDATE trunk_rates SET rate_per_min = 0.15 WHERE trunk_id = :t", t=first)
    got, sent = authorize(engine)
    assert got.trunk == "second"
    assert copy.table.version != version(engine)
    assert any("FROM trunk_rates" in sql for sql in sent)   # the one extra statement


def test_failover_uses_current_buy_rates(engine, plan, copy):
    first, second = priority_pair(engine)
    third = add_trunk(engine, "third")
    add_buy_rate(engine, third, "44", "0.07")
    add_route(engine, scalar(engine, "SELECT id FROM route_groups"), third, 30)
    call = calls.authorize(engine, out(), NOW, LIMITS)
    assert call.trunk == "first"
    execute(engine, "UPDATE trunk_rates SET rate_per_min = 0.15 WHERE trunk_id = :t", t=second)
    moved = trunks.failover(engine, call.call_id, "CONGESTION", 34, "first", NOW)
    assert moved.outcome == trunks.ALLOW and moved.trunk.name == "third"
    assert moved.trunk.buy.rate_per_min == Decimal("0.07")


# ---- the copy's lookup is the table's --------------------------------------------------------

@pytest.fixture
def random_buy_rates(engine, plan):
    """4 routed trunks with buy rates on random nested prefixes of 1-6 digits."""
    rng = random.Random(22)
    ids = [add_trunk(engine, f"t{n}") for n in range(4)]
    group = add_group(engine, "default")
    for trunk in ids:
        add_route(engine, group, trunk, 10)
    rows = []
    for trunk in ids:
        for prefix in {"".join(rng.choice("0123") for _ in range(rng.randint(1, 6)))
                       for _ in range(300)}:
            rows.append({"t": trunk, "p": prefix, "r": f"0.{rng.randint(0, 99999):05d}",
                         "f": rng.choice(("0", "0.01")), "i": rng.choice((1, 30, 60)),
                         "s": rng.choice((1, 6, 60))})
    with engine.begin() as conn:
        conn.execute(text("INSERT INTO trunk_rates (trunk_id, prefix, rate_per_min,"
                          " connection_fee, initial_increment, subsequent_increment)"
                          " VALUES (:t, :p, :r, :f, :i, :s)"), rows)
    table = route_table.load(engine)
    assert table.buy is not None and table.routed_trunks == tuple(sorted(ids))
    return table, ids


@settings(max_examples=300, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(digits=st.text("01234", min_size=0, max_size=40), subset=st.integers(1, 15))
def test_the_copy_s_buy_rates_are_the_table_s(engine, random_buy_rates, digits, subset):
    table, ids = random_buy_rates
    wanted = [t for i, t in enumerate(ids) if subset >> i & 1]
    with engine.connect() as conn:
        want = trunks._buy_rates(conn, wanted, digits)
        conn.rollback()
    assert table.buy_rates(digits, wanted) == want


# ---- too many buy rates: none copied, read per call ------------------------------------------

def test_above_the_cap_no_buy_rate_is_copied_and_calls_read_them(engine, plan, copy,
                                                                  monkeypatch):
    monkeypatch.setattr(route_table, "MAX_BUY_RATES", 1)
    first, _ = priority_pair(engine)                 # 2 buy rates
    authorize(engine)
    got, sent = authorize(engine)
    assert copy.table is not None and copy.table.buy is None
    assert got.trunk == "first"
    usage = [sql for sql in sent if "route_table_version" in sql]
    assert len(usage) == 1 and "trunk_rates" in usage[0]    # read in the usage query
    execute(engine, "UPDATE trunk_rates SET rate_per_min = 0.15 WHERE trunk_id = :t", t=first)
    assert authorize(engine)[0].trunk == "second"


def test_at_the_cap_the_buy_rates_are_copied(engine, plan, copy, monkeypatch):
    monkeypatch.setattr(route_table, "MAX_BUY_RATES", 2)
    priority_pair(engine)
    authorize(engine)
    assert copy.table.buy is not None
    assert authorize(engine)[0].trunk == "first"
