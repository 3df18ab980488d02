"""The server's Prometheus metrics (prometheus_client), one registry per server.

Every label has a small fixed set of values (script names of the route table, decisions,
reasons of fastagi.reasons, AMI results): never a client code, a number or a channel.
Per-client figures belong in SQL views. The names are documented in docs/fastagi.md.
`--metrics tcp:9464` serves them over HTTP (`/metrics`, the Twisted resource
prometheus_client provides) from `ictcontact serve`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Iterable

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

from fastagi import channel_vars, reasons

# seconds: FastAGI sessions take a few ms; the tail up to the session timeout matters
LATENCY_BUCKETS = (0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 20.0)
OTHER = "other"


@dataclass
class Metrics:
    """The metric objects; `scripts` bounds the `script` label (others count as `other`)."""

    scripts: frozenset[str] = frozenset({"authorize", "settle", "failover", "health"})
    registry: CollectorRegistry = field(default_factory=CollectorRegistry)

    def __post_init__(self) -> None:
        r = self.registry
        self.sessions = Counter(
            "ictcontact_agi_sessions", "FastAGI sessions by script and outcome "
            "(ALLOW, REJECT, or none when no answer was decided)",
            ["script", "outcome"], registry=r)
        self.authorize_decisions = Counter(
            "ictcontact_authorize_decisions", "authorize answers by reason "
            "(allowed, or the rejection reason)", ["reason"], registry=r)
        self.authorize_seconds = Histogram(
            "ictcontact_authorize_seconds", "authorize session time, connect to answer",
            buckets=LATENCY_BUCKETS, registry=r)
        self.settle_seconds = Histogram(
            "ictcontact_settle_seconds", "settle session time, connect to answer",
            buckets=LATENCY_BUCKETS, registry=r)
        self.db_errors = Counter(
            "ictcontact_db_errors", "database calls that failed (kind: error or timeout)",
            ["kind"], registry=r)
        self.db_retries = Counter(
            "ictcontact_db_retries", "transactions run again (deadlock, lock wait, lost "
            "connection)", registry=r)
        self.live_calls = Gauge(
            "ictcontact_live_calls", "live calls in the database (every server and "
            "Asterisk), sampled periodically", registry=r)
        self.stale_closed = Counter(
            "ictcontact_stale_calls_closed", "live calls closed as stale by the sweep",
            registry=r)
        self.ami_connected = Gauge(
            "ictcontact_ami_connected", "1 while logged in to AMI, else 0", registry=r)
        self.ami_logins = Counter(
            "ictcontact_ami_logins", "successful AMI logins (the first and every reconnect)",
            registry=r)
        self.enforcement_hangups = Counter(
            "ictcontact_enforcement_hangups", "Hangup actions sent for live calls that must "
            "end (reason: suspended or no-credit; result: hungup, gone, failed)",
            ["reason", "result"], registry=r)
        self.reconciliation_fixes = Counter(
            "ictcontact_reconciliation_fixes", "live calls whose channel was gone from "
            "Asterisk (action: settled from the CDR, or closed for review)",
            ["action"], registry=r)
        self.reconciliation_runs = Counter(
            "ictcontact_reconciliation_runs", "reconciliation passes (result: ok, failed)",
            ["result"], registry=r)

    # --- what the server reports ---------------------------------------------------
    def session(self, script: str, decision: str | None, reason: str | None,
                elapsed_s: float) -> None:
        """One FastAGI session ended (called from the session's log line)."""
        name = script if script in self.scripts else OTHER
        outcome = decision if decision in (channel_vars.ALLOW, channel_vars.REJECT) else "none"
        self.sessions.labels(name, outcome).inc()
        if name == "authorize":
            self.authorize_seconds.observe(elapsed_s)
            label = "allowed" if outcome == channel_vars.ALLOW else (
                reason if reason in reasons.ALL else OTHER)
            self.authorize_decisions.labels(label).inc()
        elif name == "settle":
            self.settle_seconds.observe(elapsed_s)

    def db_failure(self, kind: str) -> None:
        self.db_errors.labels(kind if kind in ("error", "timeout") else OTHER).inc()

    def hangup(self, reason: str, result: str) -> None:
        self.enforcement_hangups.labels(reason, result).inc()

    def names(self) -> Iterable[str]:
        """Every metric family name as exposed (counters get `_total`)."""
        for metric in self.registry.collect():
            yield metric.name
