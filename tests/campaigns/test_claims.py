"""The dialer's transactions on the real database with an injected `now`: the calling
window, do-not-call, bad rows, credit, suspension, retries, lapsed claims, two dialers."""

from __future__ import annotations

import threading
from datetime import datetime, timedelta
from decimal import Decimal as D

import pytest
from sqlalchemy import text

from fastagi.billing.rating import Rate
from fastagi.store import dialer as store
from fastagi.db.engine import make_engine
from tests.campaigns.helpers import add_campaign, add_client_with_rate, add_contacts
from tests.support.sql import execute, rows

THURSDAY_7 = datetime(2026, 12, 3, 7, 0)      # 07:00 UTC = 07:00 London, 02:00 New York
LIMITS = store.DialerLimits(dialer="d1", claim_seconds=30, batch=50,
                            emergency_numbers=("911", "112", "999"))


@pytest.fixture
def acme(engine):
    return add_client_with_rate(engine, "acme", balance="10", channel_limit=10)


def running(engine, client: int, **columns) -> int:
    columns.setdefault("calls_per_second", 1000)
    columns.setdefault("keep_free_channels", 0)
    campaign = add_campaign(engine, client, **columns)
    execute(engine, "UPDATE campaigns SET status = 'running' WHERE id = :g", g=campaign)
    return campaign


def claim(engine, campaign: int, now: datetime, limits=LIMITS) -> store.ClaimResult:
    return store.claim(engine, campaign, now, limits)


def contact(engine, contact_id: int):
    return rows(engine, "SELECT status, next_attempt_at, attempts, last_reason, claimed_by "
                        "FROM contacts WHERE id = :id", id=contact_id)[0]


def test_calling_window_in_each_contacts_time_zone(engine, acme):
    campaign = running(engine, acme, time_zone="Europe/London")
    london, new_york = add_contacts(engine, acme, campaign, ["442071230001"]) + \
        add_contacts(engine, acme, campaign, ["12125550001"], time_zone="America/New_York")
    at_7 = claim(engine, campaign, THURSDAY_7)
    assert at_7.orders == ()
    # the window is closed for London contacts: only the one with its own zone was looked
    # at, and it waits for 09:00 New York
    assert contact(engine, new_york).next_attempt_at == datetime(2026, 12, 3, 14, 0)
    assert contact(engine, london).next_attempt_at is None
    at_9 = claim(engine, campaign, datetime(2026, 12, 3, 9, 0))
    assert [o.contact_id for o in at_9.orders] == [london]
    at_14 = claim(engine, campaign, datetime(2026, 12, 3, 14, 0))
    assert [o.contact_id for o in at_14.orders] == [new_york]


def test_do_not_call_added_after_import_is_never_dialled(engine, acme):
    campaign = running(engine, acme, window_days="mon,tue,wed,thu,fri,sat,sun",
                       window_start="00:00", window_end="23:59")
    ok, client_dnc, operator_dnc = add_contacts(engine, acme, campaign,
                                                ["442071230001", "442071230002", "+442071230003"])
    execute(engine, "INSERT INTO do_not_call (client_id, phone) VALUES (:c, '+442071230002')",
            c=acme)
    execute(engine, "INSERT INTO do_not_call (client_id, phone) VALUES (NULL, '442071230003')")
    result = claim(engine, campaign, THURSDAY_7)
    assert [o.contact_id for o in result.orders] == [ok]
    assert result.skipped == 2
    for skipped in (client_dnc, operator_dnc):
        assert tuple(contact(engine, skipped))[::3] == ("do-not-call", "on a do-not-call list")
    assert rows(engine, "SELECT COUNT(*) FROM campaign_attempts")[0][0] == 1


def test_another_clients_do_not_call_list_does_not_apply(engine, acme):
    other = add_client_with_rate(engine, "other")
    campaign = running(engine, acme, window_days="thu", window_start="00:00", window_end="23:59")
    add_contacts(engine, acme, campaign, ["442071230001"])
    execute(engine, "INSERT INTO do_not_call (client_id, phone) VALUES (:c, '442071230001')",
            c=other)
    assert len(claim(engine, campaign, THURSDAY_7).orders) == 1


