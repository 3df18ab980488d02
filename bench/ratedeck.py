"""A rate deck for the benchmarks: a CSV file given with --deck, or one generated here.

    python bench/ratedeck.py [--rows 100000] [--seed 1] > deck.csv

The generated deck has the shape of a wholesale 100,000-prefix deck (the one the
documented figures were measured with): unique digit prefixes of 1-8 digits, most of 5-7,
spread over every leading digit; rates from about $0.006 to $0.72 a minute, log-uniform (median about $0.07);
five increment schemes (60/60, 30/6, 6/6, 1/1, 60/1) in equal shares; a connection fee
on one rate in five. The same rows and seed always give the same deck, so runs on a fresh
clone are comparable with each other without any file from outside the repository.
"""

from __future__ import annotations

import argparse
import csv
import random
import sys
from pathlib import Path

COLUMNS = ("prefix", "description", "rate_per_min", "connection_fee",
           "initial_increment", "subsequent_increment")
# Share of prefixes by length (digits), as in a wholesale deck.
LENGTH_WEIGHTS = {1: 2, 2: 43, 3: 435, 4: 3787, 5: 19645, 6: 34344, 7: 35471, 8: 6273}
INCREMENTS = ((60, 60), (30, 6), (6, 6), (1, 1), (60, 1))
FEES = (("0.0000", 80), ("0.0250", 10), ("0.0100", 10))


def generate(rows: int = 100_000, seed: int = 1) -> list[dict[str, str]]:
    """`rows` deck rows (dicts keyed by COLUMNS, values as a CSV would give them)."""
    rng = random.Random(seed)
    lengths = list(LENGTH_WEIGHTS)
    weights = list(LENGTH_WEIGHTS.values())
    fee_values = [fee for fee, _ in FEES]
    fee_weights = [weight for _, weight in FEES]
    seen: set[str] = set()
    deck = []
    while len(deck) < rows:
        length = rng.choices(lengths, weights)[0]
        prefix = str(rng.randint(1, 9)) + "".join(
            str(rng.randint(0, 9)) for _ in range(length - 1))
        if prefix in seen:  # taken (short lengths fill up): draw again, length too
            continue
        seen.add(prefix)
        initial, subsequent = rng.choice(INCREMENTS)
        rate = 0.0064 * (0.7199 / 0.0064) ** rng.random()  # log-uniform: median ~$0.07
        deck.append({
            "prefix": prefix,
            "description": f"Destination {prefix}",
            "rate_per_min": f"{rate:.4f}",
            "connection_fee": rng.choices(fee_values, fee_weights)[0],
            "initial_increment": str(initial),
            "subsequent_increment": str(subsequent),
        })
    return deck


def read(path: Path) -> list[dict[str, str]]:
    """A deck CSV with the COLUMNS header (extra columns are ignored)."""
    with path.open(newline="", encoding="utf-8") as handle:
        reader = csv.DictReader(handle)
        missing = [c for c in COLUMNS if c not in (reader.fieldnames or ())]
        if missing:
            raise SystemExit(f"{path}: not a rate deck, missing columns {', '.join(missing)}")
        return list(reader)


def load(path: str | None, rows: int = 100_000, seed: int = 1) -> list[dict[str, str]]:
    """The deck at `path`, or the generated one when no path is given."""
    return read(Path(path)) if path else generate(rows, seed)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args(argv)
    writer = csv.DictWriter(sys.stdout, fieldnames=COLUMNS, lineterminator="\n")
    writer.writeheader()
    writer.writerows(generate(args.rows, args.seed))
    return 0


if __name__ == "__main__":
    sys.exit(main())
