"""`ictcontact rates import`: a deck file is checked whole (every bad line named, nothing
written), written all or nothing, compared with --dry-run, and may take effect later;
replaced rates are kept. Run as the operator runs it: a real subprocess on a real database.
"""

from __future__ import annotations

import io
import time
from datetime import datetime, timedelta
from decimal import Decimal

import pytest

from fastagi.billing.admission import CallRequest
from fastagi.billing.decks import DeckError, compare, read_deck
from fastagi.store import calls
from tests import builders
from tests.serve_process import run_ictcontact
from tests.support.sql import execute, rows, scalar

D = Decimal
DECK = """prefix,description,rate_per_min,connection_fee,initial_increment,subsequent_increment
44,United Kingdom,0.0120,0.0000,60,60
4420,London,0.0100,0.0100,30,6
33,France,0.0150,,60,
"""


@pytest.fixture
def plan(engine):
    with engine.begin() as conn:
        return builders.make_plan(conn, "wholesale")


@pytest.fixture
def write(tmp_path):
    def _write(body: str, name: str = "deck.csv") -> str:
        path = tmp_path / name
        path.write_text(body, encoding="utf-8")
        return str(path)
    return _write


def rates_import(db_url: str, *args: str):
    return run_ictcontact("rates", "import", *args, "--db", db_url, "--progress", "never")


def deck(engine, plan_id: int) -> list[tuple]:
    return [tuple(r) for r in rows(
        engine, "SELECT prefix, description, rate_per_min, connection_fee, initial_increment, "
                "subsequent_increment FROM rates WHERE rate_plan_id = :p ORDER BY prefix", p=plan_id)]


# -- reading a deck (pure) -------------------------------------------------------------

@pytest.mark.parametrize("line, message", [
    ("+44,x,0.01,0,60,60", "line 2: bad prefix '+44': 1-32 digits, no + or spaces"),
    ("44 20,x,0.01,0,60,60", "line 2: bad prefix '44 20': 1-32 digits, no + or spaces"),
    ("44,x,0.0000001,0,60,60", "line 2: rate_per_min '0.0000001' has more than 6 decimals and is "
                               "never rounded: give the exact amount with 6 decimals or fewer"),
    ("44,x,0.01,0.0100001,60,60", "line 2: connection_fee '0.0100001' has more than 6 decimals"),
    ("44,x,-0.01,0,60,60", "line 2: rate_per_min '-0.01' is negative: give 0 or more"),
    ("44,x,abc,0,60,60", "line 2: rate_per_min 'abc' is not a number"),
    ("44,x,NaN,0,60,60", "line 2: rate_per_min 'NaN' is not a number"),
    ("44,x,1_000,0,60,60", "line 2: rate_per_min '1_000' is not a number"),
    ("44,x,1000000,0,60,60", "line 2: rate_per_min '1000000' is more than 999999.999999"),
    ("44,x,0.01,0,0,60", "line 2: initial_increment '0' is not 1-3600 seconds"),
    ("44,x,0.01,0,60,6.5", "line 2: subsequent_increment '6.5' is not 1-3600 seconds"),
    ("44,x,0.01,0,60", "line 2: 5 fields where the header names 6"),
])
def test_each_bad_line_is_named_with_what_is_wrong(line, message):
    header = DECK.splitlines()[0]
    good, errors = read_deck(io.StringIO(f"{header}\n{line}\n33,y,0.02,0,60,60\n"))
    assert len(errors) == 1 and str(errors[0]).startswith(message), errors
    assert [r.prefix for r in good] == ["33"]


def test_a_duplicate_prefix_names_both_lines():
    _, errors = read_deck(io.StringIO(DECK + "44,Again,0.0130,0,60,60\n"))
    assert [str(e) for e in errors] == ["line 5: duplicate prefix 44, also on line 2"]


def test_exact_amounts_with_trailing_zeros_are_not_rounding():
    good, errors = read_deck(io.StringIO("prefix,rate_per_min\n44,0.01200000\n"))
    assert errors == [] and good[0].values.rate_per_min == D("0.012")


def test_defaults_and_the_increments_column():
    good, _ = read_deck(io.StringIO("prefix,rate,increments,effective_date\n"
                                    "44,0.01,30/6,\n33,0.02,,2027-01-01 08:30\n"))
    first, second = good
    assert (first.values.initial_increment, first.values.subsequent_increment) == (30, 6)
    assert (second.values.initial_increment, second.values.subsequent_increment) == (60, 60)
    assert (first.values.connection_fee, first.values.description, first.effective) == (0, None, None)
    assert second.effective == datetime(2027, 1, 1, 8, 30)


