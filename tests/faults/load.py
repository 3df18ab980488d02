"""Load pieces shared by the fault tests: one recorded FastAGI session (`Attempt`), the
calls a test holds (`Call`). Pauses come from tests/support/waiting.py.

Everything here runs on the global reactor inside a pytest-twisted test and talks to a
real server over loopback TCP with the fake Asterisk (`run_session`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal

from twisted.internet import reactor

from fastagi import channel_vars as v
from fastagi.testing.fake_asterisk import run_session


@dataclass
class Attempt:
    """One session as Asterisk saw it."""

    script: str
    args: tuple[str, ...]
    server: str                  # which server it went to (a label)
    started: float               # reactor time
    ended: float
    answer: dict[str, str] = field(default_factory=dict)  # variables the server set
    closed: bool = False         # the server closed the session (it did not hang)
    error: str | None = None     # could not connect at all

    @property
    def elapsed(self) -> float:
        return self.ended - self.started

    @property
    def result(self) -> str | None:
        return self.answer.get(v.RESULT)

    @property
    def reason(self) -> str | None:
        return self.answer.get(v.REASON)

    def __str__(self) -> str:
        what = self.error or f"{self.result}/{self.reason or '-'}"
        return (f"{self.script}{list(self.args)}@{self.server} t={self.started:.2f}"
                f"+{self.elapsed:.2f}s {what} closed={self.closed}")


async def attempt(port: int, server: str, script: str, *args: str,
                  timeout: float = 15) -> Attempt:
    """Play one session against 127.0.0.1:port; never raises."""
    started = reactor.seconds()
    try:
        result = await run_session(reactor, "127.0.0.1", port, script, args, timeout=timeout)
    except Exception as exc:  # connection refused: the server is not there
        return Attempt(script, args, server, started, reactor.seconds(),
                       error=type(exc).__name__)
    return Attempt(script, args, server, started, reactor.seconds(),
                   answer=dict(result.set_by_server), closed=result.server_closed)


@dataclass
class Call:
    """A call the test was told ALLOW for, and how it is to be settled."""

    call_id: str
    client: str
    seconds: int                 # talk time to report at settle
    server: str = "-"
    cost: str | None = None      # ICT_COST once a settle answered ALLOW

    def expected_cost(self, rate_per_second: Decimal) -> str:
        # 1/1 increments; an answered call pays at least its 1 s initial increment
        return f"{rate_per_second * max(self.seconds, 1):.4f}"

    @property
    def talk(self) -> str:
        """settle's talk time argument, as the shipped hangup handler sends it."""
        return f"ms={self.seconds * 1000}"
