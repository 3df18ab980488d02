"""A database at schema 083 with data upgrades forward with every balance, ledger row and
call intact (files 090-092 alter clients, payments and campaigns; 093 moves each client's
balance and admission counter to client_accounts), and every campaign's dialer state moves
to campaign_runs exactly (095)."""

from __future__ import annotations

import shutil
from collections import Counter
from decimal import Decimal
from pathlib import Path

from sqlalchemy import bindparam, text

from fastagi.db import migrate
from fastagi.db.engine import make_engine
from tests.support.database import connect_server, drop_database, fresh_database_name, url_for
from tests.support.fingerprint import differences, fingerprint

SCHEMA = migrate.schema_dir()


TABLES = (("clients", "id"), ("payments", "id"), ("calls", "id"), ("campaigns", "id"),
          ("rates", "id"))


def columns_of(conn, table: str) -> list[str]:
    return [r[0] for r in conn.execute(text(
        "SELECT column_name FROM information_schema.columns WHERE table_schema = DATABASE() "
        "AND table_name = :t ORDER BY ordinal_position"), {"t": table})]


# What 093 moved from clients to client_accounts (same names there).
MOVED = ("balance", "admitted_calls")


def everything(conn, columns: dict[str, list[str]] | None = None) -> dict[str, list[tuple]]:
    """Every row of the ledger tables, in `columns` (default: every column there is now);
    later files add columns, so the rows before an upgrade are compared in their own."""
    rows = {}
    for table, order in TABLES:
        names = (columns or {}).get(table) or columns_of(conn, table)
        if columns is not None and table == "clients":
            names = [n for n in names if n not in MOVED]
        listed = ", ".join(f"`{n}`" for n in names)
        rows[table] = [tuple(r) for r in
                       conn.execute(text(f"SELECT {listed} FROM {table} ORDER BY {order}"))]
    return rows


