"""MariaDB stops, crashes or freezes in the middle of load against a real `ictcontact
serve` process.

The database is the PRIVATE MariaDB of conftest.py (never the shared one). While workers
keep authorizing and settling, the database is stopped with SIGTERM, killed with SIGKILL,
or frozen with SIGSTOP, left down for a while, then started again on the same port and
datadir (or thawed). Observed from Asterisk's side and in the database:
- every session gets a definite answer and is closed by the server within a bound (none
  hangs); sessions wholly inside the outage answer REJECT / unavailable quickly;
- the server process survives and, without a restart, answers ALLOW again soon after the
  database is back (no `unavailable` answer a short while after recovery);
- every call allowed (those authorized before the outage included) settles once after it,
  with the expected cost, and the ledger holds for every client;
- at most `--db-pool-size` calls can be left live that nobody was told ALLOW for (work in
  flight on the database threads when it went down: its commit may land, its answer
  cannot); everything else the outage touched changed nothing.
"""

from __future__ import annotations

import random
import signal
from decimal import Decimal

import pytest
import pytest_twisted
from twisted.internet import reactor
from twisted.internet.defer import ensureDeferred, gatherResults
from twisted.internet.threads import deferToThread

from fastagi import channel_vars as v, reasons
from fastagi.db.engine import make_engine
from fastagi.testing.fake_ami import FakeAmi
from tests.callcontrol.tenants import add_client, add_rate, default_plan_id, ledger_gap
from tests.campaigns.helpers import add_client_with_rate, fast_campaign
from tests.serve_process import PYTHON, DialerProcess, LoggedProcess, Server, environ
from tests.support.sql import scalar
from tests.support.waiting import pause as sleep

from .conftest import scaled
from .load import Attempt, Call, attempt

DB_TIMEOUT = 1.0
SESSION_TIMEOUT = 3.0
POOL = 4
BOUND = SESSION_TIMEOUT + 1.5         # no session, ever, takes longer than this
OUTAGE_BOUND = DB_TIMEOUT + 1.5       # a session during the outage answers within this
RECOVERY_S = 2.0                      # after the database is ready, no more `unavailable`
PER_SECOND = Decimal("0.01")          # 0.60/min billed per second
CLIENTS = ("acme", "globex")
NUMBER = "15550100"
OPENING = Decimal("1000")

WORKERS = scaled(6, 24)
PRE_OUTAGE_CALLS = scaled(3, 10)      # per client, held through the outage
LOAD_BEFORE_S = 1.5
OUTAGE_S = scaled(2.5, 8)
LOAD_AFTER_S = scaled(1.5, 5)


