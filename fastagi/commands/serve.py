"""`ictcontact serve`: run the FastAGI server until SIGTERM/SIGINT.

At start the database is checked: one that does not exist, has no schema (`ictcontact db
upgrade` creates both), is behind or ahead of this code, an account without a privilege
the server needs (fastagi.store.privileges), a Galera node without the
settings the product needs (fastagi.db.galera), or one that cannot be reached, is refused
with a one-line reason and exit 1; a setting that cannot be used exits 2. On SIGTERM/SIGINT the
server stops listening, lets sessions in flight finish for up to --shutdown-grace-seconds,
aborts the rest, gives database calls still running up to --db-timeout (then leaves them),
and exits 0. Periodic jobs (fastagi.jobs.registry.periodic_jobs) run while it serves. Only
this entry point imports the global reactor.
"""

from __future__ import annotations

import argparse
import logging
import math
import sys
from inspect import isawaitable
from typing import Any, Callable, Mapping

from sqlalchemy.engine import Engine, make_url
from twisted.internet.defer import Deferred, ensureDeferred, succeed
from twisted.internet.endpoints import serverFromString
from twisted.internet.interfaces import IListeningPort
from twisted.internet.task import LoopingCall
from twisted.python.failure import Failure

from fastagi.alerts.config import OPTIONS as ALERT_OPTIONS
from fastagi.alerts.config import NotifierConfig, load_notifier_config
from fastagi.alerts.notifier import Notifier
from fastagi.db import galera, migrate
from fastagi.db.engine import make_engine
from fastagi.emergency import parse_numbers
from fastagi.jobs.ami_control import AmiControl
from fastagi.jobs.registry import periodic_jobs
from fastagi.billing.admission import DEFAULT_CREDIT_SLICE_SECONDS
from fastagi.services import DbRunner, ServeConfig, Services
from fastagi.settings import (Option, SettingsError, SettingsSource, add_options,
                              database_url, dataclass_defaults, load_options, source_from_args)
from fastagi.store.alerts import missing_notifier_privilege
from fastagi.store import route_table
from fastagi.store.privileges import missing_privilege

log = logging.getLogger(__name__)


class StartupError(RuntimeError):
    """The server must not start; the message is one line."""


# setting name -> how it is read and its help; defaults are ServeConfig's field defaults
OPTIONS: dict[str, Option] = {
    "listen": Option(str, "Twisted server endpoint"),
    "session_timeout": Option(float, "seconds to wait for Asterisk's environment block or a "
                                     "reply, and for a handler's answer"),
    "interactive_timeout": Option(float, "seconds a script that waits for the caller's keys "
                                         "(agent_login) may run in all"),
    "db_timeout": Option(float, "seconds a database call may take before the answer is "
                                "REJECT/unavailable (below --session-timeout)"),
    "max_call_seconds": Option(int, "longest call ever authorized, seconds"),
    "dial_template": Option(str, "dial target for an allowed call"),
    "emergency_numbers": Option(parse_numbers, "comma list of emergency numbers, matched as "
                                               "whole dialled numbers: always allowed, never "
                                               "billed",
                                aliases=("emergency_prefixes",)),
    "stale_grace_seconds": Option(int, "grace after a call's maximum duration before an "
                                       "unsettled call is released"),
    "stale_sweep_seconds": Option(int, "how often the stale-call sweep runs"),
    "login_sync_seconds": Option(float, "how often client database logins are synced "
                                        "(CALL sync_db_logins(): suspensions lock logins), "
                                        "besides the db_login_sync event; 0: off. Needs "
                                        "EXECUTE on sync_db_logins"),
    "shutdown_grace_seconds": Option(float, "on SIGTERM, seconds sessions in flight may take "
                                            "to finish"),
    "db_pool_size": Option(int, "database connections = database threads"),
    "server_name": Option(str, "this server's name in call records", shown="the host name"),
    "ami": Option(str, "Asterisk Manager Interface HOST:PORT: end live calls of suspended "
                       "clients, reconcile live calls with Asterisk. The user is --ami-user, "
                       "the secret ICTCONTACT_AMI_SECRET or the config file key ami-secret "
                       "(never an option)", shown="off"),
    "ami_user": Option(str, "AMI user (as in asterisk-conf/manager.conf)"),
    "ami_asterisk": Option(str, "the address Asterisk's FastAGI connections come from, when "
                                "it differs from the address AMI reaches",
                           shown="the AMI peer"),
    "ami_timeout": Option(float, "seconds an AMI action may take"),
    "enforce_poll_seconds": Option(float, "how often the suspension log is read"),
    "enforce_catch_up_seconds": Option(float, "how often every call that must end is looked "
                                              "for (also at every AMI login)"),
    "reconcile_seconds": Option(float, "how often live calls are compared with Asterisk's "
                                       "channels (also at every AMI login)"),
    "credit_slice_seconds": Option(int, "with --ami: reserve credit in slices of this many "
                                        "seconds and extend live calls while credit lasts, so "
                                        "concurrent calls share the balance; 0: off, each call "
                                        "reserves its whole maximum",
                                   shown=f"{DEFAULT_CREDIT_SLICE_SECONDS} with --ami, else 0"),
    "metrics": Option(str, "Twisted endpoint for the Prometheus /metrics page, e.g. tcp:9464",
                      shown="off"),
}
SECRET_SETTINGS = ("ami_secret",)  # environment or config file only, never the command line


