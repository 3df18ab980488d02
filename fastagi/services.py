"""What every route handler shares: configuration, the clock, and the database runner.

Handlers are `async def handle(channel, services)` and do database work with
`await services.db.run(fn, *args)`, where `fn(engine, *args)` is a small synchronous
function (one `with engine.begin()` per unit of work) run on a thread pool.
"""

from __future__ import annotations

import logging
import socket
from dataclasses import dataclass, field
from typing import Any, Callable, Protocol, TypeVar

from sqlalchemy.engine import Engine
from twisted.internet.defer import Deferred, TimeoutError as DeferredTimeout
from twisted.internet.interfaces import IReactorThreads, IReactorTime
from twisted.python.failure import Failure

from fastagi.agi.errors import Unavailable
from fastagi.ami import DEFAULT_USER as DEFAULT_AMI_USER
from fastagi.billing.admission import DEFAULT_CREDIT_SLICE_SECONDS, DEFAULT_MAX_CALL_SECONDS
from fastagi.db import retry
from fastagi.emergency import DEFAULT_NUMBERS as DEFAULT_EMERGENCY_NUMBERS
from fastagi.metrics import Metrics
from fastagi.workers import WorkerPool

T = TypeVar("T")
log = logging.getLogger(__name__)



@dataclass(frozen=True)
class ServeConfig:
    """Settings of one server process (times in seconds)."""

    listen: str = "tcp:4573:interface=127.0.0.1"
    session_timeout: float = 20.0
    interactive_timeout: float = 180.0
    db_timeout: float = 5.0
    max_call_seconds: int = DEFAULT_MAX_CALL_SECONDS
    dial_template: str = "PJSIP/{number}@carrier"
    emergency_numbers: tuple[str, ...] = DEFAULT_EMERGENCY_NUMBERS
    stale_grace_seconds: int = 300
    stale_sweep_seconds: int = 60
    # CALL sync_db_logins() this often (0 = off): lock-outs go on while any server's
    # database node lives, even where the db_login_sync event is not (Galera, scheduler off)
    login_sync_seconds: float = 1.0
    shutdown_grace_seconds: float = 10.0
    db_pool_size: int = 10
    server_name: str = field(default_factory=socket.gethostname)
    # AMI (fastagi/jobs/ami_control.py): empty `ami` = no AMI, enforcement and reconciliation off
    ami: str = ""
    ami_user: str = DEFAULT_AMI_USER
    ami_secret: str = field(default="", repr=False)
    ami_asterisk: str = ""
    ami_timeout: float = 5.0
    enforce_poll_seconds: float = 1.0
    enforce_catch_up_seconds: float = 60.0
    reconcile_seconds: float = 30.0
    # Reserve credit slice by slice (AMI needed): None = DEFAULT_CREDIT_SLICE_SECONDS with
    # AMI, off without; 0 = off (each call reserves its whole maximum duration).
    credit_slice_seconds: int | None = None
    metrics: str = ""

    @property
    def slicing(self) -> bool:
        return bool(self.ami) and self.credit_slice_seconds > 0

    def __post_init__(self) -> None:
        for name in ("session_timeout", "interactive_timeout", "db_timeout", "max_call_seconds",
                     "stale_sweep_seconds", "db_pool_size", "ami_timeout",
                     "enforce_poll_seconds", "enforce_catch_up_seconds", "reconcile_seconds"):
            if getattr(self, name) <= 0:
                raise ValueError(f"{name} must be positive, not {getattr(self, name)!r}")
        for name in ("stale_grace_seconds", "shutdown_grace_seconds", "login_sync_seconds"):
            if getattr(self, name) < 0:
                raise ValueError(f"{name} must not be negative")
        if self.db_timeout >= self.session_timeout:
            raise ValueError(f"db_timeout ({self.db_timeout:g} s) must be shorter than "
                             f"session_timeout ({self.session_timeout:g} s) so a slow "
                             "database still gets a definite answer to the dialplan")
        if self.interactive_timeout < self.session_timeout:
            raise ValueError(f"interactive_timeout ({self.interactive_timeout:g} s) must not "
                             f"be shorter than session_timeout ({self.session_timeout:g} s)")
        if "{number}" not in self.dial_template:
            raise ValueError("dial_template must contain {number}")
        if self.credit_slice_seconds is None:
            object.__setattr__(self, "credit_slice_seconds",
                               DEFAULT_CREDIT_SLICE_SECONDS if self.ami else 0)
        if self.credit_slice_seconds < 0:
            raise ValueError("credit_slice_seconds must not be negative")
        if self.credit_slice_seconds and not self.ami:
            raise ValueError("credit_slice_seconds needs ami: without AMI a call could not be "
                             "extended past its first slice")
        if self.ami and not self.ami_secret:
            raise ValueError("ami is set but ami_secret is empty: give the AMI secret in "
                             "ICTCONTACT_AMI_SECRET or the config file key ami-secret")


