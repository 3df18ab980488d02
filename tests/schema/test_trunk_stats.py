"""trunk_daily_stats and route_destination_daily_stats (schema 154) on a small hand-made
set of calls and attempts: ASR, ACD, minutes, cost, revenue and margin worked out by hand
below; and that asking for a day reads that day's attempts through the index."""

from __future__ import annotations

import json
import re
from datetime import datetime, timedelta
from decimal import Decimal
from pathlib import Path

import pytest

from fastagi.billing.admission import CallRequest
from fastagi.store import calls
from tests.callcontrol.tenants import add_client, add_rate, default_plan_id
from tests.serve_process import run_ictcontact
from tests.support.sql import execute, rows, scalar

DAY1 = datetime(2026, 11, 25, 12, 0, 0)
DAY2 = datetime(2026, 11, 26, 9, 0, 0)
LIMITS = calls.Limits(max_call_seconds=3600, dial_template="PJSIP/{number}@carrier",
                      stale_grace_seconds=300)
D = Decimal
# buy rates as the trunks' decks give them: (prefix, per min, fee, initial, subsequent)
C1_LONDON = ("4420", "0.006", "0", 30, 6)
C1_UK = ("44", "0.008", "0", 60, 60)
C2_UK = ("442", "0.012", "0.002", 60, 60)


@pytest.fixture
def trunks(engine):
    plan_id = default_plan_id(engine)
    add_rate(engine, plan_id, "4420", "0.05", connection_fee="0.01", initial=30, subsequent=6)
    add_client(engine, "acme", balance="10.00", channel_limit=50)
    execute(engine, "INSERT INTO trunks (name, endpoint) VALUES ('carrier1', 'carrier1'),"
                    " ('carrier2', 'carrier2')")
    return {name: scalar(engine, "SELECT id FROM trunks WHERE name = :n", n=name)
            for name in ("carrier1", "carrier2")}


def call(engine, at: datetime, tries: list[tuple], answered_ms: int | None, status: str) -> int:
    """A call authorized at `at` that tried `tries` = [(trunk id, buy rate, state,
    dial status)] in order, then settled with `answered_ms` / `status`."""
    call_id = calls.authorize(engine, CallRequest("acme", "442071234567", "out"), at,
                              LIMITS).call_id
    for n, (trunk_id, rate, state, dial_status) in enumerate(tries, start=1):
        execute(engine,
                "INSERT INTO call_attempts (call_id, attempt, trunk_id, state, started_at,"
                " ended_at, dial_status, buy_prefix, buy_rate_per_min, buy_connection_fee,"
                " buy_initial_increment, buy_subsequent_increment)"
                " VALUES (:c, :n, :t, :s, :at, :at, :ds, :p, :r, :f, :i, :q)",
                c=call_id, n=n, t=trunk_id, s=state, at=at + timedelta(seconds=n), ds=dial_status,
                p=rate[0], r=rate[1], f=rate[2], i=rate[3], q=rate[4])
    calls.settle(engine, call_id, answered_ms, status, at + timedelta(minutes=5))
    return call_id


@pytest.fixture
def traffic(engine, trunks):
    c1, c2 = trunks["carrier1"], trunks["carrier2"]
    # A: carrier1 answers, 31 s: sell 0.01 + 36 x 0.05/60 = 0.04; buy 36 x 0.006/60 = 0.0036
    call(engine, DAY1, [(c1, C1_LONDON, "answered", "ANSWER")], 31000, "ANSWER")
    # B: carrier1 unavailable, carrier2 answers 61 s: sell 0.01 + 66 x 0.05/60 = 0.065;
    #    buy 0.002 + 120 x 0.012/60 = 0.026
    call(engine, DAY1, [(c1, C1_LONDON, "failed", "CHANUNAVAIL"),
                        (c2, C2_UK, "answered", "ANSWER")], 61000, "ANSWER")
    # C: carrier1, no answer: nothing either side
    call(engine, DAY1, [(c1, C1_LONDON, "ended", "NOANSWER")], None, "NOANSWER")
    # D: carrier1 by its 44 rate, 95 s: sell 96 s, 0.01 + 0.08 = 0.09; buy 120 x 0.008/60 = 0.016
    call(engine, DAY1, [(c1, C1_UK, "answered", "ANSWER")], 95000, "ANSWER")
    # E: the next day, carrier1, 10 s: sell 30 s, 0.035; buy 30 x 0.006/60 = 0.003
    call(engine, DAY2, [(c1, C1_LONDON, "answered", "ANSWER")], 10000, "ANSWER")
    return trunks


