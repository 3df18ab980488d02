"""Fixtures for the fault tests: a PRIVATE MariaDB the tests may stop, kill and freeze,
and the CI/full switch.

The shared MariaDB on 127.0.0.1:3306 is never touched by the outage tests: they get their
own `mariadbd` (`--no-defaults`, a datadir under pytest's tmp dir, a free loopback port,
root with an empty password), started once per test session and killed at its end.
Tests that stop it must leave it running again; the `private_db_url` fixture checks that.

`galera_cluster` (session) and `galera_db` (per test) give the Galera tests a private
3-node cluster built from the same PrivateMariaDB (tests/faults/galera_cluster.py).

`ICT_FULL=1` runs the long versions (more sessions, more hypothesis examples); without it
every test here is bounded so the whole directory fits CI's time limit.
"""

from __future__ import annotations

import getpass
import os
import shutil
import signal
import socket
import subprocess
import time
from pathlib import Path

import pymysql
import pytest

from fastagi.db import migrate

FULL = os.environ.get("ICT_FULL") == "1"

INSTALL_DB = shutil.which("mariadb-install-db") or "/usr/bin/mariadb-install-db"
MARIADBD = shutil.which("mariadbd") or "/usr/sbin/mariadbd"


def scaled(ci: int, full: int) -> int:
    """`full` with ICT_FULL=1, else the bounded CI value."""
    return full if FULL else ci


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class PrivateMariaDB:
    """One private `mariadbd` on 127.0.0.1:`port` over `base`/data.

    `start_process()` only spawns (safe on the reactor thread); `wait_ready()` blocks until
    root can log in over TCP (run it in a thread while the reactor serves load). `stop()`
    sends a signal and waits for the process to exit. Restarts reuse port and datadir.
    """

    # Small and fast: tiny buffers, no binlog, no performance schema. Durable commits
    # (innodb_flush_log_at_trx_commit=1, the default) so a SIGKILL loses nothing committed.
    SERVER_OPTIONS = (
        "--bind-address=127.0.0.1", "--skip-name-resolve", "--skip-log-bin",
        "--innodb-buffer-pool-size=32M", "--innodb-log-file-size=16M",
        "--performance-schema=OFF", "--max-connections=300",
        "--character-set-server=utf8mb4", "--collation-server=utf8mb4_general_ci",
        "--innodb-flush-log-at-trx-commit=1",
    )

    def __init__(self, base: Path) -> None:
        self.base = base
        self.datadir = base / "data"
        self.port = free_port()
        self.user = getpass.getuser()
        self.process: subprocess.Popen | None = None
        self.starts = 0

    @property
    def server_url(self) -> str:
        return f"mysql+pymysql://root@127.0.0.1:{self.port}"

    def install(self) -> None:
        # --tmpdir: the bootstrap server deletes every #sql* file of its tmpdir at start,
        # with /tmp (the default) the live temporary tables of the shared server (CI: a
        # query failed with "Error on delete of '/tmp/#sql-temptable-….MAI'").
        result = subprocess.run(
            [INSTALL_DB, "--no-defaults", f"--datadir={self.datadir}", f"--tmpdir={self.base}",
             f"--user={self.user}",
             "--auth-root-authentication-method=normal", "--skip-test-db",
             "--skip-name-resolve", *self.SERVER_OPTIONS[3:5]],
            capture_output=True, text=True, timeout=120)
        if result.returncode != 0:
            raise RuntimeError(f"mariadb-install-db failed:\n{result.stdout}{result.stderr}")

    def server_options(self) -> tuple[str, ...]:
        """Options after the per-server paths and port (a Galera node adds its own)."""
        return self.SERVER_OPTIONS

    def is_ready(self, cursor) -> bool:
        """Given a root cursor that could log in: may tests use this server now?"""
        cursor.execute("SELECT 1")
        return True

    def start_process(self) -> None:
        assert not self.running, "the private MariaDB is already running"
        self.starts += 1
        log = open(self.base / "mariadbd.log", "ab")
        try:
            self.process = subprocess.Popen(
                [MARIADBD, "--no-defaults", f"--datadir={self.datadir}",
                 f"--port={self.port}", f"--socket={self.base / 'mysqld.sock'}",
                 f"--pid-file={self.base / 'mysqld.pid'}", f"--user={self.user}",
                 f"--tmpdir={self.base}", *self.server_options()],
                stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        finally:
            log.close()

    def wait_ready(self, timeout: float = 60) -> float:
        """Block until root can log in over TCP and `is_ready` holds; returns the seconds
        waited."""
        started = time.monotonic()
        while True:
            if self.process is None or self.process.poll() is not None:
                raise RuntimeError(f"private mariadbd exited:\n{self.log_tail()}")
            ready = False
            try:
                conn = pymysql.connect(host="127.0.0.1", port=self.port, user="root",
                                       connect_timeout=1)
                try:
                    with conn.cursor() as cursor:
                        ready = self.is_ready(cursor)
                finally:
                    conn.close()
            except pymysql.err.OperationalError:
                pass
            if ready:
                return time.monotonic() - started
            if time.monotonic() - started > timeout:
                raise RuntimeError(f"private mariadbd not ready after {timeout} s:\n"
                                   f"{self.log_tail()}")
            time.sleep(0.05)

    def start(self) -> float:
        self.start_process()
        return self.wait_ready()

    @property
    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 60) -> float:
        """Send `sig` (SIGTERM: clean shutdown, SIGKILL: crash) and wait for the exit;
        returns the seconds it took."""
        assert self.process is not None
        started = time.monotonic()
        self.process.send_signal(signal.SIGCONT)  # a frozen server must be able to die
        self.process.send_signal(sig)
        try:
            self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(10)
            raise RuntimeError(f"private mariadbd ignored signal {sig} for {timeout} s")
        return time.monotonic() - started

    def freeze(self) -> None:
        """SIGSTOP: the server keeps its sockets but answers nothing (a hung database)."""
        assert self.process is not None
        self.process.send_signal(signal.SIGSTOP)
        deadline = time.monotonic() + 10
        while not self._all_threads_stopped():  # delivery to every thread takes a moment
            if time.monotonic() > deadline:
                raise RuntimeError("the private mariadbd did not stop on SIGSTOP")
            time.sleep(0.001)

    def _all_threads_stopped(self) -> bool:
        tasks = Path(f"/proc/{self.process.pid}/task")
        if not tasks.exists():
            return True  # no /proc: trust the signal
        for stat in tasks.glob("*/stat"):
            try:
                state = stat.read_text().rsplit(")", 1)[1].split()[0]
            except (OSError, IndexError):
                continue  # the thread just went away
            if state not in "tT":
                return False
        return True

    def thaw(self) -> None:
        if self.running:
            self.process.send_signal(signal.SIGCONT)

    def terminate(self) -> None:
        """At teardown: whatever state it is in, make sure it is gone."""
        if self.running:
            self.process.send_signal(signal.SIGCONT)
            self.process.kill()
            self.process.wait(30)

    def log_tail(self, lines: int = 30) -> str:
        path = self.base / "mariadbd.log"
        if not path.exists():
            return "(no log)"
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])