class DbRunner:
    """Runs `fn(engine, *args, **kw)` on a bounded thread pool, off the reactor.

    The pool has as many threads as the SQLAlchemy pool has connections, so a thread never
    waits for a connection. Start it with the reactor (`start`) and stop it on shutdown.
    """

    def __init__(self, engine: Engine, reactor: IReactorThreads, clock: IReactorTime,
                 size: int, timeout: float) -> None:
        self.engine = engine
        self._reactor = reactor
        self._clock = clock
        self._timeout = timeout
        self.pool = WorkerPool(reactor, size, name="ictcontact-db")
        self.on_failure: Callable[[str], None] | None = None  # "error" / "timeout" (metrics)
        self.on_retry: retry.Observer | None = None  # "lock" / "reconnect" (metrics)

    def start(self) -> None:
        self.pool.start()

    def stop(self, timeout: float | None = None) -> None:
        """Stop the threads and close the connections. With `timeout`: work not started
        is dropped and work in progress gets `timeout` seconds; a thread still in a
        database call after that (a node that stopped answering: its read can take the
        driver's read timeout, and a reconnect) is left behind, so shutdown stays bounded.
        None waits for all queued work."""
        if timeout is not None:
            dropped = self.pool.cancel_queued()
            if dropped:
                log.warning("shutdown: %d database call(s) not started were dropped", dropped)
        stuck = self.pool.stop(timeout)
        if stuck:
            log.warning("shutdown: %d database thread(s) still in a call after %g s, left "
                        "behind", stuck, timeout)
        self.engine.dispose()

    def run(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> Deferred[T]:
        """Fires with `fn(engine, *args, **kwargs)`'s result, or errbacks with its exception,
        or with Unavailable when no answer came within db_timeout (the thread is left to
        finish; its result is discarded)."""
        deferred = self.pool.submit(self._observed, fn, *args, **kwargs)
        deferred.addTimeout(self._timeout, self._clock)

        def timed_out(failure: Failure) -> Failure:
            if self.on_failure is not None:
                self.on_failure("timeout" if failure.check(DeferredTimeout) else "error")
            if failure.check(DeferredTimeout):
                raise Unavailable(f"database gave no answer within {self._timeout:g} s "
                                  f"({getattr(fn, '__name__', fn)})")
            return failure

        return deferred.addErrback(timed_out)

    def _observed(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        with retry.observed_by(self.on_retry):   # on the worker thread, for this call only
            return fn(self.engine, *args, **kwargs)


class DbRun(Protocol):
    """What handlers may use of the database runner (DbRunner, or a test double)."""

    def run(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> Deferred[T]: ...


@dataclass(frozen=True)
class Services:
    """Shared by all sessions: `clock` (IReactorTime), `db` (DbRun), `config`, `metrics`."""

    clock: IReactorTime
    db: DbRun
    config: ServeConfig
    metrics: Metrics = field(default_factory=Metrics)
