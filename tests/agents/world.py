"""Two tenants with the same agent numbers, extension numbers and queue names, for the
agent and queue tests. Each builder commits its own transaction."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import text
from sqlalchemy.engine import Engine

from tests import builders
from tests.support.sql import rows

PIN = {"acme": "1234", "beta": "9999"}   # agent 501's PIN in each client
PIN_502 = "4321"


@dataclass(frozen=True)
class Tenant:
    code: str
    id: int
    agents: dict[str, int]       # login number -> agent id
    extensions: dict[str, int]   # exten -> extension id
    queue_id: int                # the queue named `sales`


def build_tenant(engine: Engine, code: str) -> Tenant:
    with engine.begin() as conn:
        client = builders.make_client(conn, code)
        agents = {}
        for number, pin in (("501", PIN[code]), ("502", PIN_502)):
            agents[number] = int(conn.execute(text(
                "INSERT INTO agents (client_id, name, login_number, pin)"
                " VALUES (:c, :name, :number, :pin)"),
                {"c": client.id, "name": f"{code} agent {number}", "number": number,
                 "pin": pin}).lastrowid)
        extensions = {}
        for exten in ("1001", "1002"):
            extensions[exten] = int(conn.execute(text(
                "INSERT INTO extensions (client_id, exten, sip_password)"
                " VALUES (:c, :exten, 'secret')"), {"c": client.id, "exten": exten}).lastrowid)
        queue_id = int(conn.execute(text(
            "INSERT INTO queues (client_id, name, strategy, ring_timeout, wrapup_seconds)"
            " VALUES (:c, 'sales', 'leastrecent', 20, 10)"), {"c": client.id}).lastrowid)
        for number, agent_id in agents.items():
            conn.execute(text("INSERT INTO queue_members (client_id, queue_id, agent_id)"
                              " VALUES (:c, :q, :a)"),
                         {"c": client.id, "q": queue_id, "a": agent_id})
    return Tenant(code, client.id, agents, extensions, queue_id)


def open_sessions(engine: Engine) -> list[tuple]:
    """(client code, login number, endpoint) of every open session, ordered."""
    return rows(engine,
                "SELECT c.code, a.login_number, e.sip_username FROM agent_sessions s"
                " JOIN clients c ON c.id = s.client_id JOIN agents a ON a.id = s.agent_id"
                " JOIN extensions e ON e.id = s.extension_id WHERE s.ended_at IS NULL"
                " ORDER BY c.code, a.login_number")


def log_rows(engine: Engine) -> list[tuple]:
    """(client code, event, reason, login number) of agent_login_log, in order."""
    return rows(engine, "SELECT client_code, event, reason, login_number FROM agent_login_log"
                        " ORDER BY id")


def members(engine: Engine) -> list[tuple]:
    """What app_queue would read: (queue_name, interface) of ast_queue_members."""
    return rows(engine, "SELECT queue_name, interface FROM ast_queue_members"
                        " ORDER BY queue_name, interface")
