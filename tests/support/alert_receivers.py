"""Real local receivers of alerts: an SMTP server (aiosmtpd) and an HTTP server that checks
the webhook signature as a client's system would. Each runs in threads of the test process,
on a port of its own, and can be stopped (an outage) and started again on the same port.
"""

from __future__ import annotations

import email
import hashlib
import hmac
import json
import socket
import threading
import time
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from aiosmtpd.controller import Controller


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass(frozen=True)
class Mail:
    event_id: str
    message_id: str
    to: str
    subject: str
    body: str
    at: float           # time.time() when the server accepted it


class SmtpReceiver:
    """An SMTP server on 127.0.0.1:`port` keeping every message it accepts."""

    def __init__(self) -> None:
        self.port = free_port()
        self.mails: list[Mail] = []
        self._controller: Controller | None = None
        self._lock = threading.Lock()

    async def handle_DATA(self, server, session, envelope):  # aiosmtpd's hook name
        message = email.message_from_bytes(envelope.content)
        mail = Mail(message["X-ICTContact-Event-Id"], message["Message-ID"],
                    ",".join(envelope.rcpt_tos), message["Subject"],
                    message.get_payload(decode=True).decode("utf-8"), time.time())
        with self._lock:
            self.mails.append(mail)
        return "250 OK"

    def start(self) -> "SmtpReceiver":
        self._controller = Controller(self, hostname="127.0.0.1", port=self.port)
        self._controller.start()
        return self

    def stop(self) -> None:
        if self._controller is not None:
            self._controller.stop()
            self._controller = None

    def event_ids(self) -> list[str]:
        with self._lock:
            return [m.event_id for m in self.mails]


@dataclass(frozen=True)
class Hook:
    event_id: str
    document: dict
    signature_ok: bool
    timestamp: int
    at: float


class WebhookReceiver:
    """An HTTP server on 127.0.0.1:`port`. `mode`: 'ok' answers 204 and keeps the request;
    'fail' answers 500 (and keeps nothing); 'hang' keeps the request, then waits until
    `release` is set before answering 204 (a notifier can be killed meanwhile)."""

    def __init__(self, secret: str) -> None:
        self.secret = secret
        self.port = free_port()
        self.mode = "ok"
        self.hooks: list[Hook] = []
        self.arrived = threading.Event()     # set at each request that is kept
        self.release = threading.Event()
        self._server: ThreadingHTTPServer | None = None
        self._lock = threading.Lock()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/ictcontact/alerts"

    def verify(self, timestamp: str, body: bytes, given: str) -> bool:
        """The check docs/alerts.md tells receivers to make (written here on its own, not
        with the product's code)."""
        expected = "sha256=" + hmac.new(self.secret.encode(), timestamp.encode() + b"." + body,
                                        hashlib.sha256).hexdigest()
        return hmac.compare_digest(expected, given) and abs(time.time() - int(timestamp)) < 300

    def start(self) -> "WebhookReceiver":
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                if receiver.mode == "fail":
                    self.send_response(500)
                    self.end_headers()
                    return
                timestamp = self.headers["X-ICTContact-Timestamp"]
                hook = Hook(self.headers["X-ICTContact-Event-Id"], json.loads(body),
                            receiver.verify(timestamp, body,
                                            self.headers["X-ICTContact-Signature"] or ""),
                            int(timestamp), time.time())
                with receiver._lock:
                    receiver.hooks.append(hook)
                receiver.arrived.set()
                if receiver.mode == "hang":
                    receiver.release.wait(60)
                self.send_response(204)
                self.end_headers()

            def log_message(self, *args) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        self._server.daemon_threads = True
        threading.Thread(target=self._server.serve_forever, daemon=True,
                         name="webhook-receiver").start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def event_ids(self) -> list[str]:
        with self._lock:
            return [h.event_id for h in self.hooks]