@pytest.mark.parametrize("columns, note", [
    ({"recording": None}, "no recording and no destination_id"),
    ({"time_zone": "Mars/Olympus"}, "time_zone 'Mars/Olympus' is not an IANA time zone"),
])
def test_a_bad_campaign_row_is_skipped_with_a_note(engine, acme, columns, note):
    campaign = running(engine, acme, **columns)
    add_contacts(engine, acme, campaign, ["442071230001"])
    result = claim(engine, campaign, datetime(2026, 12, 3, 10, 0))
    assert (result.orders, result.limited_by) == ((), "bad campaign row")
    assert note in rows(engine, "SELECT dialer_note FROM campaign_runs WHERE campaign_id = :g",
                        g=campaign)[0][0]
    assert rows(engine, "SELECT dialer_note FROM campaign_progress")[0][0].startswith(note)


def test_a_destination_that_does_not_exist_is_refused_by_the_database(engine, acme):
    with pytest.raises(Exception, match="fk_campaigns_destination"):
        add_campaign(engine, acme, recording=None, destination_id=99)


def test_a_bad_caller_id_cannot_start(engine, acme):
    campaign = add_campaign(engine, acme, caller_id="Sales <100>")
    with pytest.raises(Exception, match="caller_id must be digits"):
        execute(engine, "UPDATE campaigns SET status = 'running' WHERE id = :g", g=campaign)


def test_bad_contacts_are_set_aside_with_a_reason(engine, acme):
    campaign = running(engine, acme, window_days="thu", window_start="00:00", window_end="23:59")
    emergency, = add_contacts(engine, acme, campaign, ["911"])
    zoneless, = add_contacts(engine, acme, campaign, ["442071230001"], time_zone="Nowhere/Land")
    good, = add_contacts(engine, acme, campaign, ["442071230002"])
    with pytest.raises(Exception, match="ck_contacts_phone"):
        add_contacts(engine, acme, campaign, ["44-20-x"])
    result = claim(engine, campaign, THURSDAY_7)
    assert [o.contact_id for o in result.orders] == [good]
    assert tuple(contact(engine, emergency))[::3] == (
        "invalid", "an emergency number: never dialled by a campaign")
    assert tuple(contact(engine, zoneless))[::3] == (
        "invalid", "time_zone 'Nowhere/Land' is not an IANA time zone")


def test_no_credit_no_claim(engine):
    broke = add_client_with_rate(engine, "broke", balance="0")
    campaign = running(engine, broke)
    add_contacts(engine, broke, campaign, ["442071230001"])
    result = claim(engine, campaign, datetime(2026, 12, 3, 10, 0))
    assert (result.orders, result.limited_by) == ((), "no credit")


def test_suspension_stops_claims_and_reactivation_resumes(engine, acme):
    campaign = running(engine, acme)
    add_contacts(engine, acme, campaign, ["442071230001", "442071230002"])
    now = datetime(2026, 12, 3, 10, 0)
    execute(engine, "UPDATE clients SET status = 'suspended' WHERE id = :c", c=acme)
    assert claim(engine, campaign, now).limited_by == "not running"
    execute(engine, "UPDATE clients SET status = 'active' WHERE id = :c", c=acme)
    assert len(claim(engine, campaign, now).orders) == 2


def test_pause_stops_claims(engine, acme):
    campaign = running(engine, acme)
    add_contacts(engine, acme, campaign, ["442071230001"])
    execute(engine, "UPDATE campaigns SET status = 'paused' WHERE id = :g", g=campaign)
    assert claim(engine, campaign, datetime(2026, 12, 3, 10, 0)).limited_by == "not running"


def _settle_attempt(engine, order: store.DialOrder, state: str, status: str, seconds=None,
                    reason=None) -> None:
    """What authorize + settle write for the attempt's call (the triggers do the rest)."""
    with engine.begin() as conn:
        call = conn.execute(text(
            "INSERT INTO calls (client_id, client_code, number, state, reason, uniqueid, "
            "authorized_at) VALUES ((SELECT id FROM clients WHERE code = :code), :code, "
            ":number, :state, :reason, :uniqueid, UTC_TIMESTAMP(3))"),
            {"code": order.client_code, "number": order.phone, "uniqueid": order.uniqueid,
             "state": "rejected" if state == "rejected" else "live", "reason": reason}).lastrowid
        if state != "rejected":
            conn.execute(text("UPDATE calls SET state = :state, dial_status = :status, "
                              "answered_seconds = :seconds, settled_at = UTC_TIMESTAMP(3) "
                              "WHERE id = :id"),
                         {"state": state, "status": status, "seconds": seconds, "id": call})


