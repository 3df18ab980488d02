"""schema/current/ (`ictcontact db snapshot`) is the schema a fresh `db upgrade` makes, and an
existing database upgraded forward ends with the very same schema."""

from __future__ import annotations

import difflib
import os
import subprocess
import sys

from fastagi.db import migrate, snapshot
from fastagi.db.engine import make_engine

SCHEMA = migrate.schema_dir()
COMMITTED = SCHEMA / "current"
REGENERATE = "run `ictcontact db snapshot` and commit schema/current/"

# The schema files a database upgraded at the last landing (main at f8f66a5) has applied.
# Files added since are applied after these on such a database, whatever their number: a
# file numbered below 150 runs after 150 there, but before it on a fresh upgrade.
LANDED = (1, 2, 3, 4, 5, 6, 7, 8, 9, 20, 21, 22, 30, 31, 32, 40, 41, 42, 43, 44, 50, 51,
          52, 53, 60, 61, 62, 63, 70, 71, 72, 73, 74, 75, 76, 80, 81, 82, 83, 90, 91, 92,
          93, 94, 95, 96, 97, 98, 99, 100, 101, 102, 103, 104, 110, 111, 112, 113, 114,
          115, 116, 117, 118, 119, 120, 124, 127, 132, 135, 140, 147, 148, 149, 150, 151,
          152, 153, 154, 155, 156, 157, 160, 161, 163, 164, 165, 166, 167, 169, 170, 172,
          173, 174, 176, 177)


