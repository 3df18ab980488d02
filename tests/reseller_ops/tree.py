"""A small reseller tree for the suspension, move and view tests. Each builder commits
its own transaction.

    master
    ├── r1            reseller (mid level)
    │   ├── a1        client of r1, with agents, a phone, a queue, a campaign
    │   │   └── g1    client of a1 (a1 resells too), same
    │   └── a2        client of r1, suspended BY ITSELF when the test says so
    └── s1            sibling of r1 (client of master), same as a1

Each client but r1 has two agents, two extensions, a queue `sales` with both agents as
members, a running campaign with one contact, and (when asked) a database login.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal

from sqlalchemy import text
from sqlalchemy.engine import Engine

from tests import builders

PIN = "1234"


@dataclass
class Node:
    code: str
    id: int
    plan_id: int                       # the plan the client is on
    own_plan_id: int | None = None     # the plan it sells to its own clients
    agents: dict[str, int] = field(default_factory=dict)
    extensions: dict[str, int] = field(default_factory=dict)
    campaign_id: int | None = None


def add_node(engine: Engine, code: str, parent: Node | None, *, balance: str = "100",
             credit_limit: str = "0", end_calls_without_credit: int = 0,
             furnish: bool = True, sells: bool = False, running: bool = True) -> Node:
    """A client under `parent` (None: master), on the parent's own plan (the operator's
    default plan under master). `sells`: it gets a plan of its own to sell; `running`:
    its campaign is started (else left draft)."""
    with engine.begin() as conn:
        master = conn.execute(text("SELECT id FROM clients WHERE code = 'master'")).scalar_one()
        plan = parent.own_plan_id if parent is not None else builders.default_plan_id(conn)
        client_id = int(conn.execute(text(
            "INSERT INTO clients (code, name, parent_id, rate_plan_id, opening_balance,"
            " credit_limit, end_calls_without_credit, channel_limit)"
            " VALUES (:code, :name, :parent, :plan, :balance, :credit, :end, 20)"),
            {"code": code, "name": f"Client {code}", "parent": parent.id if parent else master,
             "plan": plan, "balance": Decimal(balance), "credit": Decimal(credit_limit),
             "end": end_calls_without_credit}).lastrowid)
        node = Node(code, client_id, plan)
        if sells:
            node.own_plan_id = int(conn.execute(text(
                "INSERT INTO rate_plans (name, owner_client_id) VALUES (:n, :o)"),
                {"n": f"plan of {code}", "o": client_id}).lastrowid)
            builders.add_rate(conn, node.own_plan_id, "44", Decimal("0.02"))
        if furnish:
            _furnish(conn, node, running)
    return node


def _furnish(conn, node: Node, running: bool) -> None:
    for number in ("501", "502"):
        node.agents[number] = int(conn.execute(text(
            "INSERT INTO agents (client_id, name, login_number, pin)"
            " VALUES (:c, :name, :number, :pin)"),
            {"c": node.id, "name": f"{node.code} agent {number}", "number": number,
             "pin": PIN}).lastrowid)
    for exten in ("1001", "1002"):
        node.extensions[exten] = int(conn.execute(text(
            "INSERT INTO extensions (client_id, exten, sip_password)"
            " VALUES (:c, :exten, 'secret-pw')"), {"c": node.id, "exten": exten}).lastrowid)
    queue = int(conn.execute(text(
        "INSERT INTO queues (client_id, name, strategy, ring_timeout, wrapup_seconds)"
        " VALUES (:c, 'sales', 'leastrecent', 20, 10)"), {"c": node.id}).lastrowid)
    for agent in node.agents.values():
        conn.execute(text("INSERT INTO queue_members (client_id, queue_id, agent_id)"
                          " VALUES (:c, :q, :a)"), {"c": node.id, "q": queue, "a": agent})
    node.campaign_id = builders.make_campaign(conn, node.id, f"spring {node.code}")
    conn.execute(text("INSERT INTO contacts (client_id, campaign_id, phone)"
                      " VALUES (:c, :k, '442071234567')"), {"c": node.id, "k": node.campaign_id})
    conn.execute(text("UPDATE campaigns SET status = :s, caller_id = '442070000000'"
                      " WHERE id = :k"),
                 {"k": node.campaign_id, "s": "running" if running else "draft"})


@dataclass
class Tree:
    r1: Node
    a1: Node
    g1: Node
    a2: Node
    s1: Node

    @property
    def leaves(self) -> dict[str, Node]:
        """The furnished clients, by code."""
        return {n.code: n for n in (self.a1, self.g1, self.a2, self.s1)}


def build_tree(engine: Engine, prefix: str = "") -> Tree:
    r1 = add_node(engine, prefix + "r1", None, furnish=False, sells=True)
    a1 = add_node(engine, prefix + "a1", r1, sells=True)
    g1 = add_node(engine, prefix + "g1", a1)
    a2 = add_node(engine, prefix + "a2", r1)
    s1 = add_node(engine, prefix + "s1", None)
    return Tree(r1, a1, g1, a2, s1)


def live_call(engine: Engine, node: Node, *, reserved: str = "0",
              charges: dict[int, str] | None = None, asterisk: str | None = None,
              uniqueid: str | None = None, at: str | None = None) -> int:
    """A live call of `node` written by hand, as an admission leaves it: the call row and,
    for each reseller id in `charges` (nearest first), its live charge holding that
    much of the reseller's credit."""
    charges = charges or {}
    with engine.begin() as conn:
        call_id = int(conn.execute(text(
            "INSERT INTO calls (client_id, client_code, number, state, reserved, reseller_levels,"
            " prefix, rate_per_min, connection_fee, initial_increment, subsequent_increment,"
            " max_seconds, uniqueid, channel, asterisk, authorized_at, expires_at)"
            " VALUES (:c, :code, '442071234567', 'live', :reserved, :levels, '44', 0.05, 0, 60, 60,"
            " 600, :uniqueid, :channel, :asterisk, COALESCE(:at, UTC_TIMESTAMP(3)),"
            " COALESCE(:at, UTC_TIMESTAMP(3)) + INTERVAL 1 HOUR)"),
            {"c": node.id, "code": node.code, "reserved": Decimal(reserved),
             "levels": len(charges), "uniqueid": uniqueid,
             "channel": f"PJSIP/{node.code}-1001-{uniqueid}" if uniqueid else None,
             "asterisk": asterisk, "at": at}).lastrowid)
        for depth, (reseller_id, held) in enumerate(charges.items(), start=1):
            conn.execute(text(
                "INSERT INTO call_charges (call_id, client_id, depth, prefix, rate_per_min,"
                " connection_fee, initial_increment, subsequent_increment, reserved, authorized_at)"
                " SELECT id, :r, :depth, '44', 0.02, 0, 60, 60, :held, authorized_at"
                " FROM calls WHERE id = :call"),
                {"r": reseller_id, "depth": depth, "held": Decimal(held), "call": call_id})
    return call_id