@pytest.fixture(scope="session")
def private_mariadb(tmp_path_factory):
    """A private MariaDB for this test session (killed at the end, datadir removed)."""
    if not (os.access(INSTALL_DB, os.X_OK) and os.access(MARIADBD, os.X_OK)):
        pytest.fail(f"needs {INSTALL_DB} and {MARIADBD} to run a private MariaDB "
                    "(package mariadb-server; scripts/test installs it)")
    base = tmp_path_factory.mktemp("private-mariadb")
    server = PrivateMariaDB(base)
    try:
        server.install()
        server.start()
        yield server
    finally:
        server.terminate()
        shutil.rmtree(base, ignore_errors=True)


_names = iter(range(1 << 30))


@pytest.fixture
def private_db_url(private_mariadb):
    """A fresh database with the whole schema on the private MariaDB. After the test the
    server must be running again (the test restarts what it stopped); if it is not, it
    is restarted here and the test fails."""
    if not private_mariadb.running:
        private_mariadb.start()
    url = f"{private_mariadb.server_url}/ict_fault_{os.getpid()}_{next(_names)}"
    migrate.upgrade(url)
    yield url
    left_down = not private_mariadb.running
    if left_down:
        private_mariadb.start()
    private_mariadb.thaw()  # harmless when it is not frozen
    conn = pymysql.connect(host="127.0.0.1", port=private_mariadb.port, user="root",
                           connect_timeout=5, read_timeout=30)
    try:
        with conn.cursor() as cursor:
            cursor.execute(f"DROP DATABASE IF EXISTS `{url.rsplit('/', 1)[1]}`")
    finally:
        conn.close()
    assert not left_down, "the test left the private MariaDB stopped"


@pytest.fixture(scope="session")
def galera_cluster(tmp_path_factory):
    """A private 3-node Galera cluster for this test session (tests/faults/galera_cluster.py).
    A machine that cannot run one FAILS the tests that need it, with the reason."""
    from .galera_cluster import GaleraCluster, missing_packages

    missing = missing_packages()
    if missing:
        pytest.fail(f"the Galera tests need the Debian packages {', '.join(missing)} "
                    "(scripts/setup-local.sh installs them)")
    failures = []
    for _ in range(2):     # a second try from scratch: a state transfer can fail on a busy machine
        base = tmp_path_factory.mktemp("galera")
        cluster = GaleraCluster(base)
        try:
            cluster.form()
            break
        except (RuntimeError, OSError, subprocess.SubprocessError) as exc:
            failures.append(str(exc))
            cluster.terminate()
            shutil.rmtree(base, ignore_errors=True)
    else:
        pytest.fail("the private 3-node Galera cluster did not start, twice: "
                    + "\n--- second try ---\n".join(failures))
    try:
        yield cluster
    finally:
        cluster.terminate()
        shutil.rmtree(base, ignore_errors=True)


@pytest.fixture
def galera_db(galera_cluster):
    """A fresh database with the whole schema, created through node 1, on a cluster whose
    three nodes are all running and Synced (a node a test killed is started again first).
    Yields the database name; `node.url(name)` is its URL on each node."""
    galera_cluster.ensure_running()
    name = f"ict_galera_{os.getpid()}_{next(_names)}"
    migrate.upgrade(galera_cluster.nodes[0].url(name))
    yield name
    node = next(n for n in galera_cluster.nodes if n.running)
    conn = pymysql.connect(host="127.0.0.1", port=node.port, user="root", connect_timeout=5,
                           read_timeout=60)
    try:
        with conn.cursor() as cursor:
            cursor.execute(f"DROP DATABASE IF EXISTS `{name}`")
    finally:
        conn.close()