@pytest.mark.parametrize("body, message", [
    ("", "the file is empty"),
    ("prefix,description,rate_per_min\n", "the deck has a header but no rates"),
    ("44,UK,0.01\n", "the first line must be a header"),
    ("prefix,rate_per_minute\n44,0.01\n", "column 'rate_per_minute' is not a deck column"),
    ("prefix,description\n44,UK\n", "the header names no rate_per_min column"),
    ("prefix,rate,increments,initial_increment\n44,0.01,30/6,30\n", "give increments"),
])
def test_a_file_that_is_not_a_deck_is_refused_whole(body, message):
    with pytest.raises(DeckError, match=message):
        read_deck(io.StringIO(body))


def test_compare_counts_added_changed_removed_unchanged():
    good, _ = read_deck(io.StringIO(DECK))
    current = {r.prefix: r.values.key for r in good}
    current["1"] = current.pop("33")
    current["44"] = good[0].values.key.replace("0.012000", "0.011000")
    plan = compare(current, good)
    assert (plan.added, plan.changed, plan.removed, plan.unchanged) == (1, 1, 1, 1)
    assert [str(d) for d in plan.differences] == [
        "line 2: ~ 44 0.0110/min fee 0.0000 60/60 'United Kingdom' -> "
        "0.0120/min fee 0.0000 60/60 'United Kingdom'",
        "line 4: + 33 0.0150/min fee 0.0000 60/60 'France'",
        "- 1 0.0150/min fee 0.0000 60/60 'France' (not in the file)"]


# -- the command on a real database -----------------------------------------------------

def test_import_loads_the_deck_and_says_what_it_did(db_url, engine, plan, write):
    done = rates_import(db_url, "--plan", "wholesale", write(DECK))
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines()[0] == (
        "rate plan wholesale: 3 added, 0 changed, 0 removed, 0 unchanged; in effect now")
    assert deck(engine, plan) == [
        ("33", "France", D("0.015"), D("0"), 60, 60),
        ("44", "United Kingdom", D("0.012"), D("0"), 60, 60),
        ("4420", "London", D("0.01"), D("0.01"), 30, 6)]


def test_bad_lines_write_nothing_and_are_all_named(db_url, engine, plan, write):
    assert rates_import(db_url, "--plan", "wholesale", write(DECK)).returncode == 0
    before = deck(engine, plan)
    bad = DECK.replace("33,France,0.0150", "33,France,0.01500001") + "+1,US,0.01,0,60,60\n44,Twice,0.01,0,60,60\n"
    done = rates_import(db_url, "--plan", "wholesale", write(bad, "bad.csv"))
    assert done.returncode == 1
    lines = [line.split(": ", 1)[1] for line in done.stderr.splitlines()]
    assert lines == [
        "line 4: rate_per_min '0.01500001' has more than 6 decimals and is never rounded: "
        "give the exact amount with 6 decimals or fewer",
        "line 5: bad prefix '+1': 1-32 digits, no + or spaces",
        "line 6: duplicate prefix 44, also on line 2",
        "nothing imported: 3 bad lines; correct them and import again"]
    assert "Traceback" not in done.stderr and done.stdout == ""
    assert deck(engine, plan) == before


@pytest.mark.parametrize("body, message", [
    ("", "the file is empty"),
    ("prefix,rate_per_min\n", "the deck has a header but no rates"),
])
def test_an_empty_deck_is_refused_and_the_plan_kept(db_url, engine, plan, write, body, message):
    assert rates_import(db_url, "--plan", "wholesale", write(DECK)).returncode == 0
    done = rates_import(db_url, "--plan", "wholesale", write(body, "empty.csv"))
    assert done.returncode == 1 and message in done.stderr
    assert len(deck(engine, plan)) == 3


