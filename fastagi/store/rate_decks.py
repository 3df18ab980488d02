"""The database side of `ictcontact rates import`: find the deck (a rate plan's sell rates
or a trunk's buy rates), read it as it stands, and write an import's changes in the
caller's one transaction (all or nothing).

Changes in effect now go straight into `rates` / `trunk_rates` (their history triggers
keep what they replace); later ones wait in `rate_pending` / `trunk_rate_pending` for
apply_due_rates() (schema/112_rate_effective_dates.sql). The table names below come from
this module's own table, never from input; every value is a bound parameter.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from typing import Callable

from sqlalchemy import bindparam, text
from sqlalchemy.engine import Connection
from sqlalchemy.exc import DBAPIError

from fastagi.billing.decks import DeckRow, chunked

CHUNK = 5000


class DeckNotFound(LookupError):
    """No rate plan or trunk of that name."""


@dataclass(frozen=True)
class _Tables:
    owner: str       # rate_plans / trunks
    owner_key: str   # rate_plan_id / trunk_id
    live: str        # rates / trunk_rates
    pending: str     # rate_pending / trunk_rate_pending
    word: str        # for messages


_KINDS = {
    "plan": _Tables("rate_plans", "rate_plan_id", "rates", "rate_pending", "rate plan"),
    "trunk": _Tables("trunks", "trunk_id", "trunk_rates", "trunk_rate_pending", "trunk"),
}


@dataclass(frozen=True)
class DeckRef:
    kind: str   # plan / trunk
    id: int
    name: str

    @property
    def label(self) -> str:
        return f"{_KINDS[self.kind].word} {self.name}"


def lock_deck(conn: Connection, kind: str, name: str) -> DeckRef:
    """The deck's owner row, locked until the transaction ends (one import of a deck at a
    time); DeckNotFound in words when there is none."""
    tables = _KINDS[kind]
    found = conn.execute(text(f"SELECT id FROM {tables.owner} WHERE name = :name FOR UPDATE"),
                         {"name": name}).scalar()
    if found is None:
        names = conn.execute(text(f"SELECT name FROM {tables.owner} ORDER BY name LIMIT 10")).scalars().all()
        raise DeckNotFound(f"no {tables.word} named {name!r}"
                           + (f" (there are: {', '.join(names)})" if names else ""))
    return DeckRef(kind, int(found), name)


def database_now(conn: Connection) -> datetime:
    """The database's UTC time, to the second: effective times compare with it."""
    return conn.execute(text("SELECT UTC_TIMESTAMP()")).scalar_one()


def apply_due(conn: Connection) -> None:
    """Put every pending change whose time has come into effect (all decks)."""
    conn.execute(text("CALL apply_due_rates()"))


# The values of a rate as one string, the same as billing.decks.deck_key builds.
_KEY = ("CONCAT_WS('|', rate_per_min, connection_fee, initial_increment, subsequent_increment, "
        "COALESCE(CONCAT('=', description), ''))")


def deck_before(conn: Connection, deck: DeckRef, when: datetime,
                progress: Callable[[int], None] = lambda n: None) -> tuple[dict[str, str], int]:
    """The deck as it will stand just before `when`, prefix -> values key
    (billing.decks.deck_key): the rates in effect now with the
    pending changes due before `when` applied in order; and how many pending changes are
    at or after `when` (an import replaces those). `progress` is told each batch of rates
    read."""
    tables = _KINDS[deck.kind]
    result = conn.execute(text(
        f"SELECT prefix, {_KEY} FROM {tables.live} WHERE {tables.owner_key} = :id"), {"id": deck.id})
    current = {}
    for batch in iter(lambda: result.fetchmany(CHUNK), []):
        current.update(batch)
        progress(len(batch))
    later = 0
    for row in conn.execute(text(
            f"SELECT prefix, change_kind, {_KEY} AS value_key, effective_at FROM {tables.pending} "
            f"WHERE {tables.owner_key} = :id ORDER BY effective_at, id"), {"id": deck.id}):
        if row.effective_at >= when:
            later += 1
        elif row.change_kind == "remove":
            current.pop(row.prefix, None)
        else:
            current[row.prefix] = row.value_key
    return current, later


def _values(deck: DeckRef, row: DeckRow) -> tuple:
    v = row.values
    return (deck.id, row.prefix, v.description, v.rate_per_min, v.connection_fee,
            v.initial_increment, v.subsequent_increment)


