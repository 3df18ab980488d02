"""Write the generated contexts only when they changed, then reload the dialplan.

Safe to run every minute from cron or a systemd timer:
- a second run while one is still going exits at once (lock file);
- an unchanged database touches nothing and reloads nothing;
- the file is replaced atomically (Asterisk never reads half a file), and a text that
  does not pass the strict parser is never installed;
- a reload that fails puts the previously installed file back (atomically, before the
  error is raised), so the file on disk is always the one Asterisk last confirmed: an
  Asterisk that was down or restarting loads that one, not a text nobody saw load. (A
  reload that timed out may still have loaded the new text: the next run finds the file
  differs from the database, writes it and reloads again, so the two meet within one run.)
  A first install, with nothing before it, keeps the new file;
- the checksum of the last text Asterisk confirmed loading is kept next to the file, so a
  failed reload of an unchanged file (a file written by `generate`, or a crash between
  the write and the reload) is retried by the next run.
"""

from __future__ import annotations

import fcntl
import hashlib
import logging
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from fastagi.dialplan import confparse

log = logging.getLogger(__name__)


class SyncBusy(RuntimeError):
    """Another sync holds the lock."""


@dataclass(frozen=True)
class SyncResult:
    changed: bool       # the file was rewritten
    reloaded: bool      # Asterisk was asked to reload and confirmed
    path: Path


def write_atomically(path: Path, content: str) -> None:
    """Replace `path` with `content` in one rename (same directory, fsynced, mode 0644)."""
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=str(path.parent))
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(content)
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def state_path(path: Path) -> Path:
    return path.with_name(f".{path.name}.reloaded")


def lock_path(path: Path) -> Path:
    return path.with_name(f".{path.name}.lock")


def checksum(content: str) -> str:
    return hashlib.sha256(content.encode("utf-8")).hexdigest()


def sync(path: str | Path, content: str, reload: Callable[[], object] | None,
         force_reload: bool = False) -> SyncResult:
    """Install `content` at `path` if it differs; reload unless Asterisk already runs it.

    `reload=None` only writes the file. Raises SyncBusy if another sync runs, ConfError if
    `content` is not a valid dialplan, and whatever `reload` raises.
    """
    path = Path(path)
    confparse.dialplan_from_texts((str(path), content))  # never install a broken file
    with open(lock_path(path), "a") as lock:
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError as exc:
            raise SyncBusy(f"another sync holds {lock_path(path)}") from exc
        old = path.read_text(encoding="utf-8") if path.exists() else None
        changed = old != content
        if changed:
            write_atomically(path, content)
            log.info("wrote %s", path)
        if reload is None:
            return SyncResult(changed=changed, reloaded=False, path=path)
        state = state_path(path)
        loaded = state.read_text().strip() if state.exists() else ""
        if loaded == checksum(content) and not force_reload:
            return SyncResult(changed=changed, reloaded=False, path=path)
        try:
            reload()
        except BaseException:
            if changed and old is not None:
                write_atomically(path, old)
                log.warning("reload failed: put the previous %s back", path)
            raise
        write_atomically(state, checksum(content) + "\n")
        log.info("dialplan reloaded with %s", path)
        return SyncResult(changed=changed, reloaded=True, path=path)
