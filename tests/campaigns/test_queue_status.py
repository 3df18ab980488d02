"""Counting a queue's free agents from a QueueStatus answer (app_queue.c's fields)."""

from __future__ import annotations

import pytest

from fastagi.ami.message import AmiMessage
from fastagi.campaigns.queue_status import free_agents

NOW = 1_800_000_000.0


def params(queue: str = "acme-sales", calls: int = 0) -> AmiMessage:
    return AmiMessage([("Event", "QueueParams"), ("Queue", queue), ("Calls", str(calls))])


def member(queue: str = "acme-sales", status: int = 1, paused: int = 0, in_call: int = 0,
           last_call: float = 0, wrapup: int = 0) -> AmiMessage:
    return AmiMessage([("Event", "QueueMember"), ("Queue", queue), ("Name", "a"),
                       ("LastCall", str(int(last_call))), ("InCall", str(in_call)),
                       ("Status", str(status)), ("Paused", str(paused)),
                       ("Wrapuptime", str(wrapup))])


@pytest.mark.parametrize("name, events, wrapup, free", [
    ("idle members", [params(), member(), member()], 0, 2),
    ("in use, ringing, unavailable, unknown are not free",
     [params(), member(status=2), member(status=6), member(status=5), member(status=0),
      member()], 0, 1),
    ("paused", [params(), member(paused=1), member()], 0, 1),
    ("on a queue call", [params(), member(in_call=1)], 0, 0),
    ("resting after a call (the queue's wrapup)", [params(), member(last_call=NOW - 5)], 10, 0),
    ("rest over", [params(), member(last_call=NOW - 15)], 10, 1),
    # LastCall is whole seconds: a call that ended at LastCall + 0.9 s is owed its rest
    # until LastCall + 0.9 + wrapup, so the agent counts as resting until LastCall + 1 + wrapup
    ("a second early is still resting", [params(), member(last_call=NOW - 10)], 10, 0),
    ("LastCall + wrapup + 1 s: free", [params(), member(last_call=NOW - 11)], 10, 1),
    ("the member's own wrapup when longer", [params(), member(last_call=NOW - 15, wrapup=30)],
     10, 0),
    ("callers waiting take agents first", [params(calls=1), member(), member()], 0, 1),
    ("more waiting than free is zero", [params(calls=5), member()], 0, 0),
    ("other queues do not count", [params("acme-other"), member("acme-other"), params()], 0, 0),
    ("unreadable numbers are not free",
     [params(), AmiMessage([("Event", "QueueMember"), ("Queue", "acme-sales"),
                            ("Status", "x")])], 0, 0),
])
def test_free_agents(name, events, wrapup, free):
    assert free_agents(events, "acme-sales", wrapup, NOW) == free


def test_rest_ends_one_second_after_last_call_plus_wrapup():
    events = [params(), member(last_call=NOW - 10)]
    assert free_agents(events, "acme-sales", 10, NOW + 0.999) == 0
    assert free_agents(events, "acme-sales", 10, NOW + 1) == 1