def test_retries_follow_the_rules(engine, acme):
    campaign = running(engine, acme, max_attempts=2, retry_busy_seconds=60,
                       window_days="thu", window_start="00:00", window_end="23:59")
    contact_id, = add_contacts(engine, acme, campaign, ["442071230001"])
    now = datetime(2026, 12, 3, 10, 0)
    first, = claim(engine, campaign, now).orders
    assert store.finish_attempts(engine, now, LIMITS) == 0   # still in flight
    _settle_attempt(engine, first, "settled", "BUSY")
    assert store.finish_attempts(engine, now, LIMITS) == 1
    assert tuple(contact(engine, contact_id)) == ("retry", now + timedelta(seconds=60), 1,
                                                  "BUSY", None)
    assert claim(engine, campaign, now + timedelta(seconds=59)).orders == ()
    second, = claim(engine, campaign, now + timedelta(seconds=60)).orders
    _settle_attempt(engine, second, "settled", "NOANSWER")
    store.finish_attempts(engine, now + timedelta(seconds=61), LIMITS)
    assert tuple(contact(engine, contact_id))[::2] == ("failed", 2, None)
    assert contact(engine, contact_id).last_reason == "no-answer after 2 attempts"
    attempts = rows(engine, "SELECT attempt_no, outcome, reason FROM campaign_attempts ORDER BY id")
    assert [tuple(a) for a in attempts] == [(1, "busy", "BUSY"), (2, "no-answer", "NOANSWER")]


def test_a_refusal_for_the_clients_own_limits_does_not_use_an_attempt(engine, acme):
    campaign = running(engine, acme, max_attempts=1)
    contact_id, = add_contacts(engine, acme, campaign, ["442071230001"])
    now = datetime(2026, 12, 3, 10, 0)
    order, = claim(engine, campaign, now).orders
    _settle_attempt(engine, order, "rejected", "", reason="no-credit")
    store.finish_attempts(engine, now, LIMITS)
    assert tuple(contact(engine, contact_id))[:4] == (
        "retry", now + timedelta(seconds=30), 0, "rejected: no-credit")


def test_a_dead_dialers_claims_lapse_and_another_dialer_finishes_them(engine, acme):
    campaign = running(engine, acme)
    answered, never_called, still_live = add_contacts(
        engine, acme, campaign, ["442071230001", "442071230002", "442071230003"])
    now = datetime(2026, 12, 3, 10, 0)
    orders = {o.contact_id: o for o in claim(engine, campaign, now).orders}
    # d1 dies here. One call was answered and settled; one never reached authorize;
    # one is still live.
    _settle_attempt(engine, orders[answered], "settled", "ANSWER", seconds=20)
    _settle_attempt(engine, orders[still_live], "live", "")
    d2 = store.DialerLimits("d2", 30, 50, ())
    assert store.finish_attempts(engine, now + timedelta(seconds=10), d2) == 0  # claims held
    assert store.finish_attempts(engine, now + timedelta(seconds=31), d2) == 1
    assert contact(engine, answered).status == "answered"
    assert store.close_orphans(engine, now + timedelta(seconds=100), orphan_seconds=120) == 0
    assert store.close_orphans(engine, now + timedelta(seconds=121), orphan_seconds=120) == 1
    store.finish_attempts(engine, now + timedelta(seconds=121), d2)
    assert tuple(contact(engine, never_called))[::3] == (
        "retry", "no call: the originated channel never reached authorize")
    # the live call's contact is never dialled again while its call goes on
    assert contact(engine, still_live).status == "dialing"
    later = claim(engine, campaign, now + timedelta(hours=1), d2)
    assert [o.contact_id for o in later.orders] == [never_called]


