"""The notifier's settings, shared by `ictcontact notifier` and `ictcontact serve --alerts`
(the same option names, environment variables and config file keys)."""

from __future__ import annotations

import os
import socket
from dataclasses import dataclass, field
from typing import Any, Callable

from fastagi.alerts.senders import SmtpServer, parse_smtp
from fastagi.settings import (Option, SettingsError, SettingsSource, dataclass_defaults,
                              load_options)

SMTP_SECURITY = ("none", "starttls", "tls")


@dataclass(frozen=True)
class NotifierConfig:
    """Settings of one notifier (times in seconds)."""

    alert_name: str = ""                 # empty: <host name>-<pid>
    alert_poll_seconds: float = 1.0
    alert_batch: int = 8                 # deliveries claimed per poll = sending threads
    alert_timeout: float = 10.0          # one SMTP or HTTP exchange
    alert_lease_seconds: float = 60.0
    alert_retry_seconds: float = 5.0
    alert_retry_max_seconds: float = 900.0
    alert_smtp: str = ""
    alert_smtp_from: str = ""            # empty: ictcontact@<host name>
    alert_smtp_security: str = "none"
    alert_smtp_user: str = ""
    alert_smtp_password: str = field(default="", repr=False)

    def __post_init__(self) -> None:
        for name in ("alert_poll_seconds", "alert_batch", "alert_timeout",
                     "alert_lease_seconds", "alert_retry_seconds", "alert_retry_max_seconds"):
            if getattr(self, name) <= 0:
                raise ValueError(f"{name.replace('_', '-')} must be positive, "
                                 f"not {getattr(self, name)!r}")
        # A send must end (its socket times out) well before the lease lapses, or a
        # second notifier could take the same delivery while the first still sends it.
        if self.alert_lease_seconds < 3 * self.alert_timeout:
            raise ValueError(f"alert-lease-seconds ({self.alert_lease_seconds:g}) must be at "
                             f"least 3 x alert-timeout ({self.alert_timeout:g})")
        if self.alert_smtp_security not in SMTP_SECURITY:
            raise ValueError(f"alert-smtp-security is one of {', '.join(SMTP_SECURITY)}, "
                             f"not {self.alert_smtp_security!r}")
        if self.alert_smtp:
            parse_smtp(self.alert_smtp)
        if self.alert_smtp_user and not self.alert_smtp_password:
            raise ValueError("alert-smtp-user is set but the password is empty: give it in "
                             "ICTCONTACT_ALERT_SMTP_PASSWORD or the config file key "
                             "alert-smtp-password")

    @property
    def name(self) -> str:
        return self.alert_name or f"{socket.gethostname()}-{os.getpid()}"

    def smtp(self) -> SmtpServer | None:
        if not self.alert_smtp:
            return None
        host, port = parse_smtp(self.alert_smtp)
        return SmtpServer(host, port, self.alert_smtp_from or f"ictcontact@{socket.gethostname()}",
                          self.alert_smtp_security, self.alert_smtp_user,
                          self.alert_smtp_password)


def _positive(convert: Callable[[str], Any]) -> Callable[[str], Any]:
    def check(text: str) -> Any:
        value = convert(text)
        if value <= 0:
            raise ValueError(f"must be positive, not {text!r}")
        return value
    check.__name__ = f"positive {convert.__name__}"
    return check


def _smtp(text: str) -> str:
    parse_smtp(text)
    return text


OPTIONS: dict[str, Option] = {
    "alert_name": Option(str, "this notifier's name in the outbox (leased_by)",
                         shown="<host name>-<pid>"),
    "alert_poll_seconds": Option(_positive(float), "how often the outbox is read for alerts "
                                                   "due"),
    "alert_batch": Option(_positive(int), "most alerts claimed at once (sent in parallel)"),
    "alert_timeout": Option(_positive(float), "seconds one SMTP or webhook exchange may take"),
    "alert_lease_seconds": Option(_positive(float), "an alert claimed by a notifier that died "
                                                    "is sent again by another after this"),
    "alert_retry_seconds": Option(_positive(float), "first wait after a failed send; doubled "
                                                    "after each failure"),
    "alert_retry_max_seconds": Option(_positive(float), "longest wait between two tries"),
    "alert_smtp": Option(_smtp, "mail server HOST:PORT for e-mail alerts (the password is "
                                "ICTCONTACT_ALERT_SMTP_PASSWORD or the config file key "
                                "alert-smtp-password, never an option)", shown="none: e-mail "
                                "alerts wait until a notifier has one"),
    "alert_smtp_from": Option(str, "From address of alert e-mails",
                              shown="ictcontact@<host name>"),
    "alert_smtp_security": Option(str, "none, starttls or tls (SMTPS)"),
    "alert_smtp_user": Option(str, "user for SMTP AUTH", shown="no AUTH"),
}
SECRET_SETTINGS = ("alert_smtp_password",)   # environment or config file only


def load_notifier_config(source: SettingsSource) -> NotifierConfig:
    """The NotifierConfig from CLI, environment, config file and defaults.
    Raises SettingsError naming the bad setting."""
    defaults = dataclass_defaults(NotifierConfig)
    values = load_options(source, OPTIONS, defaults)
    for name in SECRET_SETTINGS:
        values[name] = source.get(name, defaults[name])
    try:
        return NotifierConfig(**values)
    except ValueError as exc:
        raise SettingsError(str(exc)) from exc
