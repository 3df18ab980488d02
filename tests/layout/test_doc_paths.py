"""Every command path the docs tell a reader to paste exists: `.venv/bin/...` (the
checkout's virtualenv, made by scripts/test or scripts/serve) or the installed service's
`/opt/ictcontact/.venv/bin/...` (docs/fastagi.md "Run it under systemd"), never a path
from someone's machine such as /tmp/venv."""

from __future__ import annotations

import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
VENV_PROGRAM = re.compile(r"(?<![\w$])([\w./~-]*)/bin/(python3?|pytest|ictcontact)\b")
ALLOWED = (".venv", "/opt/ictcontact/.venv")


def documents() -> list[Path]:
    return [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md")),
            *sorted((ROOT / "bench").glob("*.py")), *sorted((ROOT / "systemd").iterdir())]


def venv_paths() -> list[tuple[str, str, str]]:
    """(file, venv prefix, program) of every .../bin/PROGRAM in the documents."""
    return [(str(path.relative_to(ROOT)), match[1], match[2])
            for path in documents()
            for match in VENV_PROGRAM.finditer(path.read_text(encoding="utf-8"))]


def test_the_scan_finds_the_documented_commands():
    found = {(f, prefix) for f, prefix, _ in venv_paths()}
    assert ("docs/benchmark.md", ".venv") in found and ("docs/faults.md", ".venv") in found
    assert ("README.md", ".venv") in found
    assert VENV_PROGRAM.search("run /tmp/venv/bin/pytest -q")[1] == "/tmp/venv"


def test_docs_name_only_virtualenvs_that_exist():
    wrong = [(f, f"{prefix}/bin/{program}") for f, prefix, program in venv_paths()
             if prefix not in ALLOWED]
    assert wrong == []


def test_every_documented_program_is_in_the_virtualenv():
    bin_dir = Path(sys.executable).parent   # the venv scripts/test made, as .venv is
    missing = sorted({program for _, _, program in venv_paths()
                      if not (bin_dir / program).exists()})
    assert missing == []
