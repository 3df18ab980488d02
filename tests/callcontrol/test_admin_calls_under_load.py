"""Admins at work on one server while two real `serve` processes admit and settle a steady
stream of calls (issue 19: an admin's procedure call during full call load commits within a
second and never stalls admissions or settles).

Two admins call add_payment (top-ups and corrections), create_client and suspend_client /
activate_client (one suspends, the other lifts it) for the clients the calls are for, with
autocommit on as the tools do. Checked (tests/support/admin_load.py): no CALL waits a
second for a lock (its innodb_lock_wait_timeout is 1 s) and each commits within 5 s of wall
time (the machine's CPU is shared with the servers, the load and other suites; how many
took over 1 s is printed); no authorize or settle answers `unavailable`, every settle answers ALLOW with
its cost, settles never pause 2 s; no client holds more calls than its limit; the ledger
is exact (the balance `client_list` shows = the payments, which are the openings plus
exactly the CALLs that committed, minus the charges, which are exactly the costs told).
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
from tests.support.waiting import pause

CLIENTS = 12
LIMIT = 3
OPENING = Decimal("100")
WORKERS = 16
LOAD_S = 8


@pytest_twisted.ensureDeferred
async def test_admin_procedures_during_a_call_load_on_one_server(db_url, engine):
    add_rate(engine, default_plan_id(engine), "1555", "0.60", initial=1, subsequent=1)
    codes = [f"load{n}" for n in range(CLIENTS)]
    for code in codes:
        add_client(engine, code, balance=str(OPENING), channel_limit=LIMIT)
    servers = {name: Server(db_url, "--server-name", name, "--max-call-seconds", "60")
               for name in ("A", "B")}
    admin_engine = make_engine(db_url, pool_size=2)
    state = admin_state()
    admins = [Admin(n, 2, admin_engine, codes, state) for n in (1, 2)]
    load = CallLoad({name: server.port for name, server in servers.items()}, codes, LIMIT)
    try:
        running = gatherResults([ensureDeferred(load.worker(n)) for n in range(WORKERS)])
        await pause(1)                  # the load runs before the admins start
        started = reactor.seconds()
        at_work = gatherResults([deferToThread(admin.run) for admin in admins])
        await pause(LOAD_S)
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
        check_no_stall("admins on one server", admins, load, started, ended, logs)
        check_ledger(engine, codes, OPENING, admins, load)
    finally:
        admin_engine.dispose()