def _tables(node):
    """Every table entry of an EXPLAIN FORMAT=JSON plan."""
    if isinstance(node, dict):
        if "table_name" in node:
            yield node
        for value in node.values():
            yield from _tables(value)
    elif isinstance(node, list):
        for value in node:
            yield from _tables(value)


COLUMNS = ("attempts, answered, asr_percent, acd_seconds, minutes, carrier_minutes, cost,"
           " revenue, margin, unpriced")


def test_per_trunk_per_day(engine, traffic):
    got = {(str(r.day), r.trunk): tuple(r)[2:] for r in rows(
        engine, f"SELECT day, trunk, {COLUMNS} FROM trunk_daily_stats ORDER BY day, trunk")}
    assert got == {
        # A, B's first try, C, D: 2 of 4 answered; ACD (31 + 95) / 2; minutes (36 + 96) / 60
        # and carrier (36 + 120) / 60; cost 0.0036 + 0.016; revenue 0.04 + 0.09
        ("2026-11-25", "carrier1"): (4, 2, D("50.0"), D("63.0"), D("2.20"), D("2.60"),
                                     D("0.0196"), D("0.1300"), D("0.1104"), 0),
        # B's second try carried it
        ("2026-11-25", "carrier2"): (1, 1, D("100.0"), D("61.0"), D("1.10"), D("2.00"),
                                     D("0.0260"), D("0.0650"), D("0.0390"), 0),
        ("2026-11-26", "carrier1"): (1, 1, D("100.0"), D("10.0"), D("0.50"), D("0.50"),
                                     D("0.0030"), D("0.0350"), D("0.0320"), 0),
    }


def test_per_trunk_and_destination_per_day(engine, traffic):
    got = {(str(r.day), r.trunk, r.destination): tuple(r)[3:] for r in rows(
        engine, f"SELECT day, trunk, destination, {COLUMNS} FROM route_destination_daily_stats"
                " WHERE day = '2026-11-25'")}
    assert got == {
        # A, B's failed try, C: one of three answered
        ("2026-11-25", "carrier1", "4420"): (3, 1, D("33.3"), D("31.0"), D("0.60"), D("0.60"),
                                             D("0.0036"), D("0.0400"), D("0.0364"), 0),
        ("2026-11-25", "carrier1", "44"): (1, 1, D("100.0"), D("95.0"), D("1.60"), D("2.00"),
                                           D("0.0160"), D("0.0900"), D("0.0740"), 0),
        ("2026-11-25", "carrier2", "442"): (1, 1, D("100.0"), D("61.0"), D("1.10"), D("2.00"),
                                            D("0.0260"), D("0.0650"), D("0.0390"), 0),
    }


def test_a_day_without_attempts_has_no_rows_and_legacy_calls_are_not_counted(engine, traffic):
    # a call through the dial template: no attempt, not a trunk's
    calls.settle(engine, calls.authorize(engine, CallRequest("acme", "442071234567", "out"),
                                         DAY1, LIMITS).call_id, 31000, "ANSWER", DAY1)
    assert scalar(engine, "SELECT COUNT(*) FROM trunk_daily_stats WHERE day = '2026-11-24'") == 0
    assert scalar(engine, "SELECT SUM(attempts) FROM trunk_daily_stats") == 6


def test_answered_calls_without_a_buy_rate_are_counted_as_unpriced(engine, trunks):
    none = (None, None, None, None, None)
    call(engine, DAY1, [(trunks["carrier2"], none, "answered", "ANSWER")], 31000, "ANSWER")
    call(engine, DAY1, [(trunks["carrier2"], C2_UK, "answered", "ANSWER")], 31000, "ANSWER")
    row = rows(engine, f"SELECT {COLUMNS} FROM trunk_daily_stats WHERE trunk = 'carrier2'")[0]
    # revenue of both (0.04 each); cost and margin of the priced one only:
    # buy 0.002 + 60 x 0.012/60 = 0.014
    assert (row.answered, row.revenue, row.cost, row.margin, row.unpriced) == (
        2, D("0.0800"), D("0.0140"), D("0.0260"), 1)


