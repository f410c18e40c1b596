from __future__ import annotations

import json
import os
import re
import shutil
import sqlite3
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
import pytest

from runtable.store import (
    LATEST_VERSION,
    DatabaseFolder,
    ReadOnlyError,
    UnsupportedVersionError,
    create_folder,
    open_db,
)

from .conftest import PROPOSAL
from .fragments import write_fragment
from .reference_db import ARRAY, make_reference_db, make_v0_db


def objects(db: DatabaseFolder) -> dict[str, str]:
    return dict(db.conn.execute("SELECT name, type FROM sqlite_master"))


def test_new_database(db: DatabaseFolder, folder: Path) -> None:
    obj = objects(db)
    for table in ("run_info", "run_variables", "variables", "metameta", "time_comments",
                  "tags", "variable_tags", "runtable_merged_fragments"):
        assert obj[table] == "table", table
    assert obj["runs"] == obj["max_diffs"] == "view"
    assert obj["delete_orphan_tags_after_variable_tag_delete"] == "trigger"
    assert obj["variable_version"] == obj["proposal_run"] == "index"
    columns = [r[1] for r in db.conn.execute("PRAGMA table_info(run_variables)")]
    assert columns == ["proposal", "run", "name", "version", "value", "timestamp", "max_diff",
                       "provenance", "summary_type", "summary_method", "attributes"]
    assert db.data_format_version == LATEST_VERSION == 4
    assert re.fullmatch(r"[0-9a-f]{40}", db.db_id)
    assert db.proposal == PROPOSAL
    assert db.get_setting("concurrent_jobs") == 15
    assert db.get_setting("damnit_python") == sys.executable
    assert (folder / "context.py").read_text().startswith('"""')
    assert (folder / "extracted_data").is_dir() and (folder / "process_logs").is_dir()
    assert db.conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert db.conn.execute("PRAGMA foreign_keys").fetchone()[0] == 1
    assert db.integrity_check() == "ok"


def test_create_folder_twice_keeps_context(folder: Path) -> None:
    create_folder(folder, PROPOSAL, context_text="# mine\n").close()
    with create_folder(folder, PROPOSAL) as db:
        assert db.context_path.read_text() == "# mine\n"
    with pytest.raises(Exception, match="already belongs to proposal 1234"):
        create_folder(folder, 99)


def test_missing_folder(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError):
        open_db(tmp_path / "nope")


@pytest.mark.parametrize("version", [1, 2, 3, 4])
def test_upgrade_reference_database(tmp_path: Path, version: int) -> None:
    folder = make_reference_db(tmp_path / "ref", version)
    with open_db(folder) as db:
        assert db.data_format_version == 4
        assert db.integrity_check() == "ok"
        assert db.get_value(PROPOSAL, 1, "x") == 1.5
        assert db.get_value(PROPOSAL, 2, "x") == 2.5
        np.testing.assert_array_equal(db.get_value(PROPOSAL, 1, "arr"), ARRAY)
        assert db.get_value(PROPOSAL, 1, "comment") == "first run"
        assert db.get_value(PROPOSAL, 2, "note") == "typed"
        assert db.get_attributes(PROPOSAL, 1, "x") == ({"units": "mm"} if version >= 2 else None)
        assert [c.comment for c in db.time_comments()] == ["beam down"]
        variables = db.variables()
        assert variables["note"].user_editable and variables["x"].title == "X value"
        assert variables["x"].tags == (("motor",) if version >= 3 else ())
        assert db.db_id == "ab" * 20
        # The views have one column per variable after the upgrade.
        row = db.conn.execute("SELECT x, comment, note FROM runs WHERE run = 1").fetchone()
        assert tuple(row) == (1.5, "first run", None)
        # The orphan-tag trigger exists and works.
        db.update_computed_variables({"x": {"title": "X value", "description": "The x",
                                            "tags": []}})
        assert db.conn.execute("SELECT count(*) FROM tags").fetchone()[0] == 0
        # And it is writable as v4: merge a fragment into it.
        write_fragment(folder, PROPOSAL, 2, {"y": 7})
        db.merge_pending()
        assert db.get_value(PROPOSAL, 2, "y") == 7
    # Each step recorded its version; reopening does nothing more.
    with open_db(folder, readonly=True) as db:
        assert db.data_format_version == 4


