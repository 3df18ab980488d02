"""Ctrl-C during `ictcontact contacts import`, as an operator presses it: a real SIGINT to
the real console script mid-import. One line on stderr, never a traceback, saying exactly
which lines are committed (the database holds exactly those), exit 130; `--resume`
imports the rest without listing the committed lines as duplicates."""

from __future__ import annotations

import io
import os
import re
import signal
import subprocess
import time

from tests.campaigns.helpers import add_campaign, add_client_with_rate
from tests.serve_process import ICTCONTACT, environ
from tests.support.sql import rows, scalar
from tests.support.waiting import wait_until_blocking

LINES = 100_000   # ~10 s to import whole: the interrupt lands well before the end
CHUNK = 5000      # fastagi.commands.contacts.CHUNK: lines per committed transaction


def write_contacts(tmp_path, lines: int = LINES) -> str:
    path = tmp_path / "contacts.csv"
    with open(path, "w", encoding="utf-8") as out:
        out.write("phone,first_name\n")
        for n in range(lines):
            out.write(f"4470{n:08d},Contact {n}\n")   # line n + 2 holds number n
    return str(path)


def start_import(db_url: str, path: str, *extra: str) -> subprocess.Popen:
    return subprocess.Popen([ICTCONTACT, "contacts", "import", "--campaign", "acme/promo", path,
                             "--db", db_url, "--progress", "never", *extra],
                            env=environ(), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True)


def contacts(engine, campaign: int) -> int:
    return scalar(engine, "SELECT COUNT(*) FROM contacts WHERE campaign_id = :g", g=campaign)


def interrupted_line(stderr: str, path: str, twice: bool = False) -> tuple[int, int]:
    """(last committed line, contacts imported) from the one line on stderr."""
    assert "Traceback" not in stderr
    lines = stderr.splitlines()
    assert len(lines) == 1, stderr
    head = ("interrupted twice, stopped at once: " if twice else "interrupted: ")
    match = re.fullmatch(
        "ictcontact contacts import: " + re.escape(head)
        + rf"lines 2-(\d+) of {re.escape(path)} are committed \((\d+) contacts imported into "
        r"acme/promo\), the lines after \1 are not: run the same command with --resume to "
        r"import the rest" + (r"; the chunk in flight was rolled back \(had its commit begun, "
                              r"`--resume` finds its lines in the campaign\)" if twice else ""),
        lines[0])
    assert match, lines[0]
    return int(match[1]), int(match[2])


def test_ctrl_c_commits_whole_chunks_says_exactly_which_and_resume_finishes(
        db_url, engine, tmp_path):
    client = add_client_with_rate(engine, "acme")
    campaign = add_campaign(engine, client)
    path = write_contacts(tmp_path)
    process = start_import(db_url, path)
    wait_until_blocking(lambda: contacts(engine, campaign) > 0, 60)

    process.send_signal(signal.SIGINT)
    stdout, stderr = process.communicate(timeout=60)

    assert process.returncode == 130, stderr
    last, imported = interrupted_line(stderr, path)
    assert 2 + CHUNK - 1 <= last < LINES + 1 and (last - 1) % CHUNK == 0   # whole chunks
    assert imported == last - 1
    # the database holds exactly the lines it names: numbers 0 .. last-2, once each
    held = rows(engine, "SELECT COUNT(*), COUNT(DISTINCT phone), MIN(phone), MAX(phone) "
                        "FROM contacts WHERE campaign_id = :g", g=campaign)[0]
    assert tuple(held) == (imported, imported, "447000000000", f"4470{last - 2:08d}")
    assert stdout.splitlines() == [f"acme/promo: imported {imported} contacts"]

    resumed = subprocess.run([ICTCONTACT, "contacts", "import", "--campaign", "acme/promo",
                              path, "--db", db_url, "--progress", "never", "--resume"],
                             env=environ(), capture_output=True, text=True, timeout=120)

    assert resumed.returncode == 0, resumed.stderr
    assert resumed.stdout.splitlines() == [
        f"acme/promo: imported {LINES - imported} contacts; {imported} lines already in the "
        f"campaign (resumed)"]
    assert resumed.stderr == ""
    assert tuple(rows(engine, "SELECT COUNT(*), COUNT(DISTINCT phone) FROM contacts "
                              "WHERE campaign_id = :g", g=campaign)[0]) == (LINES, LINES)


