"""How many agents of a queue are free now, asked of Asterisk with the AMI action
`QueueStatus Queue=<name>` (apps/app_queue.c manager_queues_status: one `QueueParams`
event with `Calls` waiting, one `QueueMember` per member, then `QueueStatusComplete`).

A member is free when app_queue would ring it now: its device is idle (`Status` 1,
AST_DEVICE_NOT_INUSE), it is not paused, not on a queue call (`InCall`) and not resting
after one (wrapup: `LastCall` + the queue's or its own wrapup time, + 1 s: `LastCall` is
the hang-up time cut down to whole seconds, so the call may have ended up to a second
later and the agent is owed that much rest still; app_queue's own check in whole seconds
could ring the agent that second early). Callers already
waiting in the queue take free agents first, so they are subtracted. Anything else
(ringing, in use, unavailable, unknown) is not free: the dialer dials too few rather than
leave an answered contact without an agent.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from datetime import datetime
from typing import Callable, Protocol

from twisted.internet.defer import Deferred

from fastagi.ami.client import AmiClient
from fastagi.ami.message import AmiMessage

log = logging.getLogger(__name__)

DEVICE_NOT_INUSE = 1   # include/asterisk/devicestate.h AST_DEVICE_NOT_INUSE
LAST_CALL_RESOLUTION = 1   # seconds: app_queue keeps lastcall as a time_t


@dataclass(frozen=True)
class QueueSnapshot:
    queue: str
    free_agents: int
    asked_at: datetime     # naive UTC, when the question was sent: later answers are not in it


class QueueWatch(Protocol):
    def snapshot(self, queue: str, wrapup_seconds: int, asked_at: datetime
                 ) -> Deferred[QueueSnapshot]: ...


def _int(event: AmiMessage, name: str) -> int:
    try:
        return int(event.get(name, "0") or 0)
    except ValueError:
        return 0


def free_agents(events: list[AmiMessage], queue: str, wrapup_seconds: int,
                now_epoch: float) -> int:
    """Free agents of `queue` in the events of one QueueStatus answer."""
    waiting, idle = 0, 0
    for event in events:
        if event.get("Queue") != queue:
            continue
        name = event.get("Event")
        if name == "QueueParams":
            waiting = _int(event, "Calls")
        elif name == "QueueMember":
            rest = max(wrapup_seconds, _int(event, "Wrapuptime"))
            last_call = _int(event, "LastCall")
            resting = last_call > 0 and now_epoch < last_call + LAST_CALL_RESOLUTION + rest
            if (_int(event, "Status") == DEVICE_NOT_INUSE and _int(event, "Paused") == 0
                    and _int(event, "InCall") == 0 and not resting):
                idle += 1
    return max(0, idle - waiting)


class AmiQueueWatch:
    """QueueStatus over an AmiClient; `epoch` is the wall clock LastCall is compared to
    (Asterisk's, so the dialer should run on a host with synchronised time)."""

    def __init__(self, client: AmiClient, timeout_seconds: float = 2.0,
                 epoch: Callable[[], float] = time.time) -> None:
        self.client = client
        self.timeout_seconds = timeout_seconds
        self.epoch = epoch

    def snapshot(self, queue: str, wrapup_seconds: int, asked_at: datetime
                 ) -> Deferred[QueueSnapshot]:
        asked = self.client.send("QueueStatus", [("Queue", queue)],
                                 timeout=self.timeout_seconds)
        return asked.addCallback(lambda result: QueueSnapshot(
            queue, free_agents(result.events, queue, wrapup_seconds, self.epoch()), asked_at))
