"""Benchmark: FastAGI sessions of a trivial route (sets one variable) at N concurrent.

    .venv/bin/python bench/agi_trivial.py [--sessions 5000] [--concurrency 50]
                                              [--in-process]

The server (the real AgiServerFactory, route table {"trivial": sets ICT_RESULT}) runs in a
child process unless --in-process; this process plays Asterisk with the fake Asterisk
(`run_session`), keeping `concurrency` sessions open at all times. Latency is from the
connect call to the server closing the connection. Prints sessions/s and p50/p99/max.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time

from twisted.internet.defer import ensureDeferred, gatherResults


async def trivial(channel, services) -> None:
    from fastagi import channel_vars
    await channel.set_variable(channel_vars.RESULT, channel_vars.ALLOW)


def build_server(reactor, port: int):
    from fastagi.agi.server import AgiServerFactory
    from fastagi.services import ServeConfig, Services

    services = Services(clock=reactor, db=None, config=ServeConfig())
    factory = AgiServerFactory({"trivial": trivial}, services)
    return reactor.listenTCP(port, factory, backlog=1024, interface="127.0.0.1")


def serve_only() -> None:
    from twisted.internet import reactor

    listening = build_server(reactor, 0)
    print(listening.getHost().port, flush=True)
    reactor.run()


async def load(reactor, port: int, sessions: int, concurrency: int) -> list[float]:
    from fastagi import channel_vars
    from fastagi.testing.fake_asterisk import run_session

    latencies: list[float] = []
    remaining = iter(range(sessions))

    async def worker() -> None:
        for _ in remaining:
            started = time.perf_counter()
            result = await run_session(reactor, "127.0.0.1", port, "trivial", timeout=10)
            if not result.server_closed or \
                    result.set_by_server.get(channel_vars.RESULT) != channel_vars.ALLOW:
                raise RuntimeError(f"bad session: {result}")
            latencies.append(time.perf_counter() - started)

    await gatherResults([ensureDeferred(worker()) for _ in range(concurrency)])
    return latencies


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sessions", type=int, default=5000)
    parser.add_argument("--concurrency", type=int, default=50)
    parser.add_argument("--in-process", action="store_true",
                        help="server and fake Asterisk share one process and reactor")
    parser.add_argument("--serve-only", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve_only:
        serve_only()
        return 0

    from twisted.internet import reactor

    child = None
    if args.in_process:
        port = build_server(reactor, 0).getHost().port
    else:
        child = subprocess.Popen([sys.executable, __file__, "--serve-only"],
                                 stdout=subprocess.PIPE, text=True)
        port = int(child.stdout.readline())
    figures: dict[str, float] = {}

    async def run(reactor) -> None:
        await load(reactor, port, min(args.sessions, 200), args.concurrency)  # warm-up
        started = time.perf_counter()
        latencies = await load(reactor, port, args.sessions, args.concurrency)
        wall = time.perf_counter() - started
        figures.update(rate=len(latencies) / wall, p50=percentile(latencies, 0.50),
                       p99=percentile(latencies, 0.99), max=max(latencies), wall=wall)

    failures: list = []

    def start() -> None:
        running = ensureDeferred(run(reactor))
        running.addErrback(failures.append)
        running.addBoth(lambda _: reactor.stop())

    try:
        reactor.callWhenRunning(start)
        reactor.run()
    finally:
        if child is not None:
            child.terminate()
            child.wait()
    if failures:
        failures[0].raiseException()
    mode = "in-process" if args.in_process else "server in its own process"
    print(f"trivial route, {args.sessions} sessions, {args.concurrency} concurrent ({mode})")
    print(f"sessions/s: {figures['rate']:.0f}")
    print(f"latency ms: p50 {figures['p50'] * 1000:.2f}  p99 {figures['p99'] * 1000:.2f}  "
          f"max {figures['max'] * 1000:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
