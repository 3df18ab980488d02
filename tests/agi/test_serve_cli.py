"""`ictcontact serve` as a subprocess: startup refusals, schema creation, SIGTERM drain."""

from __future__ import annotations

import re
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from fastagi import channel_vars as v
from fastagi.agi.quoting import command_line
from fastagi.db import migrate

from sqlalchemy.engine import make_url

from tests.serve_process import LoggedProcess, Server, environ, run_ictcontact, serve_command
from tests.support.database import connect_server

from .helpers import env_block

TABLE = ("CREATE TABLE t{n} (id INT NOT NULL PRIMARY KEY COMMENT 'row') "
         "ENGINE=InnoDB COMMENT='test table {n}';\n")


def schema_dir(tmp_path: Path, versions: int) -> Path:
    directory = tmp_path / f"schema{versions}"
    directory.mkdir()
    for n in range(1, versions + 1):
        (directory / f"00{n}_t{n}.sql").write_text(TABLE.format(n=n))
    return directory


def refused(url: str, **extra: str) -> subprocess.CompletedProcess:
    result = subprocess.run(serve_command("--db", url, "--listen", "tcp:0"),
                            env=environ(**extra), capture_output=True, text=True, timeout=60)
    assert result.returncode == 1, result.stderr
    lines = [line for line in result.stderr.splitlines() if " INFO " not in line]
    assert len(lines) == 1, result.stderr
    return result


def test_refuses_a_database_behind_the_code(empty_db_url, tmp_path):
    migrate.upgrade(empty_db_url, schema_dir(tmp_path, 1))
    result = refused(empty_db_url, ICTCONTACT_SCHEMA_DIR=str(schema_dir(tmp_path, 2)))
    assert result.stderr.splitlines()[-1] == (
        "ictcontact serve: database schema is at version 1, this code needs 2: "
        "run `ictcontact db upgrade`")


def test_refuses_a_database_ahead_of_the_code(empty_db_url, tmp_path):
    migrate.upgrade(empty_db_url, schema_dir(tmp_path, 2))
    result = refused(empty_db_url, ICTCONTACT_SCHEMA_DIR=str(schema_dir(tmp_path, 1)))
    assert result.stderr.splitlines()[-1] == (
        "ictcontact serve: database schema is at version 2, newer than this code's 1: "
        "upgrade ictcontact")


def test_refuses_an_unreachable_database():
    result = refused("mysql+pymysql://root@127.0.0.1:1/nothing")
    assert re.fullmatch(r"ictcontact serve: cannot use the database "
                        r"mysql\+pymysql://root@127\.0\.0\.1:1/nothing: .*Can't connect.*",
                        result.stderr.splitlines()[-1])


def test_refuses_a_bad_setting():
    result = subprocess.run(serve_command("--session-timeout", "2", "--db-timeout", "5"),
                            env=environ(), capture_output=True, text=True, timeout=60)
    assert result.returncode == 2
    assert "db_timeout (5 s) must be shorter than session_timeout (2 s)" in result.stderr


class Asterisk:
    """A blocking socket client for precise control of one session."""

    def __init__(self, port: int, script: str) -> None:
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=10)
        self.file = self.sock.makefile("rb")
        self.sock.sendall(env_block(script))

    def read_command(self) -> bytes:
        return self.file.readline()

    def reply(self, line: bytes) -> None:
        self.sock.sendall(line)

    def closed_by_server(self) -> bool:
        """True when the server closed (FIN) or aborted (RST) the connection."""
        try:
            return self.file.readline() == b""
        except ConnectionResetError:
            return True


@pytest.mark.parametrize("option, endpoint", [("listen", "garbage"),
                                              ("listen", "0.0.0.0:4574"),
                                              ("metrics", "9464")])
def test_refuses_an_endpoint_it_cannot_read(db_url, option, endpoint):
    result = run_ictcontact("serve", "--db", db_url, f"--{option}", endpoint)

    assert result.returncode == 2, result.stderr
    assert result.stderr.splitlines() == [
        f"ictcontact: --{option} {endpoint!r} is not a Twisted server endpoint "
        f"(Unknown endpoint type: {endpoint.split(':')[0]!r}): "
        f"write e.g. tcp:4573:interface=0.0.0.0"]


def test_a_port_in_use_is_one_line_and_exit_1(db_url):
    taken = socket.socket()
    taken.bind(("127.0.0.1", 0))
    taken.listen()
    try:
        port = taken.getsockname()[1]
        result = run_ictcontact("serve", "--db", db_url, "--log-level", "WARNING",
                                "--listen", f"tcp:{port}:interface=127.0.0.1")
    finally:
        taken.close()
    assert result.returncode == 1, result.stderr
    lines = [line for line in result.stderr.splitlines() if " WARNING " not in line]
    assert len(lines) == 1 and lines[0].startswith(
        f"ictcontact serve: cannot listen on tcp:{port}:interface=127.0.0.1: "), result.stderr


