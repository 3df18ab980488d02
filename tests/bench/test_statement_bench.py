"""bench/statement.py runs from the repository alone and its checks pass (a small load)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

BENCH = Path(__file__).resolve().parents[2] / "bench"


def test_the_statement_benchmark_runs_and_reconciles():
    done = subprocess.run([sys.executable, str(BENCH / "statement.py"), "--calls", "3000",
                           "--repeat", "1"], capture_output=True, text=True, timeout=600)

    assert done.returncode == 0, done.stdout + done.stderr
    assert "client with 3,000 calls" in done.stdout
    assert "checks: closing balance = ledger at the period end" in done.stdout