def _yes_no(text: str) -> bool:
    value = text.strip().lower()
    if value not in ("yes", "no", "true", "false", "on", "off", "1", "0"):
        raise ValueError(f"say yes or no, not {text!r}")
    return value in ("yes", "true", "on", "1")


_yes_no.__name__ = "yes/no"
# The notifier inside serve (docs/alerts.md); its own settings are the notifier's.
ALERTS_SWITCH = {"alerts": Option(_yes_no, "also send the alert outbox (as `ictcontact "
                                           "notifier` does, with its --alert-* settings)")}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--db", help="SQLAlchemy URL (env ICTCONTACT_DB)")
    add_options(parser, OPTIONS, dataclass_defaults(ServeConfig))
    add_options(parser, ALERTS_SWITCH, {"alerts": "no"})
    add_options(parser, ALERT_OPTIONS, dataclass_defaults(NotifierConfig))


def load_config(source: SettingsSource) -> ServeConfig:
    """The ServeConfig from CLI, environment, config file and defaults.
    Raises SettingsError naming the bad setting."""
    defaults = dataclass_defaults(ServeConfig)
    values = load_options(source, OPTIONS, defaults)
    for name in SECRET_SETTINGS:
        values[name] = source.get(name, defaults[name])
    try:
        return ServeConfig(**values)
    except ValueError as exc:
        raise SettingsError(str(exc)) from exc


def prepare_database(url: str, engine: Engine,
                     login_sync: bool = False) -> migrate.SchemaStatus:
    """Refuse a database that is missing, has no schema, or is behind or ahead of the code.
    Raises StartupError (one line)."""
    where = make_url(url).render_as_string(hide_password=True)
    try:
        state = migrate.status(engine)
        # never create one here: a typo in --db would serve an empty database
        if not state.database_exists:
            raise StartupError(f"the database {where} does not exist: check --db, or create "
                               f"it with `ictcontact db upgrade --db URL`")
        if state.current == 0:
            raise StartupError(f"the database {where} has no schema: check --db, or create "
                               f"it with `ictcontact db upgrade --db URL`")
        state = migrate.require_current(engine)
        with engine.connect() as conn:
            problems = galera.node_problems(conn)
        if problems:
            raise StartupError(problems[0])
        missing = missing_privilege(engine, login_sync)
        if missing:  # else it would start, and answer every call `unavailable`
            raise StartupError(f"the database account lacks a privilege the server needs: "
                               f"{missing}")
        return state
    except StartupError:
        raise
    except migrate.SchemaError as exc:
        raise StartupError(_first_line(exc)) from exc
    except Exception as exc:  # unreachable, access denied, bad URL: one line
        reason = getattr(exc, "orig", None) or exc
        raise StartupError(f"cannot use the database {where}: "
                           f"{_first_line(reason)}") from exc


