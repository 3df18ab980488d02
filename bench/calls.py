"""Benchmark: complete calls (authorize + settle) against 1 and 2 `ictcontact serve` processes.

    .venv/bin/python bench/calls.py [--duration 30] [--concurrency 200] [--servers 1,2]
                                        [--no-baseline] [--calls N] [--seed 1]

What it does (about 3 minutes with the defaults):
1. Drops and recreates its own database (`ict_bench` on --server-url; the name must start
   with `ict_bench`, nothing else is touched), applies the schema, loads the 100,000-prefix
   deck (--deck FILE, or by default the deck bench/ratedeck.py generates) into the default plan and creates --clients
   clients: channel limits 5-200, most with plenty of credit, some (`poor`) with a few
   cents so `no-credit` happens, a few (`hot`, limit 5) getting a quarter of the calls so
   `channel-limit` happens.
2. For each server count in --servers: starts that many `ictcontact serve` processes,
   then ONE asynchronous fake Asterisk (this process) keeps --concurrency calls in flight:
   authorize (a random client, a number drawn across the deck) -> if allowed, hold the
   channel for a random talk time -> settle with a random ANSWEREDTIME_MS (<= ICT_MAX_MS) and
   a DIALSTATUS mix. Sessions alternate between the servers.
3. Runs the same load against bench/baseline_server.py (same exchange, one atomic UPDATE,
   no rating) with the largest server count, and prints the ratio.

Measured over --duration seconds after --warmup: complete calls/s (settles finished in the
window), p50/p99/max latency of authorize and of settle (connect to server close), errors
(a session not closed by the server, a REJECT other than a business reason, a settle that
did not answer ALLOW), rejections by reason, over-admissions, and the CPU each part used.

Over-admission is checked two ways: the generator counts, per client, calls from the moment
ALLOW arrives to the moment their settle is sent (a sub-interval of the server-side life of
the call, so any count above the channel limit is a real over-admission), and a sampler
reads live calls per client from the database twice a second. After the runs the ledger is
checked for every client (balance == payments - charged costs, balance >= its floor), the
costs the fake Asterisk was told equal the costs debited, and no call is left live.

Exit status: 0 when every check holds, 1 on an over-admission, ledger or cost mismatch or
a call left live. Every process it starts is stopped on exit, Ctrl-C or failure.
"""

from __future__ import annotations

import argparse
import os
import random
import resource
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections import Counter
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path

from sqlalchemy import text
from sqlalchemy.engine import Engine

import ratedeck
from fastagi import channel_vars as v, reasons
from fastagi.db import migrate
from fastagi.db.engine import make_engine

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
PYTHON = sys.executable

BUSINESS_REASONS = {reasons.NO_CREDIT, reasons.CHANNEL_LIMIT, reasons.NO_RATE,
                    reasons.SUSPENDED, reasons.UNKNOWN_CLIENT}
# DIALSTATUS mix of finished calls (weights).
DIAL_STATUSES = (("ANSWER", 65), ("NOANSWER", 15), ("BUSY", 10), ("CANCEL", 5),
                 ("CONGESTION", 3), ("CHANUNAVAIL", 2))
RICH_BALANCE = Decimal("1000000.0000")


# --- the database ---------------------------------------------------------------------

@dataclass
class Population:
    codes: list[str]
    limits: list[int]
    hot: list[int]        # indexes of the hot clients (limit 5, a quarter of the calls)
    poor: list[int]       # indexes of the clients with little credit
    rest: list[int]

    def pick(self, rng: random.Random) -> int:
        roll = rng.random()
        if roll < 0.25:
            return rng.choice(self.hot)
        if roll < 0.30:
            return rng.choice(self.poor)
        return rng.choice(self.rest)


def bench_url(server_url: str, database: str) -> str:
    if not database.startswith("ict_bench"):
        raise SystemExit(f"refusing database {database!r}: the benchmark drops and recreates "
                         "its database, so its name must start with ict_bench")
    return f"{server_url.rstrip('/')}/{database}"