def test_caps_count_every_dialers_calls(engine, acme):
    campaign = running(engine, acme, max_channels=3)
    add_contacts(engine, acme, campaign, [f"4420712300{n:02d}" for n in range(10)])
    now = datetime(2026, 12, 3, 10, 0)
    assert len(claim(engine, campaign, now).orders) == 3
    d2 = store.DialerLimits("d2", 30, 50, ())
    result = claim(engine, campaign, now, d2)
    assert (result.orders, result.limited_by) == ((), "campaign-channels")


def test_two_dialers_claiming_at_once_never_take_a_contact_twice(db_url, engine, acme):
    campaign = running(engine, acme, max_channels=None)
    execute(engine, "UPDATE clients SET channel_limit = 1000 WHERE id = :c", c=acme)
    # credit for 400 calls of one 300 s slice at 0.06/min ($0.30 each): not the limit here
    execute(engine, "CALL add_payment('acme', 150, 'room for 400 calls')")
    add_contacts(engine, acme, campaign, [f"44207{n:07d}" for n in range(400)])
    claimed: dict[str, list[int]] = {"a": [], "b": []}
    errors: list[BaseException] = []
    # both dialers claim in the same step: without it, on a busy machine one thread
    # could claim all 400 before the other had made its engine (a CI run saw that)
    step_together = threading.Barrier(len(claimed), timeout=60)

    def dial(name: str) -> None:
        own = make_engine(db_url, pool_size=1)
        limits = store.DialerLimits(name, 30, 7, ())
        try:
            for step in range(200):
                step_together.wait()
                now = datetime(2026, 12, 3, 10, 0) + timedelta(seconds=step)
                claimed[name] += [o.contact_id for o in claim(own, campaign, now, limits).orders]
        except BaseException as exc:  # reported below: an assertion here would be lost
            step_together.abort()
            errors.append(exc)
        finally:
            own.dispose()

    threads = [threading.Thread(target=dial, args=(n,)) for n in claimed]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    every = claimed["a"] + claimed["b"]
    assert len(every) == 400 and len(set(every)) == 400
    assert claimed["a"] and claimed["b"]
    assert rows(engine, "SELECT COUNT(*), COUNT(DISTINCT contact_id) FROM campaign_attempts")[0] \
        == (400, 400)


def test_an_admin_pausing_by_id_never_deadlocks_with_claims(engine, acme):
    """An admin's `UPDATE campaigns ... WHERE id = N` (phpMyAdmin's form) while dialers
    claim: the admin waits for a claim to commit, it never gets error 1213."""
    from sqlalchemy.exc import OperationalError
    campaign = running(engine, acme, max_channels=None)
    add_contacts(engine, acme, campaign, [f"4420{n:08d}" for n in range(3000)])
    admin = make_engine(engine.url.render_as_string(hide_password=False), pool_size=1)
    stop = threading.Event()
    deadlocks: list[str] = []
    claims = [0]

    def dial() -> None:
        clock = datetime(2026, 12, 3, 12, 0)
        while not stop.is_set():
            clock += timedelta(milliseconds=20)
            try:
                claims[0] += len(store._claim(engine, campaign, clock, LIMITS, None).orders)
            except OperationalError as exc:   # the dialer retries; only the admin's count
                assert exc.orig.args[0] == 1213
            try:   # calls end (frees the caps); two dialers may collide here, not the admin
                execute(engine, "UPDATE campaign_attempts SET outcome = 'busy' "
                                "WHERE outcome IS NULL")
            except OperationalError:
                pass

    dialers = [threading.Thread(target=dial) for _ in range(2)]
    for thread in dialers:
        thread.start()
    try:
        for n in range(300):
            try:
                with admin.begin() as conn:
                    conn.execute(text("UPDATE campaigns SET status = :s WHERE id = :g"),
                                 {"s": "paused" if n % 2 else "running", "g": campaign})
            except OperationalError as exc:
                deadlocks.append(str(exc.orig))
    finally:
        stop.set()
        for thread in dialers:
            thread.join()
        admin.dispose()
    assert claims[0] > 0
    assert deadlocks == []


