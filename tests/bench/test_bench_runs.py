"""The README's benchmark commands work from the repository alone (no file from outside).

The generated deck keeps the shape the figures were measured with, and bench/calls.py runs
a short phase end to end on its default (generated) deck, its own checks passing.
"""

from __future__ import annotations

import collections
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support.database import SERVER_URL, drop_database

BENCH = Path(__file__).resolve().parents[2] / "bench"
sys.path.insert(0, str(BENCH))
import ratedeck  # noqa: E402  (bench/ is scripts, not a package)


def test_generated_deck_is_deterministic_unique_and_wholesale_shaped():
    deck = ratedeck.generate(20_000, seed=7)
    assert deck == ratedeck.generate(20_000, seed=7)
    assert deck != ratedeck.generate(20_000, seed=8)
    prefixes = [row["prefix"] for row in deck]
    assert len(set(prefixes)) == len(prefixes) == 20_000
    assert all(p.isdigit() and p[0] != "0" and 1 <= len(p) <= 8 for p in prefixes)
    lengths = collections.Counter(len(p) for p in prefixes)
    assert sum(lengths[n] for n in (5, 6, 7)) / len(deck) > 0.8
    assert {row["prefix"][0] for row in deck} == set("123456789")
    schemes = collections.Counter((r["initial_increment"], r["subsequent_increment"]) for r in deck)
    assert set(schemes) == {(str(a), str(b)) for a, b in ratedeck.INCREMENTS}
    rates = sorted(float(r["rate_per_min"]) for r in deck)
    assert 0.006 <= rates[0] and rates[-1] <= 0.72 and 0.04 < rates[len(rates) // 2] < 0.11


def test_a_deck_file_without_the_columns_is_refused(tmp_path):
    bad = tmp_path / "deck.csv"
    bad.write_text("prefix,rate\n44,0.01\n")
    with pytest.raises(SystemExit, match="missing columns description, rate_per_min"):
        ratedeck.read(bad)


def test_a_deck_file_is_read_as_given(tmp_path):
    path = tmp_path / "deck.csv"
    path.write_text("prefix,description,rate_per_min,connection_fee,initial_increment,"
                    "subsequent_increment\n44,UK,0.0120,0.0000,60,60\n")
    assert ratedeck.load(str(path)) == [{
        "prefix": "44", "description": "UK", "rate_per_min": "0.0120",
        "connection_fee": "0.0000", "initial_increment": "60", "subsequent_increment": "60"}]


def test_calls_benchmark_runs_on_a_fresh_clone_with_its_generated_deck():
    database = f"ict_bench_test_{os.getpid()}"
    try:
        done = subprocess.run(
            [sys.executable, str(BENCH / "calls.py"), "--duration", "2", "--warmup", "1",
             "--servers", "1", "--no-baseline", "--clients", "20", "--concurrency", "10",
             "--deck-rows", "2000", "--server-url", SERVER_URL, "--database", database],
            capture_output=True, text=True, timeout=240, cwd=BENCH.parent)
    finally:
        drop_database(database)
    output = done.stdout + done.stderr
    assert done.returncode == 0, output[-3000:]
    assert "2,000 rates in the default plan" in output
    assert "complete calls/s" in output
    assert "0 mismatches" in output


def test_dialer_benchmark_runs_and_its_exactness_checks_pass():
    done = subprocess.run(
        [sys.executable, str(BENCH / "dialer.py"), "--rates", "20", "--contacts", "60",
         "--capped", "5", "--capped-contacts", "40"],
        capture_output=True, text=True, timeout=240, cwd=BENCH.parent,
        env={**os.environ, "ICT_TEST_SERVER": SERVER_URL})
    output = done.stdout + done.stderr
    assert done.returncode == 0, output[-3000:]
    row = next(line for line in done.stdout.splitlines() if line.startswith("| 20 |"))
    cells = [c.strip() for c in row.strip("|").split("|")]
    assert cells[1:3] == ["60", "60"]            # every contact originated once
    assert cells[6] == "0" and cells[8:10] == ["0", "0"]   # no double dial, all exact
    capped = next(line for line in done.stdout.splitlines()
                  if line.startswith("| 20 |") and "(5)" in line)
    most = int([c.strip() for c in capped.strip("|").split("|")][7].split()[0])
    assert 1 <= most <= 5                        # the campaign's cap held