def recreate_database(server_url: str, database: str) -> None:
    engine = make_engine(server_url.rstrip("/") + "/", pool_size=1)
    try:
        with engine.begin() as conn:
            conn.execute(text(f"DROP DATABASE IF EXISTS `{database}`"))
    finally:
        engine.dispose()


def drop_database(server_url: str, database: str) -> None:
    recreate_database(server_url, database)


def load_deck(engine: Engine, deck: list[dict[str, str]], batch: int = 5000) -> int:
    """The deck into the default plan with batched parameterized INSERTs."""
    insert = text("INSERT INTO rates (rate_plan_id, prefix, description, rate_per_min,"
                  " connection_fee, initial_increment, subsequent_increment)"
                  " VALUES (:plan, :prefix, :description, :rate, :fee, :initial, :subsequent)")
    with engine.begin() as conn:
        plan = conn.execute(text("SELECT id FROM rate_plans WHERE is_default = 1")).scalar_one()
        for start in range(0, len(deck), batch):
            conn.execute(insert, [
                {"plan": plan, "prefix": row["prefix"], "description": row["description"],
                 "rate": Decimal(row["rate_per_min"]), "fee": Decimal(row["connection_fee"]),
                 "initial": int(row["initial_increment"]),
                 "subsequent": int(row["subsequent_increment"])}
                for row in deck[start:start + batch]])
    return len(deck)


