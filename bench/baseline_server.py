"""The smallest FastAGI server that does the same exchange as `authorize` and `settle`.

    .venv/bin/python bench/baseline_server.py --db mysql+pymysql://root@127.0.0.1:3306/ict_bench
                                                  --port 4600 [--threads 10]

It is the limit `bench/calls.py` compares the product with: the same wire exchange and one
database round trip per session, nothing else — no rating, no credit, no call records.

- authorize,<client>,<number>: one atomic
  `UPDATE bench_channels SET live = live + 1 ... WHERE code = ? AND live < channel_limit`
  (autocommit: one transaction, one commit, like the product's), then the same variables
  the product sets (five for ALLOW, four for REJECT / channel-limit / 34), one command at
  a time.
- settle,<call id>,<seconds>,<status>: `UPDATE bench_channels SET live = live - 1 WHERE
  id = ? AND live > 0`, then the same two variables (ICT_RESULT, ICT_COST).

The table `bench_channels(id, code, live, channel_limit)` is created and filled by
bench/calls.py in the benchmark database. The database work runs on a Twisted thread pool
with one PyMySQL connection per thread, as the product runs its SQLAlchemy pool.
"""

from __future__ import annotations

import argparse
import sys
import threading

import pymysql
from sqlalchemy.engine import make_url
from twisted.internet.threads import deferToThreadPool
from twisted.protocols.basic import LineOnlyReceiver
from twisted.internet.protocol import ServerFactory
from twisted.python.threadpool import ThreadPool

SESSION_TIMEOUT = 20.0

TAKE = ("UPDATE bench_channels SET live = live + 1, id = LAST_INSERT_ID(id)"
        " WHERE code = %s AND live < channel_limit")
RELEASE = "UPDATE bench_channels SET live = live - 1 WHERE id = %s AND live > 0"


def quote(value: str) -> str:
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def set_line(name: str, value: str) -> bytes:
    return f"SET VARIABLE {name} {quote(value)}\n".encode()


class Database:
    """One autocommit PyMySQL connection per pool thread."""

    def __init__(self, url: str) -> None:
        parsed = make_url(url)
        self.params = dict(host=parsed.host or "127.0.0.1", port=parsed.port or 3306,
                           user=parsed.username or "root", password=parsed.password or "",
                           database=parsed.database, autocommit=True, charset="utf8mb4",
                           connect_timeout=5, read_timeout=10, write_timeout=10)
        self.local = threading.local()

    def _cursor(self):
        conn = getattr(self.local, "conn", None)
        if conn is None:
            conn = self.local.conn = pymysql.connect(**self.params)
        return conn.cursor()

    def take(self, code: str) -> int | None:
        """The channel row id when a channel was free (the UPDATE matched), else None."""
        with self._cursor() as cur:
            return cur.lastrowid if cur.execute(TAKE, (code,)) == 1 else None

    def release(self, row_id: int) -> int:
        with self._cursor() as cur:
            return cur.execute(RELEASE, (row_id,))


class BaselineSession(LineOnlyReceiver):
    delimiter = b"\n"
    MAX_LENGTH = 8192

    def __init__(self, factory: "BaselineFactory") -> None:
        self.factory = factory
        self.env: dict[str, str] = {}
        self.reading_env = True
        self.queue: list[bytes] = []
        self.timer = None

    def connectionMade(self) -> None:
        self.timer = self.factory.reactor.callLater(SESSION_TIMEOUT,
                                                    self.transport.abortConnection)

    def connectionLost(self, reason=None) -> None:
        if self.timer is not None and self.timer.active():
            self.timer.cancel()

    def lineReceived(self, data: bytes) -> None:
        line = data.decode("utf-8", "replace").rstrip("\r")
        if self.reading_env:
            if line:
                key, _, value = line.partition(":")
                self.env[key.strip()] = value.strip()
            elif self.env:
                self.reading_env = False
                self.start()
            return
        if line == "HANGUP" or not line:
            return
        if not line.startswith("200") or not self.queue:
            self.transport.loseConnection()  # not what this exchange expects: give up
            return
        self.queue.pop(0)
        self.send_next()

    def start(self) -> None:
        script = self.env.get("agi_network_script", "").split("?", 1)[0]
        args = [self.env.get(f"agi_arg_{n}", "") for n in (1, 2, 3)]
        pool, reactor = self.factory.pool, self.factory.reactor
        if script == "authorize":
            running = deferToThreadPool(reactor, pool, self.factory.db.take, args[0])
            running.addCallback(self.authorized)
        elif script == "settle":
            running = deferToThreadPool(reactor, pool, self.factory.db.release, int(args[0]))
            running.addCallback(lambda _: self.answer(
                [("ICT_RESULT", "ALLOW"), ("ICT_COST", "0.0000")]))
        else:
            self.transport.loseConnection()
            return
        running.addErrback(lambda _: self.answer(
            [("ICT_RESULT", "REJECT"), ("ICT_REASON", "unavailable"), ("ICT_CAUSE", "41")]))

    def authorized(self, row_id: int | None) -> None:
        if row_id is not None:
            self.answer([("ICT_RESULT", "ALLOW"),
                         ("ICT_CALL_ID", str(row_id)), ("ICT_MAX_MS", "3600000"),
                         ("ICT_DIAL", "PJSIP/" + self.env.get("agi_arg_2", "") + "@carrier"),
                         ("ICT_RATE", "0.000000")])
        else:
            self.answer([("ICT_RESULT", "REJECT"), ("ICT_REASON", "channel-limit"),
                         ("ICT_CAUSE", "34"), ("ICT_CALL_ID", "")])

    def answer(self, variables: list[tuple[str, str]]) -> None:
        """Set the variables one command at a time, then close."""
        self.queue = [set_line(name, value) for name, value in variables]
        self.send_next()

    def send_next(self) -> None:
        if self.queue:
            self.transport.write(self.queue[0])
        else:
            self.transport.loseConnection()


class BaselineFactory(ServerFactory):
    def __init__(self, reactor, db: Database, pool: ThreadPool) -> None:
        self.reactor, self.db, self.pool = reactor, db, pool

    def buildProtocol(self, addr) -> BaselineSession:
        return BaselineSession(self)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--db", required=True, help="SQLAlchemy-style URL of the bench database")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--threads", type=int, default=10)
    args = parser.parse_args()

    from twisted.internet import reactor

    pool = ThreadPool(minthreads=0, maxthreads=args.threads, name="baseline-db")
    pool.start()
    reactor.addSystemEventTrigger("before", "shutdown", pool.stop)
    reactor.listenTCP(args.port, BaselineFactory(reactor, Database(args.db), pool),
                      backlog=1024, interface="127.0.0.1")
    reactor.run()
    return 0


if __name__ == "__main__":
    sys.exit(main())