def test_a_second_ctrl_c_stops_at_once_and_rolls_the_chunk_in_flight_back(
        db_url, engine, tmp_path):
    client = add_client_with_rate(engine, "acme")
    campaign = add_campaign(engine, client)
    path = write_contacts(tmp_path)
    process = start_import(db_url, path)
    wait_until_blocking(lambda: contacts(engine, campaign) > 0, 60)

    process.send_signal(signal.SIGINT)
    time.sleep(0.05)
    process.send_signal(signal.SIGINT)
    _, stderr = process.communicate(timeout=60)

    assert process.returncode == 130, stderr
    last, imported = interrupted_line(stderr, path, twice=True)
    assert imported == last - 1 and (last - 1) % CHUNK == 0
    # Exactly the lines named, unless the second Ctrl-C fell inside the COMMIT round trip
    # of the next chunk (the line says so; --resume handles both).
    assert contacts(engine, campaign) in (imported, imported + CHUNK)


def test_without_resume_a_second_run_lists_the_committed_lines_as_duplicates(
        db_url, engine, tmp_path):
    client = add_client_with_rate(engine, "acme")
    add_campaign(engine, client)
    path = write_contacts(tmp_path, lines=3)
    first = subprocess.run([ICTCONTACT, "contacts", "import", "--campaign", "acme/promo", path,
                            "--db", db_url, "--progress", "never"],
                           env=environ(), capture_output=True, text=True, timeout=60)
    assert first.returncode == 0, first.stderr

    again = subprocess.run([ICTCONTACT, "contacts", "import", "--campaign", "acme/promo", path,
                            "--db", db_url, "--progress", "never"],
                           env=environ(), capture_output=True, text=True, timeout=60)

    assert again.returncode == 0, again.stderr
    assert again.stdout.splitlines()[-1] == ("acme/promo: imported 0 contacts; skipped 3 "
                                             "lines (3 duplicate)")


def lines_sending_sigint(count: int, at: int):
    """A CSV file's lines (header + `count` contacts) that sends this process SIGINT, as
    Ctrl-C would, while line `at` is being read."""
    yield "phone\n"
    for n in range(count):
        if n + 2 == at:
            os.kill(os.getpid(), signal.SIGINT)
        yield f"4471{n:08d}\n"


def import_in_process(engine, lines, capsys) -> tuple[int, str, str]:
    from fastagi.commands import contacts as command
    code = command.import_file(engine, "acme", "promo", lines,
                               command.Progress(io.StringIO(), 1, False))
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_ctrl_c_during_the_last_chunk_is_a_complete_import(engine, capsys, monkeypatch):
    from fastagi.commands import contacts as command
    monkeypatch.setattr(command, "CHUNK", 5)
    client = add_client_with_rate(engine, "acme")
    campaign = add_campaign(engine, client)
    handler = signal.getsignal(signal.SIGINT)

    code, out, err = import_in_process(engine, lines_sending_sigint(8, at=8), capsys)

    assert (code, err) == (0, "")
    assert out.splitlines() == ["acme/promo: imported 8 contacts"]
    assert contacts(engine, campaign) == 8
    assert signal.getsignal(signal.SIGINT) is handler   # put back


def test_ctrl_c_in_a_chunk_stops_after_it_in_process(engine, capsys, monkeypatch):
    from fastagi.commands import contacts as command
    monkeypatch.setattr(command, "CHUNK", 5)
    client = add_client_with_rate(engine, "acme")
    campaign = add_campaign(engine, client)

    code, out, err = import_in_process(engine, lines_sending_sigint(20, at=4), capsys)

    assert code == 130
    assert err == ("ictcontact contacts import: interrupted: lines 2-6 of the file are "
                   "committed (5 contacts imported into acme/promo), the lines after 6 are "
                   "not: run the same command with --resume to import the rest\n")
    assert contacts(engine, campaign) == 5