def settle_by_hand(engine: Engine, call_id: int, cost: str, seconds: int,
                   charges: dict[int, tuple[str, str]] | None = None,
                   at: str | None = None) -> None:
    """Bill a live call as settle does: its cost, and for each reseller id in `charges`
    its (cost, sell) at `seconds` billed, all at `at` (UTC; now when None)."""
    with engine.begin() as conn:
        conn.execute(text(
            "UPDATE calls SET state = 'settled', cost = :cost, billable_seconds = :s,"
            " answered_seconds = :s, answered_ms = :s * 1000, dial_status = 'ANSWER',"
            " reserved = 0, settled_at = COALESCE(:at, UTC_TIMESTAMP(3)) WHERE id = :call"),
            {"cost": Decimal(cost), "s": seconds, "at": at, "call": call_id})
        for reseller_id, (paid, sold) in (charges or {}).items():
            conn.execute(text(
                "UPDATE call_charges SET live = 0, reserved = 0, cost = :cost, sell = :sell,"
                " billable_seconds = :s, settled_at = COALESCE(:at, UTC_TIMESTAMP(3))"
                " WHERE call_id = :call AND client_id = :r"),
                {"cost": Decimal(paid), "sell": Decimal(sold), "s": seconds, "at": at,
                 "call": call_id, "r": reseller_id})
