"""`ictcontact contacts import --campaign CLIENT/CAMPAIGN FILE.csv`: load a campaign's
contacts. Every bad line is reported (line number and reason) and the import goes on;
a progress bar is drawn on stderr when it is a terminal. The emergency numbers refused
are the server's setting (`emergency_numbers`, same config key and environment).

The file goes in chunks of CHUNK lines, each committed as one transaction (a list of a
million contacts never holds one huge transaction, which a Galera cluster would replicate
as one write set, and the dialer may start on the first chunks). Ctrl-C (SIGINT) stops
after the chunk in flight commits and says exactly which lines are committed, exit 130; a
second Ctrl-C stops at once, rolling the chunk in flight back. `--resume` runs the same
file again: lines already in the campaign are counted, not reported one by one."""

from __future__ import annotations

import argparse
import os
import signal
import sys
import time
from collections import Counter
from typing import TextIO

from fastagi.campaigns.contact_rows import BadLine, ContactRow, HeaderError, check_lines, chunks
from fastagi.db.engine import describe_failure, make_engine
from fastagi.emergency import DEFAULT_NUMBERS, parse_numbers
from fastagi.settings import database_url, source_from_args
from fastagi.store import contacts_import

CHUNK = 5000
EXIT_INTERRUPTED = 130   # 128 + SIGINT, as shells report a command stopped by Ctrl-C


def add_arguments(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="action", required=True, metavar="ACTION")
    load = sub.add_parser("import", help="load contacts from a CSV file into a campaign")
    load.add_argument("--campaign", required=True, metavar="CLIENT/CAMPAIGN",
                      help="client code and campaign name, e.g. acme/spring-promo")
    load.add_argument("file", help="CSV with a header line: phone[,first_name,last_name,email,time_zone]")
    load.add_argument("--db", help="SQLAlchemy URL (env ICTCONTACT_DB)")
    load.add_argument("--progress", choices=("auto", "always", "never"), default="auto",
                      help="progress bar on stderr (auto: when stderr is a terminal)")
    load.add_argument("--resume", action="store_true",
                      help="finish an interrupted import of the same file: lines already in "
                           "the campaign are counted as imported before, not listed")


class Progress:
    """A one-line progress bar on `stream`, redrawn at most 10 times a second."""

    def __init__(self, stream: TextIO, total_bytes: int, enabled: bool) -> None:
        self.stream, self.total, self.enabled = stream, max(total_bytes, 1), enabled
        self._drawn = 0.0

    def show(self, done_bytes: int, lines: int, force: bool = False) -> None:
        now = time.monotonic()
        if not self.enabled or (not force and now - self._drawn < 0.1):
            return
        self._drawn = now
        share = min(done_bytes / self.total, 1.0)
        bar = "#" * int(share * 30)
        self.stream.write(f"\r[{bar:<30}] {share:4.0%} {lines:,} lines")
        self.stream.flush()

    def close(self) -> None:
        if self.enabled:
            self.stream.write("\n")
            self.stream.flush()


class _CountingFile:
    """Iterates a text file's lines while counting the bytes read (for the progress bar)."""

    def __init__(self, handle: TextIO) -> None:
        self.handle, self.bytes = handle, 0

    def __iter__(self):
        for line in self.handle:
            self.bytes += len(line.encode("utf-8", "surrogateescape"))
            yield line


def run(args: argparse.Namespace) -> int:
    client_code, sep, campaign_name = (args.campaign or "").partition("/")
    if not sep or not client_code or not campaign_name:
        print("ictcontact contacts import: --campaign must be CLIENT/CAMPAIGN", file=sys.stderr)
        return 2
    try:
        handle = open(args.file, encoding="utf-8", errors="surrogateescape", newline="")
    except OSError as exc:
        print(f"ictcontact contacts import: cannot read {args.file}: {exc.strerror}",
              file=sys.stderr)
        return 2
    source = source_from_args(args)
    url = database_url(source)
    try:
        emergency = parse_numbers(source.get("emergency_numbers", DEFAULT_NUMBERS,
                                             aliases=("emergency_prefixes",)))
    except ValueError as exc:
        print(f"ictcontact contacts import: {exc}", file=sys.stderr)
        return 2
    show = args.progress == "always" or (args.progress == "auto" and sys.stderr.isatty())
    with handle:
        try:
            engine = make_engine(url, pool_size=1)
            try:
                return import_file(engine, client_code, campaign_name, handle,
                                   Progress(sys.stderr, os.fstat(handle.fileno()).st_size, show),
                                   emergency_numbers=emergency, resume=args.resume,
                                   name=args.file)
            finally:
                engine.dispose()
        except contacts_import.CampaignNotFound as exc:
            print(f"ictcontact contacts import: {exc}", file=sys.stderr)
            return 1
        except HeaderError as exc:
            print(f"ictcontact contacts import: {args.file}: {exc}", file=sys.stderr)
            return 2
        except Exception as exc:  # the database went away: say so in one line
            print(f"ictcontact contacts import: {describe_failure(exc)}", file=sys.stderr)
            return 1


