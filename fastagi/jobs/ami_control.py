"""What `ictcontact serve --ami HOST:PORT` runs: the AMI client, enforcement,
reconciliation and slice extension (their periodic jobs are listed in
fastagi.jobs.registry).

Which Asterisk this is: `--ami-asterisk ADDRESS` when given, else the address the AMI
connection reached. Calls record the address their FastAGI request came from
(`calls.asterisk`); the two are the same when FastAGI and AMI reach Asterisk on the same
address (same host: 127.0.0.1). Set --ami-asterisk when they differ (NAT, several
interfaces) to the address Asterisk's FastAGI connections come from.
"""

from __future__ import annotations

import logging
from typing import Any

from twisted.internet.defer import Deferred

from fastagi.ami.client import AmiClient, client_from_settings
from fastagi.jobs.enforcement import Enforcer
from fastagi.jobs.reconciliation import Reconciler
from fastagi.jobs.slice_extender import SliceExtender
from fastagi.metrics import Metrics
from fastagi.services import DbRun, ServeConfig

log = logging.getLogger(__name__)


class AmiControl:
    """The AMI client and what runs on it."""

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