def test_dry_run_counts_and_shows_the_first_differences_and_writes_nothing(db_url, engine, plan, write):
    assert rates_import(db_url, "--plan", "wholesale", write(DECK)).returncode == 0
    before = deck(engine, plan)
    changed = ("prefix,description,rate_per_min,connection_fee,increments\n"
               "44,United Kingdom,0.0120,0,60/60\n"     # unchanged
               "4420,London,0.0110,0.01,30/6\n"          # changed
               "49,Germany,0.0140,0,60/60\n"             # added; 33 removed
               "491,Germany Mobile,0.0500,0,60/60\n")
    done = rates_import(db_url, "--plan", "wholesale", write(changed, "new.csv"), "--dry-run",
                        "--show", "2")
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines() == [
        "rate plan wholesale: 2 added, 1 changed, 1 removed, 1 unchanged; in effect now",
        "  line 3: ~ 4420 0.0100/min fee 0.0100 30/6 'London' -> 0.0110/min fee 0.0100 30/6 'London'",
        "  line 4: + 49 0.0140/min fee 0.0000 60/60 'Germany'",
        "  ... 2 more differences",
        "dry run: nothing written"]
    assert deck(engine, plan) == before
    assert scalar(engine, "SELECT COUNT(*) FROM rate_history") == 0


def test_a_replaced_deck_keeps_the_old_rates_in_history(db_url, engine, plan, write):
    assert rates_import(db_url, "--plan", "wholesale", write(DECK)).returncode == 0
    done = rates_import(db_url, "--plan", "wholesale",
                        write("prefix,description,rate_per_min\n44,United Kingdom,0.0130\n", "b.csv"))
    assert done.stdout.splitlines()[0] == (
        "rate plan wholesale: 0 added, 1 changed, 2 removed, 0 unchanged; in effect now")
    assert deck(engine, plan) == [("44", "United Kingdom", D("0.013"), D("0"), 60, 60)]
    history = [tuple(r) for r in rows(engine, "SELECT prefix, rate_per_min, how FROM rate_history "
                                              "WHERE rate_plan_id = :p ORDER BY prefix", p=plan)]
    assert history == [("33", D("0.015"), "removed"), ("44", D("0.012"), "changed"),
                       ("4420", D("0.01"), "removed")]


def test_a_future_deck_waits_until_due_then_replaces_the_old_one(db_url, engine, plan, write):
    assert rates_import(db_url, "--plan", "wholesale", write(DECK)).returncode == 0
    before = deck(engine, plan)
    later = "prefix,description,rate_per_min\n44,United Kingdom,0.0130\n4420,London,0.0100\n"
    done = rates_import(db_url, "--plan", "wholesale", write(later, "later.csv"),
                        "--effective", "2099-01-01 00:00")
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines()[0] == (
        "rate plan wholesale: 0 added, 2 changed, 1 removed, 0 unchanged; 0 in effect now, "
        "3 pending (deck at 2099-01-01 00:00:00 UTC)")
    assert deck(engine, plan) == before  # not due: authorize still reads the old deck
    assert run_ictcontact("rates", "apply-due", "--db", db_url).returncode == 0
    assert deck(engine, plan) == before
    # Time passes: the changes are due.
    execute(engine, "UPDATE rate_pending SET effective_at = UTC_TIMESTAMP() - INTERVAL 1 SECOND")
    assert run_ictcontact("rates", "apply-due", "--db", db_url).returncode == 0
    assert deck(engine, plan) == [("44", "United Kingdom", D("0.013"), D("0"), 60, 60),
                                  ("4420", "London", D("0.01"), D("0"), 60, 60)]
    assert scalar(engine, "SELECT COUNT(*) FROM rate_pending") == 0
    history = [tuple(r) for r in rows(engine, "SELECT prefix, rate_per_min, connection_fee, how "
                                              "FROM rate_history ORDER BY prefix")]
    assert history == [("33", D("0.015"), D("0"), "removed"), ("44", D("0.012"), D("0"), "changed"),
                       ("4420", D("0.01"), D("0.01"), "changed")]


def test_a_new_import_replaces_changes_scheduled_after_its_time(db_url, engine, plan, write):
    assert rates_import(db_url, "--plan", "wholesale", write(DECK)).returncode == 0
    later = "prefix,rate_per_min\n44,0.0130\n"
    assert rates_import(db_url, "--plan", "wholesale", write(later, "a.csv"),
                        "--effective", "2099-06-01").returncode == 0
    # An earlier future deck: diffed against today's deck, the June changes are dropped.
    done = rates_import(db_url, "--plan", "wholesale", write(DECK, "b.csv"), "--effective", "2099-01-01")
    assert done.stdout.splitlines()[0] == (
        "rate plan wholesale: 0 added, 0 changed, 0 removed, 3 unchanged; in effect at "
        "2099-01-01 00:00:00 UTC; replaces 3 pending changes scheduled from then on")
    assert scalar(engine, "SELECT COUNT(*) FROM rate_pending") == 0