# --- the client's available credit admits the calls claimed (issue 21) ------------------

def modest(engine, balance: str) -> tuple[int, int]:
    client = add_client_with_rate(engine, "modest", balance=balance, rate="0.60",  # 60/60
                                  channel_limit=100)
    campaign = running(engine, client, max_channels=None)
    add_contacts(engine, client, campaign, [f"44207{n:07d}" for n in range(50)])
    return client, campaign


@pytest.mark.parametrize("balance, slice_seconds, expected", [
    # 300 s slices cost $3: 33 of them, then $1 pays one more first minute ($0.60)
    ("100", 300, 34),
    # slices off: the first call reserves what $100 pays (9,960 s); $0.40 is left
    ("100", 0, 1),
    # $1: one first minute, then $0.40 pays none
    ("1", 300, 1),
    ("0.59", 300, 0),
])
def test_claims_no_more_calls_than_the_credit_admits(engine, balance, slice_seconds, expected):
    client, campaign = modest(engine, balance)
    limits = store.DialerLimits("d1", 30, 50, (), credit_slice_seconds=slice_seconds)
    result = claim(engine, campaign, THURSDAY_7 + timedelta(hours=3), limits)
    assert len(result.orders) == expected
    assert result.limited_by == "no credit"
    # the contacts left wait untouched: no attempt used, nothing claimed
    assert rows(engine, "SELECT COUNT(*) FROM contacts WHERE campaign_id = :g AND status = 'new'"
                        " AND attempts = 0 AND claimed_by IS NULL", g=campaign)[0][0] == 50 - expected


def test_attempts_not_yet_authorized_hold_their_credit(engine):
    client, campaign = modest(engine, "10")        # three $3 slices and a $0.60 minute
    limits = store.DialerLimits("d1", 30, 2, (), credit_slice_seconds=300)
    at = THURSDAY_7 + timedelta(hours=3)
    first = claim(engine, campaign, at, limits)
    second = claim(engine, campaign, at + timedelta(seconds=1), limits)
    third = claim(engine, campaign, at + timedelta(seconds=2), limits)
    # none of them reached authorize: each still counts for what it will reserve
    assert [len(r.orders) for r in (first, second, third)] == [2, 2, 0]
    assert third.limited_by == "no credit"


def test_a_number_without_a_rate_takes_no_credit(engine):
    client = add_client_with_rate(engine, "modest", balance="1", rate="0.60")
    campaign = running(engine, client, max_channels=None)
    add_contacts(engine, client, campaign, ["3312345678", "442070000001", "442070000002"])
    result = claim(engine, campaign, THURSDAY_7 + timedelta(hours=3),
                   store.DialerLimits("d1", 30, 50, ()))
    # the number without a rate is refused no-rate by authorize whatever the credit
    assert [o.phone for o in result.orders] == ["3312345678", "442070000001"]


@pytest.mark.parametrize("rate, available, cap, taken", [
    (Rate("44", D("0.60"), D("0"), 60, 60), D("100"), 300, D("3.0000")),
    (Rate("44", D("0.60"), D("0"), 60, 60), D("1"), 300, D("0.6000")),
    (Rate("44", D("0.60"), D("0"), 60, 60), D("0.59"), 300, None),
    (Rate("44", D("0.60"), D("0.05"), 60, 60), D("0.64"), 300, None),   # the fee first
    (Rate("44", D("0.60"), D("0.05"), 60, 60), D("0.65"), 300, D("0.6500")),
    (Rate("44", D("0"), D("0"), 60, 60), D("0"), 300, D("0.0000")),     # free: always
    (None, D("0"), 300, D("0")),                                        # no rate: nothing
])
def test_credit_admits_is_what_authorize_reserves(rate, available, cap, taken):
    assert store.credit_admits(rate, available, cap) == taken


def test_ample_credit_claims_everything_due(engine):
    client, campaign = modest(engine, "1000")     # 50 slices of $3 fit easily
    limits = store.DialerLimits("d1", 30, 50, (), credit_slice_seconds=300)
    result = claim(engine, campaign, THURSDAY_7 + timedelta(hours=3), limits)
    assert len(result.orders) == 50 and result.limited_by != "no credit"
