"""Recover from a table instance MariaDB cached with its triggers unparsed.

MariaDB (seen on 10.11.19) parses a table's triggers when it opens a new instance of the
table. A statement killed during that parse (KILL QUERY; on Galera, a brute-force abort
by a replicated write) leaves the instance in the table cache with the failed parse, and
every later statement that gets it fails with 1064 "... has an error in its body" until
the instance leaves the cache (docs/faults.md). Nothing is wrong with the trigger itself.

On that error the engine's error hook flushes this node's table cache (FLUSH LOCAL
TABLES: not replicated to other Galera nodes; needs the RELOAD privilege; ~20 ms) and
fastagi.db.retry runs the transaction again.
"""

from __future__ import annotations

import logging
import threading
import time

log = logging.getLogger(__name__)

PARSE_ERROR = 1064
_MARK = "has an error in its body"
FLUSH_EVERY_S = 1.0          # threads failing together share one flush
ADVICE_EVERY_S = 60.0
FLUSH = "FLUSH LOCAL TABLES"


def is_unparsed_trigger(exc: BaseException) -> bool:
    """Is this (a DBAPIError or the driver's error) the broken cached instance's error?"""
    args = getattr(getattr(exc, "orig", exc), "args", ())
    return (len(args) >= 2 and args[0] == PARSE_ERROR and isinstance(args[1], str)
            and _MARK in args[1])


class Flusher:
    """Flushes the table cache of the engine's server, at most once per FLUSH_EVERY_S."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._last_flush = float("-inf")
        self._last_advice = float("-inf")
        self.flushes = 0

    def on_error(self, context) -> None:
        """SQLAlchemy's handle_error hook: never raises (the original error stands)."""
        if context.engine is None or not is_unparsed_trigger(context.original_exception):
            return
        try:
            self.flush(context.engine, str(context.original_exception))
        except Exception:  # noqa: BLE001 - the statement's own error is what the caller sees
            log.exception("could not flush the table cache")

    def flush(self, engine, why: str) -> None:
        with self._lock:
            now = time.monotonic()
            if now - self._last_flush < FLUSH_EVERY_S:
                return
            self._last_flush = now
            # its own connection: the pool may be all checked out, this one included
            cargs, cparams = engine.dialect.create_connect_args(engine.url)
            cparams.update(connect_timeout=5, read_timeout=5, write_timeout=5)
            conn = engine.dialect.dbapi.connect(*cargs, **cparams)
            try:
                with conn.cursor() as cursor:
                    cursor.execute("SET SESSION lock_wait_timeout = 2")
                    try:
                        cursor.execute(FLUSH)
                    except engine.dialect.dbapi.Error as exc:
                        if now - self._last_advice >= ADVICE_EVERY_S:
                            self._last_advice = now
                            log.error("MariaDB cached a table with unparsed triggers (%s) and "
                                      "%s was refused (%s): run it on this node, and GRANT "
                                      "RELOAD ON *.* to the server's account so the server "
                                      "can (docs/faults.md)", why[:160], FLUSH, exc)
                        return
            finally:
                conn.close()
            self.flushes += 1
            log.warning("MariaDB cached a table with unparsed triggers (%s): %s done, the "
                        "transaction runs again (docs/faults.md)", why[:160], FLUSH)