def test_a_line_dated_later_waits_while_the_rest_takes_effect(db_url, engine, plan, write):
    body = ("prefix,rate_per_min,effective_date\n44,0.0120,\n33,0.0150,2099-01-01 08:30\n")
    done = rates_import(db_url, "--plan", "wholesale", write(body))
    assert done.returncode == 0, done.stderr
    assert [r[0] for r in deck(engine, plan)] == ["44"]
    assert [tuple(r) for r in rows(engine, "SELECT prefix, change_kind, effective_at FROM rate_pending")] == [
        ("33", "set", datetime(2099, 1, 1, 8, 30))]


def test_a_call_is_rated_by_the_rates_in_effect_when_it_was_authorized(db_url, engine, plan, write):
    assert rates_import(db_url, "--plan", "wholesale", write(DECK)).returncode == 0
    with engine.begin() as conn:
        client = builders.make_client(conn, "acme", balance=D("10"), plan=plan).id
    now = datetime(2026, 12, 1, 12, 0)
    limits = calls.Limits(max_call_seconds=3600, dial_template="PJSIP/{number}@carrier",
                          stale_grace_seconds=300)
    got = calls.authorize(engine, CallRequest("acme", "4420123456", "out"), now, limits)
    assert got.admission.allowed
    # The deck changes while the call is up: 4420 ten times dearer.
    dearer = DECK.replace("4420,London,0.0100,0.0100", "4420,London,0.1000,0.0100")
    assert rates_import(db_url, "--plan", "wholesale", write(dearer, "b.csv")).returncode == 0
    settled = calls.settle(engine, got.call_id, 60_000, "ANSWER", now + timedelta(minutes=1))
    # 30/6 increments, 60 s: fee 0.01 + 0.01/min * 1 min at the authorized rate
    assert settled.cost == D("0.0200")
    assert scalar(engine, "SELECT rate_per_min FROM calls WHERE id = :i", i=got.call_id) == D("0.01")
    assert client


def test_trunk_deck_goes_into_trunk_rates(db_url, engine, write):
    execute(engine, "INSERT INTO trunks (name, endpoint) VALUES ('carrier1', 'carrier1')")
    done = rates_import(db_url, "--trunk", "carrier1", write(DECK))
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines()[0].startswith("trunk carrier1: 3 added")
    assert scalar(engine, "SELECT COUNT(*) FROM trunk_rates") == 3
    assert scalar(engine, "SELECT COUNT(*) FROM rates WHERE prefix = '4420'") == 0


def test_an_unknown_plan_or_trunk_is_named(db_url, engine, plan, write):
    done = rates_import(db_url, "--trunk", "nope", write(DECK))
    assert done.returncode == 1
    assert done.stderr.strip() == "ictcontact rates import: no trunk named 'nope'"
    done = rates_import(db_url, "--plan", "nope", write(DECK))
    assert "no rate plan named 'nope' (there are: default, wholesale)" in done.stderr


def test_plan_and_trunk_are_one_or_the_other(db_url, write):
    done = rates_import(db_url, "--plan", "a", "--trunk", "b", write(DECK))
    assert done.returncode == 2 and "not allowed with argument" in done.stderr


def test_the_progress_bar_is_drawn_on_stderr_when_asked(db_url, plan, write):
    done = run_ictcontact("rates", "import", "--plan", "wholesale", write(DECK), "--db", db_url,
                          "--progress", "always")
    assert done.returncode == 0, done.stderr
    assert "reading [" in done.stderr and "writing [" in done.stderr
    assert "100%" in done.stderr
    assert done.stdout.startswith("rate plan wholesale: 3 added")  # stdout stays clean


def test_an_effective_time_that_is_not_one_is_refused(db_url, plan, write):
    done = rates_import(db_url, "--plan", "wholesale", write(DECK), "--effective", "next monday")
    assert done.returncode == 2
    assert done.stderr.strip() == ("ictcontact rates import: --effective 'next monday' is not a "
                                   "time: give YYYY-MM-DD or 'YYYY-MM-DD HH:MM' (UTC)")


