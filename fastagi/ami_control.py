"""What `ictcontact serve --ami HOST:PORT` runs: the AMI client, enforcement and
reconciliation, and their periodic jobs.

Which Asterisk this is: `--ami-asterisk ADDRESS` when given, else the address the AMI
connection reached. Calls record the address their FastAGI request came from
(`calls.asterisk`); the two are the same when FastAGI and AMI reach Asterisk on the same
address (same host: 127.0.0.1). Set --ami-asterisk when they differ (NAT, several
interfaces) to the address Asterisk's FastAGI connections come from.
"""

from __future__ import annotations

import logging
from typing import Any, Callable

from twisted.internet.defer import Deferred

from fastagi.ami.client import AmiClient, client_from_settings
from fastagi.credit_slices import SliceExtender
from fastagi.enforcement import Enforcer
from fastagi.metrics import Metrics
from fastagi.reconciliation import Reconciler
from fastagi.services import DbRun, ServeConfig

log = logging.getLogger(__name__)

SLICE_CHECK_SECONDS = 5.0   # how often calls near the end of their slice are extended


class AmiControl:
    """The AMI client and what runs on it; `jobs()` for serve's periodic jobs."""

    def __init__(self, reactor: Any, config: ServeConfig, db: DbRun, metrics: Metrics,
                 client: AmiClient | None = None) -> None:
        self.config = config
        self.client = client or client_from_settings(
            reactor, config.ami, config.ami_user, config.ami_secret,
            name=config.server_name, action_timeout=config.ami_timeout,
            events="off")  # enforcement and reconciliation need no events: none parsed
        self.client.on_state(lambda up: _count_state(metrics, up))
        self.enforcer = Enforcer(self.client, db, reactor, self.asterisk, metrics)
        self.reconciler = Reconciler(self.client, db, reactor, self.asterisk, metrics)
        self.extender: SliceExtender | None = None
        if config.slicing:
            self.extender = SliceExtender(
                self.client, db, reactor, self.asterisk, config.credit_slice_seconds,
                config.max_call_seconds, config.stale_grace_seconds)

    def asterisk(self) -> str | None:
        """The `calls.asterisk` value this server enforces and reconciles."""
        return self.config.ami_asterisk or self.client.peer_host

    def jobs(self) -> list[tuple[Callable[[], Any], float]]:
        config = self.config
        jobs = [(self.enforcer.poll, config.enforce_poll_seconds),
                (self.enforcer.catch_up, config.enforce_catch_up_seconds),
                (self.reconciler.run, config.reconcile_seconds)]
        if self.extender is not None:
            jobs.append((self.extender.run, SLICE_CHECK_SECONDS))
        return jobs

    def start(self) -> None:
        log.info("AMI: connecting to %s as %s; enforcement and reconciliation on; %s",
                 self.config.ami, self.config.ami_user,
                 f"credit reserved in slices of {self.config.credit_slice_seconds} s"
                 if self.config.slicing else
                 "credit slices off (--credit-slice-seconds 0): each call reserves its "
                 "whole maximum duration")
        self.client.start()

    def stop(self) -> Deferred:
        self.reconciler.stop()
        return self.client.stop()


def _count_state(metrics: Metrics, up: bool) -> None:
    metrics.ami_connected.set(1 if up else 0)
    if up:
        metrics.ami_logins.inc()