def schemata(name: str) -> list[tuple]:
    connection = connect_server()
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT COUNT(*) FROM information_schema.schemata "
                           "WHERE schema_name = %s", (name,))
            databases = cursor.fetchone()[0]
            cursor.execute("SELECT COUNT(*) FROM information_schema.tables "
                           "WHERE table_schema = %s", (name,))
            return [(databases, cursor.fetchone()[0])]
    finally:
        connection.close()


def test_refuses_a_missing_database_and_creates_nothing(empty_db_url):
    name = make_url(empty_db_url).database
    result = refused(empty_db_url)
    assert result.stderr.splitlines()[-1] == (
        f"ictcontact serve: the database {empty_db_url} does not exist: check --db, or "
        f"create it with `ictcontact db upgrade --db URL`")
    assert schemata(name) == [(0, 0)]


def test_refuses_a_database_without_schema_and_creates_none(empty_db_url):
    name = make_url(empty_db_url).database
    connection = connect_server()
    try:
        with connection.cursor() as cursor:
            cursor.execute(f"CREATE DATABASE `{name}`")
    finally:
        connection.close()
    result = refused(empty_db_url)
    assert result.stderr.splitlines()[-1] == (
        f"ictcontact serve: the database {empty_db_url} has no schema: check --db, or "
        f"create it with `ictcontact db upgrade --db URL`")
    assert schemata(name) == [(1, 0)]


def test_sigterm_drains_sessions_in_flight(db_url):
    server = Server(db_url, "--shutdown-grace-seconds", "10")
    asterisk = Asterisk(server.port, "health")
    assert asterisk.read_command() == command_line("SET VARIABLE", v.HEALTH, "OK")
    server.process.send_signal(signal.SIGTERM)
    server.wait_for("stopped listening; 1 session")
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection(("127.0.0.1", server.port), timeout=5)
    asterisk.reply(b"200 result=1\n")  # the session in flight still completes
    assert asterisk.read_command() == command_line("SET VARIABLE", v.RESULT, v.ALLOW)
    asterisk.reply(b"200 result=1\n")
    assert asterisk.read_command() == command_line("SET VARIABLE", v.REASON, "")
    asterisk.reply(b"200 result=1\n")
    assert asterisk.closed_by_server()
    code, log = server.finish()
    assert code == 0, log
    assert "session script=health client=- decision=ALLOW" in log
    assert "stopped after 1 session(s) (0 aborted at shutdown)" in log


def test_sigterm_aborts_sessions_still_open_after_the_grace(db_url):
    server = Server(db_url, "--shutdown-grace-seconds", "0.5", "--session-timeout", "30")
    asterisk = Asterisk(server.port, "health")
    assert asterisk.read_command() == command_line("SET VARIABLE", v.HEALTH, "OK")
    started = time.monotonic()
    server.process.send_signal(signal.SIGINT)
    assert asterisk.closed_by_server()  # never answered: dropped after the grace
    code, log = server.finish()
    assert code == 0, log
    assert 0.4 < time.monotonic() - started < 10
    assert "aborting 1 session(s) still open after 0.5 s" in log
    assert "stopped after 1 session(s) (1 aborted at shutdown)" in log


def test_scripts_serve_still_creates_a_missing_database_then_serves(empty_db_url):
    """The README's Quick start: `scripts/serve` runs `db upgrade` before `serve`."""
    script = Path(__file__).resolve().parents[2] / "scripts" / "serve"
    venv = str(Path(sys.executable).parent.parent)
    server = LoggedProcess([str(script), "--db", empty_db_url,
                            "--listen", "tcp:0:interface=127.0.0.1"],
                           environ(ICT_VENV=venv))
    try:
        server.wait_for(r"listening on 127\.0\.0\.1:\d+", timeout=120)
    finally:
        server.process.send_signal(signal.SIGTERM)
    code, log = server.finish()
    assert code == 0, log
    assert "schema upgraded to version" in log
    assert schemata(make_url(empty_db_url).database)[0][1] > 0


