"""`ictcontact rates import (--plan NAME | --trunk NAME) deck.csv`: load a rate deck, the
sell rates of a rate plan or the buy rates of a trunk. The file is the whole deck: its
prefixes are added or changed, the deck's prefixes missing from it are removed. All or
nothing: one bad line (named with its number) and nothing is written. `--dry-run` prints
what would change. The columns are documented in fastagi/billing/decks.py and
docs/admin-sql.md ("Rate decks").

`ictcontact rates apply-due` puts pending changes whose time has come into effect now
(the database event apply_due_rates does it every 5 seconds; use this when the event
scheduler is off, or from cron on the Galera nodes where the event does not run).
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from datetime import datetime
from typing import TextIO

from fastagi.billing.decks import DeckError, DeckRow, compare, parse_time, read_deck
from fastagi.db.engine import describe_failure, make_engine
from fastagi.db.retry import with_retry
from fastagi.settings import database_url, source_from_args
from fastagi.store import rate_decks

SHOW_ERRORS = 20


def add_arguments(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="action", required=True, metavar="ACTION")
    load = sub.add_parser("import", help="load a rate deck (CSV) into a rate plan or a trunk")
    target = load.add_mutually_exclusive_group(required=True)
    target.add_argument("--plan", metavar="NAME", help="rate plan whose sell rates the deck replaces")
    target.add_argument("--trunk", metavar="NAME", help="trunk whose buy rates the deck replaces")
    load.add_argument("file", help="CSV with a header line: prefix,description,rate_per_min,"
                                   "connection_fee,initial_increment,subsequent_increment[,effective_date]")
    load.add_argument("--effective", metavar="'YYYY-MM-DD HH:MM'",
                      help="when the deck takes effect (UTC; default now); a line's effective_date wins")
    load.add_argument("--dry-run", action="store_true",
                      help="print what would be added, changed, removed; write nothing")
    load.add_argument("--show", type=int, default=10, metavar="N",
                      help="differences printed (default 10)")
    load.add_argument("--db", help="SQLAlchemy URL (env ICTCONTACT_DB)")
    load.add_argument("--progress", choices=("auto", "always", "never"), default="auto",
                      help="progress bar on stderr (auto: when stderr is a terminal)")
    due = sub.add_parser("apply-due", help="put the pending rate changes whose time has come into effect")
    due.add_argument("--db", help="SQLAlchemy URL (env ICTCONTACT_DB)")


class Bar:
    """A one-line progress bar on `stream` (stderr), redrawn at most 10 times a second."""

    def __init__(self, stream: TextIO, enabled: bool) -> None:
        self.stream, self.enabled, self._drawn = stream, enabled, 0.0

    def show(self, what: str, done: int, total: int, force: bool = False) -> None:
        now = time.monotonic()
        if not self.enabled or (not force and now - self._drawn < 0.1):
            return
        self._drawn = now
        share = min(done / max(total, 1), 1.0)
        self.stream.write(f"\r\033[K{what} [{'#' * int(share * 30):<30}] {share:4.0%}")
        self.stream.flush()

    def done(self) -> None:
        if self.enabled:
            self.stream.write("\r\033[K")
            self.stream.flush()


class _Counted:
    def __init__(self, handle: TextIO, bar: Bar, total: int) -> None:
        self.handle, self.bar, self.total, self.bytes = handle, bar, total, 0

    def __iter__(self):
        for line in self.handle:
            self.bytes += len(line.encode("utf-8", "surrogateescape"))
            self.bar.show("reading", self.bytes, self.total)
            yield line
        self.bar.show("reading", self.total, self.total, force=True)


def run(args: argparse.Namespace) -> int:
    name = f"ictcontact rates {args.action}"
    url = database_url(source_from_args(args))
    if args.action == "apply-due":
        try:
            engine = make_engine(url, pool_size=1)
            try:
                with_retry(lambda: _apply_due(engine), idempotent=True)
            finally:
                engine.dispose()
        except Exception as exc:
            print(f"{name}: {describe_failure(exc)}", file=sys.stderr)
            return 1
        return 0
    effective = None
    if args.effective:
        try:
            effective = parse_time(args.effective)
        except ValueError as exc:
            print(f"{name}: --effective {exc}", file=sys.stderr)
            return 2
    try:
        handle = open(args.file, encoding="utf-8-sig", errors="strict", newline="")
    except OSError as exc:
        print(f"{name}: cannot read {args.file}: {exc.strerror}", file=sys.stderr)
        return 2
    bar = Bar(sys.stderr, args.progress == "always" or (args.progress == "auto" and sys.stderr.isatty()))
    with handle:
        try:
            rows, errors = read_deck(_Counted(handle, bar, os.fstat(handle.fileno()).st_size))
        except DeckError as exc:
            bar.done()
            print(f"{name}: {args.file}: {exc}", file=sys.stderr)
            return 1
        except UnicodeDecodeError:
            bar.done()
            print(f"{name}: {args.file} is not UTF-8 text: save it as UTF-8 CSV", file=sys.stderr)
            return 1
    bar.done()
    if errors:
        for error in errors[:SHOW_ERRORS]:
            print(f"{args.file}: {error}", file=sys.stderr)
        more = len(errors) - SHOW_ERRORS
        print(f"{name}: nothing imported: {len(errors)} bad line{'s' if len(errors) != 1 else ''}"
              + (f" ({more} more not shown)" if more > 0 else "")
              + "; correct them and import again", file=sys.stderr)
        return 1
    kind, deck_name = ("plan", args.plan) if args.plan else ("trunk", args.trunk)
    try:
        engine = make_engine(url, pool_size=1)
        try:
            # a deadlock with the apply_due_rates event is retried whole (nothing printed yet)
            return with_retry(lambda: import_rows(engine, kind, deck_name, rows, effective,
                                                  dry_run=args.dry_run, show=args.show, bar=bar),
                              attempts=3)
        finally:
            engine.dispose()
    except rate_decks.DeckNotFound as exc:
        print(f"{name}: {exc}", file=sys.stderr)
        return 1
    except Exception as exc:  # the database refused or went away: one line, nothing written
        print(f"{name}: nothing imported: {describe_failure(exc)}", file=sys.stderr)
        return 1


def _apply_due(engine) -> None:
    with engine.begin() as conn:
        rate_decks.apply_due(conn)


def import_rows(engine, kind: str, deck_name: str, rows: list[DeckRow],
                effective: datetime | None, dry_run: bool = False, show: int = 10,
                bar: Bar | None = None, out: TextIO | None = None) -> int:
    """Compare `rows` with the deck and write the differences in one transaction."""
    out = out or sys.stdout
    bar = bar or Bar(sys.stderr, False)
    with engine.connect() as conn:
        transaction = conn.begin()
        try:
            rate_decks.apply_due(conn)
            deck = rate_decks.lock_deck(conn, kind, deck_name)
            now = rate_decks.database_now(conn)
            deck_time = max(effective or now, now)
            times = {row.prefix: max(row.effective or deck_time, now) for row in rows}
            since = min([deck_time, *times.values()])
            # reading the deck back takes seconds for 100,000 rates: the bar shows it
            # against the file's size (the usual deck is about as long as the file)
            read = 0

            def comparing(n: int) -> None:
                nonlocal read
                read += n
                bar.show("comparing", read, len(rows))

            current, later = rate_decks.deck_before(conn, deck, since, comparing)
            plan = compare(current, rows)
            by_prefix = {row.prefix: row for row in rows}
            changed = [by_prefix[d.prefix] for d in plan.differences if d.kind != "removed"]
            removed = [d.prefix for d in plan.differences if d.kind == "removed"]
            soon = [row for row in changed if times[row.prefix] <= now]
            wait = [(row, times[row.prefix]) for row in changed if times[row.prefix] > now]
            total, done = len(changed) + len(removed), 0

            def progress(n: int) -> None:
                nonlocal done
                done += n
                bar.show("writing", done, total)

            if not dry_run:
                dropped = rate_decks.replace_pending(conn, deck, since)
                if deck_time <= now:
                    rate_decks.write_now(conn, deck, soon, removed, progress)
                    rate_decks.write_pending(conn, deck, wait, [], deck_time, progress)
                else:
                    rate_decks.write_now(conn, deck, soon, [], progress)
                    rate_decks.write_pending(conn, deck, wait, removed, deck_time, progress)
                if total:
                    bar.show("writing", total, total, force=True)
            else:
                dropped = later
        except BaseException:
            transaction.rollback()
            bar.done()
            raise
        if dry_run:
            transaction.rollback()
        else:
            transaction.commit()
    bar.done()
    when = "now" if deck_time <= now else f"at {deck_time:%Y-%m-%d %H:%M:%S} UTC"
    pending = len(wait) + (len(removed) if deck_time > now else 0)
    print(f"{deck.label}: {plan.counts()}; "
          + (f"in effect {when}" if not pending else
             f"{len(soon)} in effect now, {pending} pending (deck {when})")
          + (f"; replaces {dropped} pending change{'s' if dropped != 1 else ''} scheduled "
             f"from then on" if dropped else ""), file=out)
    for difference in plan.differences[:show]:
        print(f"  {difference}", file=out)
    if len(plan.differences) > show:
        print(f"  ... {len(plan.differences) - show} more differences", file=out)
    if dry_run:
        print("dry run: nothing written", file=out)
    return 0
