"""Parse and validate the AGI arguments of `authorize` and `settle`.

Pure functions: they raise BadRequest with a message naming the bad argument, so the
dialplan gets REJECT/bad-request and the log says what was wrong.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from fastagi.agi.errors import BadRequest
from fastagi.billing.admission import CallRequest
from fastagi.emergency import is_emergency

CLIENT_CODE = re.compile(r"[a-z0-9_-]{1,32}")
NUMBER = re.compile(r"\+?[0-9]{1,32}")
CALL_ID = re.compile(r"[0-9]{1,18}")
# settle's talk time: `ms=<whole milliseconds>` (ANSWEREDTIME_MS, the shipped dialplan), or
# the form of dialplans before it, bare whole seconds (ANSWEREDTIME, cut down by Asterisk).
TALK_MS = re.compile(r"ms=([0-9]{0,10})")
TALK_SECONDS = re.compile(r"[0-9]{1,10}")
# No call talks a month: a larger figure is garbage, not talk time to bill.
MAX_TALK_MS = 31 * 24 * 3600 * 1000
DIAL_STATUS = re.compile(r"[A-Z]{0,16}")
DIRECTIONS = ("out", "in")


def _show(value: str) -> str:
    return repr(value[:40] + ("..." if len(value) > 40 else ""))


def parse_authorize(args: tuple[str, ...], emergency_numbers: tuple[str, ...]) -> CallRequest:
    """authorize,<client code>,<dialled number>[,in|out]"""
    if len(args) < 2 or len(args) > 3:
        raise BadRequest(f"authorize takes <client>,<number>[,in|out], got {len(args)} arguments")
    code, number = args[0].strip(), args[1].strip()
    direction = args[2].strip().lower() if len(args) == 3 and args[2].strip() else "out"
    if not CLIENT_CODE.fullmatch(code):
        raise BadRequest(f"client code {_show(code)} is not a slug of [a-z0-9_-]")
    if not NUMBER.fullmatch(number):
        raise BadRequest(f"number {_show(number)} is not 1-32 digits")
    if direction not in DIRECTIONS:
        raise BadRequest(f"direction {_show(direction)} is not in or out")
    emergency = direction == "out" and is_emergency(number, emergency_numbers)
    return CallRequest(client_code=code, number=number, direction=direction,
                       emergency=emergency)


@dataclass(frozen=True)
class SettleRequest:
    call_id: int
    answered_ms: int | None       # None: not answered, or nothing reported
    dial_status: str
    whole_seconds: bool = False   # the talk time came as bare seconds (an old dialplan)


def parse_settle(args: tuple[str, ...]) -> SettleRequest:
    """settle,<call id>,ms=<answered ms or empty>,<dial status or empty>

    The talk time is `ms=` and whole milliseconds (`${ANSWEREDTIME_MS}`; `ms=` alone when
    Dial never bridged). Bare whole seconds (`${ANSWEREDTIME}`, what dialplans before
    ANSWEREDTIME_MS sent) are still taken as seconds, so an Asterisk whose installed
    dialplan is not yet updated keeps billing; nothing else is (no fractions, signs or
    units: what Asterisk never writes is refused, never guessed at)."""
    if not 1 <= len(args) <= 3:
        raise BadRequest(f"settle takes <call id>,ms=<answered ms>,<dial status>, "
                         f"got {len(args)} arguments")
    padded = tuple(a.strip() for a in args) + ("",) * (3 - len(args))
    call_id, talk, status = padded
    if not CALL_ID.fullmatch(call_id) or int(call_id) == 0:
        raise BadRequest(f"call id {_show(call_id)} is not a positive integer")
    answered_ms, whole_seconds = _talk_ms(talk)
    status = status.upper()
    if not DIAL_STATUS.fullmatch(status):
        raise BadRequest(f"dial status {_show(status)} is not a DIALSTATUS word")
    return SettleRequest(int(call_id), answered_ms, status, whole_seconds)


def _talk_ms(talk: str) -> tuple[int | None, bool]:
    """(milliseconds or None, given as bare seconds?) of settle's talk time argument."""
    if not talk:
        return None, False
    by_ms = TALK_MS.fullmatch(talk)
    if by_ms:
        if not by_ms.group(1):
            return None, False
        ms, whole_seconds = int(by_ms.group(1)), False
    elif TALK_SECONDS.fullmatch(talk):
        ms, whole_seconds = int(talk) * 1000, True
    else:
        raise BadRequest(f"talk time {_show(talk)} is not ms=<whole milliseconds> "
                         f"(or whole seconds from an old dialplan)")
    if ms > MAX_TALK_MS:
        raise BadRequest(f"talk time {_show(talk)} is more than 31 days: not a real call")
    return ms, whole_seconds
