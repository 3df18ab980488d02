"""What the dialplan generator reads: every client with its extensions, DIDs and queue
DIDs (fastagi.dialplan.generate renders them; nothing here decides what they become)."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import text
from sqlalchemy.engine import Engine


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