def test_a_future_buy_deck_waits_and_its_history_is_kept_per_trunk(db_url, engine, write):
    execute(engine, "INSERT INTO trunks (name, endpoint) VALUES ('carrier1', 'carrier1')")
    assert rates_import(db_url, "--trunk", "carrier1", write(DECK)).returncode == 0
    cheaper = DECK.replace("44,United Kingdom,0.0120", "44,United Kingdom,0.0090")
    done = rates_import(db_url, "--trunk", "carrier1", write(cheaper, "b.csv"),
                        "--effective", "2099-01-01 00:00")
    assert done.returncode == 0, done.stderr
    assert scalar(engine, "SELECT rate_per_min FROM trunk_rates WHERE prefix = '44'") == D("0.012")
    execute(engine, "UPDATE trunk_rate_pending SET effective_at = UTC_TIMESTAMP() - INTERVAL 1 SECOND")
    assert run_ictcontact("rates", "apply-due", "--db", db_url).returncode == 0
    assert scalar(engine, "SELECT rate_per_min FROM trunk_rates WHERE prefix = '44'") == D("0.009")
    assert [tuple(r) for r in rows(engine, "SELECT prefix, rate_per_min, how FROM trunk_rate_history")] == [
        ("44", D("0.012"), "changed")]


def test_the_event_puts_a_due_deck_into_effect_by_itself(db_url, engine, plan, write):
    assert scalar(engine, "SELECT @@event_scheduler") == "ON"  # as setup-local.sh leaves it
    assert rates_import(db_url, "--plan", "wholesale", write(DECK)).returncode == 0
    later = DECK.replace("44,United Kingdom,0.0120", "44,United Kingdom,0.0130")
    assert rates_import(db_url, "--plan", "wholesale", write(later, "b.csv"),
                        "--effective", "2099-01-01").returncode == 0
    execute(engine, "UPDATE rate_pending SET effective_at = UTC_TIMESTAMP() - INTERVAL 1 SECOND")
    deadline = time.monotonic() + 30  # every 5 s; the machine may be loaded
    while scalar(engine, "SELECT COUNT(*) FROM rate_pending") and time.monotonic() < deadline:
        time.sleep(0.5)
    assert scalar(engine, "SELECT rate_per_min FROM rates WHERE prefix = '44' AND rate_plan_id = :p",
                  p=plan) == D("0.013")
    assert scalar(engine, "SELECT COUNT(*) FROM rate_pending") == 0


# -- the write path (JSON_TABLE batches) ------------------------------------------------

def test_descriptions_and_amounts_arrive_exactly_as_in_the_file(engine, plan, write, db_url):
    long_name = "Côte d'Ivoire – mobile 📱 " + "x" * 100
    long_name = long_name[:128]
    body = ("prefix,description,rate_per_min,connection_fee,initial_increment,subsequent_increment\n"
            f"225,\"{long_name}\",999999.999999,0.000001,1,1\n"
            "2250,\"Quote \"\" and, comma\",0.000001,0,3600,3600\n"
            "22507,,0,0,60,60\n")
    result = rates_import(db_url, "--plan", "wholesale", write(body))
    assert result.returncode == 0, result.stderr
    assert deck(engine, plan) == [
        ("225", long_name, D("999999.999999"), D("0.000001"), 1, 1),
        ("2250", 'Quote " and, comma', D("0.000001"), D("0.000000"), 3600, 3600),
        ("22507", None, D("0.000000"), D("0.000000"), 60, 60)]


def test_a_rounded_amount_sent_down_the_batch_path_is_refused_by_the_database(engine, plan):
    # the import checks decimals itself; should a rounded value ever reach the batch, the
    # table's trigger still refuses it and nothing of the batch is written
    from fastagi.billing.decks import DeckRow, Values
    from fastagi.store import rate_decks
    rows_ = [DeckRow(2, "44", Values("UK", D("0.01"), D("0"), 60, 60), None),
             DeckRow(3, "33", Values("FR", D("0.0000001"), D("0"), 60, 60), None)]
    with engine.connect() as conn:
        with conn.begin():
            target = rate_decks.lock_deck(conn, "plan", "wholesale")
        with pytest.raises(Exception, match="rates.rate_per_min takes at most 6 decimals"):
            with conn.begin():
                rate_decks.write_now(conn, target, rows_, [])
    assert deck(engine, plan) == []