# The rows of a batch travel as ONE JSON document that JSON_TABLE unpacks on the server:
# one string for the driver to escape instead of seven values a row (pymysql escapes each
# in Python: ~1 s of 100,000 rows). Amounts go as their exact decimal text, so the
# conversion into the DECIMAL(12,6) columns is exact; a value with more decimals would
# leave a note that the table's BEFORE trigger refuses, as for any INSERT (schema 090/155).
_BATCH = ("JSON_TABLE(%s, '$[*]' COLUMNS ("
          "prefix VARCHAR(32) CHARACTER SET ascii PATH '$[0]', "
          "description VARCHAR(128) CHARACTER SET utf8mb4 PATH '$[1]', "
          "rate_per_min DECIMAL(12,6) PATH '$[2]', connection_fee DECIMAL(12,6) PATH '$[3]', "
          "initial_increment INT PATH '$[4]', subsequent_increment INT PATH '$[5]')) AS j")


def _batch(rows: list[DeckRow]) -> str:
    return json.dumps([[row.prefix, row.values.description, str(row.values.rate_per_min),
                        str(row.values.connection_fee), row.values.initial_increment,
                        row.values.subsequent_increment] for row in rows])


def write_now(conn: Connection, deck: DeckRef, rows: list[DeckRow], removed: list[str],
              progress: Callable[[int], None] = lambda n: None) -> None:
    """Set `rows` and remove the prefixes `removed` in the live table, now."""
    tables = _KINDS[deck.kind]
    upsert = (
        f"INSERT INTO {tables.live} ({tables.owner_key}, prefix, description, rate_per_min, "
        f"connection_fee, initial_increment, subsequent_increment) "
        f"SELECT %s, j.prefix, j.description, j.rate_per_min, j.connection_fee, "
        f"j.initial_increment, j.subsequent_increment FROM {_BATCH} "
        f"ON DUPLICATE KEY UPDATE description = VALUES(description), "
        f"rate_per_min = VALUES(rate_per_min), connection_fee = VALUES(connection_fee), "
        f"initial_increment = VALUES(initial_increment), "
        f"subsequent_increment = VALUES(subsequent_increment)")
    delete = text(f"DELETE FROM {tables.live} WHERE {tables.owner_key} = :id AND prefix IN :prefixes"
                  ).bindparams(bindparam("prefixes", expanding=True))
    # a buy deck gives the route table ONE new version, written after its rows (schema
    # 178), not one a rate; the variable is reset whatever happens, as the connection goes
    # back to the pool
    defer = deck.kind == "trunk" and bool(rows or removed)
    if defer:
        conn.exec_driver_sql(_DEFER_VERSION)
    try:
        for chunk in chunked(rows, CHUNK):
            conn.exec_driver_sql(upsert, (deck.id, _batch(chunk)))
            progress(len(chunk))
        for chunk in chunked(removed, CHUNK):
            conn.execute(delete, {"id": deck.id, "prefixes": chunk})
            progress(len(chunk))
    except BaseException:
        if defer:
            _undefer_quietly(conn)
        raise
    if defer:
        conn.exec_driver_sql(_UNDEFER_VERSION)
        conn.exec_driver_sql("CALL route_table_changed()")


_DEFER_VERSION = "SET @ict_route_version_deferred = 1"
_UNDEFER_VERSION = "SET @ict_route_version_deferred = NULL"


def _undefer_quietly(conn: Connection) -> None:
    """Reset the deferral after a failed write (the transaction is rolled back: no version
    is owed); a connection lost meanwhile took its session variable with it."""
    try:
        conn.exec_driver_sql(_UNDEFER_VERSION)
    except DBAPIError:
        pass


def replace_pending(conn: Connection, deck: DeckRef, since: datetime) -> int:
    """Drop the deck's pending changes at or after `since` (an import replaces the deck
    from its time on); how many were dropped."""
    tables = _KINDS[deck.kind]
    return conn.execute(text(f"DELETE FROM {tables.pending} WHERE {tables.owner_key} = :id "
                             f"AND effective_at >= :since"), {"id": deck.id, "since": since}).rowcount


# Positional (%s) driver statement: a tuple per row instead of a dict (seconds saved in
# the driver for 100,000 rows).
def write_pending(conn: Connection, deck: DeckRef, rows: list[tuple[DeckRow, datetime]],
                  removed: list[str], removed_at: datetime,
                  progress: Callable[[int], None] = lambda n: None) -> None:
    """Schedule `rows` (each at its time) and the removal of `removed` at `removed_at`."""
    tables = _KINDS[deck.kind]
    insert = (
        f"INSERT INTO {tables.pending} ({tables.owner_key}, prefix, description, rate_per_min, "
        f"connection_fee, initial_increment, subsequent_increment, change_kind, effective_at) "
        f"VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s)")
    for chunk in chunked(rows, CHUNK):
        conn.exec_driver_sql(insert, [(*_values(deck, row), "set", at) for row, at in chunk])
        progress(len(chunk))
    for chunk in chunked(removed, CHUNK):
        conn.exec_driver_sql(insert, [(deck.id, prefix, None, None, None, None, None, "remove",
                                       removed_at) for prefix in chunk])
        progress(len(chunk))
