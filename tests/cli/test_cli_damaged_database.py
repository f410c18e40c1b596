"""A damaged runs.sqlite (truncated, overwritten, not a database, empty): every command
says so in one `Error:` line, and changes nothing in the folder."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import pytest

from runtable.store import create_folder

from .cli_helpers import run_cli


def _truncate(path: Path) -> None:
    os.truncate(path, path.stat().st_size // 2)


def _overwrite(path: Path) -> None:
    with open(path, "r+b") as f:
        f.seek(4096 * 2)
        f.write(bytes(range(256)) * 64)


def _garbage(path: Path) -> None:
    path.write_bytes(b"this is not a database\n" * 100)


def _empty(path: Path) -> None:
    os.truncate(path, 0)


def _snapshot(folder: Path) -> dict[str, str]:
    # SQLite's own -wal/-shm files aside, nothing may appear, vanish or change.
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() if p.is_file() else "dir"
            for p in folder.iterdir() if not p.name.startswith("runs.sqlite-")}


@pytest.mark.parametrize("damage", [_truncate, _overwrite, _garbage, _empty],
                         ids=["truncated", "overwritten", "not-a-database", "empty"])
def test_every_command_says_the_database_is_damaged_and_touches_nothing(tmp_path, damage):
    folder = tmp_path / "amore"
    with create_folder(folder, 1234) as db:
        db.add_user_variable("note", "string")
        for run in range(1, 200):
            db.ensure_run(1234, run)
            db.set_user_value(1234, run, "note", "typed by a person " * 20)
        db.conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    for extra in folder.glob("runs.sqlite-*"):
        extra.unlink()
    damage(folder / "runs.sqlite")
    before = _snapshot(folder)
    for args in (["table"], ["config"], ["config", "ready_quiet_s", "5"],
                 ["export", "-o", str(tmp_path / "out.csv")], ["reprocess", "1"],
                 ["serve", str(folder), "--port", "0"]):
        if args[0] != "serve":
            args = [*args, "--in", str(folder)]
        result = run_cli(*args, timeout=120)
        assert result.returncode == 1, (args, result.stdout, result.stderr)
        assert result.stderr.startswith("Error: "), (args, result.stderr)
        assert "Traceback" not in result.stderr, (args, result.stderr)
        assert ("is damaged" in result.stderr and "changed nothing" in result.stderr) \
            or "Nothing was changed" in result.stderr, (args, result.stderr)
        assert _snapshot(folder) == before, args
    assert not (tmp_path / "out.csv").exists()
