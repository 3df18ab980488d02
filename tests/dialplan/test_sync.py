"""`ictcontact dialplan generate|sync|check`: write only on change, reload, retry."""

from __future__ import annotations

import fcntl
import stat
import subprocess

import pytest
from sqlalchemy import text

from fastagi.cli import main
from fastagi.dialplan import reload as reload_mod
from fastagi.dialplan import sync as sync_mod
from fastagi.dialplan.confparse import ConfError
from fastagi.dialplan.generate import render
from tests.dialplan.helpers import DIALPLAN, EXTENSIONS_CONF, SAMPLE_CLIENTS

GOOD = render(SAMPLE_CLIENTS)


class Reloads:
    def __init__(self, fail=False):
        self.calls = 0
        self.fail = fail

    def __call__(self):
        self.calls += 1
        if self.fail:
            raise reload_mod.ReloadError("Asterisk is down")


def test_writes_and_reloads_once(tmp_path):
    out, reload = tmp_path / "clients.conf", Reloads()
    first = sync_mod.sync(out, GOOD, reload)
    second = sync_mod.sync(out, GOOD, reload)
    assert (first.changed, first.reloaded) == (True, True)
    assert (second.changed, second.reloaded) == (False, False)
    assert reload.calls == 1 and out.read_text() == GOOD
    assert stat.S_IMODE(out.stat().st_mode) == 0o644


def test_change_rewrites_and_reloads(tmp_path):
    out, reload = tmp_path / "clients.conf", Reloads()
    sync_mod.sync(out, GOOD, reload)
    changed = render(SAMPLE_CLIENTS[:1])
    result = sync_mod.sync(out, changed, reload)
    assert result.changed and result.reloaded and reload.calls == 2
    assert out.read_text() == changed


def test_failed_reload_is_retried_next_run(tmp_path):
    out = tmp_path / "clients.conf"
    with pytest.raises(reload_mod.ReloadError):
        sync_mod.sync(out, GOOD, Reloads(fail=True))
    assert out.read_text() == GOOD  # Asterisk reads the new file when it comes back
    reload = Reloads()
    result = sync_mod.sync(out, GOOD, reload)
    assert (result.changed, result.reloaded, reload.calls) == (False, True, 1)


def test_failed_reload_puts_the_previous_file_back(tmp_path):
    out = tmp_path / "clients.conf"
    sync_mod.sync(out, GOOD, Reloads())
    confirmed = sync_mod.state_path(out).read_text()
    changed = render(SAMPLE_CLIENTS[:1])
    with pytest.raises(reload_mod.ReloadError):
        sync_mod.sync(out, changed, Reloads(fail=True))
    # the file Asterisk last confirmed is what it reads if it restarts now
    assert out.read_text() == GOOD
    assert sync_mod.state_path(out).read_text() == confirmed
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".clients.conf.")
            and p.name not in (".clients.conf.reloaded", ".clients.conf.lock")] == []
    # the next run, Asterisk back, installs and reloads the new text
    reload = Reloads()
    result = sync_mod.sync(out, changed, reload)
    assert (result.changed, result.reloaded, reload.calls) == (True, True, 1)
    assert out.read_text() == changed


def test_broken_text_is_never_installed(tmp_path):
    out = tmp_path / "clients.conf"
    out.write_text(GOOD)
    with pytest.raises(ConfError):
        sync_mod.sync(out, GOOD + "exten => oops\n", Reloads())
    assert out.read_text() == GOOD


def test_second_sync_while_one_runs_is_refused(tmp_path):
    out = tmp_path / "clients.conf"
    with open(sync_mod.lock_path(out), "a") as held:
        fcntl.flock(held, fcntl.LOCK_EX)
        with pytest.raises(sync_mod.SyncBusy):
            sync_mod.sync(out, GOOD, Reloads())
    assert not out.exists()


def test_reload_rx_checks_the_outcome():
    def fake(argv, **kw):
        assert argv == ["asterisk", "-rx", "dialplan reload"]
        return subprocess.CompletedProcess(argv, 0, "Dialplan reloaded.\n", "")
    assert "reloaded" in reload_mod.reload_rx(run=fake)

    def down(argv, **kw):
        return subprocess.CompletedProcess(
            argv, 1, "Unable to connect to remote asterisk (does /var/run/asterisk/asterisk.ctl"
            " exist?)\n", "")
    with pytest.raises(reload_mod.ReloadError):
        reload_mod.reload_rx(run=down)
    with pytest.raises(reload_mod.ReloadError):
        reload_mod.reload_rx(asterisk_bin="/nonexistent/asterisk")


