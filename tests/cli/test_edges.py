"""Edges of the `ictcontact` console script a newcomer hits first: each refusal is one line
on stderr and exit 2, never a traceback (run as the operator runs it, a real subprocess)."""

from __future__ import annotations

import subprocess

import pytest

from fastagi.db import migrate
from tests.serve_process import run_ictcontact

NEWEST = migrate.available_migrations()[-1].version


def one_line_refusal(result: subprocess.CompletedProcess) -> str:
    assert result.returncode == 2, result.stderr
    assert "Traceback" not in result.stderr
    lines = result.stderr.splitlines()
    assert len(lines) == 1, result.stderr
    return lines[0]


def write_config(tmp_path, body: str) -> str:
    path = tmp_path / "ictcontact.conf"
    path.write_text("[ictcontact]\n" + body, encoding="utf-8")
    return str(path)


def test_an_unknown_config_key_is_refused_naming_key_and_file(tmp_path, db_url):
    config = write_config(tmp_path, f"db = {db_url}\nsesion-timeout = 5\n")

    line = one_line_refusal(run_ictcontact("--config", config, "db", "status"))

    assert line == (f"ictcontact: config file {config}: unknown key sesion-timeout in "
                    f"[ictcontact] (a typo? `ictcontact COMMAND --help` lists the settings)")


def test_known_keys_of_other_commands_secrets_and_deprecated_names_are_accepted(tmp_path,
                                                                               db_url):
    # one file serves every command: `db status` must accept serve's and dialer's keys
    config = write_config(tmp_path, f"db = {db_url}\nlisten = tcp:4573\nami-secret = s\n"
                                    "emergency-prefixes = 112\nring-seconds = 30\n")

    result = run_ictcontact("--config", config, "db", "status")

    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines()[0] == f"current version: {NEWEST}"


def test_config_works_after_the_subcommand_too(tmp_path, db_url):
    config = write_config(tmp_path, f"db = {db_url}\n")

    before = run_ictcontact("--config", config, "db", "status")
    after = run_ictcontact("db", "status", "--config", config)

    assert before.returncode == after.returncode == 0, before.stderr + after.stderr
    assert before.stdout == after.stdout
    assert after.stdout.splitlines()[0] == f"current version: {NEWEST}"
    # and it is really read there: a missing file named after the subcommand is refused
    missing = one_line_refusal(run_ictcontact("db", "status", "--config",
                                              str(tmp_path / "nope.conf")))
    assert missing == f"ictcontact: config file {tmp_path / 'nope.conf'} does not exist"


@pytest.mark.parametrize("where", ["before", "after"])
def test_a_bad_log_level_is_one_line(where):
    argv = (["--log-level", "LOUD", "db", "status"] if where == "before"
            else ["db", "status", "--log-level", "LOUD"])

    line = one_line_refusal(run_ictcontact(*argv))

    assert "argument --log-level: 'LOUD' is not a log level: use one of DEBUG, INFO, " \
           "WARNING, ERROR, CRITICAL" in line


@pytest.mark.parametrize("url, reason", [
    ("oracle+nodriver://u@h/db", "Can't load plugin: sqlalchemy.dialects:oracle.nodriver"),
    ("nowhere://u@h/db", "Can't load plugin: sqlalchemy.dialects:nowhere"),
    ("postgresql://u@h/db", "the postgresql dialect is not supported: ictcontact runs on "
                            "MariaDB"),
    ("not a url", "Could not parse SQLAlchemy URL"),
])
@pytest.mark.parametrize("command", [["db", "status"], ["serve"], ["users", "list"],
                                     ["clients", "list"], ["payments", "list", "acme"]])
def test_a_db_url_of_an_unknown_dialect_is_one_line(url, reason, command):
    line = one_line_refusal(run_ictcontact(*command, "--db", url))

    assert line.startswith(f"ictcontact: --db: {reason}"), line


def test_version():
    from importlib import metadata

    result = run_ictcontact("--version")

    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == f"ictcontact {metadata.version('ictcontact-fastagi')}"
