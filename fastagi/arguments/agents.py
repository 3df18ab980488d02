"""Parse and validate the AGI arguments of `agent_login` and `agent_logout`.

`<client code>,<endpoint>`: the code is a literal of the operator's generated context; the
endpoint is the calling PJSIP endpoint (CHANNEL(endpoint), `<code>-<exten>`), which
Asterisk knows from the SIP authentication, never from caller ID or dialled digits.
"""

from __future__ import annotations

import re

from fastagi.agents.rules import Request
from fastagi.agi.errors import BadRequest
from fastagi.arguments.calls import CLIENT_CODE

ENDPOINT = re.compile(r"[a-z0-9_-]{1,32}-[0-9]{2,20}")


def parse_agent_request(script: str, args: tuple[str, ...]) -> Request:
    """<client code>,<calling PJSIP endpoint>"""
    if len(args) != 2:
        raise BadRequest(f"{script} takes <client>,<endpoint>, got {len(args)} arguments")
    code, endpoint = args[0].strip(), args[1].strip()
    if not CLIENT_CODE.fullmatch(code):
        raise BadRequest(f"client code {code[:40]!r} is not a slug of [a-z0-9_-]")
    if not ENDPOINT.fullmatch(endpoint):
        raise BadRequest(f"endpoint {endpoint[:40]!r} is not a PJSIP extension "
                         "<code>-<digits> (is the caller a PJSIP phone?)")
    return Request(client_code=code, endpoint=endpoint)
