"""Pacing, calling window and retry rules of the dialer: pure functions of `now`.

Every decision here is a value the dialer then writes in one transaction; nothing reads
the clock or the database. Datetimes are naive UTC (what the DATETIME columns hold),
except where a function says it works in a contact's local time.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime, time, timedelta, timezone
from zoneinfo import ZoneInfo

from fastagi import reasons

DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")   # datetime.weekday() order
BURST_SECONDS = 1.0  # pacing never catches up on more than this much idle time


# --- how many calls may start now ------------------------------------------------------

@dataclass(frozen=True)
class Load:
    """What is in flight now, as the claim transaction counted it under its locks."""

    campaign_in_flight: int    # this campaign's attempts without an outcome
    client_live_calls: int     # the client's live calls (campaign calls included)
    client_in_flight: int      # the client's campaign attempts without an outcome
    client_in_flight_live: int  # ... of which authorize already made a live call
    campaign_ringing: int = 0  # progressive: attempts still needing a free agent


@dataclass(frozen=True)
class Caps:
    max_channels: int | None   # the campaign's own cap (None: none)
    channel_limit: int         # the client's
    keep_free_channels: int    # left for the client's other calls
    calls_per_second: float
    free_agents: int | None = None  # progressive: free agents of the queue (None: broadcast)


@dataclass(frozen=True)
class Pace:
    calls: int                      # how many calls may start now
    pacing_clock: datetime | None   # the new campaign_runs.pacing_clock after starting them
    limited_by: str                 # which cap decided (for the log and tests)


def client_channels_in_use(load: Load) -> int:
    """Live calls plus campaign attempts not yet admitted (each will take a channel);
    an attempt already admitted is one of the live calls, counted once."""
    return load.client_live_calls + load.client_in_flight - load.client_in_flight_live


def pace(now: datetime, caps: Caps, load: Load, pacing_clock: datetime | None,
         wanted: int) -> Pace:
    """How many of `wanted` calls may start at `now`: the campaign's cap, the client's
    free channels minus those kept free, calls per second as a token bucket whose
    clock (`pacing_clock`, kept in campaign_runs so every dialer shares it) advances by
    1/cps per call started and never lags `now` by more than BURST_SECONDS, and for a
    progressive campaign one call per free agent not already spoken for by a call
    ringing (or answered after the agents were counted)."""
    limits: dict[str, float] = {"wanted": wanted}
    if caps.max_channels is not None:
        limits["campaign-channels"] = caps.max_channels - load.campaign_in_flight
    if caps.free_agents is not None:
        limits["free-agents"] = caps.free_agents - load.campaign_ringing
    limits["client-channels"] = (caps.channel_limit - caps.keep_free_channels
                                 - client_channels_in_use(load))
    step = 1.0 / caps.calls_per_second
    start = now - timedelta(seconds=BURST_SECONDS)
    clock = pacing_clock if pacing_clock is not None and pacing_clock > start else start
    # A token is spent per call; the bucket holds what accrued between `clock` and `now`.
    limits["calls-per-second"] = math.floor((now - clock).total_seconds() / step + 1e-9)
    limited_by = min(limits, key=lambda k: limits[k])
    calls = max(0, int(limits[limited_by]))
    if calls == 0:
        return Pace(0, pacing_clock, limited_by)
    return Pace(calls, clock + timedelta(seconds=step * calls), limited_by)


# --- the calling window, in the contact's time zone -------------------------------------

@dataclass(frozen=True)
class Window:
    days: frozenset[int]   # weekday() numbers on which a window starts
    start: time
    end: time              # earlier than start: the window ends the next day

    @classmethod
    def from_row(cls, days: str | set[str], start: time | timedelta,
                 end: time | timedelta) -> "Window":
        names = days.split(",") if isinstance(days, str) else days
        return cls(frozenset(DAYS.index(d) for d in names if d), _as_time(start), _as_time(end))


def _as_time(value: time | timedelta) -> time:
    """MariaDB TIME columns come back as timedelta."""
    if isinstance(value, timedelta):
        seconds = int(value.total_seconds()) % 86400
        return time(seconds // 3600, seconds // 60 % 60, seconds % 60)
    return value


def _local(now: datetime, zone: ZoneInfo) -> datetime:
    return now.replace(tzinfo=timezone.utc).astimezone(zone)


def window_open(window: Window, zone: ZoneInfo, now: datetime) -> bool:
    """Is `now` (UTC) inside the window in `zone`'s local time?"""
    local = _local(now, zone)
    clock, day = local.time().replace(tzinfo=None), local.weekday()
    if window.start < window.end:
        return day in window.days and window.start <= clock < window.end
    # Crossing midnight: the evening part belongs to today, the morning part to yesterday.
    return ((day in window.days and clock >= window.start)
            or ((day - 1) % 7 in window.days and clock < window.end))