def check_endpoints(config: ServeConfig) -> None:
    """Refuse an endpoint description Twisted cannot read (`garbage`, `0.0.0.0:4574`) before
    anything starts: parsed with a reactor that is never run. Raises SettingsError."""
    from twisted.internet.testing import MemoryReactor

    for name, description in (("listen", config.listen), ("metrics", config.metrics)):
        if not description:
            continue
        try:
            serverFromString(MemoryReactor(), description)
        except Exception as exc:  # ValueError, KeyError, TypeError from the parser
            raise SettingsError(
                f"--{name} {description!r} is not a Twisted server endpoint "
                f"({_first_line(exc)}): write e.g. tcp:4573:interface=0.0.0.0") from exc


def run(args: argparse.Namespace) -> int:
    source = source_from_args(args)
    config = load_config(source)
    check_endpoints(config)
    alerts = load_notifier_config(source) if source.get("alerts", False, _yes_no) else None
    url = database_url(source)
    engine = make_engine(url, pool_size=config.db_pool_size,
                         timeout_s=max(1, math.ceil(config.db_timeout)))
    try:
        state = prepare_database(url, engine, login_sync=config.login_sync_seconds > 0)
        missing = missing_notifier_privilege(engine) if alerts is not None else None
        if missing:
            raise StartupError(f"the database account lacks a privilege --alerts needs: "
                               f"{missing}")
    except StartupError as exc:
        engine.dispose()
        print(f"ictcontact serve: {exc}", file=sys.stderr)
        return 1
    from twisted.internet import reactor  # the one place the global reactor is used

    from fastagi.routes import INTERACTIVE, ROUTES
    log.info("schema version %d", state.current)
    return ServerRun(reactor, engine, config, ROUTES, INTERACTIVE, alerts=alerts).run()


