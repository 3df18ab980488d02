"""Admins at work on every node of a private 3-node Galera cluster while two real `serve`
processes (on nodes 1 and 2) admit and settle a steady stream of calls.

Issue 19 saw `CALL add_payment` during call load freeze the whole cluster for 50 s (the
procedure's code lookup scanned and share-locked every client row; the applier waited on
those locks, flow control stopped every node, every server answered `unavailable`). Here,
during the load, each node in turn takes `CALL add_payment` (top-ups and corrections),
`CALL create_client`, and suspensions and reactivations (suspended on one node, reactivated
on the next). Checked:
- no stall: the admin CALLs, made with autocommit on as the tools make them, never wait a
  second for a lock (innodb_lock_wait_timeout 1 s) and each commits within 5 s (wall time,
  connect to COMMIT: the 2-core machine runs the three nodes, the servers, the load and
  other test suites; how many took over 1 s is printed). A CALL whose write loses certification to a settle or admission
  of the same client on another node is re-run inside the procedure (schema 099); one
  that still answers 1213 has applied nothing (the ledger check below counts only CALLs
  that committed) and commits when repeated; at most 2% may need that; no settle answers
  ALLOW with a cost; no authorize answers `unavailable`; settles never stop (the longest
  pause between two settles while the load runs stays under 2 s);
- no over-admission: the calls the generator holds for a client never exceed its limit;
- the ledger is exact on all three nodes: for every client the balance the `client_list`
  view shows equals its payments minus its call charges, the payments are the opening
  ones plus exactly the admin CALLs that committed, the charges exactly the costs the
  fake Asterisk was told, and no call is left live.

Balances are read through `client_list` and the ledger sums, not `clients.balance`.
The admins and the load are tests/support/admin_load.py. Before schema 099 this test saw settles stop for 13 s, servers answer `unavailable` and an
admin's CALL hang 11 s (099's header says why), and 7% of the CALLs answer 1213.
"""

from __future__ import annotations

from decimal import Decimal

import pytest_twisted
from twisted.internet import reactor
from twisted.internet.defer import ensureDeferred, gatherResults
from twisted.internet.threads import deferToThread

from fastagi.db.engine import make_engine
from tests.callcontrol.tenants import add_client, add_rate, default_plan_id
from tests.serve_process import Server
from tests.support.admin_load import (Admin, CallLoad, admin_state, check_ledger,
                                      check_no_stall)
from tests.support.waiting import pause as sleep

from .conftest import scaled

CLIENTS = 16
LIMIT = 3
OPENING = Decimal("100")
WORKERS = scaled(18, 40)             # calls in flight
LOAD_S = scaled(15, 60)              # seconds of load with admins at work


@pytest_twisted.ensureDeferred
async def test_admin_procedures_on_every_node_during_a_call_load(galera_db, galera_cluster):
    nodes = galera_cluster.nodes
    engines = [make_engine(node.url(galera_db), pool_size=2) for node in nodes]
    add_rate(engines[0], default_plan_id(engines[0]), "1555", "0.60", initial=1, subsequent=1)
    codes = [f"load{n}" for n in range(CLIENTS)]
    for n, code in enumerate(codes):
        add_client(engines[n % 3], code, balance=str(OPENING), channel_limit=LIMIT)
    servers = {name: Server(node.url(galera_db), "--server-name", name, "--max-call-seconds",
                            "60", "--db-pool-size", "10")
               for name, node in (("A", nodes[0]), ("B", nodes[1]))}
    state = admin_state()
    admins = [Admin(n, 3, engine, codes, state) for n, engine in enumerate(engines, start=1)]
    load = CallLoad({name: server.port for name, server in servers.items()}, codes, LIMIT)
    try:
        running = gatherResults([ensureDeferred(load.worker(n)) for n in range(WORKERS)])
        await sleep(2)                  # the load runs before the admins start
        started = reactor.seconds()
        at_work = gatherResults([deferToThread(admin.run) for admin in admins])
        await sleep(LOAD_S)
        state["stopping"] = load.stopping = True
        ended = reactor.seconds()
        await at_work
        await running
    finally:
        state["stopping"] = load.stopping = True
        for server in servers.values():
            server.process.terminate()
        logs = "".join(server.finish()[1] for server in servers.values())
    try:
        check_no_stall("galera admins on 3 nodes", admins, load, started, ended, logs)
        # The ledger exact, and the same, on every node.
        snapshots = [check_ledger(engine, codes, OPENING, admins, load) for engine in engines]
        assert snapshots[0] == snapshots[1] == snapshots[2]
    finally:
        for engine in engines:
            engine.dispose()