def test_a_periodic_job_failing_at_start_logs_one_line(db_url):
    name = make_url(db_url).database
    connection = connect_server()
    try:
        with connection.cursor() as cursor:  # a column the stale sweep writes is gone
            cursor.execute(f"ALTER TABLE `{name}`.calls "
                           f"RENAME COLUMN review_note TO review_note_gone")
    finally:
        connection.close()
    server = Server(db_url, "--stale-sweep-seconds", "1")
    try:
        server.wait_for(r"periodic job sweep_stale_calls failed: OperationalError: "
                        r"\(1054, \"Unknown column 'review_note' in 'SET'\"\)$")
        server.wait_for("periodic job sweep_stale_calls failed")  # again, a second later
    finally:
        server.process.send_signal(signal.SIGTERM)
    code, log = server.finish()
    assert code == 0, log
    assert "Traceback" not in log
    # every line of the log is a log record: no traceback lines in between
    assert all(re.match(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d+ [A-Z]+ ", line)
               for line in log.splitlines()), log


@pytest.fixture
def server_account(db_url):
    """(grant, url): `grant(sql)` runs one GRANT/REVOKE for this test's own account
    (`ON {db}` stands for its database); url logs in as that account. Dropped after."""
    database = make_url(db_url).database
    account = "s" + database.removeprefix("ict_test_")  # unique to this test's database
    password = "server password"
    connection = connect_server()

    def grant(sql: str) -> None:
        with connection.cursor() as cursor:
            cursor.execute(sql.format(db=f"`{database}`", who=f"'{account}'@'%'"))
    try:
        grant(f"CREATE USER {{who}} IDENTIFIED BY '{password}'")
        yield grant, (make_url(db_url).set(username=account, password=password)
                      .render_as_string(hide_password=False))
    finally:
        grant("DROP USER IF EXISTS {who}")
        connection.close()


def test_refuses_an_account_with_select_only(server_account):
    grant, url = server_account
    grant("GRANT SELECT ON {db}.* TO {who}")

    result = refused(url)

    assert re.fullmatch(r"ictcontact serve: the database account lacks a privilege the "
                        r"server needs: INSERT command denied to user 's[0-9_]+'@'[^']+' "
                        r"for table `ict_test_[0-9_]+`\.`calls`",
                        result.stderr.splitlines()[-1]), result.stderr


def test_health_is_down_when_a_privilege_is_revoked_while_serving(server_account):
    grant, url = server_account
    # table-level grants: a REVOKE applies at once, even to pooled connections
    grant("GRANT SELECT ON {db}.* TO {who}")
    for table, privileges in (("calls", "INSERT, UPDATE"), ("clients", "UPDATE"),
                              ("client_accounts", "UPDATE"),
                              ("agent_sessions", "INSERT, UPDATE"), ("agents", "UPDATE"),
                              ("agent_login_log", "INSERT"), ("client_changes", "DELETE")):
        grant(f"GRANT {privileges} ON {{db}}.{table} TO {{who}}")
    server = Server(url, "--login-sync-seconds", "0")  # no EXECUTE on sync_db_logins needed
    try:
        asterisk = Asterisk(server.port, "health")
        assert asterisk.read_command() == command_line("SET VARIABLE", v.HEALTH, "OK")
        asterisk.sock.close()
        grant("REVOKE UPDATE ON {db}.calls FROM {who}")
        asterisk = Asterisk(server.port, "health")
        assert asterisk.read_command() == command_line("SET VARIABLE", v.HEALTH, "DOWN")
        asterisk.reply(b"200 result=1\n")
        assert asterisk.read_command() == command_line("SET VARIABLE", v.RESULT, v.REJECT)
        asterisk.sock.close()
        server.wait_for(r"UPDATE command denied to user .* for table `ict_test_[0-9_]+`\.`calls`")
    finally:
        server.process.send_signal(signal.SIGTERM)
    code, log = server.finish()
    assert code == 0, log


def _grant_what_serve_writes(grant) -> None:
    grant("GRANT SELECT ON {db}.* TO {who}")
    for table, privileges in (("calls", "INSERT, UPDATE"), ("clients", "UPDATE"),
                              ("client_accounts", "UPDATE"),
                              ("agent_sessions", "INSERT, UPDATE"), ("agents", "UPDATE"),
                              ("agent_login_log", "INSERT"), ("client_changes", "DELETE")):
        grant(f"GRANT {privileges} ON {{db}}.{table} TO {{who}}")


def test_the_login_sync_job_needs_execute_on_sync_db_logins(server_account):
    grant, url = server_account
    _grant_what_serve_writes(grant)

    result = refused(url)

    assert re.fullmatch(r"ictcontact serve: the database account lacks a privilege the "
                        r"server needs: EXECUTE on the procedure sync_db_logins \(the login "
                        r"sync job\): GRANT EXECUTE ON PROCEDURE ict_test_[0-9_]+\.sync_db_logins "
                        r"TO the account, or start with --login-sync-seconds 0",
                        result.stderr.splitlines()[-1]), result.stderr


def test_with_execute_on_sync_db_logins_the_login_sync_job_runs(server_account):
    grant, url = server_account
    _grant_what_serve_writes(grant)
    grant("GRANT EXECUTE ON PROCEDURE {db}.sync_db_logins TO {who}")
    server = Server(url, "--login-sync-seconds", "0.2")
    try:
        time.sleep(1.5)  # several runs of the job
    finally:
        server.process.send_signal(signal.SIGTERM)
    code, log = server.finish()
    assert code == 0, log
    assert "failed" not in log, log
