"""`health` and the database runner against the real MariaDB."""

from __future__ import annotations

import threading
import time

import pytest
import pytest_twisted
from sqlalchemy.exc import ProgrammingError
from twisted.internet import reactor

from fastagi import channel_vars as v, reasons
from fastagi.agi.errors import Unavailable
from fastagi.testing.fake_asterisk import run_session
from fastagi.agi.server import AgiServerFactory
from fastagi.db.engine import make_engine
from fastagi.routes import ROUTES
from fastagi.services import DbRunner, ServeConfig, Services

POOL = 3


def select_missing_table(engine):
    with engine.connect() as conn:
        return conn.exec_driver_sql("SELECT * FROM no_such_table").all()


def make_runner(engine, timeout=2.0):
    runner = DbRunner(engine, reactor, reactor, size=POOL, timeout=timeout)
    runner.start()
    return runner


async def health_session(runner):
    config = ServeConfig(session_timeout=5, db_timeout=runner._timeout)
    factory = AgiServerFactory(ROUTES, Services(clock=reactor, db=runner, config=config))
    port = reactor.listenTCP(0, factory, interface="127.0.0.1")
    try:
        return await run_session(reactor, "127.0.0.1", port.getHost().port, "health",
                                 timeout=10)
    finally:
        await port.stopListening()


@pytest_twisted.ensureDeferred
async def test_health_ok(engine):
    runner = make_runner(engine)
    try:
        result = await health_session(runner)
    finally:
        runner.pool.stop()
    assert result.server_closed
    assert dict(result.set_by_server) == {v.HEALTH: "OK", v.RESULT: v.ALLOW, v.REASON: ""}


@pytest_twisted.ensureDeferred
async def test_health_down_when_database_unreachable():
    runner = make_runner(make_engine("mysql+pymysql://root@127.0.0.1:1/nothing",
                                     pool_size=POOL, timeout_s=1))
    try:
        result = await health_session(runner)
    finally:
        runner.stop()
    assert result.server_closed
    assert dict(result.set_by_server) == {
        v.HEALTH: "DOWN", v.RESULT: v.REJECT, v.REASON: reasons.UNAVAILABLE,
        v.CAUSE: str(reasons.cause_for(reasons.UNAVAILABLE))}


@pytest_twisted.ensureDeferred
async def test_runner_uses_the_pool_threads_and_passes_the_engine(engine):
    runner = make_runner(engine)
    try:
        seen = await runner.run(lambda eng, a, b=0: (eng, a + b,
                                                     threading.current_thread().name), 1, b=2)
        with pytest.raises(ProgrammingError):
            await runner.run(select_missing_table)
    finally:
        runner.pool.stop()
    assert seen[0] is engine and seen[1] == 3
    assert seen[2].startswith("ictcontact-db-")
    assert runner.pool.max == POOL


@pytest_twisted.ensureDeferred
async def test_runner_timeout_is_unavailable_and_does_not_block_the_reactor(engine):
    runner = make_runner(engine, timeout=0.2)
    release = threading.Event()
    try:
        started = time.monotonic()
        with pytest.raises(Unavailable, match="no answer within 0.2 s"):
            await runner.run(lambda eng: release.wait(60))
        # Answered without waiting for the work (60 s); the bound is generous for a
        # loaded machine, the 0.2 s is checked by the message above.
        assert time.monotonic() - started < 30
    finally:
        release.set()
        runner.pool.stop()
