"""The shipped systemd units (systemd/) are valid for systemd itself and hardened.

`systemd-analyze verify` returns 0 even for an unknown key or a value it ignores, so a
unit only passes when it prints nothing at all. The tool is installed by
scripts/setup-local.sh (Debian package `systemd`); without it these tests fail, never skip.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from fastagi.alerts.config import NotifierConfig
from fastagi.commands.dialer import DialerProcess
from fastagi.commands.notifier import NotifierProcess
from fastagi.services import ServeConfig

UNITS = Path(__file__).resolve().parents[2] / "systemd"
SHIPPED_BINARY = "/opt/ictcontact/.venv/bin/ictcontact"
NAMES = ("ictcontact-serve.service", "ictcontact-dialer.service",
         "ictcontact-notifier.service")
HARDENING = {
    "NoNewPrivileges": "yes", "ProtectSystem": "strict", "ProtectHome": "yes",
    "PrivateTmp": "yes", "PrivateDevices": "yes", "ProtectKernelTunables": "yes",
    "ProtectKernelModules": "yes", "ProtectKernelLogs": "yes", "ProtectControlGroups": "yes",
    "RestrictAddressFamilies": "AF_INET AF_INET6 AF_UNIX", "MemoryDenyWriteExecute": "yes",
    "CapabilityBoundingSet": "", "User": "ictcontact", "Restart": "on-failure",
    "KillSignal": "SIGTERM", "RestartPreventExitStatus": "2",
}


def systemd_analyze() -> str:
    tool = shutil.which("systemd-analyze")
    if tool is None:
        pytest.fail("systemd-analyze is missing: scripts/setup-local.sh installs it "
                    "(apt-get install systemd)")
    return tool


def settings(unit: Path) -> dict[str, list[str]]:
    """Key -> every value it is given (systemd keys may repeat)."""
    found: dict[str, list[str]] = {}
    for line in unit.read_text().splitlines():
        if re.match(r"[A-Za-z]+=", line):
            key, _, value = line.partition("=")
            found.setdefault(key, []).append(value)
    return found


def installed_copy(unit: Path, tmp_path: Path) -> Path:
    """The unit as it would be installed, its ExecStart pointing at this checkout's
    ictcontact (verify checks that the program exists)."""
    binary = Path(sys.executable).with_name("ictcontact")
    assert binary.exists(), binary
    text = unit.read_text()
    assert SHIPPED_BINARY in text
    copy = tmp_path / unit.name
    copy.write_text(text.replace(SHIPPED_BINARY, str(binary)))
    return copy


def verify(unit: Path) -> str:
    """Everything `systemd-analyze verify` says about `unit` (nothing when it is valid)."""
    done = subprocess.run([systemd_analyze(), "verify", "--man=no", str(unit)],
                          capture_output=True, text=True, timeout=60)
    said = (done.stdout + done.stderr).strip()
    return said if said or done.returncode == 0 else f"exit {done.returncode}"


@pytest.mark.parametrize("name", NAMES)
def test_systemd_analyze_verify_finds_nothing(name, tmp_path):
    assert verify(installed_copy(UNITS / name, tmp_path)) == ""


def test_a_broken_unit_is_caught(tmp_path):
    """The check above is real: a typo'd key and a bad address family are reported."""
    copy = installed_copy(UNITS / NAMES[0], tmp_path)
    copy.write_text(copy.read_text().replace("NoNewPrivileges=yes", "NoNewPrivilege=yes")
                    .replace("AF_UNIX", "AF_UNIXX"))
    said = verify(copy)
    assert "Unknown key" in said and "NoNewPrivilege" in said
    assert "AF_UNIXX" in said


@pytest.mark.parametrize("name", NAMES)
def test_the_units_are_hardened(name):
    found = settings(UNITS / name)
    for key, value in HARDENING.items():
        assert found.get(key) == [value], (key, found.get(key))
    assert "@system-service" in found["SystemCallFilter"]
    assert found["ExecStart"][0].split()[:2] == [SHIPPED_BINARY, name.split("-")[1].split(".")[0]]
    # Secrets come from a root-only file, never from the unit or the command line.
    assert "SECRET" not in "".join(found["ExecStart"])
    assert "PASSWORD" not in "".join(found["ExecStart"])
    assert "Environment" not in found
    env_file = found["EnvironmentFile"][0]
    if name == "ictcontact-notifier.service":
        # the SMTP password, when the mail server wants AUTH: optional
        assert env_file == "-/etc/ictcontact/notifier.env"
        return
    assert env_file.lstrip("-") == "/etc/ictcontact/ami.env"
    # The dialer cannot run without AMI: its secret file is required; serve's is optional.
    assert env_file.startswith("-") == (name == "ictcontact-serve.service")


@pytest.mark.parametrize("name", NAMES)
def test_systemd_waits_longer_than_the_shutdown_grace(name):
    stop = int(settings(UNITS / name)["TimeoutStopSec"][0])
    assert stop > ServeConfig().shutdown_grace_seconds + 5
    # the notifier (alone or in serve) lets a send in flight end within its timeout
    assert stop > NotifierConfig().alert_timeout + 5
    # each command's shutdown bound with its defaults, a database that answers nothing
    # included (tests/faults/test_db_outage.py ... stops_within_its_bounds ...)
    bound = {"ictcontact-serve.service": ServeConfig().shutdown_grace_seconds
             + ServeConfig().db_timeout,
             "ictcontact-dialer.service": DialerProcess().db_timeout + 1.0,  # + AMI Logoff
             "ictcontact-notifier.service": NotifierConfig().alert_timeout
             + NotifierProcess().db_timeout}[name]
    assert stop > bound + 5


@pytest.mark.parametrize("name", NAMES)
def test_systemd_rates_the_exposure_ok(name, tmp_path):
    done = subprocess.run([systemd_analyze(), "security", "--offline=yes", "--no-pager",
                           str(installed_copy(UNITS / name, tmp_path))],
                          capture_output=True, text=True, timeout=60)
    level = re.search(r"Overall exposure level for \S+: ([0-9.]+) (\w+)", done.stdout)
    assert level, done.stdout + done.stderr
    assert float(level.group(1)) <= 2.0 and level.group(2) == "OK", level.group(0)
