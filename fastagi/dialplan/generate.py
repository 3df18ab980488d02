"""Generate the per-client dialplan contexts from the database.

Output (one file, e.g. /etc/asterisk/ictcontact-clients.conf):

- `[client-<code>]` for EVERY client, active or suspended (suspension is enforced at call
  time by the realtime views and by authorize, so suspending needs no regeneration):
  the emergency numbers first, as exact extensions straight to [ict-emergency] (no AGI);
  then each of the client's own extensions to [ict-extension]; then the agent feature
  codes *11 (login) and *12 (logout) to [ict-agent-login] / [ict-agent-logout] with the
  client's own code; then the patterns `_X.` and `_+X.` to [ict-outbound]. Asterisk
  always prefers an exact extension to a pattern, so an emergency number or an extension
  number can never fall into the outbound route (and *11 matches no `_X.` pattern).
- `[ict-from-carrier]`: one extension per DID (with and without a leading +) to
  [ict-inbound] with the client code and the target endpoint as literals, or to
  [ict-inbound-queue] with the client code and the client's queue `<code>-<name>`.

Every argument that names a tenant or an endpoint is a literal taken from the database;
the only caller input is ${EXTEN} as the dialled number of [ict-outbound], which checks it.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass

from sqlalchemy import text
from sqlalchemy.engine import Engine

from fastagi.dialplan import names

log = logging.getLogger(__name__)

CODE_RE = re.compile(r"^[a-z0-9_-]{1,32}$")
DIGITS_RE = re.compile(r"^[0-9]{2,20}$")
QUEUE_NAME_RE = re.compile(r"^[a-z0-9_]{1,32}$")
DEFAULT_EMERGENCY_NUMBERS = ("911", "112", "999")


class GenerateError(ValueError):
    """The database holds something that must not reach the dialplan."""


@dataclass(frozen=True)
class Extension:
    exten: str
    endpoint: str          # PJSIP endpoint id: <code>-<exten>


@dataclass(frozen=True)
class Did:
    did: str
    exten: str
    endpoint: str


@dataclass(frozen=True)
class QueueDid:
    did: str
    queue: str             # the app_queue realtime name: <code>-<queue name>


@dataclass(frozen=True)
class Client:
    code: str
    name: str
    status: str
    extensions: tuple[Extension, ...] = ()
    dids: tuple[Did, ...] = ()
    queue_dids: tuple[QueueDid, ...] = ()


def emergency_numbers_from(value: str | tuple[str, ...] | list[str] | None) -> tuple[str, ...]:
    """Parse '911,112,999' (or a sequence); digits only, at least one."""
    if value is None:
        return DEFAULT_EMERGENCY_NUMBERS
    items = value.split(",") if isinstance(value, str) else list(value)
    numbers = tuple(dict.fromkeys(n.strip() for n in items if n.strip()))
    bad = [n for n in numbers if not re.fullmatch(r"[0-9]{2,10}", n)]
    if bad or not numbers:
        raise GenerateError(f"emergency numbers must be 2-10 digits each, not {value!r}")
    return numbers


def load_clients(engine: Engine) -> list[Client]:
    """Every client with its extensions (any status) and DIDs, ordered by code."""
    with engine.connect() as conn:
        clients = conn.execute(text(
            "SELECT id, code, name, status FROM clients ORDER BY code")).all()
        extens = conn.execute(text(
            "SELECT client_id, exten, sip_username FROM extensions "
            "ORDER BY client_id, exten")).all()
        dids = conn.execute(text(
            "SELECT d.client_id, d.did, d.exten, e.sip_username FROM dids d "
            "JOIN extensions e ON e.client_id = d.client_id AND e.exten = d.exten "
            "ORDER BY d.did")).all()
        queue_dids = conn.execute(text(
            "SELECT d.client_id, d.did, q.asterisk_name FROM dids d "
            "JOIN queues q ON q.id = d.queue_id AND q.client_id = d.client_id "
            "ORDER BY d.did")).all()
    by_client_queue: dict[int, list[QueueDid]] = {}
    for client_id, did, queue in queue_dids:
        by_client_queue.setdefault(client_id, []).append(QueueDid(did, queue))
    by_client_ext: dict[int, list[Extension]] = {}
    for client_id, exten, endpoint in extens:
        by_client_ext.setdefault(client_id, []).append(Extension(exten, endpoint))
    by_client_did: dict[int, list[Did]] = {}
    for client_id, did, exten, endpoint in dids:
        by_client_did.setdefault(client_id, []).append(Did(did, exten, endpoint))
    return [Client(code, name, status, tuple(by_client_ext.get(cid, ())),
                   tuple(by_client_did.get(cid, ())), tuple(by_client_queue.get(cid, ())))
            for cid, code, name, status in clients]


def _comment_safe(value: str) -> str:
    """Printable ASCII on one line: a client name must never end the comment it is in."""
    return "".join(ch if " " <= ch <= "~" else "?" for ch in value)[:80]


def _check_client(client: Client) -> None:
    if not CODE_RE.match(client.code):
        raise GenerateError(f"client code {client.code!r} is not a slug [a-z0-9_-]")
    for item in (*client.extensions, *client.dids):
        if not DIGITS_RE.match(item.exten):
            raise GenerateError(f"client {client.code}: extension {item.exten!r} is not digits")
        # The endpoint must be this client's: '<code>-<digits>' is unambiguous because the
        # part after the last '-' is all digits.
        if item.endpoint != f"{client.code}-{item.exten}":
            raise GenerateError(f"client {client.code}: endpoint {item.endpoint!r} does not "
                                f"belong to it")
    for did in (*client.dids, *client.queue_dids):
        if not re.fullmatch(r"[0-9]{3,20}", did.did):
            raise GenerateError(f"client {client.code}: DID {did.did!r} is not digits")
    for did in client.queue_dids:
        # '<code>-<name>' is unambiguous: a queue name has no '-' (schema/040).
        prefix, _, rest = did.queue.rpartition("-")
        if prefix != client.code or not QUEUE_NAME_RE.match(rest):
            raise GenerateError(f"client {client.code}: queue {did.queue!r} does not "
                                f"belong to it")


def render(clients: list[Client], emergency: tuple[str, ...] = DEFAULT_EMERGENCY_NUMBERS) -> str:
    """The generated file's text; the same input always gives the same bytes."""
    emergency = emergency_numbers_from(emergency)
    clients = sorted(clients, key=lambda c: c.code)
    seen_dids: dict[str, str] = {}
    for client in clients:
        _check_client(client)
        for did in (*client.dids, *client.queue_dids):
            if did.did in seen_dids:
                raise GenerateError(f"DID {did.did} belongs to {seen_dids[did.did]} and "
                                    f"{client.code}")
            seen_dids[did.did] = client.code
    out = [
        "; Generated by `ictcontact dialplan generate` from the ICTContact database.",
        "; Do not edit: `ictcontact dialplan sync` rewrites this file when clients,",
        "; extensions or DIDs change. Shared routines: ictcontact.conf.",
        f"; {len(clients)} clients; emergency numbers: {', '.join(emergency)}",
    ]
    for client in clients:
        out += ["", f"[{names.client_context(client.code)}]",
                f"; {_comment_safe(client.name)} ({client.status} when generated)"]
        for number in emergency:
            out.append(f"exten => {number},1,Gosub({names.EMERGENCY},s,1({client.code},{number}))")
            out.append(" same => n,Hangup()")
        for ext in client.extensions:
            if ext.exten in emergency:
                log.warning("client %s: extension %s is an emergency number; calls to it "
                            "go to the emergency trunk", client.code, ext.exten)
                out.append(f"; extension {ext.exten} skipped: it is an emergency number")
                continue
            out.append(f"exten => {ext.exten},1,Gosub({names.INTERNAL},s,1("
                       f"{client.code},{ext.endpoint}))")
            out.append(" same => n,Hangup()")
        for code, routine in ((names.AGENT_LOGIN_CODE, names.AGENT_LOGIN),
                              (names.AGENT_LOGOUT_CODE, names.AGENT_LOGOUT)):
            out.append(f"exten => {code},1,Gosub({routine},s,1({client.code}))")
            out.append(" same => n,Hangup()")
        for pattern in ("_X.", "_+X."):
            out.append(f"exten => {pattern},1,Gosub({names.OUTBOUND},s,1("
                       f"{client.code},${{EXTEN}}))")
            out.append(" same => n,Hangup()")
    out += ["", f"[{names.FROM_CARRIER}]",
            "; Calls from the carrier trunk: each DID rings its client's extension or queue.",
            "; Unknown numbers match nothing and are refused by chan_pjsip (404)."]
    for client in clients:
        lines = [(d.did, f"{names.INBOUND},s,1({client.code},{d.did},{d.endpoint})")
                 for d in client.dids]
        lines += [(d.did, f"{names.INBOUND_QUEUE},s,1({client.code},{d.did},{d.queue})")
                  for d in client.queue_dids]
        for did, target in sorted(lines):
            for shown in (did, "+" + did):
                out.append(f"exten => {shown},1,Gosub({target})")
                out.append(" same => n,Hangup()")
    return "\n".join(out) + "\n"


def generate(engine: Engine, emergency: tuple[str, ...] = DEFAULT_EMERGENCY_NUMBERS) -> str:
    return render(load_clients(engine), emergency)