def test_upgrade_from_083_keeps_balances_ledger_and_calls(empty_db_url, tmp_path: Path):
    for path in SCHEMA.glob("*.sql"):
        if int(path.name[:3]) <= 83:
            shutil.copy(path, tmp_path / path.name)
    migrate.upgrade(empty_db_url, directory=tmp_path)
    engine = make_engine(empty_db_url, pool_size=1)
    try:
        with engine.begin() as conn:
            conn.execute(text("INSERT INTO rates (rate_plan_id, prefix, rate_per_min) "
                              "SELECT id, '44', 0.012345 FROM rate_plans WHERE is_default = 1"))
            conn.execute(text(
                "INSERT INTO clients (code, name, balance, credit_limit, channel_limit, "
                "rate_plan_id) SELECT CONCAT('c', seq), CONCAT('Client ', seq), seq * 1.5, "
                "seq % 3, 5, p.id FROM seq_1_to_200 JOIN rate_plans p ON p.is_default = 1"))
            first = conn.execute(text("SELECT MIN(id) FROM clients WHERE code = 'c1'")).scalar_one()
            # (a statement that moves balances may not read `clients` itself: 1442)
            params = {"first": first - 1}
            conn.execute(text("INSERT INTO payments (client_id, amount, kind, reference) "
                              "SELECT seq + :first, -0.25, 'correction', 'fix' "
                              "FROM seq_1_to_200"), params)
            conn.execute(text(
                "INSERT INTO calls (client_id, client_code, number, state, cost, "
                "authorized_at, settled_at) SELECT seq + :first, CONCAT('c', seq), '4420', "
                "'settled', 0.1234, UTC_TIMESTAMP(3), UTC_TIMESTAMP(3) FROM seq_1_to_200"), params)
            conn.execute(text("INSERT INTO campaigns (client_id, name, status, max_channels) "
                              "SELECT seq + :first, 'spring', 'draft', 3 FROM seq_1_to_200"),
                         params)
            # admissions counted on the client row, as authorize did at 083
            conn.execute(text("UPDATE clients SET admitted_calls = id % 7, updated_at = updated_at"))
            # what the dialer kept on campaign rows at 083: a clock and a note on running
            # ones, 'finished' (stamped finished_at) on others, one of a suspended client
            conn.execute(text(
                "INSERT INTO campaigns (client_id, name, status, caller_id, recording, "
                "pacing_clock, dialer_note, updated_at) SELECT seq + :first, 'autumn', "
                "'running', '4420', 'custom/x', '2026-01-02 03:04:05.678901' + INTERVAL seq "
                "SECOND, IF(seq % 2, CONCAT('note ', seq), NULL), '2025-06-01 10:00:00' "
                "FROM seq_1_to_200"), params)
            conn.execute(text("UPDATE campaigns SET status = 'finished' "
                              "WHERE name = 'autumn' AND client_id % 3 = 0"))
            conn.execute(text("UPDATE campaigns SET updated_at = '2025-06-01 10:00:00', "
                              "finished_at = '2025-07-01 00:00:00' + INTERVAL id MINUTE "
                              "WHERE name = 'autumn'"))
            suspended = list(conn.execute(text(   # (read first: the trigger writes campaigns)
                "SELECT client_id FROM campaigns WHERE status = 'finished' "
                "AND client_id % 2 = 0")).scalars())
            conn.execute(text("UPDATE clients SET status = 'suspended' WHERE id IN :ids"
                              ).bindparams(bindparam("ids", expanding=True)),
                         {"ids": suspended})
            # what it must become: finished -> running with finished = 1 (095; a paused
            # by the suspension goes back to running too, 150: a suspension writes no
            # campaign, and paused_by_suspension is 0 everywhere); clock, note and finish
            # moved as they were. Last column: the client is suspended (not compared).
            dialer_state_before = [tuple(r) for r in conn.execute(text(
                "SELECT g.id, g.status = 'finished', g.finished_at, g.pacing_clock, "
                "g.dialer_note, IF(g.status = 'finished' OR g.paused_by_suspension = 1, "
                "'running', g.status), 0, g.updated_at, c.status = 'suspended' "
                "FROM campaigns g JOIN clients c ON c.id = g.client_id ORDER BY g.id"))]
            before = everything(conn)
            system_kept_before = [tuple(r) for r in conn.execute(text(
                "SELECT id, balance, admitted_calls FROM clients ORDER BY id"))]
            columns_before = {t: columns_of(conn, t) for t, _ in TABLES}
        applied = migrate.upgrade(empty_db_url)
        assert applied and min(applied) > 83
        moved = ("pacing_clock", "dialer_note", "finished_at")
        with engine.connect() as conn:
            after = everything(conn, {**columns_before, "campaigns": [
                c for c in columns_before["campaigns"] if c not in moved]})
            dialer_state_after = [tuple(r) for r in conn.execute(text(
                "SELECT g.id, r.finished, r.finished_at, r.pacing_clock, r.dialer_note, "
                "g.status, g.paused_by_suspension, g.updated_at FROM campaigns g "
                "JOIN campaign_runs r ON r.campaign_id = g.id ORDER BY g.id"))]
            states = dict(conn.execute(text(
                "SELECT state, COUNT(*) FROM campaign_progress GROUP BY state")).all())
            added = {t: [c for c in columns_of(conn, t) if c not in columns_before[t]]
                     for t, _ in TABLES}
            new_call_values = conn.execute(text("SELECT DISTINCT answered_ms FROM calls")).all()
            new_payment_values = conn.execute(text(
                "SELECT DISTINCT allow_below_floor FROM payments")).all()
            mismatched = conn.execute(text(
                "SELECT COUNT(*) FROM client_accounts a WHERE a.balance <> "
                "(SELECT COALESCE(SUM(amount), 0) FROM payments p WHERE p.client_id = a.client_id) - "
                "(SELECT COALESCE(SUM(cost), 0) FROM calls k WHERE k.client_id = a.client_id)"
            )).scalar_one()
            system_kept_after = [tuple(r) for r in conn.execute(text(
                "SELECT client_id, balance, admitted_calls FROM client_accounts "
                "ORDER BY client_id"))]
            openings = conn.execute(text(
                "SELECT COUNT(*) FROM clients c WHERE c.opening_balance <> COALESCE((SELECT "
                "SUM(amount) FROM payments p WHERE p.client_id = c.id AND kind = 'opening'), 0)"
            )).scalar_one()
            moved_at = conn.execute(text(
                "SELECT COUNT(*) FROM client_accounts a JOIN clients c ON c.id = a.client_id "
                "WHERE (a.balance_moved_at IS NULL) <> (c.code = 'master')")).scalar_one()
            columns_of_now = columns_of(conn, "campaigns")
            reseller_columns = conn.execute(text(
                "SELECT DISTINCT rejected_by, reseller_levels FROM calls")).all()
            routing_columns = conn.execute(text(
                "SELECT DISTINCT trunk_id, buy_billable_seconds, buy_cost, margin, route_outcome,"
                " buy_prefix, buy_rate_per_min FROM calls")).all()
            parents = dict(conn.execute(text(
                "SELECT CASE WHEN c.parent_id IS NULL AND c.code = 'master' THEN 'master'"
                " WHEN p.code = 'master' THEN 'master''s' ELSE 'other' END AS k, COUNT(*)"
                " FROM clients c LEFT JOIN clients p ON p.id = c.parent_id GROUP BY k")).all())
            parents.setdefault("other", 0)
            resellers = conn.execute(text("SELECT COUNT(*) FROM clients WHERE resells = 1")).scalar_one()
            payment_columns = [r[0] for r in conn.execute(text(
                "SELECT column_name FROM information_schema.columns WHERE table_schema = "
                "DATABASE() AND table_name = 'payments' ORDER BY ordinal_position"))]
    finally:
        engine.dispose()
    assert mismatched == 0
    # every balance and counter moved to client_accounts exactly (master included); the
    # clients rows kept every other column, updated_at too
    assert system_kept_after == system_kept_before and len(system_kept_after) == 201
    assert openings == 0 and moved_at == 0
    assert after["clients"] == [tuple(v for n, v in zip(columns_before["clients"], row)
                                      if n not in MOVED) for row in before["clients"]]
    assert after["calls"] == before["calls"]
    # campaigns: what people set as it was ('finished' is now the dialer's finding, below)
    kept = [c for c in columns_before["campaigns"] if c not in moved]
    same = [kept.index(c) for c in kept if c not in ("status", "paused_by_suspension")]
    was = [columns_before["campaigns"].index(c) for c in kept
           if c not in ("status", "paused_by_suspension")]
    assert [tuple(r[i] for i in same) for r in after["campaigns"]] == \
        [tuple(r[i] for i in was) for r in before["campaigns"]]
    assert dialer_state_after == [r[:8] for r in dialer_state_before]
    # the board: suspended for a running campaign of a suspended client (150), else
    # finished where it was, else the status
    assert states == dict(Counter(
        "suspended" if r[5] == "running" and r[8] else "finished" if r[1] else r[5]
        for r in dialer_state_before))
    assert states["finished"] > 0 and states["suspended"] > 0 and states["draft"] == 200
    assert any(r[1] and r[8] for r in dialer_state_before)   # finished, suspended client
    assert after["rates"] == before["rates"]
    assert after["payments"] == before["payments"]
    # later files only added columns: payments.allow_below_floor (0 for every row that was
    # there), calls.answered_ms (unknown for calls settled before: NULL), the resellers'
    # clients.parent_id (master for every client but master) and calls.rejected_by /
    # reseller_levels (NULL / 0: no reseller above any client then), clients.resells (0:
    # nobody had clients of its own), the routing's calls.trunk_id / buy_billable_seconds /
    # buy_cost / margin / route_outcome / buy_* (NULL: no call went through a trunk then)
    assert routing_columns == [(None,) * 7]
    assert added == {"clients": ["parent_id", "opening_balance", "low_balance_threshold",
                                 "resells"],
                     "payments": ["allow_below_floor"],
                     "calls": ["rejected_by", "reseller_levels", "trunk_id", "buy_prefix",
                               "buy_rate_per_min", "buy_connection_fee",
                               "buy_initial_increment", "buy_subsequent_increment",
                               "answered_ms", "buy_billable_seconds", "buy_cost", "margin",
                               "route_outcome"],
                     "campaigns": [], "rates": []}
    assert reseller_columns == [(None, 0)]
    assert parents == {"master": 1, "other": 0, "master's": 200}
    assert resellers == 0
    assert not set(moved) & set(columns_of_now)
    assert "allow_below_floor" in payment_columns and new_payment_values == [(0,)]
    assert new_call_values == [(None,)]
    # c1: opening 1.5, correction -0.25, call 0.1234
    assert len(after["payments"]) == 400 and before["clients"][1][6] == Decimal("1.1266")


