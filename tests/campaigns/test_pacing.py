"""The dialer's pure rules: every cap, the calling window in the contact's time zone,
retries."""

from __future__ import annotations

from datetime import datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest

from fastagi.campaigns.pacing import (BURST_SECONDS, CONNECTION_LOST, NOT_SENT, REQUEUE_SECONDS, Caps, Load,
                                      RetryRules,
                                      Window, after_attempt, next_window_opening, pace,
                                      window_open)

NOW = datetime(2026, 12, 3, 10, 0, 0)
IDLE = Load(campaign_in_flight=0, client_live_calls=0, client_in_flight=0,
            client_in_flight_live=0)


def caps(max_channels=None, channel_limit=100, keep_free=0, cps=1000.0,
         free_agents=None) -> Caps:
    return Caps(max_channels, channel_limit, keep_free, cps, free_agents)


@pytest.mark.parametrize("name, the_caps, load, wanted, calls, limited_by", [
    ("nothing wanted", caps(), IDLE, 0, 0, "wanted"),
    ("campaign cap", caps(max_channels=5), IDLE, 50, 5, "campaign-channels"),
    ("campaign cap reached", caps(max_channels=5), Load(5, 5, 5, 5), 50, 0, "campaign-channels"),
    ("campaign cap part used", caps(max_channels=5), Load(3, 3, 3, 1), 50, 2, "campaign-channels"),
    ("client channels", caps(channel_limit=8), IDLE, 50, 8, "client-channels"),
    ("client's other calls come first", caps(channel_limit=8), Load(0, 6, 0, 0), 50, 2,
     "client-channels"),
    ("kept free", caps(channel_limit=8, keep_free=2), Load(0, 3, 0, 0), 50, 3, "client-channels"),
    ("admitted attempts are counted once", caps(channel_limit=10), Load(4, 6, 4, 4), 50, 4,
     "client-channels"),
    ("attempts not yet admitted count too", caps(channel_limit=10), Load(4, 2, 4, 0), 50, 4,
     "client-channels"),
    ("other campaigns of the client", caps(channel_limit=10), Load(0, 3, 5, 3), 50, 5,
     "client-channels"),
    ("over the limit (limit lowered) is zero, not negative", caps(channel_limit=2),
     Load(0, 5, 0, 0), 50, 0, "client-channels"),
    ("calls per second from idle: one second's worth", caps(cps=20.0), IDLE, 50, 20,
     "calls-per-second"),
    ("progressive: one call per free agent", caps(free_agents=4), IDLE, 50, 4, "free-agents"),
    ("progressive: agents spoken for by calls ringing", caps(free_agents=4),
     Load(3, 0, 3, 0, campaign_ringing=3), 50, 1, "free-agents"),
    ("progressive: no free agent", caps(free_agents=0), IDLE, 50, 0, "free-agents"),
    ("progressive: more ringing than free is zero", caps(free_agents=1),
     Load(2, 0, 2, 0, campaign_ringing=2), 50, 0, "free-agents"),
    ("progressive: the channel cap still holds", caps(channel_limit=2, free_agents=9), IDLE,
     50, 2, "client-channels"),
])
def test_pace_caps(name, the_caps, load, wanted, calls, limited_by):
    decision = pace(NOW, the_caps, load, None, wanted)
    assert (decision.calls, decision.limited_by) == (calls, limited_by)


def test_calls_per_second_is_a_shared_token_bucket():
    c = caps(cps=10.0)
    first = pace(NOW, c, IDLE, None, 1000)
    assert first.calls == 10 and first.pacing_clock == NOW  # the idle second spent
    # 0.25 s later: 2 tokens (2.5 rounded down); the clock advances by exactly 0.2 s.
    later = pace(NOW + timedelta(seconds=0.25), c, IDLE, first.pacing_clock, 1000)
    assert later.calls == 2 and later.pacing_clock == NOW + timedelta(seconds=0.2)
    none_yet = pace(NOW + timedelta(seconds=0.25), c, IDLE, later.pacing_clock, 1000)
    assert none_yet.calls == 0 and none_yet.pacing_clock == later.pacing_clock


def test_over_any_long_run_the_rate_is_exact():
    c = caps(cps=7.0)
    clock, started, now = None, 0, NOW
    for _ in range(1000):          # 100 s in steps of 0.1 s
        now += timedelta(seconds=0.1)
        decision = pace(now, c, IDLE, clock, 1000)
        started, clock = started + decision.calls, decision.pacing_clock
    assert 700 <= started <= 700 + 7 * BURST_SECONDS


def test_a_slow_start_does_not_burst_more_than_one_second():
    decision = pace(NOW, caps(cps=5.0), IDLE, NOW - timedelta(hours=1), 1000)
    assert decision.calls == 5


WEEKDAYS = Window(frozenset(range(5)), time(9), time(20))
LONDON, NEW_YORK = ZoneInfo("Europe/London"), ZoneInfo("America/New_York")