def test_asking_for_a_day_reads_that_days_attempts_by_the_index(engine, trunks):
    # 20,000 settled-looking calls with one attempt each over 20 days, enough for the
    # optimizer to prefer the index over a scan
    client_id = scalar(engine, "SELECT id FROM clients WHERE code = 'acme'")
    # (one in four under a reseller: the views read its top charge, schema 169)
    execute(engine, "INSERT INTO calls (id, client_id, client_code, number, state, authorized_at,"
                    " settled_at, answered_ms, billable_seconds, cost, trunk_id, reseller_levels)"
                    " SELECT 1000 + seq, :cid, 'acme', '442071234567', 'settled', at, at, 30000, 30, 0, :t,"
                    " seq MOD 4 = 0"
                    " FROM (SELECT seq, TIMESTAMP'2026-10-01 00:00:00' + INTERVAL (seq - 1) DIV 1000 DAY"
                    "   + INTERVAL (seq - 1) MOD 1000 MINUTE AS at FROM seq_1_to_20000) s", cid=client_id, t=trunks["carrier1"])
    # (from seq again: the attempts' trigger writes calls, which a SELECT from calls holds)
    execute(engine, "INSERT INTO call_attempts (call_id, attempt, trunk_id, state, started_at,"
                    " ended_at, dial_status, buy_prefix) SELECT 1000 + seq, 1, :t, 'answered', at, at,"
                    " 'ANSWER', '4420'"
                    " FROM (SELECT seq, TIMESTAMP'2026-10-01 00:00:00' + INTERVAL (seq - 1) DIV 1000 DAY"
                    "   + INTERVAL (seq - 1) MOD 1000 MINUTE AS at FROM seq_1_to_20000) s",
            t=trunks["carrier1"])
    execute(engine, "INSERT INTO call_charges (call_id, client_id, depth, prefix, rate_per_min,"
                    " connection_fee, initial_increment, subsequent_increment, authorized_at)"
                    " SELECT id, :cid, 1, '44', 0.01, 0, 60, 60, authorized_at FROM calls"
                    " WHERE reseller_levels = 1", cid=client_id)
    execute(engine, "ANALYZE TABLE call_attempts, calls, call_charges")
    for view in ("trunk_daily_stats", "route_destination_daily_stats"):
        plan = json.loads(scalar(engine, f"EXPLAIN FORMAT=JSON SELECT * FROM {view}"
                                         " WHERE day = '2026-10-05'"))
        tables = {t["table_name"]: t for t in _tables(plan)}
        # the day is pushed into the grouped view: a ref lookup of that day's attempts,
        # each call by its key; only the few grouped rows of the day are scanned after
        assert tables["a"]["key"] == "ix_call_attempts_day_trunk", plan
        assert "const" in tables["a"]["ref"], plan
        assert tables["c"]["access_type"] == "eq_ref" and tables["c"]["key"] == "PRIMARY", plan
        # a reseller call's top charge (169): by call_charges' key (call_id, client_id)
        assert tables["g"]["key"] == "PRIMARY" and tables["g"]["used_key_parts"] == ["call_id"], plan
        assert all(t["access_type"] != "ALL" for name, t in tables.items()
                   if not name.startswith("<derived")), plan
        assert scalar(engine, f"SELECT attempts FROM {view} WHERE day = '2026-10-05'") == 1000


def _doc_statements(marker: str) -> list[str]:
    guide = (Path(__file__).resolve().parents[2] / "docs" / "admin-sql.md").read_text()
    block = re.search(r"```sql\n(.*?)```", guide.split(marker, 1)[1], re.S).group(1)
    lines = [line.split("--", 1)[0] for line in block.splitlines()]
    return [s.strip() for s in "\n".join(lines).split(";") if s.strip()]