def test_the_slow_step_of_an_upgrade_may_wait(tmp_path: Path) -> None:
    """`runtable serve` opens a folder the reference made with the index over every
    cell left for later (the table is read first), but the change log in place."""
    from runtable.store import schema

    folder = make_reference_db(tmp_path / "ref", 4)
    index = "runtable_run_variables_name"
    with open_db(folder, defer_slow_upgrade=True) as db:
        assert "runtable_run_changes" in objects(db) and index not in objects(db)
        assert schema.needs_upgrade(db.conn)
        db.set_comment(PROPOSAL, 1, "logged")  # writes work, and are logged
        assert db.conn.execute("SELECT count(*) FROM runtable_run_changes").fetchone()[0]
        assert db.finish_upgrade()
        assert objects(db)[index] == "index" and not schema.needs_upgrade(db.conn)
        assert not db.finish_upgrade()
    with open_db(folder, defer_slow_upgrade=True) as db:  # nothing left to defer
        assert index in objects(db)


def test_a_folder_upgraded_before_the_index_was_a_step_of_its_own(tmp_path: Path) -> None:
    from runtable.store import schema

    with create_folder(tmp_path / "db", PROPOSAL) as db, db.transaction() as conn:
        conn.execute("UPDATE metameta SET value = 2 WHERE key = ?",
                     (schema.RUNTABLE_VERSION_KEY,))
    with open_db(tmp_path / "db") as db:
        assert not schema.needs_upgrade(db.conn)
        assert objects(db)["runtable_run_variables_name"] == "index"


def test_migration_resumes_after_interrupted_step(tmp_path: Path) -> None:
    folder = make_reference_db(tmp_path / "ref", 2)
    # A step that failed half-way rolled back: the version still says 2.
    with open_db(folder) as db:
        assert db.data_format_version == 4


def test_v0_is_refused(tmp_path: Path) -> None:
    folder = make_v0_db(tmp_path / "old")
    with pytest.raises(UnsupportedVersionError, match="legacy data format v0"):
        open_db(folder)


def test_newer_version_is_refused(tmp_path: Path) -> None:
    folder = make_reference_db(tmp_path / "ref", 4)
    conn = sqlite3.connect(folder / "runs.sqlite")
    conn.execute("UPDATE metameta SET value = 5 WHERE key = 'data_format_version'")
    conn.commit()
    conn.close()
    with pytest.raises(UnsupportedVersionError, match="newer"):
        open_db(folder)


def test_readonly_old_version_explains(tmp_path: Path) -> None:
    folder = make_reference_db(tmp_path / "ref", 2)
    with pytest.raises(UnsupportedVersionError, match="write access to upgrade"):
        open_db(folder, readonly=True)


def test_readonly_open(db: DatabaseFolder, folder: Path) -> None:
    db.set_comment(PROPOSAL, 3, "hello")
    db.close()
    # The writer is gone (no -wal/-shm files left); reading must still work.
    with open_db(folder, readonly=True) as ro:
        assert ro.get_value(PROPOSAL, 3, "comment") == "hello"
        with pytest.raises(ReadOnlyError):
            ro.set_comment(PROPOSAL, 3, "x")
        with pytest.raises(sqlite3.OperationalError):
            ro.conn.execute("DELETE FROM run_info")


def test_reader_sees_writer_commits(db: DatabaseFolder, folder: Path) -> None:
    with open_db(folder, readonly=True) as ro:
        db.set_comment(PROPOSAL, 1, "one")
        assert ro.get_value(PROPOSAL, 1, "comment") == "one"
        # An open read transaction does not block the writer (WAL).
        ro.conn.execute("BEGIN")
        ro.conn.execute("SELECT count(*) FROM run_variables").fetchone()
        db.set_comment(PROPOSAL, 1, "two")
        ro.conn.execute("COMMIT")
        assert ro.get_value(PROPOSAL, 1, "comment") == "two"