def ictcontact(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    """Run `python -m fastagi ARGS` with no ICTCONTACT_* settings but those in `env`."""
    clean = {k: v for k, v in os.environ.items() if not k.startswith("ICTCONTACT_")}
    clean.update(env or {})
    return subprocess.run([sys.executable, "-m", "fastagi", "--log-level", "WARNING", *args],
                          capture_output=True, text=True, env=clean, timeout=120)


def drift(made: dict[str, str], committed: dict[str, str]) -> str:
    """'' when equal; otherwise which files differ, the first difference, and what to do."""
    added = sorted(made.keys() - committed.keys())
    gone = sorted(committed.keys() - made.keys())
    changed = sorted(p for p in made.keys() & committed.keys() if made[p] != committed[p])
    if not (added or gone or changed):
        return ""
    lines = [f"schema/current/ differs from the schema a fresh `db upgrade` makes: {REGENERATE}"]
    lines += [f"  not in schema/current/: {p}" for p in added]
    lines += [f"  no longer made: schema/current/{p}" for p in gone]
    lines += [f"  differs: schema/current/{p}" for p in changed]
    if changed:
        first = changed[0]
        lines += list(difflib.unified_diff(committed[first].splitlines(), made[first].splitlines(),
                                           f"schema/current/{first}", "fresh upgrade",
                                           lineterm="", n=2))[:40]
    return "\n".join(lines)


def snapshot_of(url: str) -> dict[str, str]:
    engine = make_engine(url, pool_size=1)
    try:
        with engine.connect() as conn:
            return snapshot.render(conn)
    finally:
        engine.dispose()


def test_a_fresh_upgrade_makes_exactly_the_committed_snapshot(empty_db_url, tmp_path):
    """The command as the coordinator runs it: a scratch database on the configured server,
    migrated, read and dropped."""
    run = ictcontact("db", "snapshot", "--out", str(tmp_path), env={"ICTCONTACT_DB": empty_db_url})

    assert run.returncode == 0, run.stderr
    assert "schema snapshot of a fresh upgrade" in run.stdout
    made = snapshot.read(tmp_path)
    assert len(made) > 60 and {"tables/clients.sql", "views/client_list.sql",
                               "routines/add_payment.sql", "events/db_login_sync.sql"} <= set(made)
    assert drift(made, snapshot.read(COMMITTED)) == ""
    scratch = empty_db_url.rsplit("/", 1)[1] + "_snapshot_"
    engine = make_engine(empty_db_url.rsplit("/", 1)[0] + "/", pool_size=1)
    try:
        with engine.connect() as conn:
            left = conn.exec_driver_sql("SHOW DATABASES LIKE %s", (scratch + "%",)).all()
    finally:
        engine.dispose()
    assert left == []   # the scratch database is dropped


def test_every_file_says_it_is_generated_and_how():
    files = snapshot.read(COMMITTED)
    assert files
    assert [p for p, content in files.items() if not content.startswith(snapshot.HEADER)] == []
    assert "`ictcontact db snapshot`" in snapshot.HEADER


def test_a_database_upgraded_in_the_order_of_the_last_landing_has_the_same_schema(
        empty_db_url, tmp_path):
    landed = tmp_path / "landed"
    landed.mkdir()
    for migration in migrate.available_migrations():
        if migration.version in LANDED:
            (landed / migration.name).symlink_to(migration.path)
    assert migrate.upgrade(empty_db_url, directory=landed, timeout_s=60) == list(LANDED)

    new = migrate.upgrade(empty_db_url, timeout_s=60)

    assert new == [m.version for m in migrate.available_migrations() if m.version not in LANDED]
    assert drift(snapshot_of(empty_db_url), snapshot.read(COMMITTED)) == ""


def test_a_database_behind_the_code_is_not_snapshotted(empty_db_url, tmp_path):
    """A snapshot of another version would not describe schema/: refused, nothing written."""
    first = tmp_path / "first"
    first.mkdir()
    for migration in migrate.available_migrations()[:3]:
        (first / migration.name).symlink_to(migration.path)
    migrate.upgrade(empty_db_url, directory=first, timeout_s=60)
    out = tmp_path / "out"

    run = ictcontact("db", "snapshot", "--db", empty_db_url, "--out", str(out))

    assert run.returncode == 1
    lines = run.stderr.strip().splitlines()
    assert len(lines) == 1, run.stderr
    assert "run `ictcontact db upgrade`" in lines[0]
    assert not out.exists()


def test_a_snapshot_of_a_given_database_is_the_same_as_of_a_fresh_upgrade(db_url, tmp_path):
    run = ictcontact("db", "snapshot", "--db", db_url, "--out", str(tmp_path))

    assert run.returncode == 0, run.stderr
    assert drift(snapshot.read(tmp_path), snapshot.read(COMMITTED)) == ""


def test_writing_removes_files_no_longer_made_and_leaves_equal_ones_alone(tmp_path):
    (tmp_path / "tables").mkdir()
    (tmp_path / "tables" / "gone.sql").write_text("old", encoding="utf-8")
    (tmp_path / "tables" / "same.sql").write_text("same", encoding="utf-8")
    (tmp_path / "README.md").write_text("not generated", encoding="utf-8")

    changed = snapshot.write({"tables/same.sql": "same", "views/new.sql": "new"}, tmp_path)

    assert changed == ["tables/gone.sql", "views/new.sql"]
    assert snapshot.read(tmp_path) == {"tables/same.sql": "same", "views/new.sql": "new"}
    assert (tmp_path / "README.md").read_text(encoding="utf-8") == "not generated"


def test_the_migrator_never_applies_the_snapshot():
    assert list(COMMITTED.rglob("*.sql"))
    assert all(m.path.parent == SCHEMA for m in migrate.available_migrations())


def test_no_trigger_slot_holds_more_than_one_trigger(engine):
    """One trigger per table, timing and event: what fires is read in one place, in order."""
    with engine.connect() as conn:
        stacked = snapshot.stacked_slots(conn)
    assert stacked == [], ("slots holding stacked triggers (merge each into one trigger, "
                           "in a new schema file):\n" + "\n".join(stacked))


def test_stacked_slots_are_named_in_firing_order(engine):
    with engine.begin() as conn:
        conn.exec_driver_sql("CREATE TABLE probe (id INT PRIMARY KEY) COMMENT 'x'")
        conn.exec_driver_sql("CREATE TRIGGER probe_b BEFORE INSERT ON probe FOR EACH ROW SET @b = 1")
        conn.exec_driver_sql("CREATE TRIGGER probe_a BEFORE INSERT ON probe FOR EACH ROW"
                             " PRECEDES probe_b SET @a = 1")
        assert "probe BEFORE INSERT: probe_a, probe_b" in snapshot.stacked_slots(conn)
