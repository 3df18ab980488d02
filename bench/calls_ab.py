"""Before/after: bench/calls.py against an older revision (A) and this working tree (B) in
the same run, alternating, so the machine's load hits both alike.

    .venv/bin/python bench/calls_ab.py [--ref 53b47f2] [--rounds 3]
                                       [-- calls.py options, default: --duration 20
                                           --warmup 5 --servers 2 --no-baseline]

A is `git archive REF` unpacked into a temporary directory; each side runs its OWN
bench/calls.py, schema and `fastagi` package (PYTHONPATH points at that side, and the
servers calls.py starts inherit it), on its own database (`ict_bench_ab_a`,
`ict_bench_ab_b`). Rounds go A B, B A, A B, ... Each run's own checks (ledger, costs,
over-admission) must pass; a failed run stops the comparison (exit 1).

Prints per run: complete calls/s, authorize and settle p50/p99 ms, and CPU ms per
complete call (servers, MariaDB); then the medians of each side and B/A. On a shared
machine the CPU per call is the steadiest of these; latencies at saturation are mostly
queueing. Issue 19 asks authorize and settle to stay within 1.1x of the revision before.
"""

from __future__ import annotations

import argparse
import os
import re
import statistics
import subprocess
import sys
import tarfile
import tempfile
from dataclasses import dataclass
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
DEFAULT_CALLS_OPTIONS = ["--duration", "20", "--warmup", "5", "--servers", "2",
                         "--no-baseline"]
ROW = re.compile(r"^ictcontact x(\d+)\s+([\d.]+)\s+([\d.]+)\s+([\d.]+)\s+([\d.]+)\s+"
                 r"([\d.]+)\s+([\d.]+)\s+([\d.]+)\s+(\d+)\s+(\d+)\s+(\d+)\s+(\d+)")
CPU = re.compile(r"^\s+CPU ms per complete call: servers ([\d.]+)\s+mariadb ([\d.]+)")


@dataclass
class Run:
    side: str
    calls_per_s: float
    authorize_p50: float
    authorize_p99: float
    settle_p50: float
    settle_p99: float
    servers_cpu_ms: float
    mariadb_cpu_ms: float

    FIELDS = ("calls_per_s", "authorize_p50", "authorize_p99", "settle_p50", "settle_p99",
              "servers_cpu_ms", "mariadb_cpu_ms")

    def line(self) -> str:
        return (f"{self.side}: {self.calls_per_s:7.1f} calls/s  authorize p50/p99 "
                f"{self.authorize_p50:6.1f}/{self.authorize_p99:6.1f} ms  settle p50/p99 "
                f"{self.settle_p50:6.1f}/{self.settle_p99:6.1f} ms  CPU/call servers "
                f"{self.servers_cpu_ms:.2f} ms, mariadb {self.mariadb_cpu_ms:.2f} ms")


def unpack(ref: str, into: Path) -> str:
    """`git archive ref` into `into`; returns the full commit id."""
    commit = subprocess.run(["git", "-C", str(ROOT), "rev-parse", "--verify", f"{ref}^{{commit}}"],
                            capture_output=True, text=True, check=True).stdout.strip()
    archive = into / "ref.tar"
    subprocess.run(["git", "-C", str(ROOT), "archive", "--format=tar", "-o", str(archive),
                    commit], check=True)
    with tarfile.open(archive) as tar:
        tar.extractall(into / "tree", filter="data")
    archive.unlink()
    return commit


def run_calls(side: str, root: Path, database: str, options: list[str]) -> Run:
    env = dict(os.environ, PYTHONPATH=str(root))
    result = subprocess.run([sys.executable, str(root / "bench" / "calls.py"),
                             "--database", database, *options],
                            cwd=root, env=env, capture_output=True, text=True, timeout=3600)
    output = result.stdout + result.stderr
    if result.returncode != 0:
        raise SystemExit(f"{side}: bench/calls.py failed ({result.returncode}):\n"
                         + output[-4000:])
    rows = [m for m in map(ROW.match, output.splitlines()) if m]
    cpus = [m for m in map(CPU.match, output.splitlines()) if m]
    if not rows or not cpus:
        raise SystemExit(f"{side}: could not read the figures of bench/calls.py:\n"
                         + output[-4000:])
    row, cpu = rows[-1], cpus[-1]
    return Run(side, float(row[2]), float(row[3]), float(row[4]), float(row[6]),
               float(row[7]), float(cpu[1]), float(cpu[2]))


def main(argv=None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    passed = DEFAULT_CALLS_OPTIONS
    if "--" in argv:
        passed = argv[argv.index("--") + 1:]
        argv = argv[:argv.index("--")]
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--ref", default="53b47f2", help="revision A (default 53b47f2)")
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args(argv)
    runs: dict[str, list[Run]] = {"A": [], "B": []}
    with tempfile.TemporaryDirectory(prefix="ict-calls-ab-") as scratch:
        commit = unpack(args.ref, Path(scratch))
        roots = {"A": Path(scratch) / "tree", "B": ROOT}
        head = subprocess.run(["git", "-C", str(ROOT), "describe", "--always", "--dirty"],
                              capture_output=True, text=True).stdout.strip()
        print(f"A = {args.ref} ({commit[:12]}), B = working tree ({head}); "
              f"bench/calls.py {' '.join(passed)}", flush=True)
        for round_no in range(args.rounds):
            order = ("A", "B") if round_no % 2 == 0 else ("B", "A")
            for side in order:
                run = run_calls(side, roots[side], f"ict_bench_ab_{side.lower()}", passed)
                runs[side].append(run)
                print(f"round {round_no + 1} {run.line()}", flush=True)
    medians = {side: {f: statistics.median(getattr(r, f) for r in side_runs)
                      for f in Run.FIELDS} for side, side_runs in runs.items()}
    print()
    for side in ("A", "B"):
        print("median " + Run(side, **medians[side]).line())
    ratios = {f: medians["B"][f] / medians["A"][f] if medians["A"][f] else float("nan")
              for f in Run.FIELDS}
    print("B/A: " + ", ".join(f"{f} {ratios[f]:.3f}" for f in Run.FIELDS))
    print("(calls/s: higher is better; latencies and CPU per call: lower is better)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