class FakeReply:
    def __init__(self, headers):
        self.headers = headers

    def get_header(self, name, default=None):
        return self.headers.get(name, default)


class FakeManager:
    def __init__(self, response):
        self.response, self.sent, self.closed = response, [], False

    def connect(self, host, port):
        self.where = (host, port)

    def login(self, username, secret):
        self.login_as = (username, secret)

    def send_action(self, action):
        self.sent.append(action)
        return FakeReply(self.response)

    def connected(self):
        return True

    def logoff(self):
        pass

    def close(self):
        self.closed = True


def test_reload_ami_sends_reload_of_pbx_config():
    manager = FakeManager({"Response": "Success"})
    target = reload_mod.AmiTarget(secret="pw")
    reload_mod.reload_ami(target, manager_factory=lambda: manager)
    assert manager.sent == [{"Action": "Reload", "Module": "pbx_config"}]
    assert manager.login_as == ("ictcontact-sync", "pw") and manager.closed
    refused = FakeManager({"Response": "Error", "Message": "Permission denied"})
    with pytest.raises(reload_mod.ReloadError, match="Permission denied"):
        reload_mod.reload_ami(target, manager_factory=lambda: refused)


def test_cli_generate_and_sync_from_the_database(db_url, engine, tmp_path, capsys):
    with engine.begin() as conn:
        conn.execute(text("INSERT INTO clients (code, name) VALUES ('acme', 'Acme')"))
    assert main(["dialplan", "generate", "--db", db_url]) == 0
    printed = capsys.readouterr().out
    assert "[client-acme]" in printed and "[client-master]" in printed
    out = tmp_path / "ictcontact-clients.conf"
    args = ["dialplan", "sync", "--db", db_url, "--out", str(out), "--reload", "none"]
    assert main(args) == 0
    assert out.read_text() == printed
    assert "rewritten" in capsys.readouterr().out
    assert main(args) == 0
    assert "unchanged" in capsys.readouterr().out
    # a new client in SQL appears at the next sync, with no hand edit
    with engine.begin() as conn:
        conn.execute(text("INSERT INTO clients (code, name) VALUES ('newco', 'New Co')"))
    assert main(args) == 0
    assert "[client-newco]" in out.read_text()


def test_cli_sync_reload_failure_exits_nonzero(db_url, tmp_path, capsys):
    out = tmp_path / "c.conf"
    code = main(["dialplan", "sync", "--db", db_url, "--out", str(out), "--reload", "rx",
                 "--asterisk-bin", "/nonexistent/asterisk"])
    assert code == 1 and "ictcontact:" in capsys.readouterr().err
    assert out.exists()


def test_cli_sync_whose_reload_fails_leaves_the_installed_file_as_it_was(db_url, engine,
                                                                        tmp_path, capsys):
    out = tmp_path / "c.conf"
    assert main(["dialplan", "sync", "--db", db_url, "--out", str(out), "--reload",
                 "none"]) == 0
    installed = out.read_text()
    with engine.begin() as conn:
        conn.execute(text("INSERT INTO clients (code, name) VALUES ('newco', 'New Co')"))
    code = main(["dialplan", "sync", "--db", db_url, "--out", str(out), "--reload", "rx",
                 "--asterisk-bin", "/nonexistent/asterisk"])
    assert code == 1 and "ictcontact:" in capsys.readouterr().err
    assert out.read_text() == installed and "[client-newco]" not in installed


def test_cli_database_down_is_one_line(tmp_path, capsys):
    code = main(["dialplan", "generate", "--db",
                 "mysql+pymysql://root@127.0.0.1:1/none"])
    assert code == 1
    err = capsys.readouterr().err
    assert err.startswith("ictcontact: cannot use database") and err.count("\n") == 1


def test_cli_emergency_numbers_setting(db_url, capsys):
    assert main(["dialplan", "generate", "--db", db_url, "--emergency-numbers", "112,000"]) == 0
    printed = capsys.readouterr().out
    assert "exten => 000,1,Gosub(ict-emergency,s,1(master,000))" in printed
    assert "exten => 911," not in printed


def test_cli_check(tmp_path, capsys):
    clients = tmp_path / "ictcontact-clients.conf"
    clients.write_text(GOOD)
    files = [str(EXTENSIONS_CONF), str(DIALPLAN), str(clients)]
    assert main(["dialplan", "check", *files]) == 0
    assert main(["dialplan", "check", str(DIALPLAN)]) == 1   # no [globals]: reads unset
    assert "nothing sets" in capsys.readouterr().out