def next_window_opening(window: Window, zone: ZoneInfo, now: datetime) -> datetime | None:
    """The first time at or after `now` (UTC) the window is open in `zone`, as naive UTC;
    None if it never opens (no days). A start time that a DST change skips opens at the
    first valid instant after it."""
    if not window.days:
        return None
    if window_open(window, zone, now):
        return now
    local = _local(now, zone)
    for offset in range(0, 8):
        day = local.date() + timedelta(days=offset)
        if day.weekday() not in window.days:
            continue
        opening = datetime.combine(day, window.start, tzinfo=zone)
        # Normalise through UTC: a nonexistent local time (DST gap) moves forward.
        opening_utc = opening.astimezone(timezone.utc).replace(tzinfo=None)
        if opening_utc >= now:
            return opening_utc
    return None


# --- what an attempt's outcome means for the contact ------------------------------------

@dataclass(frozen=True)
class RetryRules:
    max_attempts: int
    busy_seconds: int
    no_answer_seconds: int
    failed_seconds: int


@dataclass(frozen=True)
class ContactStep:
    status: str                       # the contact's next status
    next_attempt_at: datetime | None  # for status 'retry'
    attempts: int                     # the contact's attempts count after this one
    reason: str | None


# Refusals caused by the client's own state, not the number: the attempt does not count
# and the contact is tried again soon (the dialer itself stops while they last).
REQUEUE_REASONS = {reasons.NO_CREDIT, reasons.CHANNEL_LIMIT, reasons.SUSPENDED,
                   reasons.UNAVAILABLE}
REQUEUE_SECONDS = 30
# Any other refusal (no-rate, bad-request, unknown-client) no retry can change.
# An attempt the dialer never got to Asterisk (no AMI connection) is the dialer's own
# failure, not the number's: requeued like a refusal for the client's limits.
NOT_SENT = "not originated: no AMI connection"
# The AMI connection broke before Asterisk answered the Originate, and authorize never saw
# the call within the grace: every campaign call passes authorize before it rings anyone,
# so the contact was not dialled. Requeued like NOT_SENT.
CONNECTION_LOST = "not dialled: AMI connection lost before Asterisk answered"
NOT_DIALLED = {NOT_SENT, CONNECTION_LOST}


def after_attempt(outcome: str, reason: str | None, attempts: int, rules: RetryRules,
                  now: datetime, requeue_seconds: float = REQUEUE_SECONDS) -> ContactStep:
    """The contact's next state after an attempt ended with `outcome` (attempts already
    counts this attempt). A refusal for the client's own limits comes back after
    `requeue_seconds` without using an attempt."""
    if outcome == "answered":
        return ContactStep("answered", None, attempts, reason)
    if outcome == "failed" and reason in NOT_DIALLED:
        return ContactStep("retry", now + timedelta(seconds=requeue_seconds), attempts - 1,
                           reason)
    if outcome == "rejected":
        if reason in REQUEUE_REASONS:
            return ContactStep("retry", now + timedelta(seconds=requeue_seconds),
                               attempts - 1, f"rejected: {reason}")
        return ContactStep("failed", None, attempts, f"rejected: {reason}")
    delay = {"busy": rules.busy_seconds, "no-answer": rules.no_answer_seconds}.get(
        outcome, rules.failed_seconds)
    if attempts >= rules.max_attempts:
        return ContactStep("failed", None, attempts, f"{outcome} after {attempts} attempts")
    return ContactStep("retry", now + timedelta(seconds=delay), attempts, reason)
