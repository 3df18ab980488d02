"""`ictcontact dialer`: run the campaign dialer against one Asterisk until SIGTERM/SIGINT.

It logs in to Asterisk's AMI (`--ami HOST:PORT`, the user of asterisk-conf/manager.conf
that may originate and reads `call` events), and dials every running campaign of every
client (fastagi.campaigns.dialer). The database must already be at this code's schema
(`ictcontact db upgrade` or `ictcontact serve` creates it): the dialer never changes it.
Run one per Asterisk, or two for availability: they share the work through the database.
On SIGTERM it stops claiming and exits 0 within about one --db-timeout, even when the
database answers nothing (database calls still running then are left behind, logged);
calls in flight go on in Asterisk, their outcomes are written by the FastAGI server, and
their contacts are finished by this dialer when it is back under the same `--name`, or
by any other once the claims lapse.
"""

from __future__ import annotations

import argparse
import logging
import socket
import sys
from dataclasses import dataclass
from typing import Any, Callable

from sqlalchemy.engine import make_url
from twisted.internet.defer import Deferred, ensureDeferred
from twisted.internet.task import LoopingCall

from fastagi.ami import DEFAULT_USER as DEFAULT_AMI_USER
from fastagi.ami.client import AmiClient, client_from_settings
from fastagi.campaigns.dialer import Dialer, DialerConfig
from fastagi.campaigns.originate import AmiOriginator
from fastagi.campaigns.queue_status import AmiQueueWatch
from fastagi.db import migrate
from fastagi.db.engine import make_engine
from fastagi.emergency import parse_numbers
from fastagi.services import DbRunner
from fastagi.settings import (Option, SettingsError, SettingsSource, add_options,
                              database_url, dataclass_defaults, load_options, source_from_args)

log = logging.getLogger(__name__)


def _positive(convert: Callable[[str], Any]) -> Callable[[str], Any]:
    def check(text: str) -> Any:
        value = convert(text)
        if value <= 0:
            raise ValueError(f"must be positive, not {text!r}")
        return value
    check.__name__ = f"positive {convert.__name__}"   # argparse: "invalid positive int value"
    return check


def _not_negative(convert: Callable[[str], Any]) -> Callable[[str], Any]:
    def check(text: str) -> Any:
        value = convert(text)
        if value < 0:
            raise ValueError(f"must not be negative, not {text!r}")
        return value
    check.__name__ = f"non-negative {convert.__name__}"
    return check


@dataclass(frozen=True)
class DialerProcess:
    """Defaults of the settings around the dialer (AMI, database, logging); the dialer's
    own are DialerConfig's field defaults."""

    ami: str = ""                   # required
    ami_user: str = DEFAULT_AMI_USER
    name: str = ""                  # empty: the host name
    ring_seconds: float = 30.0
    db_pool_size: int = 4
    db_timeout: float = 10.0
    status_seconds: float = 60.0


DEFAULTS = dataclass_defaults(DialerConfig, DialerProcess)

# setting name -> how it is read and its help; defaults are in DEFAULTS
OPTIONS: dict[str, Option] = {
    "ami": Option(str, "Asterisk Manager Interface HOST:PORT to originate on (required). "
                       "The secret is ICTCONTACT_AMI_SECRET or the config file key "
                       "ami-secret, never an option", shown="none"),
    "ami_user": Option(str, "AMI user (as in asterisk-conf/manager.conf)"),
    "name": Option(str, "this dialer's name in claims and attempts; a restarted dialer "
                        "with the same name takes back its own calls at once",
                   shown="the host name"),
    "ring_seconds": Option(_positive(float), "how long a contact's phone may ring "
                                             "(Originate Timeout)"),
    "tick_seconds": Option(_positive(float), "how often campaigns are claimed from: a pause "
                                             "or suspension is seen within this"),
    "claim_seconds": Option(_positive(float), "a dead dialer's calls are finished by "
                                              "another after this"),
    "batch": Option(_positive(int), "most contacts claimed per campaign per tick"),
    "requeue_seconds": Option(_positive(float), "a contact refused for its client's limits "
                                                "(credit, channels, suspension) is tried "
                                                "again after this"),
    "queue_poll_seconds": Option(_positive(float), "progressive campaigns: how often the "
                                                   "queue's free agents are asked of Asterisk "
                                                   "(QueueStatus)"),
    "emergency_numbers": Option(parse_numbers, "numbers a campaign never dials",
                                aliases=("emergency_prefixes",)),
    "credit_slice_seconds": Option(_not_negative(int),
                                   "what `serve` reserves per call, as serve is run (the same "
                                   "config file key and variable): a campaign claims no more "
                                   "calls than its client's available credit admits; 0 when "
                                   "serve runs with --credit-slice-seconds 0"),
    "max_call_seconds": Option(_positive(int), "as serve's --max-call-seconds"),
    "db_pool_size": Option(_positive(int), "database connections = threads"),
    "db_timeout": Option(_positive(float), "seconds a database call may take"),
    "status_seconds": Option(_positive(float), "how often a summary line is logged"),
}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--db", help="SQLAlchemy URL (env ICTCONTACT_DB)")
    add_options(parser, OPTIONS, DEFAULTS)