class ServerRun:
    """One run of the server on `reactor`: start with it, drain and stop on shutdown."""

    def __init__(self, reactor: Any, engine: Engine, config: ServeConfig,
                 routes: Mapping[str, Any], interactive: frozenset[str] = frozenset(),
                 alerts: NotifierConfig | None = None) -> None:
        from fastagi.agi.server import AgiServerFactory

        self.reactor = reactor
        self.config = config
        self.engine = engine
        self.db = DbRunner(engine, reactor, reactor, config.db_pool_size, config.db_timeout)
        self.services = Services(clock=reactor, db=self.db, config=config)
        metrics = self.services.metrics
        self.db.on_failure = metrics.db_failure
        self.db.on_retry = lambda kind: metrics.db_retries.inc()
        self.factory = AgiServerFactory(routes, self.services, interactive=interactive)
        self.ami: AmiControl | None = None
        if config.ami:
            self.ami = AmiControl(reactor, config, self.db, metrics)
        self.notifier = Notifier(reactor, self.db, alerts) if alerts is not None else None
        self.port: IListeningPort | None = None
        self.metrics_port: IListeningPort | None = None
        self.loops: list[LoopingCall] = []
        self.exit_code = 0

    def run(self) -> int:
        """Run the reactor until shutdown; the process exit code."""
        self.reactor.callWhenRunning(self.start)
        self.reactor.addSystemEventTrigger("before", "shutdown", self.stop)
        self.reactor.run()
        return self.exit_code

    def start(self) -> Deferred:
        self.db.start()
        # The copy of the route table is made now, in the background, not at the first
        # routed call: that call and the ones after it would read the tables meanwhile and
        # share the CPU with the load (about 1-2 s per 100,000 buy rates).
        route_table.copy_of(self.engine).refresh(self.engine)
        listening = serverFromString(self.reactor, self.config.listen).listen(self.factory)
        return listening.addCallbacks(self._listening, self._cannot_listen)

    def _start_extras(self) -> Deferred | None:
        if self.ami is not None:
            self.ami.start()
        else:
            log.warning("AMI not configured (--ami): live calls of a suspended client go on "
                        "until their own limit; enforcement and reconciliation are off")
        if not self.config.metrics:
            return None
        from fastagi.metrics_http import metrics_site
        listening = serverFromString(self.reactor, self.config.metrics).listen(
            metrics_site(self.services.metrics))

        def listening_ok(port: IListeningPort) -> None:
            self.metrics_port = port
            address = port.getHost()
            log.info("metrics on %s:%s/metrics (%s)", getattr(address, "host", address),
                     getattr(address, "port", ""), self.config.metrics)

        def cannot(failure: Failure) -> None:
            log.error("cannot serve metrics on %s: %s", self.config.metrics,
                      _first_line(failure.value))
        return listening.addCallbacks(listening_ok, cannot)

    def _listening(self, port: IListeningPort) -> None:
        self.port = port
        address = port.getHost()
        log.info("listening on %s:%s (%s; session timeout %g s, database timeout %g s, "
                 "%d database threads)", getattr(address, "host", address),
                 getattr(address, "port", ""), self.config.listen,
                 self.config.session_timeout, self.config.db_timeout,
                 self.config.db_pool_size)
        self._start_extras()
        if self.notifier is not None:
            self.notifier.start()
        for job, interval in periodic_jobs(self.services, self.ami, self.notifier):
            loop = LoopingCall(_guarded(job))
            loop.clock = self.reactor
            loop.start(interval, now=True)
            self.loops.append(loop)

    def _cannot_listen(self, failure: Failure) -> None:
        print(f"ictcontact serve: cannot listen on {self.config.listen}: "
              f"{_first_line(failure.value)}", file=sys.stderr)
        self.exit_code = 1
        self.reactor.stop()

    def stop(self) -> Deferred:
        """Fires when listening has stopped, sessions have drained and threads stopped."""
        return ensureDeferred(self._stop())

    async def _stop(self) -> None:
        if self.port is not None:
            await self.port.stopListening()
            log.info("stopped listening; %d session(s) in flight", len(self.factory.live))
        for loop in self.loops:
            if loop.running:
                loop.stop()
        aborted = await self.factory.drain(self.config.shutdown_grace_seconds)
        if self.ami is not None:
            await self.ami.stop()
        if self.metrics_port is not None:
            await self.metrics_port.stopListening()
        if self.notifier is not None:
            self.notifier.stop()   # sends in flight end within --alert-timeout
        # Sessions are over: a database call still running is answered to no one. Bounded,
        # so a node that stopped answering cannot hold the exit (threads are left behind).
        self.db.stop(timeout=self.config.db_timeout)
        log.info("stopped after %d session(s) (%d aborted at shutdown)",
                 self.factory.sessions_done, aborted)


def _guarded(job: Callable[[], Any]) -> Callable[[], Deferred]:
    """`job` for a LoopingCall: awaited when async, its failures logged, never fatal."""
    target = getattr(job, "func", job)  # a functools.partial names its function
    name = getattr(target, "__qualname__", repr(target))

    def failed(failure: Failure) -> None:
        # one line (a job that fails every few seconds must not flood the log with
        # tracebacks); the traceback is there at --log-level DEBUG
        log.error("periodic job %s failed: %s", name, describe_job_failure(failure.value))
        log.debug("periodic job %s failed:\n%s", name, failure.getTraceback())

    def call() -> Deferred:
        try:
            outcome = job()
            running = ensureDeferred(outcome) if isawaitable(outcome) else succeed(outcome)
        except Exception:
            running = Deferred()
            running.errback(Failure())
        return running.addErrback(failed)

    return call


def describe_job_failure(exc: BaseException) -> str:
    """The driver's error (`OperationalError: (1142, "UPDATE command denied ...")`) rather
    than SQLAlchemy's multi-line text."""
    reason = getattr(exc, "orig", None) or exc
    return f"{type(reason).__name__}: {_first_line(reason)}"


def _first_line(value: object) -> str:
    lines = str(value).strip().splitlines()
    return lines[0] if lines else type(value).__name__
