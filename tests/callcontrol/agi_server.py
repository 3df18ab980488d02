"""An in-process FastAGI server on real TCP, wired to a test database, for call tests."""

from __future__ import annotations

from contextlib import asynccontextmanager
from typing import AsyncIterator

from twisted.internet import reactor

from fastagi import channel_vars as v
from fastagi.testing.fake_asterisk import SessionResult, run_session
from fastagi.agi.server import AgiServerFactory
from fastagi.routes import INTERACTIVE, ROUTES
from fastagi.services import DbRunner, ServeConfig, Services


class RunningServer:
    def __init__(self, port: int) -> None:
        self.port = port

    async def session(self, script: str, *args: str, timeout: float = 10,
                      **kwargs) -> SessionResult:
        """Play one session like AGI(agi://127.0.0.1:port/script,args...)."""
        return await run_session(reactor, "127.0.0.1", self.port, script, args,
                                 timeout=timeout, **kwargs)

    async def variables(self, script: str, *args: str) -> dict[str, str]:
        result = await self.session(script, *args)
        assert result.server_closed, "the server must close every session itself"
        return dict(result.set_by_server)


@asynccontextmanager
async def agi_server(engine, pool: int = 4, **config) -> AsyncIterator[RunningServer]:
    """Serve the production route table against `engine` on a free loopback port."""
    config.setdefault("session_timeout", 10)
    config.setdefault("db_timeout", 5)
    serve_config = ServeConfig(**config)
    runner = DbRunner(engine, reactor, reactor, size=pool, timeout=serve_config.db_timeout)
    runner.start()
    factory = AgiServerFactory(ROUTES, Services(clock=reactor, db=runner, config=serve_config),
                               interactive=INTERACTIVE)
    port = reactor.listenTCP(0, factory, interface="127.0.0.1")
    try:
        yield RunningServer(port.getHost().port)
    finally:
        await port.stopListening()
        runner.pool.stop()


def reject_vars(reason: str, cause: int) -> dict[str, str]:
    return {v.RESULT: v.REJECT, v.REASON: reason, v.CAUSE: str(cause), v.CALL_ID: ""}
