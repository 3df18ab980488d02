"""Parse and validate the AGI arguments of `failover` (issue 22).

failover,<call id>,<DIALSTATUS>,<HANGUPCAUSE>,<trunk name>: the Dial on that trunk (the
call's ICT_TRUNK) ended with that status and cause. Pure: BadRequest names the bad one.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from fastagi.agi.errors import BadRequest
from fastagi.arguments.calls import CALL_ID, DIAL_STATUS, _show

CAUSE = re.compile(r"[0-9]{0,3}")
TRUNK_NAME = re.compile(r"[a-z0-9_-]{1,64}")


@dataclass(frozen=True)
class FailoverRequest:
    call_id: int
    dial_status: str
    cause: int | None          # None: Asterisk gave none (empty)
    trunk: str


def parse_failover(args: tuple[str, ...]) -> FailoverRequest:
    if len(args) != 4:
        raise BadRequest(f"failover takes <call id>,<dial status>,<hangup cause>,<trunk>, "
                         f"got {len(args)} arguments")
    call_id, status, cause, trunk = (a.strip() for a in args)
    if not CALL_ID.fullmatch(call_id) or int(call_id) == 0:
        raise BadRequest(f"call id {_show(call_id)} is not a positive integer")
    status = status.upper()
    if not status or not DIAL_STATUS.fullmatch(status):
        raise BadRequest(f"dial status {_show(status)} is not a DIALSTATUS word")
    if not CAUSE.fullmatch(cause) or (cause and int(cause) > 255):
        raise BadRequest(f"hangup cause {_show(cause)} is not a Q.850 cause (0-255)")
    if not TRUNK_NAME.fullmatch(trunk):
        raise BadRequest(f"trunk {_show(trunk)} is not a trunk name of [a-z0-9_-]")
    return FailoverRequest(int(call_id), status, int(cause) if cause else None, trunk)
