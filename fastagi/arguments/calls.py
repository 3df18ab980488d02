"""Parse and validate the AGI arguments of `authorize` and `settle`.

Pure functions: they raise BadRequest with a message naming the bad argument, so the
dialplan gets REJECT/bad-request and the log says what was wrong.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass

from fastagi.agi.errors import BadRequest
from fastagi.billing.admission import CallRequest
from fastagi.emergency import is_emergency

CLIENT_CODE = re.compile(r"[a-z0-9_-]{1,32}")
NUMBER = re.compile(r"\+?[0-9]{1,32}")
CALL_ID = re.compile(r"[0-9]{1,18}")
SECONDS = re.compile(r"[0-9]{1,9}(\.[0-9]{1,6})?")
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
    answered_seconds: int | None
    dial_status: str


def parse_settle(args: tuple[str, ...]) -> SettleRequest:
    """settle,<call id>,<answered seconds or empty>,<dial status or empty>"""
    if not 1 <= len(args) <= 3:
        raise BadRequest(f"settle takes <call id>,<answered seconds>,<dial status>, "
                         f"got {len(args)} arguments")
    padded = tuple(a.strip() for a in args) + ("",) * (3 - len(args))
    call_id, seconds, status = padded
    if not CALL_ID.fullmatch(call_id) or int(call_id) == 0:
        raise BadRequest(f"call id {_show(call_id)} is not a positive integer")
    answered = None
    if seconds:
        if not SECONDS.fullmatch(seconds):
            raise BadRequest(f"answered seconds {_show(seconds)} is not a number of seconds")
        answered = math.ceil(float(seconds))  # a started second is a second talked
    status = status.upper()
    if not DIAL_STATUS.fullmatch(status):
        raise BadRequest(f"dial status {_show(status)} is not a DIALSTATUS word")
    return SettleRequest(int(call_id), answered, status)
