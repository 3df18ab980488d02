"""The whole campaign path on real sockets: the FastAGI server (production routes) on the
test database, a FakePbx (AMI + the campaign dialplan) that drives it, an AmiClient, and
one or more Dialers."""

from __future__ import annotations

from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import AsyncIterator, Callable

from twisted.internet import reactor
from twisted.internet.defer import Deferred
from twisted.internet.endpoints import TCP4ClientEndpoint

from fastagi.ami.client import AmiClient
from fastagi.campaigns.dialer import Dialer, DialerConfig
from fastagi.testing.fake_pbx import FakePbx, Outcome
from fastagi.campaigns.originate import AmiOriginator
from fastagi.campaigns.queue_status import AmiQueueWatch
from fastagi.db.engine import make_engine
from fastagi.services import DbRunner
from tests.callcontrol.agi_server import agi_server


@dataclass
class Rig:
    pbx: FakePbx
    ami: AmiClient
    engine: object
    ami_port: int
    dialers: list[Dialer] = field(default_factory=list)
    runners: list[DbRunner] = field(default_factory=list)

    def add_dialer(self, name: str, **config) -> Dialer:
        runner = DbRunner(make_engine(self.engine.url.render_as_string(hide_password=False),
                                      pool_size=2),
                          reactor, reactor, size=2, timeout=10)
        runner.start()
        self.runners.append(runner)
        config.setdefault("failure_grace_seconds", 0.5)
        config.setdefault("housekeeping_seconds", 0.1)
        config.setdefault("finish_seconds", 0.2)
        config.setdefault("list_seconds", 0.2)
        dialer = Dialer(reactor, runner, AmiOriginator(self.ami, timeout_seconds=30),
                        DialerConfig(name=name, **config), ready=lambda: self.ami.connected,
                        queues=AmiQueueWatch(self.ami))
        self.dialers.append(dialer)
        dialer.start()
        return dialer


@asynccontextmanager
async def campaign_rig(engine, outcome_for: Callable[[str], Outcome] | None = None,
                       **serve_config) -> AsyncIterator[Rig]:
    """`serve_config`: ServeConfig settings of the FastAGI server (e.g. credit slices)."""
    async with agi_server(engine, pool=4, **serve_config) as server:
        pbx = FakePbx(reactor, server.port, outcome_for)
        port = pbx.listen(reactor)
        ami = AmiClient(TCP4ClientEndpoint(reactor, "127.0.0.1", port.getHost().port),
                        reactor, "ictcontact", "s3cret", name="dialer-test", min_delay=0.1,
                        max_delay=0.5)
        ami.start()
        await ami.when_connected()
        rig = Rig(pbx, ami, engine, port.getHost().port)
        try:
            yield rig
        finally:
            for dialer in rig.dialers:
                await dialer.stop()
            done: Deferred = pbx.when_idle()
            await done
            for runner in rig.runners:
                runner.stop()
            await ami.stop()
            await port.stopListening()