@pytest.mark.parametrize("utc, zone, expected", [
    (datetime(2026, 12, 3, 9, 0), LONDON, True),       # Thursday 09:00 in London
    (datetime(2026, 12, 3, 8, 59, 59), LONDON, False),
    (datetime(2026, 12, 3, 19, 59, 59), LONDON, True),
    (datetime(2026, 12, 3, 20, 0), LONDON, False),     # the end is excluded
    (datetime(2026, 12, 3, 13, 0), NEW_YORK, False),   # 08:00 in New York
    (datetime(2026, 12, 3, 14, 0), NEW_YORK, True),
    (datetime(2026, 12, 5, 12, 0), LONDON, False),     # Saturday
    (datetime(2026, 7, 2, 8, 30), LONDON, True),       # summer time: 09:30 BST
])
def test_window_in_the_contacts_time_zone(utc, zone, expected):
    assert window_open(WEEKDAYS, zone, utc) is expected


def test_window_across_midnight_belongs_to_the_day_it_starts():
    night = Window(frozenset({4}), time(22), time(2))   # Friday 22:00 - Saturday 02:00
    utc = ZoneInfo("UTC")
    assert window_open(night, utc, datetime(2026, 12, 4, 23, 0))       # Friday 23:00
    assert window_open(night, utc, datetime(2026, 12, 5, 1, 59))       # Saturday 01:59
    assert not window_open(night, utc, datetime(2026, 12, 5, 22, 30))  # Saturday 22:30
    assert not window_open(night, utc, datetime(2026, 12, 4, 1, 0))    # Friday 01:00


@pytest.mark.parametrize("utc, zone, expected", [
    (datetime(2026, 12, 3, 7, 0), LONDON, datetime(2026, 12, 3, 9, 0)),
    (datetime(2026, 12, 3, 10, 0), LONDON, datetime(2026, 12, 3, 10, 0)),   # open now
    (datetime(2026, 12, 4, 21, 0), LONDON, datetime(2026, 12, 7, 9, 0)),    # Friday -> Monday
    (datetime(2026, 12, 3, 7, 0), NEW_YORK, datetime(2026, 12, 3, 14, 0)),
    (datetime(2026, 7, 2, 6, 0), LONDON, datetime(2026, 7, 2, 8, 0)),       # 09:00 BST
])
def test_next_window_opening(utc, zone, expected):
    assert next_window_opening(WEEKDAYS, zone, utc) == expected


def test_a_window_without_days_never_opens():
    assert next_window_opening(Window(frozenset(), time(9), time(17)), LONDON, NOW) is None


def test_window_from_a_database_row():
    window = Window.from_row("mon,wed", timedelta(hours=9, minutes=30), timedelta(hours=17))
    assert window == Window(frozenset({0, 2}), time(9, 30), time(17))


RULES = RetryRules(max_attempts=3, busy_seconds=60, no_answer_seconds=600, failed_seconds=300)


@pytest.mark.parametrize("outcome, reason, attempts, status, delay, counted, detail", [
    ("answered", "ANSWER", 1, "answered", None, 1, "ANSWER"),
    ("busy", "BUSY", 1, "retry", 60, 1, "BUSY"),
    ("no-answer", "NOANSWER", 2, "retry", 600, 2, "NOANSWER"),
    ("failed", "CONGESTION", 1, "retry", 300, 1, "CONGESTION"),
    ("busy", "BUSY", 3, "failed", None, 3, "busy after 3 attempts"),
    ("rejected", "no-credit", 1, "retry", REQUEUE_SECONDS, 0, "rejected: no-credit"),
    ("rejected", "channel-limit", 3, "retry", REQUEUE_SECONDS, 2, "rejected: channel-limit"),
    ("rejected", "suspended", 2, "retry", REQUEUE_SECONDS, 1, "rejected: suspended"),
    ("rejected", "no-rate", 1, "failed", None, 1, "rejected: no-rate"),
    ("rejected", "bad-request", 1, "failed", None, 1, "rejected: bad-request"),
    ("failed", NOT_SENT, 3, "retry", REQUEUE_SECONDS, 2, NOT_SENT),
    ("failed", CONNECTION_LOST, 3, "retry", REQUEUE_SECONDS, 2, CONNECTION_LOST),
    ("failed", "originate unanswered: Originate not answered within 30 s", 3, "failed", None,
     3, "failed after 3 attempts"),
    ("failed", "not originated: Permission denied", 3, "failed", None, 3,
     "failed after 3 attempts"),
])
def test_after_attempt(outcome, reason, attempts, status, delay, counted, detail):
    step = after_attempt(outcome, reason, attempts, RULES, NOW)
    assert step.status == status
    assert step.next_attempt_at == (None if delay is None else NOW + timedelta(seconds=delay))
    assert step.attempts == counted
    assert step.reason == detail