READ_AS_OTHER_USER = """
import sys
from runtable.store import open_db
with open_db(sys.argv[1], readonly=True) as db:
    print(db.get_value(1234, 3, "comment"))
"""


@pytest.mark.skipif(not hasattr(os, "geteuid"), reason="POSIX permissions")
def test_readonly_directory(db: DatabaseFolder) -> None:
    """A folder we may read but not write (no -shm file can be made) opens for reading."""
    db.set_comment(PROPOSAL, 3, "hello")
    db.close()
    base = Path(tempfile.mkdtemp())
    try:
        folder = base / "ro"
        shutil.copytree(db.path, folder)
        if os.geteuid() == 0:
            # root ignores permissions: read as 'nobody' from a root-owned folder.
            setpriv = shutil.which("setpriv")
            if setpriv is None:
                pytest.skip("needs setpriv to drop root privileges")
            base.chmod(0o755)
            for path in [folder, *folder.rglob("*")]:
                path.chmod(0o755 if path.is_dir() else 0o644)
            cmd = [setpriv, "--reuid=65534", "--regid=65534", "--clear-groups"]
        else:
            folder.chmod(0o555)
            cmd = []
        out = subprocess.run([*cmd, sys.executable, "-c", READ_AS_OTHER_USER, str(folder)],
                             capture_output=True, text=True, check=False)
        assert out.returncode == 0, out.stderr
        assert out.stdout.strip() == "hello"
        assert not (folder / "runs.sqlite-shm").exists()
    finally:
        for path in [base, *base.rglob("*")]:
            if path.is_dir():
                path.chmod(0o755)
        shutil.rmtree(base)


def test_readonly_immutable_fallback(db: DatabaseFolder, folder: Path,
                                     monkeypatch: pytest.MonkeyPatch) -> None:
    """When SQLite cannot make the -shm file, we fall back to immutable reading."""
    db.set_comment(PROPOSAL, 3, "hello")
    db.close()
    from runtable.store import folder as folder_mod

    real_connect = sqlite3.connect
    calls = []

    class _Failing:
        def execute(self, *a: object) -> None:
            raise sqlite3.OperationalError("unable to open database file")

        def close(self) -> None:
            pass

    def fake_connect(database: str, *args: object, **kwargs: object) -> sqlite3.Connection:
        calls.append(database)
        if "mode=ro" in database:
            return _Failing()  # type: ignore[return-value]
        return real_connect(database, *args, **kwargs)

    monkeypatch.setattr(folder_mod.sqlite3, "connect", fake_connect)
    with open_db(folder, readonly=True) as ro:
        assert ro.get_value(PROPOSAL, 3, "comment") == "hello"
    assert "immutable=1" in calls[-1]


def test_views_rebuilt_for_new_names(db: DatabaseFolder, folder: Path) -> None:
    write_fragment(folder, PROPOSAL, 1, {"a": 1.0, "b.c": 2.0},
                   attrs={"a": {"max_diff": 0.5}})
    db.merge_pending()
    row = db.conn.execute('SELECT proposal, run, a, "b.c" FROM runs').fetchone()
    assert tuple(row) == (PROPOSAL, 1, 1.0, 2.0)
    assert db.conn.execute("SELECT a FROM max_diffs").fetchone()[0] == 0.5
    write_fragment(folder, PROPOSAL, 2, {"new": "text"})
    db.merge_pending()
    rows = db.conn.execute("SELECT run, a, new FROM runs ORDER BY run").fetchall()
    assert [tuple(r) for r in rows] == [(1, 1.0, None), (2, None, "text")]
    assert json.loads(json.dumps(db.settings()))["proposal"] == PROPOSAL
