"""Schemas 177 and 179 on a database that already routed calls: each call gets the buy
rate of the attempt on the trunk it names, live calls keep their unit of capacity, the
live attempts of closed calls are ended, and the next take is checked by the database."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy.exc import DBAPIError

from fastagi.db import migrate
from fastagi.db.engine import make_engine
from fastagi.db.retry import mysql_errno
from fastagi.store import trunks
from tests.callcontrol.tenants import add_client
from tests.routing.carriers import add_trunk
from tests.support.sql import execute, rows

NOW = datetime(2026, 12, 7, 12, 0, 0)


def routed_call(engine, trunk_id: int, number: str, rate: str | None) -> int:
    """A live call as authorize recorded it before 177: the calls row, then its attempt."""
    with engine.begin() as conn:
        call_id = conn.execute(trunks.text(
            "INSERT INTO calls (client_id, client_code, direction, number, state, trunk_id,"
            " authorized_at) SELECT id, code, 'out', :n, 'live', :t, :now FROM clients"
            " WHERE code = 'acme'"), {"n": number, "t": trunk_id, "now": NOW}).lastrowid
        conn.execute(trunks.text(
            "INSERT INTO call_attempts (call_id, attempt, trunk_id, state, started_at,"
            " buy_prefix, buy_rate_per_min, buy_connection_fee, buy_initial_increment,"
            " buy_subsequent_increment) VALUES (:c, 1, :t, 'live', :now, :p, :r, 0, 30, 6)"),
            {"c": call_id, "t": trunk_id, "now": NOW, "p": "44" if rate else None, "r": rate})
    return call_id


def upgrade_through(db_url: str, folder, last: int) -> None:
    """Upgrade the database with the schema files numbered up to `last` only."""
    folder.mkdir()
    for migration in migrate.available_migrations():
        if migration.version <= last:
            (folder / migration.name).symlink_to(migration.path)
    migrate.upgrade(db_url, directory=folder, timeout_s=60)


def take(engine, trunk_id: int) -> int | None:
    """A live call naming the trunk (its trigger takes it): None, or the error number."""
    client = rows(engine, "SELECT id FROM clients WHERE code = 'acme'")[0].id
    try:
        execute(engine, "INSERT INTO calls (client_id, client_code, direction, number, state,"
                " trunk_id, authorized_at) VALUES (:c, 'acme', 'out', '4420', 'live', :t, :now)",
                c=client, t=trunk_id, now=NOW)
    except DBAPIError as exc:
        return mysql_errno(exc)
    return None


def test_calls_routed_before_177_get_their_trunk_s_buy_rate(empty_db_url, tmp_path):
    upgrade_through(empty_db_url, tmp_path / "before", 176)
    engine = make_engine(empty_db_url)
    try:
        add_client(engine, "acme", balance="50", channel_limit=10)
        trunk = add_trunk(engine, "t1", capacity=2)
        priced = routed_call(engine, trunk, "442071234567", "0.050000")
        unpriced = routed_call(engine, trunk, "33123456789", None)

        assert migrate.upgrade(empty_db_url, timeout_s=60)[0] == 177

        got = {r.id: (r.buy_prefix, str(r.buy_rate_per_min), r.buy_initial_increment)
               for r in rows(engine, "SELECT id, buy_prefix, buy_rate_per_min,"
                                     " buy_initial_increment FROM calls")}
        assert got == {priced: ("44", "0.050000", 30), unpriced: (None, "None", None)}
        # their two live attempts still hold the trunk's capacity of 2: the next take (a
        # live call naming the trunk, as authorize records it now) is refused
        assert take(engine, trunk) == trunks.TRUNK_REFUSED
        execute(engine, "UPDATE calls SET state = 'stale', settled_at = :n WHERE id = :c",
                n=NOW, c=priced)
        assert take(engine, trunk) is None
    finally:
        engine.dispose()


def test_a_database_at_177_ends_the_live_attempts_of_closed_calls_at_179(empty_db_url,
                                                                       tmp_path):
    """177 counted live attempts of live calls; 179 counts live attempts alone, so an
    attempt a hand edit or the sweep left live under 177 must be ended by the upgrade."""
    upgrade_through(empty_db_url, tmp_path / "at_177", 177)
    engine = make_engine(empty_db_url)
    try:
        add_client(engine, "acme", balance="50", channel_limit=10)
        trunk = add_trunk(engine, "t1", capacity=1)
        assert take(engine, trunk) is None
        closed = rows(engine, "SELECT MAX(id) AS id FROM calls")[0].id
        execute(engine, "UPDATE calls SET state = 'stale', settled_at = :n WHERE id = :c",
                n=NOW, c=closed)
        assert rows(engine, "SELECT state FROM call_attempts WHERE call_id = :c",
                    c=closed)[0].state == "live"    # 177 left it live

        assert migrate.upgrade(empty_db_url, timeout_s=60) == [178, 179]

        got = rows(engine, "SELECT state, ended_at FROM call_attempts WHERE call_id = :c",
                   c=closed)[0]
        assert (got.state, got.ended_at) == ("ended", NOW)
        assert take(engine, trunk) is None                    # its unit is free
        assert take(engine, trunk) == trunks.TRUNK_REFUSED    # capacity 1, now taken
        live = rows(engine, "SELECT MAX(id) AS id FROM calls WHERE state = 'live'")[0].id
        execute(engine, "UPDATE calls SET state = 'stale', settled_at = :n WHERE id = :c",
                n=NOW, c=live)                                # 179's trigger ends its attempt
        assert take(engine, trunk) is None
    finally:
        engine.dispose()
