"""Lock-outs on Galera survive the death of the node whose db_login_sync event runs.

`db upgrade` ran on node 1: its event is ENABLED there and SLAVESIDE_DISABLED on nodes 2
and 3. A `serve` on node 2 syncs the logins itself (--login-sync-seconds, default 1 s), so
when node 1 dies a suspension made on node 3 still locks the client's logins on every
surviving node. Before the kill the event (node 1) and the job (node 2) sync at once.
"""

from __future__ import annotations

import signal
import time

import pymysql
from sqlalchemy import text

from fastagi.db.engine import make_engine
from tests.serve_process import Server
from tests.tenant.helpers import Tenants, connect, drop_accounts_with_prefix, error_code, PASSWORD

ACCOUNT_LOCKED = 4151
BOUND_S = 2.0
ROUNDS = 4


def _locked_on(url: str, account: str, tenant_db: str) -> bool:
    try:
        connect(url, account, PASSWORD, tenant_db).close()
    except pymysql.MySQLError as exc:
        assert error_code(exc) == ACCOUNT_LOCKED, exc
        return True
    return False


def test_a_suspension_locks_logins_after_the_event_node_dies(galera_db, galera_cluster):
    first, second, third = galera_cluster.nodes
    for node in galera_cluster.nodes:
        conn = pymysql.connect(host="127.0.0.1", port=node.port, user="root")
        with conn.cursor() as cursor:
            cursor.execute("SET GLOBAL event_scheduler = ON")
        conn.close()
    first_engine = make_engine(first.url(galera_db), pool_size=2)
    third_engine = make_engine(third.url(galera_db), pool_size=2)
    prefix = f"g{galera_db.rsplit('_', 2)[-2]}x{galera_db.rsplit('_', 1)[-1]}z"
    world = Tenants.create(first_engine, first.url(galera_db), prefix)
    with first_engine.connect() as conn:
        states = dict(conn.execute(text(
            "SELECT 'n1', status FROM information_schema.EVENTS "
            "WHERE EVENT_SCHEMA = DATABASE() AND EVENT_NAME = 'db_login_sync'")).all())
    with third_engine.connect() as conn:
        states.update(conn.execute(text(
            "SELECT 'n3', status FROM information_schema.EVENTS "
            "WHERE EVENT_SCHEMA = DATABASE() AND EVENT_NAME = 'db_login_sync'")).all())
    assert states == {"n1": "ENABLED", "n3": "SLAVESIDE_DISABLED"}
    account = world.clients["a"].accounts["agent"]
    overlap: list[float] = []
    server = Server(second.url(galera_db))
    try:
        time.sleep(2)
        assert not _locked_on(third.url(galera_db), account, world.tenant_database)
        # The event (node 1) and the job (node 2) sync the same changes at once, GET_LOCK
        # being per node: each suspension and reactivation still applies, with no problem.
        other = world.clients["b"].accounts["admin"]
        for round_ in range(ROUNDS):
            for status, locked in (("suspended", True), ("active", False)):
                with third_engine.begin() as conn:
                    conn.execute(text("UPDATE clients SET status = :s WHERE id = :id"),
                                 {"s": status, "id": world.clients["b"].id})
                changed = time.monotonic()
                while _locked_on(third.url(galera_db), other, world.tenant_database) != locked:
                    assert time.monotonic() - changed < BOUND_S, f"round {round_}: not {status}"
                    time.sleep(0.05)
                overlap.append(time.monotonic() - changed)
        time.sleep(1.5)  # runs still in flight end
        with third_engine.connect() as conn:
            problems = conn.execute(text("SELECT account, problem FROM db_login_sync_problems")).all()
        assert problems == []
        first.stop(signal.SIGKILL)
        time.sleep(6)  # evicted from the cluster (evs.inactive_timeout 5 s)
        with third_engine.begin() as conn:
            conn.execute(text("UPDATE clients SET status = 'suspended' WHERE id = :id"),
                         {"id": world.clients["a"].id})
        suspended = time.monotonic()
        while not (_locked_on(third.url(galera_db), account, world.tenant_database)
                   and _locked_on(second.url(galera_db), account, world.tenant_database)):
            assert time.monotonic() - suspended < BOUND_S, "not locked within the bound"
            time.sleep(0.05)
        took = time.monotonic() - suspended
        assert not _locked_on(third.url(galera_db), world.clients["b"].accounts["agent"],
                              world.tenant_database)
    finally:
        server.process.send_signal(signal.SIGTERM)
        code, log = server.finish()
        with third_engine.begin() as conn:
            conn.execute(text("CALL drop_tenant_world()"))
        drop_accounts_with_prefix(third_engine, prefix)
        first_engine.dispose()
        third_engine.dispose()
    assert code == 0, log
    print(f"\ngalera: event and job together: changes applied in max {max(overlap):.2f} s "
          f"({len(overlap)} changes)")
    print(f"galera: login locked {took:.2f} s after the suspension (event node dead); "
          f"job failures logged: {log.count('periodic job sync_db_logins failed')}")
    print("\n".join(line for line in log.splitlines() if "failed" in line)[:2000])