def make_population(count: int, rng: random.Random) -> tuple[Population, list[dict]]:
    """Client rows (limits 5-200): ~2% hot (limit 5), ~3% poor (cents of credit)."""
    hot_count = max(1, count // 50)
    poor_count = max(1, count * 3 // 100)
    codes, limits, rows = [], [], []
    hot, poor, rest = [], [], []
    for i in range(count):
        code = f"c{i:05d}"
        if i < hot_count:
            limit, balance = 5, RICH_BALANCE
            hot.append(i)
        elif i < hot_count + poor_count:
            limit = rng.randint(5, 200)
            balance = Decimal(rng.randint(5, 200)) / 100   # 0.05 - 2.00 USD
            poor.append(i)
        else:
            limit, balance = rng.randint(5, 200), RICH_BALANCE
            rest.append(i)
        codes.append(code)
        limits.append(limit)
        rows.append({"code": code, "name": f"Bench client {code}", "balance": balance,
                     "limit": limit})
    return Population(codes, limits, hot, poor, rest), rows


def insert_clients(engine: Engine, rows: list[dict], batch: int = 1000) -> None:
    insert = text("INSERT INTO clients (code, name, opening_balance, channel_limit)"
                  " VALUES (:code, :name, :balance, :limit)")
    with engine.begin() as conn:
        for start in range(0, len(rows), batch):
            conn.execute(insert, rows[start:start + batch])


def create_baseline_table(engine: Engine) -> None:
    """bench_channels: the baseline server's only table (one row per client)."""
    with engine.begin() as conn:
        conn.execute(text(
            "CREATE TABLE bench_channels ("
            " id INT UNSIGNED NOT NULL AUTO_INCREMENT COMMENT 'Row id, the baseline call id',"
            " code VARCHAR(32) CHARACTER SET ascii COLLATE ascii_bin NOT NULL"
            "   COMMENT 'Client code',"
            " live INT NOT NULL DEFAULT 0 COMMENT 'Channels in use',"
            " channel_limit INT NOT NULL COMMENT 'Most channels',"
            " PRIMARY KEY (id), UNIQUE KEY uq_bench_channels_code (code)"
            ") ENGINE=InnoDB COMMENT='bench/baseline_server.py: channel counters only'"))
        conn.execute(text("INSERT INTO bench_channels (code, channel_limit)"
                          " SELECT code, channel_limit FROM clients ORDER BY id"))


def setup_database(server_url: str, database: str, clients: int, rng: random.Random,
                   deck: list[dict[str, str]]) -> tuple[str, Population]:
    url = bench_url(server_url, database)
    started = time.perf_counter()
    recreate_database(server_url, database)
    migrate.upgrade(url)
    engine = make_engine(url, pool_size=1)
    try:
        load_deck(engine, deck)
        population, rows = make_population(clients, rng)
        insert_clients(engine, rows)
        create_baseline_table(engine)
    finally:
        engine.dispose()
    print(f"setup: database {database}, {len(deck):,} rates in the default plan, "
          f"{clients:,} clients ({len(population.hot)} hot with limit 5, "
          f"{len(population.poor)} with little credit) in {time.perf_counter() - started:.1f} s",
          flush=True)
    return url, population


def ledger_check(engine: Engine) -> tuple[int, list[str]]:
    """(clients checked, problems): balance == payments - costs and balance >= floor."""
    rows = _all(engine, """
        SELECT c.id, c.code, a.balance, c.credit_limit,
               COALESCE(p.paid, 0) AS paid, COALESCE(k.charged, 0) AS charged
        FROM clients c JOIN client_accounts a ON a.client_id = c.id
        LEFT JOIN (SELECT client_id, SUM(amount) AS paid FROM payments GROUP BY client_id) p
               ON p.client_id = c.id
        LEFT JOIN (SELECT client_id, SUM(cost) AS charged FROM calls
                   WHERE cost IS NOT NULL GROUP BY client_id) k ON k.client_id = c.id""")
    problems = []
    for row in rows:
        if row.balance != row.paid - row.charged:
            problems.append(f"{row.code}: balance {row.balance} != payments {row.paid} "
                            f"- costs {row.charged}")
        if row.balance < -row.credit_limit:
            problems.append(f"{row.code}: balance {row.balance} below its floor")
    return len(rows), problems


def costs_by_client(engine: Engine) -> dict[str, Decimal]:
    """Costs charged per client code (records bulk-inserted by bench/scale.py excluded)."""
    rows = _all(engine, "SELECT c.code, SUM(k.cost) AS cost FROM calls k"
                        " JOIN clients c ON c.id = k.client_id"
                        " WHERE k.cost IS NOT NULL AND (k.server IS NULL OR k.server <> 'bulk')"
                        " GROUP BY c.code")
    return {row.code: Decimal(row.cost) for row in rows}


def live_calls(engine: Engine) -> int:
    return int(_all(engine, "SELECT COUNT(*) AS n FROM calls WHERE state = 'live'")[0].n)


def _all(engine: Engine, sql: str, **params) -> list:
    with engine.connect() as conn:
        return list(conn.execute(text(sql), params))


# --- server processes -----------------------------------------------------------------

def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def clean_environ() -> dict[str, str]:
    env = {k: val for k, val in os.environ.items() if not k.startswith("ICTCONTACT_")}
    env["ICTCONTACT_CONFIG"] = os.devnull
    return env


@dataclass
class Process:
    name: str
    popen: subprocess.Popen
    port: int
    log_path: Path

    def cpu_seconds(self) -> float:
        return proc_cpu_seconds(self.popen.pid)

    def rss_kib(self) -> int:
        return proc_rss_kib(self.popen.pid)


class Servers:
    """Starts server processes and always stops them (SIGTERM, then SIGKILL)."""

    def __init__(self, log_dir: Path) -> None:
        self.log_dir = log_dir
        self.processes: list[Process] = []

    def start_product(self, url: str, count: int, log_level: str,
                      extra: tuple[str, ...] = ()) -> list[Process]:
        started = []
        for n in range(1, count + 1):
            port = free_port()
            command = [PYTHON, "-m", "fastagi", "--log-level", log_level, "serve",
                       "--db", url, "--listen", f"tcp:{port}:interface=127.0.0.1:backlog=1024",
                       "--server-name", f"bench-{n}", *extra]
            started.append(self._spawn(f"ictcontact-{n}", command, port))
        return started

    def start_baseline(self, url: str, count: int) -> list[Process]:
        started = []
        for n in range(1, count + 1):
            port = free_port()
            command = [PYTHON, str(HERE / "baseline_server.py"), "--db", url,
                       "--port", str(port)]
            started.append(self._spawn(f"baseline-{n}", command, port))
        return started

    def _spawn(self, name: str, command: list[str], port: int) -> Process:
        log_path = self.log_dir / f"{name}-{port}.log"
        with log_path.open("w") as log:
            popen = subprocess.Popen(command, env=clean_environ(), stdout=log, stderr=log,
                                     stdin=subprocess.DEVNULL)
        process = Process(name, popen, port, log_path)
        self.processes.append(process)
        return process

    def wait_ready(self, processes: list[Process], timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        for process in processes:
            while True:
                if process.popen.poll() is not None:
                    raise RuntimeError(f"{process.name} exited {process.popen.returncode}:\n"
                                       + process.log_path.read_text()[-2000:])
                try:
                    with socket.create_connection(("127.0.0.1", process.port), timeout=1):
                        break
                except OSError:
                    if time.monotonic() > deadline:
                        raise RuntimeError(f"{process.name} did not listen within {timeout} s")
                    time.sleep(0.05)

    def stop(self, processes: list[Process] | None = None) -> None:
        targets = list(self.processes if processes is None else processes)
        for process in targets:
            if process.popen.poll() is None:
                process.popen.send_signal(signal.SIGTERM)
        for process in targets:
            try:
                process.popen.wait(timeout=20)
            except subprocess.TimeoutExpired:
                process.popen.kill()
                process.popen.wait()
            if process in self.processes:
                self.processes.remove(process)


def proc_cpu_seconds(pid: int) -> float:
    """user + system CPU of a process, from /proc (0 if it cannot be read)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def proc_rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


def machine_busy_seconds() -> float:
    """CPU seconds all cores spent busy (not idle or waiting on I/O), from /proc/stat."""
    fields = [int(x) for x in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    idle = fields[3] + (fields[4] if len(fields) > 4 else 0)
    return (sum(fields[:8]) - idle) / os.sysconf("SC_CLK_TCK")


def mariadb_pid() -> int | None:
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                name = (entry / "comm").read_text().strip()
            except OSError:
                continue
            if name in ("mariadbd", "mysqld"):
                return int(entry.name)
    return None


def self_cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


# --- the load generator ---------------------------------------------------------------

@dataclass
class Figures:
    """What one phase measured."""

    label: str
    servers: int
    window: float = 0.0
    completed: int = 0
    authorize_ms: list[float] = field(default_factory=list)
    settle_ms: list[float] = field(default_factory=list)
    allowed: int = 0
    rejected: Counter = field(default_factory=Counter)
    errors: Counter = field(default_factory=Counter)
    error_samples: list[str] = field(default_factory=list)
    over_admissions: int = 0
    over_admission_samples: list[str] = field(default_factory=list)
    db_max_over: int | None = None       # max (live - limit) seen in the database
    db_max_live: int | None = None       # most live calls of one client seen
    db_samples: int = 0
    cpu: dict[str, float] = field(default_factory=dict)   # seconds in the window
    sessions: int = 0

    @property
    def calls_per_s(self) -> float:
        return self.completed / self.window if self.window else 0.0

    def error(self, kind: str, detail: str) -> None:
        self.errors[kind] += 1
        if len(self.error_samples) < 10:
            self.error_samples.append(f"{kind}: {detail}")


class Generator:
    """One asynchronous fake Asterisk keeping `concurrency` calls in flight."""

    def __init__(self, reactor, population: Population, deck_prefixes: list[str],
                 rng: random.Random, concurrency: int, talk_ms: tuple[int, int],
                 session_timeout: float = 30.0) -> None:
        self.reactor = reactor
        self.population = population
        self.prefixes = deck_prefixes
        self.rng = rng
        self.concurrency = concurrency
        self.talk = (talk_ms[0] / 1000, talk_ms[1] / 1000)
        self.timeout = session_timeout
        self.held = [0] * len(population.codes)
        self.costs: dict[str, Decimal] = {}          # what settle told us, per client
        self.statuses = [s for s, _ in DIAL_STATUSES]
        self.weights = [w for _, w in DIAL_STATUSES]

    def number(self) -> str:
        prefix = self.rng.choice(self.prefixes)
        length = max(len(prefix) + 2, self.rng.randint(10, 13))
        return prefix + "".join(self.rng.choice("0123456789")
                                for _ in range(length - len(prefix)))

    async def run(self, ports: list[int], figures: Figures, warmup: float, duration: float,
                  max_calls: int | None, sampler=None, max_sessions: int | None = None) -> None:
        """Keep `concurrency` calls going until `duration` s after `warmup` (or until
        `max_calls` calls were allowed, or `max_sessions` sessions were started), then let
        the calls in flight finish."""
        from twisted.internet.defer import ensureDeferred, gatherResults

        self.ports = ports
        self.turn = 0
        self.figures = figures
        self.stopping = False
        self.max_calls = max_calls
        self.max_sessions = max_sessions
        self.started_calls = 0
        bounded = max_calls is not None or max_sessions is not None
        now = time.perf_counter()
        self.window_start = now + warmup
        self.window_end = float("inf") if bounded else self.window_start + duration
        self.last_settle = now
        self.sampler = sampler
        self.cpu_open = self.cpu_close = None
        workers = [ensureDeferred(self.worker()) for _ in range(self.concurrency)]
        stopper = None if bounded else self.reactor.callLater(warmup + duration, self.stop)
        window_opener = self.reactor.callLater(warmup, self._open_window)
        await gatherResults(workers, consumeErrors=True)
        for timer in (stopper, window_opener):
            if timer is not None and timer.active():
                timer.cancel()
        end = min(self.window_end, self.last_settle)
        figures.window = max(end - self.window_start, 1e-9)
        if self.cpu_open and self.cpu_close:
            figures.cpu = {key: self.cpu_close[key] - self.cpu_open[key]
                           for key in self.cpu_open if key in self.cpu_close}

    def _open_window(self) -> None:
        self.window_start = time.perf_counter()
        if self.sampler:
            self.cpu_open = self.sampler.cpu_mark()

    def stop(self) -> None:
        if self.stopping:
            return
        self.window_end = time.perf_counter()
        self.stopping = True
        if self.sampler:
            self.cpu_close = self.sampler.cpu_mark()

    def _in_window(self, at: float) -> bool:
        return self.window_start <= at <= self.window_end

    def _port(self) -> int:
        self.turn += 1
        return self.ports[self.turn % len(self.ports)]

    async def session(self, script: str, args: tuple[str, ...]):
        from fastagi.testing.fake_asterisk import run_session

        started = time.perf_counter()
        self.figures.sessions += 1
        result = await run_session(self.reactor, "127.0.0.1", self._port(), script, args,
                                   timeout=self.timeout)
        return result, (time.perf_counter() - started) * 1000

    async def worker(self) -> None:
        from twisted.internet.task import deferLater

        figures, pop, rng = self.figures, self.population, self.rng
        while not self.stopping:
            if (self.max_calls is not None and self.started_calls >= self.max_calls) or (
                    self.max_sessions is not None and figures.sessions >= self.max_sessions):
                self.stop()
                break
            client = pop.pick(rng)
            code = pop.codes[client]
            try:
                result, elapsed = await self.session("authorize", (code, self.number()))
            except Exception as exc:  # cannot connect: an error, keep going
                figures.error("authorize-connect", repr(exc))
                await deferLater(self.reactor, 0.05, lambda: None)
                continue
            answer = result.set_by_server
            at = time.perf_counter()
            if not result.server_closed:
                figures.error("authorize-not-closed", f"{code}: {dict(answer)}")
                continue
            if self._in_window(at):
                figures.authorize_ms.append(elapsed)
            decision = answer.get(v.RESULT)
            if decision == v.REJECT and answer.get(v.REASON) in BUSINESS_REASONS:
                if self._in_window(at):
                    figures.rejected[answer[v.REASON]] += 1
                continue
            if decision != v.ALLOW:
                figures.error("authorize-answer", f"{code}: {dict(answer)}")
                continue
            self.started_calls += 1
            if self._in_window(at):
                figures.allowed += 1
            self.held[client] += 1
            if self.held[client] > pop.limits[client]:
                figures.over_admissions += 1
                if len(figures.over_admission_samples) < 10:
                    figures.over_admission_samples.append(
                        f"{code}: {self.held[client]} calls held, limit {pop.limits[client]}")
            await deferLater(self.reactor, rng.uniform(*self.talk), lambda: None)
            max_seconds = int(answer[v.MAX_MS]) // 1000
            status = rng.choices(self.statuses, self.weights)[0]
            answered = (f"ms={rng.randint(1, min(max_seconds, 1800) * 1000)}"
                        if status == "ANSWER" else "ms=")   # as the handler sends ANSWEREDTIME_MS
            self.held[client] -= 1  # the settle is sent now: from here the server may free it
            try:
                result, elapsed = await self.session(
                    "settle", (answer[v.CALL_ID], answered, status))
            except Exception as exc:
                figures.error("settle-connect", repr(exc))
                continue
            at = time.perf_counter()
            settled = result.set_by_server
            if not result.server_closed or settled.get(v.RESULT) != v.ALLOW \
                    or v.COST not in settled:
                figures.error("settle-answer", f"call {answer[v.CALL_ID]}: {dict(settled)} "
                                               f"closed={result.server_closed}")
                continue
            self.costs[code] = self.costs.get(code, Decimal(0)) + Decimal(settled[v.COST])
            self.last_settle = at
            if self._in_window(at):
                figures.settle_ms.append(elapsed)
                figures.completed += 1


class Sampler:
    """CPU marks of the processes in play, and (product runs) live calls per client read
    from the database twice a second in a thread."""

    def __init__(self, reactor, processes: list[Process], engine: Engine | None,
                 limits: dict[int, int] | None) -> None:
        self.reactor = reactor
        self.processes = processes
        self.engine = engine
        self.limits = limits
        self.mariadb = mariadb_pid()
        self.loop = None

    def cpu_mark(self) -> dict[str, float]:
        mark = {"generator": self_cpu_seconds(), "wall": time.perf_counter(),
                "machine": machine_busy_seconds()}
        mark["servers"] = sum(p.cpu_seconds() for p in self.processes)
        if self.mariadb:
            mark["mariadb"] = proc_cpu_seconds(self.mariadb)
        return mark

    def start_db_sampling(self, figures: Figures) -> None:
        from twisted.internet.task import LoopingCall
        from twisted.internet.threads import deferToThread

        if self.engine is None:
            return

        def sample() -> None:
            rows = _all(self.engine, "SELECT client_id, COUNT(*) AS live FROM calls"
                                     " WHERE state = 'live' GROUP BY client_id")
            figures.db_samples += 1
            worst = figures.db_max_over if figures.db_max_over is not None else -10**9
            most = figures.db_max_live or 0
            for row in rows:
                worst = max(worst, row.live - self.limits[row.client_id])
                most = max(most, row.live)
            figures.db_max_over, figures.db_max_live = worst, most

        self.loop = LoopingCall(lambda: deferToThread(sample))
        self.loop.clock = self.reactor
        self.loop.start(0.5, now=True).addErrback(
            lambda f: figures.error("db-sampler", f.getErrorMessage()))

    def stop(self) -> None:
        if self.loop is not None and self.loop.running:
            self.loop.stop()


# --- phases and report ------------------------------------------------------------------

def client_limits_by_id(engine: Engine) -> dict[int, int]:
    return {row.id: row.channel_limit
            for row in _all(engine, "SELECT id, channel_limit FROM clients")}


async def run_phase(reactor, servers: Servers, generator: Generator, label: str,
                    processes: list[Process], engine: Engine | None, args) -> Figures:
    figures = Figures(label=label, servers=len(processes))
    servers.wait_ready(processes)
    limits = client_limits_by_id(engine) if engine is not None else None
    sampler = Sampler(reactor, processes, engine, limits)
    sampler.start_db_sampling(figures)
    try:
        await generator.run([p.port for p in processes], figures, args.warmup,
                            args.duration, args.calls, sampler)
    finally:
        sampler.stop()
    return figures


def pct(values: list[float], fraction: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))]


def latency_cells(values: list[float]) -> str:
    if not values:
        return "-"
    return f"{pct(values, .50):6.1f} {pct(values, .99):6.1f} {max(values):6.1f}"


def print_table(results: list[Figures]) -> None:
    print()
    print(f"{'run':<16} {'calls/s':>8}  {'authorize ms p50 p99 max':>25}  "
          f"{'settle ms p50 p99 max':>22}  {'no-credit':>9} {'ch-limit':>8} "
          f"{'errors':>6} {'over-adm':>8}")
    for f in results:
        over = f"{f.over_admissions}"
        print(f"{f.label:<16} {f.calls_per_s:8.1f}  {latency_cells(f.authorize_ms):>25}  "
              f"{latency_cells(f.settle_ms):>22}  {f.rejected[reasons.NO_CREDIT]:>9} "
              f"{f.rejected[reasons.CHANNEL_LIMIT]:>8} {sum(f.errors.values()):>6} {over:>8}")
    print()
    for f in results:
        cpu = f.cpu
        wall = cpu.get("wall", f.window) or 1
        parts = "  ".join(f"{k} {100 * cpu[k] / wall:.0f}%" for k in
                          ("servers", "mariadb", "generator") if k in cpu)
        if "machine" in cpu:
            ours = sum(cpu.get(k, 0) for k in ("servers", "mariadb", "generator"))
            parts += (f"  | machine busy {100 * cpu['machine'] / wall:.0f}%"
                      f" (kernel and other processes {100 * (cpu['machine'] - ours) / wall:.0f}%)")
        db = ("" if f.db_max_over is None else
              f"; database: {f.db_samples} samples, most live calls of one client "
              f"{f.db_max_live}, worst live - limit {f.db_max_over}")
        per_call = "  ".join(f"{k} {1000 * cpu[k] / f.completed:.2f}" for k in
                             ("servers", "mariadb", "generator") if k in cpu and f.completed)
        print(f"{f.label}: {f.completed} complete calls in {f.window:.1f} s, "
              f"{f.allowed} allowed, {f.sessions} sessions{db}")
        print(f"    CPU (of {100 * (os.cpu_count() or 1)}%): {parts}")
        print(f"    CPU ms per complete call: {per_call}")
        for sample in f.error_samples[:5]:
            print(f"    error {sample}")
        for sample in f.over_admission_samples[:5]:
            print(f"    OVER-ADMISSION {sample}")


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--duration", type=float, default=30, help="measured seconds per run")
    parser.add_argument("--warmup", type=float, default=5, help="seconds before measuring")
    parser.add_argument("--calls", type=int, default=None,
                        help="instead of --duration: stop after this many allowed calls")
    parser.add_argument("--concurrency", type=int, default=200,
                        help="calls in flight (authorize, talk, settle) at all times")
    parser.add_argument("--talk-ms", default="50,400",
                        help="talk time range in ms, MIN,MAX (default 50,400)")
    parser.add_argument("--servers", default="1,2", help="server counts to run (default 1,2)")
    parser.add_argument("--no-baseline", action="store_true",
                        help="skip the run against bench/baseline_server.py")
    parser.add_argument("--clients", type=int, default=1000)
    parser.add_argument("--server-url", default=os.environ.get(
        "ICT_BENCH_SERVER", "mysql+pymysql://root@127.0.0.1:3306"))
    parser.add_argument("--database", default="ict_bench")
    parser.add_argument("--server-log-level", default="WARNING",
                        help="--log-level of the servers (INFO logs every session)")
    parser.add_argument("--serve-option", action="append", default=[],
                        help="extra option for ictcontact serve (repeatable)")
    parser.add_argument("--keep", action="store_true", help="keep the database afterwards")
    parser.add_argument("--seed", type=int, default=1)
    add_deck_argument(parser)
    args = parser.parse_args(argv)
    low, high = (int(x) for x in args.talk_ms.split(","))
    args.talk = (low, high)
    args.server_counts = [int(x) for x in args.servers.split(",") if x.strip()]
    return args


def add_deck_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--deck", metavar="FILE",
                        help="rate deck CSV (prefix,description,rate_per_min,connection_fee,"
                             "initial_increment,subsequent_increment); default: the "
                             "100,000-prefix deck bench/ratedeck.py generates")
    parser.add_argument("--deck-rows", type=int, default=100_000,
                        help="rows of the generated deck when no --deck is given")


def final_checks(engine: Engine, generator: Generator) -> list[str]:
    failures = []
    checked, problems = ledger_check(engine)
    print(f"ledger check: {checked} clients, {len(problems)} mismatches "
          "(balance == payments - charged costs, balance >= floor)")
    failures += problems
    debited = costs_by_client(engine)
    told = {code: cost for code, cost in generator.costs.items() if cost}
    mismatched = [code for code in set(debited) | set(told)
                  if debited.get(code, Decimal(0)) != told.get(code, Decimal(0))]
    print(f"costs check: {sum(told.values())} USD answered to the fake Asterisk, "
          f"{sum(debited.values(), Decimal(0))} USD debited, {len(mismatched)} clients differ")
    failures += [f"cost mismatch for {code}" for code in mismatched]
    left = live_calls(engine)
    print(f"calls left live: {left}")
    if left:
        failures.append(f"{left} calls left live")
    return failures


def main(argv=None) -> int:
    args = parse_args(argv)
    rng = random.Random(args.seed)
    deck = ratedeck.load(args.deck, args.deck_rows, args.seed)
    url, population = setup_database(args.server_url, args.database, args.clients, rng, deck)
    prefixes = [row["prefix"] for row in deck]
    log_dir = Path(tempfile.mkdtemp(prefix="ict-bench-"))
    servers = Servers(log_dir)
    engine = make_engine(url, pool_size=2)
    results: list[Figures] = []
    failures: list[str] = []

    from twisted.internet import reactor
    from twisted.internet.defer import ensureDeferred

    generator = Generator(reactor, population, prefixes, rng, args.concurrency, args.talk)

    async def measure(label: str, processes, checked_engine) -> None:
        """One phase against started `processes`, which are stopped afterwards."""
        try:
            figures = await run_phase(reactor, servers, generator, label, processes,
                                      checked_engine, args)
        finally:
            servers.stop(processes)
        results.append(figures)
        print(f"{figures.label}: {figures.calls_per_s:.1f} complete calls/s", flush=True)

    async def all_runs() -> None:
        for count in args.server_counts:
            await measure(f"ictcontact x{count}",
                          servers.start_product(url, count, args.server_log_level,
                                                tuple(args.serve_option)), engine)
        if not args.no_baseline:
            count = max(args.server_counts or [2])
            await measure(f"baseline x{count}", servers.start_baseline(url, count), None)

    outcome: list = []

    def start() -> None:
        running = ensureDeferred(all_runs())
        running.addErrback(outcome.append)
        running.addBoth(lambda _: reactor.stop())

    try:
        reactor.callWhenRunning(start)
        reactor.run()
        if outcome:
            outcome[0].raiseException()
        print_table(results)
        product = [f for f in results if f.label.startswith("ictcontact")]
        baseline = [f for f in results if f.label.startswith("baseline")]
        if product and baseline:
            best = max(product, key=lambda f: f.servers)
            ratio = best.calls_per_s / baseline[0].calls_per_s if baseline[0].calls_per_s else 0
            print(f"{best.label} / {baseline[0].label}: {ratio:.2f} of the limit's calls/s")
        for f in results:
            if f.over_admissions or (f.db_max_over or 0) > 0:
                failures.append(f"{f.label}: over-admission")
        if product:
            failures += final_checks(engine, generator)
        if results and sum(sum(f.errors.values()) for f in results):
            print("errors by kind: " + ", ".join(
                f"{f.label} {dict(f.errors)}" for f in results if f.errors))
    finally:
        servers.stop()
        engine.dispose()
        if not args.keep:
            drop_database(args.server_url, args.database)
    if failures:
        print("FAILED: " + "; ".join(failures[:10]))
        return 1
    print(f"server logs: {log_dir}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