LANDED_LATER = (93, 94, 147)   # this change's files; databases upgraded before it have 100-140


def test_the_client_accounts_files_end_the_same_after_100_to_140(empty_db_url, tmp_path: Path):
    """A database upgraded at the last landing already has files 100-103 and 140 and gets
    093/094 after them: it ends exactly as a fresh upgrade (same tables, triggers in the
    same slots, routines, views and rows)."""
    for path in SCHEMA.glob("*.sql"):
        # 150 and later landed after 147 (they redefine what it made): never before it
        if int(path.name[:3]) not in LANDED_LATER and int(path.name[:3]) < 150:
            shutil.copy(path, tmp_path / path.name)
    migrate.upgrade(empty_db_url, directory=tmp_path)
    applied_late = migrate.upgrade(empty_db_url)
    assert set(LANDED_LATER) <= set(applied_late)
    fresh = fresh_database_name()
    migrate.upgrade(url_for(fresh))
    late = empty_db_url.rsplit("/", 1)[1]
    connection = connect_server()
    try:
        with connection.cursor() as cursor:
            theirs, ours = fingerprint(cursor, fresh), fingerprint(cursor, late)
    finally:
        connection.close()
        drop_database(fresh)
    for prints in (theirs, ours):          # applied in another order: other ids and times
        prints.pop("rows of schema_migrations", None)
    assert differences(theirs, ours) == []