class Book:
    """What the test was told: every session, and every call allowed."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.attempts: list[Attempt] = []
        self.calls: dict[str, Call] = {}
        self.stopping = False
        self.outage_over = False

    async def run(self, script: str, *args: str) -> Attempt:
        result = await attempt(self.port, "agi", script, *args, timeout=BOUND + 10)
        self.attempts.append(result)
        return result

    async def authorize(self, client: str, seconds: int) -> Call | None:
        got = await self.run("authorize", client, NUMBER)
        if got.result != v.ALLOW:
            return None
        call = Call(got.answer[v.CALL_ID], client, seconds)
        assert call.call_id not in self.calls, f"call id {call.call_id} handed out twice"
        self.calls[call.call_id] = call
        return call

    async def settle(self, call: Call) -> bool:
        got = await self.run("settle", call.call_id, call.talk, "ANSWER")
        if got.result == v.ALLOW:
            assert call.cost in (None, got.answer[v.COST]), f"{call} answered a new cost"
            call.cost = got.answer[v.COST]
            return True
        return False

    async def worker(self, n: int) -> None:
        rng = random.Random(n)
        while not self.stopping:
            call = await self.authorize(CLIENTS[n % len(CLIENTS)], rng.randint(0, 90))
            if call is not None:
                await sleep(rng.uniform(0, 0.05))
                await self.settle(call)
            if rng.random() < 0.15:
                await self.run("health")
            await sleep(0.01)

    async def settle_pre_outage_calls(self, calls: list[Call]) -> None:
        """During the outage: try to settle the held calls (must fail closed)."""
        while not self.outage_over:
            for call in calls:
                got = await self.run("settle", call.call_id, call.talk, "ANSWER")
                if got.result == v.ALLOW:  # only possible at the edges of the outage
                    call.cost = got.answer[v.COST]
            await sleep(0.1)


def definite_failures(attempts: list[Attempt]) -> list[str]:
    """Sessions that hung, broke, were slow, or answered something out of contract."""
    allowed_reasons = {"authorize": {reasons.UNAVAILABLE, reasons.CHANNEL_LIMIT},
                       "settle": {reasons.UNAVAILABLE}, "health": {reasons.UNAVAILABLE}}
    bad = []
    for a in attempts:
        if a.error or not a.closed or a.elapsed > BOUND:
            bad.append(f"hung or broken: {a}")
        elif a.result == v.REJECT:
            if a.reason not in allowed_reasons[a.script]:
                bad.append(f"unexpected reason: {a}")
            elif a.answer.get(v.CAUSE) != str(reasons.cause_for(a.reason)):
                bad.append(f"wrong cause: {a} {a.answer}")
        elif a.result != v.ALLOW:
            bad.append(f"no definite answer: {a} {a.answer}")
    return bad


OUTAGES = {
    "sigterm": signal.SIGTERM,   # clean shutdown
    "sigkill": signal.SIGKILL,   # crash: connections reset, crash recovery at restart
    "freeze": signal.SIGSTOP,    # hung: sockets open, nothing answers (then SIGCONT)
}


@pytest.mark.slow
@pytest.mark.parametrize("outage", list(OUTAGES))
@pytest_twisted.ensureDeferred
async def test_database_outage_under_load(private_mariadb, private_db_url, outage):
    # The test's own checks run across the restart: let its pool test connections.
    engine = make_engine(private_db_url, pool_size=2, pre_ping=True)
    server = None
    try:
        add_rate(engine, default_plan_id(engine), "1", "0.60", initial=1, subsequent=1)
        ids = {code: add_client(engine, code, balance=str(OPENING), channel_limit=30)
               for code in CLIENTS}
        server = await deferToThread(
            Server, private_db_url, "--db-timeout", str(DB_TIMEOUT),
            "--session-timeout", str(SESSION_TIMEOUT), "--db-pool-size", str(POOL),
            "--max-call-seconds", "600", "--stale-sweep-seconds", "1",
            "--server-name", "agi-outage")
        book = Book(server.port)
        held = [await book.authorize(code, 30 + n) for code in CLIENTS
                for n in range(PRE_OUTAGE_CALLS)]
        assert all(held), "every call before the outage is allowed"

        workers = [book.worker(n) for n in range(WORKERS)]
        load = gatherResults([ensureDeferred(w) for w in workers])
        await sleep(LOAD_BEFORE_S)

        # --- the outage ---------------------------------------------------------------
        went_down = reactor.seconds()
        if outage == "freeze":
            private_mariadb.freeze()
        else:
            await deferToThread(private_mariadb.stop, OUTAGES[outage])
        down_at = reactor.seconds()
        settling = ensureDeferred(book.settle_pre_outage_calls(held))
        await sleep(OUTAGE_S)
        restart_at = reactor.seconds()
        if outage == "freeze":
            private_mariadb.thaw()
        else:
            private_mariadb.start_process()
        await deferToThread(private_mariadb.wait_ready)
        ready_at = reactor.seconds()
        book.outage_over = True
        await settling
        await sleep(RECOVERY_S + LOAD_AFTER_S)
        book.stopping = True
        await load

        # --- after: every call allowed settles once -------------------------------------
        for call in book.calls.values():
            for _ in range(20):
                if call.cost is not None or await book.settle(call):
                    break
                await sleep(0.2)
        assert server.process.poll() is None, "the server process must survive the outage"

        # Every session: definite, closed by the server, bounded.
        assert definite_failures(book.attempts) == []
        during = [a for a in book.attempts if a.started >= down_at and a.ended <= restart_at]
        assert len(during) >= WORKERS, "the outage must have been under load"
        assert [str(a) for a in during
                if a.result != v.REJECT or a.reason != reasons.UNAVAILABLE] == []
        assert max(a.elapsed for a in during) <= OUTAGE_BOUND, max(a.elapsed for a in during)
        # Recovery by itself: nothing `unavailable` once the database has been back a while,
        # and calls are allowed again.
        after = [a for a in book.attempts if a.started >= ready_at + RECOVERY_S]
        assert [str(a) for a in after if a.reason == reasons.UNAVAILABLE] == []
        assert any(a.script == "authorize" and a.result == v.ALLOW for a in after)
        assert any(a.script == "health" and a.result == v.ALLOW for a in after)

        # Every call allowed was settled once with its own cost; the ledger holds.
        unsettled = [c for c in book.calls.values() if c.cost is None]
        assert unsettled == []
        assert [c for c in book.calls.values() if c.cost != c.expected_cost(PER_SECOND)] == []
        for code, client_id in ids.items():
            ours = [c for c in book.calls.values() if c.client == code]
            assert ledger_gap(engine, client_id) == 0
            balance = scalar(engine, "SELECT balance FROM client_accounts WHERE client_id = :i", i=client_id)
            assert balance == OPENING - sum(Decimal(c.cost) for c in ours)
            billed = scalar(engine, "SELECT COUNT(*) FROM calls WHERE client_id = :i"
                            " AND state = 'settled'", i=client_id)
            assert billed == len(ours)
        # Calls nobody was told ALLOW for: only what was in flight on the database threads.
        phantoms = scalar(engine, "SELECT COUNT(*) FROM calls WHERE state = 'live'")
        assert phantoms <= POOL, f"{phantoms} live calls nobody was told ALLOW for"
        print(f"\n{outage}: {len(book.attempts)} sessions, {len(during)} during the "
              f"{restart_at - went_down:.1f} s outage (max {max(a.elapsed for a in during):.2f}"
              f" s), ready {ready_at - restart_at:.2f} s after restart, {len(book.calls)} "
              f"calls, {phantoms} phantom")
    finally:
        private_mariadb.thaw()
        engine.dispose()
        if server is not None:
            server.process.send_signal(signal.SIGTERM)
            code, log = await deferToThread(server.finish)
            assert code == 0, log
            assert " ERROR fastagi.agi.server" not in log, log


STOP_GRACE = 1.0


@pytest_twisted.ensureDeferred
async def test_serve_stops_within_its_bounds_while_the_database_hangs(private_mariadb,
                                                                       private_db_url):
    """SIGTERM while the database answers nothing (a frozen node: sockets open, no reply):
    the database threads are stuck in reads that last the driver's read timeout (10 s)
    and more calls wait behind them, yet the server exits 0 within its shutdown grace plus
    one --db-timeout (a stop that joined those threads took the read timeout or more)."""
    engine = make_engine(private_db_url, pool_size=1)
    try:
        add_rate(engine, default_plan_id(engine), "1", "0.60", initial=1, subsequent=1)
        add_client(engine, "acme", balance="100", channel_limit=30)
    finally:
        engine.dispose()
    server = await deferToThread(
        Server, private_db_url, "--db-timeout", str(DB_TIMEOUT), "--session-timeout",
        str(SESSION_TIMEOUT), "--db-pool-size", "2", "--shutdown-grace-seconds",
        str(STOP_GRACE), "--server-name", "agi-stop")
    stopped_in = None
    try:
        assert (await attempt(server.port, "agi", "authorize", "acme", NUMBER)).result == v.ALLOW
        private_mariadb.freeze()
        # 2 threads stuck in a read, 6 calls queued behind them: all answered unavailable
        got = await gatherResults([ensureDeferred(attempt(server.port, "agi", "authorize",
                                                          "acme", NUMBER)) for _ in range(8)])
        assert [str(a) for a in got if a.reason != reasons.UNAVAILABLE] == []
        started = reactor.seconds()
        server.process.send_signal(signal.SIGTERM)
        code, log = await deferToThread(server.finish, 60)
        stopped_in = reactor.seconds() - started
    finally:
        private_mariadb.thaw()
        if server.process.poll() is None:
            server.process.kill()
            server.finish()
    assert code == 0, log
    assert "database thread(s) still in a call" in log, log
    assert stopped_in < STOP_GRACE + DB_TIMEOUT + 3, (stopped_in, log)
    print(f"\nserve stopped in {stopped_in:.2f} s with its database frozen")


async def stop_while_frozen(process, private_mariadb, failed: str):
    """Freeze the database, wait until two of the process's database calls have timed out
    (`failed`, a log pattern: both threads are then stuck in reads), SIGTERM it: (exit code,
    log, seconds from SIGTERM to exit). The database is thawed and the process killed
    whatever happens."""
    try:
        private_mariadb.freeze()
        for _ in range(2):
            await deferToThread(process.wait_for, failed)
        started = reactor.seconds()
        process.process.send_signal(signal.SIGTERM)
        code, log = await deferToThread(process.finish, 60)
        return code, log, reactor.seconds() - started
    finally:
        private_mariadb.thaw()
        ended(process)


def ended(process) -> None:
    """Kill the process if it still runs (a test that failed half-way)."""
    if process.process.poll() is None:
        process.process.kill()
        process.finish()


@pytest_twisted.ensureDeferred
async def test_dialer_stops_within_its_bounds_while_the_database_hangs(private_mariadb,
                                                                        private_db_url):
    """SIGTERM to `ictcontact dialer` dialling a campaign while the database answers
    nothing: its tick starts no database call after the stop, and threads stuck in reads
    (the driver's read timeout, 10 s, then a reconnect) are left behind, so it exits 0
    within about one --db-timeout (a stop that joined them was still running after 60 s)."""
    engine = make_engine(private_db_url, pool_size=1)
    try:
        acme = add_client_with_rate(engine, "acme", balance="100", channel_limit=10)
        fast_campaign(engine, acme, 200, status="running", max_channels=5)
    finally:
        engine.dispose()
    ami = FakeAmi()             # answers every Originate; no call reaches authorize
    port = ami.listen(reactor)
    dialer = DialerProcess(private_db_url, port.getHost().port, "stop-1", "--db-timeout",
                           str(DB_TIMEOUT), "--db-pool-size", "2", "--tick-seconds", "0.05")
    try:
        await deferToThread(dialer.wait_for, r"AMI logged in")
        await ami.when(lambda: len(ami.actions_named("Originate")) >= 5)  # dialling
        code, log, stopped_in = await stop_while_frozen(
            dialer, private_mariadb, r"dialer tick failed.*no answer within")
    finally:
        ended(dialer)
        ami.drop_all()
        await port.stopListening()
    assert code == 0, log
    assert "database thread(s) still in a call" in log, log
    assert "dialer stop-1 stopped" in log, log
    assert stopped_in < DB_TIMEOUT + 3, (stopped_in, log)
    print(f"\ndialer stopped in {stopped_in:.2f} s with its database frozen")


@pytest_twisted.ensureDeferred
async def test_notifier_stops_within_its_bounds_while_the_database_hangs(private_mariadb,
                                                                          private_db_url):
    """SIGTERM to `ictcontact notifier` polling the outbox while the database answers
    nothing: it claims no more, threads stuck in reads are left behind, and it exits 0
    within one --db-timeout plus margin (a stop that joined them took about 9 s more)."""
    notifier = LoggedProcess(
        [PYTHON, "-m", "fastagi", "--log-level", "INFO", "notifier", "--alert-name", "stop-n",
         "--alert-poll-seconds", "0.1", "--db-timeout", str(DB_TIMEOUT), "--db-pool-size", "2"],
        environ(ICTCONTACT_DB=private_db_url))
    try:
        await deferToThread(notifier.wait_for, r"alert notifier stop-n: polling")
        code, log, stopped_in = await stop_while_frozen(
            notifier, private_mariadb, r"periodic job .* failed.*no answer within")
    finally:
        ended(notifier)
    assert code == 0, log
    assert "database thread(s) still in a call" in log, log
    assert "alert notifier stop-n stopped" in log, log
    assert stopped_in < DB_TIMEOUT + 3, (stopped_in, log)
    print(f"\nnotifier stopped in {stopped_in:.2f} s with its database frozen")
