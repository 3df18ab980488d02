"""`ictcontact notifier`: send low-balance, suspension and reactivation alerts from the
outbox (schema/135) by e-mail and signed webhook until SIGTERM/SIGINT.

The database must be at this code's schema (`ictcontact db upgrade`): the notifier never
changes it. Run one or several (they share the outbox through leases), or none and
`ictcontact serve --alerts` instead. On SIGTERM it stops claiming, lets sends in flight end
(each within --alert-timeout), and exits 0 within --alert-timeout plus --db-timeout, even
when the database answers nothing (database calls still running then are left behind,
logged); an alert it had claimed but not recorded is sent again by the next notifier after
--alert-lease-seconds, with the same dedupe id.
Settings: docs/alerts.md.
"""

from __future__ import annotations

import argparse
import logging
import sys
from dataclasses import dataclass
from typing import Any

from sqlalchemy.engine import make_url
from twisted.internet.defer import Deferred, ensureDeferred
from twisted.internet.task import LoopingCall

from fastagi.alerts.config import OPTIONS as ALERT_OPTIONS
from fastagi.alerts.config import NotifierConfig, load_notifier_config
from fastagi.alerts.notifier import Notifier
from fastagi.db import migrate
from fastagi.db.engine import make_engine
from fastagi.services import DbRunner
from fastagi.settings import (Option, add_options, database_url, dataclass_defaults,
                              load_options, source_from_args)
from fastagi.store.alerts import missing_notifier_privilege

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class NotifierProcess:
    """Defaults of the settings around the notifier (database)."""

    db_pool_size: int = 2
    db_timeout: float = 10.0


OPTIONS: dict[str, Option] = {
    "db_pool_size": Option(int, "database connections = threads"),
    "db_timeout": Option(float, "seconds a database call may take"),
}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--db", help="SQLAlchemy URL (env ICTCONTACT_DB)")
    add_options(parser, ALERT_OPTIONS, dataclass_defaults(NotifierConfig))
    add_options(parser, OPTIONS, dataclass_defaults(NotifierProcess))


def run(args: argparse.Namespace) -> int:
    source = source_from_args(args)
    config = load_notifier_config(source)
    process = load_options(source, OPTIONS, dataclass_defaults(NotifierProcess))
    url = database_url(source)
    engine = make_engine(url, pool_size=process["db_pool_size"])
    where = make_url(url).render_as_string(hide_password=True)
    try:
        state = migrate.require_current(engine)
        missing = missing_notifier_privilege(engine)
        if missing:  # else it would start and fail every poll
            engine.dispose()
            print(f"ictcontact notifier: the database account lacks a privilege the notifier "
                  f"needs: {missing}", file=sys.stderr)
            return 1
    except migrate.SchemaError as exc:
        engine.dispose()
        print(f"ictcontact notifier: {exc}", file=sys.stderr)
        return 1
    except Exception as exc:  # unreachable, access denied: one line
        engine.dispose()
        reason = str(getattr(exc, "orig", None) or exc).strip().splitlines()[0]
        print(f"ictcontact notifier: cannot use the database {where}: {reason}",
              file=sys.stderr)
        return 1
    from twisted.internet import reactor  # the one place the global reactor is used

    log.info("schema version %d", state.current)
    db = DbRunner(engine, reactor, reactor, process["db_pool_size"], process["db_timeout"])
    return NotifierRun(reactor, db, config, process["db_timeout"]).run()


class NotifierRun:
    """One run of the notifier on `reactor`."""

    def __init__(self, reactor: Any, db: DbRunner, config: NotifierConfig,
                 db_timeout: float) -> None:
        from fastagi.commands.serve import _guarded

        self.reactor = reactor
        self.db = db
        self.db_timeout = db_timeout
        self.notifier = Notifier(reactor, db, config)
        self.loop = LoopingCall(_guarded(self.notifier.tick))
        self.loop.clock = reactor
        self.stopped: Deferred | None = None

    def run(self) -> int:
        self.reactor.callWhenRunning(self.start)
        self.reactor.addSystemEventTrigger("before", "shutdown", self.stop)
        self.reactor.run()
        return 0

    def start(self) -> None:
        self.db.start()
        self.notifier.start()
        self.stopped = self.loop.start(self.notifier.config.alert_poll_seconds, now=True)

    def stop(self) -> Deferred:
        return ensureDeferred(self._stop())

    async def _stop(self) -> None:
        """Within --alert-timeout plus --db-timeout even when the database answers nothing:
        the tick in progress claims no more, its sends end within --alert-timeout and its
        database calls within --db-timeout; database calls still running one --db-timeout
        after SIGTERM are left behind (their answers are awaited by no one: an alert
        claimed but not recorded is sent again after its lease)."""
        started = self.reactor.seconds()
        self.notifier.stop_claiming()
        if self.loop.running:
            self.loop.stop()      # fires `stopped` once a tick in progress has ended
            await self.stopped
        self.notifier.stop()
        self.db.stop(timeout=max(0.0, self.db_timeout - (self.reactor.seconds() - started)))
        log.info("alert notifier %s stopped: %d sent, %d failed sends", self.notifier.name,
                 self.notifier.sent, self.notifier.failed)