def load_settings(source: SettingsSource) -> dict[str, Any]:
    """Every setting by name; SettingsError names a bad or missing one."""
    values = load_options(source, OPTIONS, DEFAULTS)
    if not values["ami"]:
        raise SettingsError("the dialer needs --ami HOST:PORT (or ICTCONTACT_AMI)")
    values["ami_secret"] = source.get("ami_secret", "")
    if not values["ami_secret"]:
        raise SettingsError("the dialer needs the AMI secret: ICTCONTACT_AMI_SECRET or the "
                            "config file key ami-secret")
    values["name"] = values["name"] or socket.gethostname()
    return values


def dialer_config(values: dict[str, Any]) -> DialerConfig:
    try:
        return DialerConfig(name=values["name"], tick_seconds=values["tick_seconds"],
                            claim_seconds=values["claim_seconds"], batch=values["batch"],
                            requeue_seconds=values["requeue_seconds"],
                            queue_poll_seconds=values["queue_poll_seconds"],
                            emergency_numbers=tuple(values["emergency_numbers"]),
                            credit_slice_seconds=values["credit_slice_seconds"],
                            max_call_seconds=values["max_call_seconds"])
    except ValueError as exc:
        raise SettingsError(str(exc)) from exc


def run(args: argparse.Namespace) -> int:
    source = source_from_args(args)
    values = load_settings(source)
    config = dialer_config(values)
    url = database_url(source)
    engine = make_engine(url, pool_size=values["db_pool_size"])
    where = make_url(url).render_as_string(hide_password=True)
    try:
        state = migrate.require_current(engine)
    except migrate.SchemaError as exc:
        engine.dispose()
        print(f"ictcontact dialer: {exc}", file=sys.stderr)
        return 1
    except Exception as exc:  # unreachable, access denied: one line
        engine.dispose()
        reason = str(getattr(exc, "orig", None) or exc).strip().splitlines()[0]
        print(f"ictcontact dialer: cannot use the database {where}: {reason}", file=sys.stderr)
        return 1
    from twisted.internet import reactor  # the one place the global reactor is used

    log.info("schema version %d", state.current)
    try:
        ami = client_from_settings(reactor, values["ami"], values["ami_user"],
                                   values["ami_secret"], name=f"dialer-{config.name}",
                                   action_timeout=5.0)
    except ValueError as exc:
        engine.dispose()
        raise SettingsError(str(exc)) from exc
    db = DbRunner(engine, reactor, reactor, values["db_pool_size"], values["db_timeout"])
    return DialerRun(reactor, db, ami, config, values["ring_seconds"],
                     values["status_seconds"], values["db_timeout"]).run()


class DialerRun:
    """One run of the dialer on `reactor`, its AMI client and its database threads."""

    def __init__(self, reactor: Any, db: DbRunner, ami: AmiClient, config: DialerConfig,
                 ring_seconds: float, status_seconds: float, db_timeout: float) -> None:
        self.reactor = reactor
        self.db = db
        self.db_timeout = db_timeout
        self.ami = ami
        self.dialer = Dialer(reactor, db, AmiOriginator(ami, timeout_seconds=ring_seconds),
                             config, ready=lambda: ami.connected,
                             queues=AmiQueueWatch(ami))
        self.status_loop = LoopingCall(self._status)
        self.status_loop.clock = reactor
        self.status_seconds = status_seconds

    def run(self) -> int:
        self.reactor.callWhenRunning(self.start)
        self.reactor.addSystemEventTrigger("before", "shutdown", self.stop)
        self.reactor.run()
        return 0

    def start(self) -> None:
        self.db.start()
        self.ami.on_state(lambda up: log.info("AMI %s", "logged in" if up else "down"))
        self.ami.start()
        self.dialer.start()
        self.status_loop.start(self.status_seconds, now=False)

    def _status(self) -> None:
        stats = self.dialer.stats
        log.info("dialer %s: %d originated, %d answered, %d not originated, %d skipped, "
                 "%d campaigns finished", self.dialer.config.name, stats.originated,
                 stats.answered, stats.originate_failed, stats.skipped, stats.finished)

    def stop(self) -> Deferred:
        return ensureDeferred(self._stop())

    async def _stop(self) -> None:
        """Within about one --db-timeout even when the database answers nothing: the tick
        in progress starts no database call after stop() (its call in flight times out),
        AMI logs off within a second, and database calls still running one --db-timeout
        after SIGTERM are left behind (their answers are awaited by no one; all the
        dialer's state is in the database, so a restart redoes what they did not)."""
        started = self.reactor.seconds()
        if self.status_loop.running:
            self.status_loop.stop()
        await self.dialer.stop()
        await self.ami.stop()
        self.db.stop(timeout=max(0.0, self.db_timeout - (self.reactor.seconds() - started)))
        self._status()
        log.info("dialer %s stopped", self.dialer.config.name)
