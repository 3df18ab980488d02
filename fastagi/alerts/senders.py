"""Sending one alert: blocking calls for the notifier's worker threads (stdlib smtplib and
http.client, each with a timeout). Each returns on success and raises SendError with one
line saying why otherwise; the notifier retries later."""

from __future__ import annotations

import http.client
import smtplib
import socket
import ssl
import time
from dataclasses import dataclass, field
from urllib.parse import urlsplit

from fastagi.alerts import messages
from fastagi.store.alerts import Delivery


class SendError(RuntimeError):
    """The destination did not accept the alert (the message is one line)."""


@dataclass(frozen=True)
class SmtpServer:
    host: str
    port: int
    sender: str
    security: str = "none"          # none | starttls | tls
    user: str = ""
    password: str = field(default="", repr=False)


def parse_smtp(text: str) -> tuple[str, int]:
    """HOST[:PORT] (port 25 by default); ValueError otherwise."""
    host, sep, port = text.strip().rpartition(":")
    if not sep:
        host, port = text.strip(), "25"
    if not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise ValueError(f"{text!r} is not HOST:PORT")
    return host, int(port)


def send(delivery: Delivery, smtp: SmtpServer | None, timeout: float) -> None:
    """Send `delivery` on its channel; raises SendError."""
    try:
        if delivery.channel == "email":
            send_email(delivery, smtp, timeout)
        elif delivery.channel == "webhook":
            post_webhook(delivery, timeout)
        else:
            raise SendError(f"unknown channel {delivery.channel!r}")
    except SendError:
        raise
    except (OSError, smtplib.SMTPException, http.client.HTTPException, ssl.SSLError) as exc:
        raise SendError(f"{type(exc).__name__}: {_one_line(exc)}") from exc


def send_email(delivery: Delivery, smtp: SmtpServer | None, timeout: float) -> None:
    if smtp is None:
        raise SendError("no SMTP server configured (--alert-smtp HOST:PORT)")
    message = messages.email_message(delivery.event, smtp.sender, delivery.address)
    if smtp.security == "tls":
        client: smtplib.SMTP = smtplib.SMTP_SSL(smtp.host, smtp.port, timeout=timeout,
                                                context=ssl.create_default_context())
    else:
        client = smtplib.SMTP(smtp.host, smtp.port, timeout=timeout)
    try:
        if smtp.security == "starttls":
            client.starttls(context=ssl.create_default_context())
        if smtp.user:
            client.login(smtp.user, smtp.password)
        refused = client.send_message(message)
        if refused:
            raise SendError(f"the mail server refused {', '.join(refused)}")
    finally:
        try:
            client.quit()
        except (OSError, smtplib.SMTPException):
            client.close()


def post_webhook(delivery: Delivery, timeout: float) -> None:
    """POST the signed JSON; any 2xx answer is delivered, anything else is retried
    (redirects are not followed: the URL is the operator's to fix)."""
    url = urlsplit(delivery.address)
    if url.scheme not in ("http", "https") or not url.hostname:
        raise SendError(f"not an http(s) URL: {delivery.address!r}")
    if not delivery.secret:
        raise SendError("the webhook destination has no secret")
    body = messages.webhook_body(delivery.event)
    headers = messages.webhook_headers(delivery.event, delivery.secret, int(time.time()), body)
    connection_class = (http.client.HTTPSConnection if url.scheme == "https"
                        else http.client.HTTPConnection)
    connection = connection_class(url.hostname, url.port, timeout=timeout)
    try:
        path = url.path or "/"
        if url.query:
            path += "?" + url.query
        connection.request("POST", path, body=body, headers=headers)
        response = connection.getresponse()
        response.read(65536)
        if not 200 <= response.status < 300:
            raise SendError(f"the webhook answered {response.status} {response.reason}")
    except socket.timeout as exc:
        raise SendError(f"the webhook gave no answer within {timeout:g} s") from exc
    finally:
        connection.close()


def _one_line(value: object) -> str:
    lines = str(value).strip().splitlines()
    return lines[0] if lines else type(value).__name__