def test_the_queries_of_the_admin_guide_run_as_written(engine, traffic):
    statements = (_doc_statements("### Buy cost and margin of each call")
                  + _doc_statements("### Trunk statistics"))
    assert len(statements) == 3
    with engine.connect() as conn:
        # the guide's days are relative to today: move the hand-made calls to yesterday
        # and today, so each query has rows to show
        conn.exec_driver_sql("SET @shift = DATEDIFF(UTC_DATE(), DATE'2026-11-26')")
        conn.exec_driver_sql("UPDATE call_attempts SET started_at = started_at + INTERVAL @shift DAY")
        conn.exec_driver_sql("UPDATE calls SET authorized_at = authorized_at + INTERVAL @shift DAY")
        conn.exec_driver_sql("UPDATE calls SET cost = 0.0010 WHERE answered_ms = 95000")
        got = [conn.exec_driver_sql(s, execution_options={"no_parameters": True}).mappings().all()
               for s in statements]
        conn.rollback()
    losses, yesterday, month = got
    # D re-rated to 0.001 against its carrier's 0.016
    assert [(r["trunk"], r["margin"]) for r in losses] == [("carrier1", D("-0.0150"))]
    assert {r["trunk"]: r["attempts"] for r in yesterday} == {"carrier1": 4, "carrier2": 1}
    # this month: all of carrier1 if yesterday and today are in the same month
    assert {r["destination"] for r in month} <= {"4420", "44"} and month


def test_routes_report_prints_the_views(engine, db_url, traffic):
    table = run_ictcontact("routes", "report", "--day", "2026-11-25", "--db", db_url)
    assert table.returncode == 0, table.stderr
    lines = table.stdout.splitlines()
    assert lines[0].split() == ["DAY", "TRUNK", "ATTEMPTS", "ANSWERED", "ASR%", "ACD", "s",
                                "MINUTES", "COST", "REVENUE", "MARGIN", "UNPRICED"]
    assert lines[1].split() == ["2026-11-25", "carrier1", "4", "2", "50.0", "63.0", "2.20",
                                "0.0196", "0.1300", "0.1104", "0"]
    assert len(lines) == 3
    two_days = run_ictcontact("routes", "report", "--day", "2026-11-26", "--days", "2",
                              "--trunk", "carrier1", "--by-destination", "--json", "--db", db_url)
    assert two_days.returncode == 0, two_days.stderr
    got = [(r["day"], r["destination"], r["attempts"], r["margin"])
           for r in json.loads(two_days.stdout)]
    assert got == [("2026-11-25", "44", 1, "0.0740"), ("2026-11-25", "4420", 3, "0.0364"),
                   ("2026-11-26", "4420", 1, "0.0320")]
    bad = run_ictcontact("routes", "report", "--day", "25/11/2026", "--db", db_url)
    assert bad.returncode == 2 and "is not a day" in bad.stderr and "Traceback" not in bad.stderr
    empty = run_ictcontact("routes", "report", "--day", "2026-01-01", "--db", db_url)
    assert (empty.returncode, empty.stdout.splitlines()[1:]) == (0, [])


def test_a_call_closed_as_stale_then_settled_late_keeps_its_money_on_its_trunk(engine, trunks):
    c1 = trunks["carrier1"]
    call_id = calls.authorize(engine, CallRequest("acme", "442071234567", "out"), DAY1,
                              LIMITS).call_id
    execute(engine, "INSERT INTO call_attempts (call_id, attempt, trunk_id, started_at,"
                    " buy_prefix, buy_rate_per_min, buy_connection_fee, buy_initial_increment,"
                    " buy_subsequent_increment) VALUES (:c, 1, :t, :at, '4420', 0.006, 0, 30, 6)",
            c=call_id, t=c1, at=DAY1)
    # the sweep closes it (and ends its attempt); the hangup handler's settle comes later
    assert calls.close_stale(engine, DAY1 + timedelta(hours=3)) == 1
    assert scalar(engine, "SELECT state FROM call_attempts WHERE call_id = :c", c=call_id) == "ended"
    calls.settle(engine, call_id, 31000, "ANSWER", DAY1 + timedelta(hours=4))
    row = rows(engine, f"SELECT {COLUMNS} FROM trunk_daily_stats WHERE trunk = 'carrier1'")[0]
    # not counted answered (its attempt was ended by the sweep), but billed: the money shows
    assert (row.attempts, row.answered, row.revenue, row.cost, row.margin, row.minutes) == (
        1, 0, D("0.0400"), D("0.0036"), D("0.0364"), D("0.60"))
