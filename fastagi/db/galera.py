"""MariaDB Galera Cluster: detect it on a connection and check the node settings the
product relies on (docs/galera.md).

Galera replicates row changes at COMMIT and certifies them against what other nodes
committed meanwhile; row locks (`SELECT ... FOR UPDATE`) and `GET_LOCK()` stay local to one
node. The product stays correct with every node taking writes because:

- every admission writes its client's row (fastagi.store.calls), so two admissions of one
  client on different nodes conflict at certification and one is retried
  (fastagi.db.retry: a certification failure is error 1213, like a deadlock);
- each session reads with `wsrep_sync_wait = 1` (set here on connect), so a settle sent
  to one node finds the call another node authorized a moment ago;
- `db upgrade` takes a lock row instead of GET_LOCK (fastagi.db.migrate).
"""

from __future__ import annotations

import logging

log = logging.getLogger(__name__)

# Bit 1 of wsrep_sync_wait: SELECT/SHOW/BEGIN wait until this node has applied everything
# the cluster committed before they started (read-your-writes across nodes).
SYNC_WAIT_READS = 1

_WSREP_ON = "SHOW VARIABLES LIKE 'wsrep_on'"


def _wsrep_on(cursor) -> bool:
    cursor.execute(_WSREP_ON)  # no error on a server without wsrep (MySQL): no row
    row = cursor.fetchone()
    return row is not None and str(row[1]).upper() == "ON"


def on_connect(dbapi_connection, _connection_record) -> None:
    """SQLAlchemy "connect" hook: on a Galera node, make this session's reads causal."""
    cursor = dbapi_connection.cursor()
    try:
        if _wsrep_on(cursor):
            cursor.execute(f"SET SESSION wsrep_sync_wait = {SYNC_WAIT_READS}")
    finally:
        cursor.close()


def is_galera(conn) -> bool:
    """True when the SQLAlchemy Connection `conn` is on a node with wsrep on."""
    row = conn.exec_driver_sql(_WSREP_ON).first()
    return row is not None and str(row[1]).upper() == "ON"


# variable -> (value the product needs, why)
REQUIRED = {
    "binlog_format": ("ROW", "Galera replicates row images; the ledger triggers must run "
                             "once, on the node that took the write"),
    "innodb_autoinc_lock_mode": ("2", "interleaved auto-increment: required by Galera for "
                                      "concurrent INSERTs (calls, payments)"),
    "wsrep_auto_increment_control": ("ON", "each node hands out its own auto-increment "
                                           "values, so call ids never collide"),
}


def node_problems(conn) -> list[str]:
    """What is wrong with this Galera node's settings for the product (empty: fine, or
    not a Galera node). One line each."""
    if not is_galera(conn):
        return []
    found = {str(name).lower(): str(value) for name, value in conn.exec_driver_sql(
        "SHOW GLOBAL VARIABLES WHERE Variable_name IN "
        "('binlog_format', 'innodb_autoinc_lock_mode', 'wsrep_auto_increment_control')")}
    problems = []
    for name, (needed, why) in REQUIRED.items():
        if found.get(name, "").upper() != needed:
            problems.append(f"Galera node has {name}={found.get(name, '?')}, needs "
                            f"{needed}: {why}")
    return problems
