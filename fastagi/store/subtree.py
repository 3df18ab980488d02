"""Resellers' subtrees as the store reads them: "blocked by a suspended ancestor".

A client is stopped when its own status is `suspended` or when any reseller above it
(below the root, `master`) is: schema/163 reads the same predicate in the realtime views,
the tenant scope and the login sync. Nothing is stored for it (the subtree's own
`clients.status` is never written), so reactivation restores exactly what people set.
"""

from __future__ import annotations


def suspended_above(client: str) -> str:
    """SQL: true when a reseller above `client` (an SQL expression naming a client id)
    is suspended. A handful of primary-key reads through client_tree (one per level)."""
    return ("EXISTS (SELECT 1 FROM client_tree t JOIN clients b ON b.id = t.ancestor_id"
            f" WHERE t.client_id = {client} AND t.depth > 0"
            " AND b.status = 'suspended' AND b.parent_id IS NOT NULL)")


def effective_status(alias: str) -> str:
    """SQL: the status a client acts with: `suspended` when it or a reseller above it is
    suspended, else its own status (`alias` is the clients table's alias)."""
    return (f"IF({alias}.status = 'active' AND {suspended_above(alias + '.id')},"
            f" 'suspended', {alias}.status)")