class _CtrlC:
    """SIGINT during an import: the first asks to stop once the chunk in flight is
    committed (`requested`); the second raises KeyboardInterrupt at once. Outside the
    main thread (no signal reaches it) it changes nothing."""

    def __init__(self) -> None:
        self.requested = False
        self._previous = None

    def __enter__(self) -> "_CtrlC":
        try:
            self._previous = signal.signal(signal.SIGINT, self._handle)
        except ValueError:
            self._previous = None
        return self

    def _handle(self, signum, frame) -> None:
        if self.requested:
            raise KeyboardInterrupt
        self.requested = True

    def __exit__(self, *exc) -> None:
        if self._previous is not None:
            signal.signal(signal.SIGINT, self._previous)


def import_file(engine, client_code: str, campaign_name: str, handle: TextIO,
                progress: Progress, out: TextIO | None = None,
                emergency_numbers: tuple[str, ...] = DEFAULT_NUMBERS,
                resume: bool = False, name: str = "the file") -> int:
    out = out or sys.stdout
    with engine.connect() as conn:
        campaign = contacts_import.find_campaign(conn, client_code, campaign_name)
    counting = _CountingFile(handle)
    imported, lines, present, committed_to = 0, 0, 0, 1   # line 1 is the header
    refused: Counter[str] = Counter()
    stopped = False
    with _CtrlC() as ctrl_c:
        try:
            pending = chunks(check_lines(counting, emergency_numbers=emergency_numbers), CHUNK)
            for chunk in pending:
                rows = [item for item in chunk if isinstance(item, ContactRow)]
                bad = [item for item in chunk if isinstance(item, BadLine)]
                with engine.begin() as conn:
                    refused_here = contacts_import.insert_chunk(conn, campaign, rows)
                committed_to = max(item.line for item in chunk)
                imported += len(rows) - len(refused_here)
                if resume:
                    present += sum(1 for item in refused_here if item.in_campaign)
                    refused_here = [item for item in refused_here if not item.in_campaign]
                bad += refused_here
                lines += len(chunk)
                for item in sorted(bad, key=lambda b: b.line):
                    refused[item.kind] += 1
                    if progress.enabled:
                        progress.stream.write("\r\033[K")
                    print(item, file=out)
                progress.show(counting.bytes, lines)
                if ctrl_c.requested:
                    # stopped unless that was the last chunk (peeking parses, inserts nothing)
                    stopped = next(pending, None) is not None
                    break
        except KeyboardInterrupt:  # the second Ctrl-C: the chunk in flight is rolled back
            progress.close()
            out.flush()
            print(f"ictcontact contacts import: interrupted twice, stopped at once: "
                  f"{_committed(campaign.label, name, committed_to, imported)}; the chunk "
                  f"in flight was rolled back (had its commit begun, `--resume` finds its "
                  f"lines in the campaign)", file=sys.stderr)
            return EXIT_INTERRUPTED
        except Exception as exc:
            if committed_to <= 1:
                raise               # nothing committed: the caller's one line says enough
            progress.close()
            out.flush()
            print(f"ictcontact contacts import: {describe_failure(exc)}; "
                  f"{_committed(campaign.label, name, committed_to, imported)}",
                  file=sys.stderr)
            return 1
    progress.show(counting.bytes, lines, force=True)
    progress.close()
    summary = ", ".join(f"{n} {kind}" for kind, n in sorted(refused.items()))
    print(f"{campaign.label}: imported {imported} contacts"
          + (f"; {present} lines already in the campaign (resumed)" if resume else "")
          + (f"; skipped {sum(refused.values())} lines ({summary})" if refused else ""),
          file=out)
    if stopped:
        out.flush()
        print(f"ictcontact contacts import: interrupted: "
              f"{_committed(campaign.label, name, committed_to, imported)}",
              file=sys.stderr)
        return EXIT_INTERRUPTED
    return 0


def _committed(label: str, name: str, committed_to: int, imported: int) -> str:
    """Exactly what an interrupted import left in the database, and how to finish."""
    if committed_to <= 1:
        return f"nothing of {name} was imported into {label}; run the same command again"
    return (f"lines 2-{committed_to} of {name} are committed ({imported} contacts imported "
            f"into {label}), the lines after {committed_to} are not: run the same command "
            f"with --resume to import the rest")
