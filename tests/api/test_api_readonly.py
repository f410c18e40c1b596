"""Reading a folder nobody may write: on a read-only mount (root ignores file modes,
so the reader runs in a private mount namespace), or with read-only modes otherwise."""

from __future__ import annotations

import json
import os
import shutil
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from runtable.store import open_db

from .api_folder import PROPOSAL

READER = """
import json, sys
from runtable.api import Database
with Database(sys.argv[1]) as db:
    df = db.table()
    print(json.dumps({"comments": [c if isinstance(c, str) else None for c in df["comment"]],
                      "label": db[1, "label"].read(),
                      "flux": db[1, "xgm_flux"].read().tolist()}))
"""


def _read_only(folder: Path, tmp_path: Path) -> dict:
    env = {**os.environ, "RUNTABLE_CACHE_DIR": "off"}
    script = [sys.executable, "-c", READER]
    if os.geteuid() == 0:
        if shutil.which("unshare") is None:
            pytest.skip("running as root and no unshare(1) to make a read-only mount")
        mnt = tmp_path / "mnt"
        mnt.mkdir()
        cmd = ["unshare", "-m", "sh", "-c",
               'mount --bind "$1" "$2" && mount -o remount,bind,ro "$2" && shift 2 && "$@"',
               "sh", str(folder), str(mnt), *script, str(mnt)]
        proc = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=120)
        if "mount" in proc.stderr and proc.returncode != 0:
            pytest.skip(f"can't make a read-only mount here: {proc.stderr.strip()}")
    else:
        modes = {p: p.stat().st_mode for p in [folder, *folder.rglob("*")]}
        try:
            for p in modes:
                os.chmod(p, 0o555 if p.is_dir() else 0o444)
            proc = subprocess.run([*script, str(folder)], capture_output=True, text=True,
                                  env=env, timeout=120)
        finally:
            for p, mode in modes.items():
                os.chmod(p, mode)
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout)


def test_read_only_checkpointed_folder(folder: Path, tmp_path: Path) -> None:
    with open_db(folder) as store:
        store.conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    assert not (folder / "runs.sqlite-wal").exists()
    got = _read_only(folder, tmp_path)
    assert got == {"comments": ["good run", None, "empty run"], "label": "hello",
                   "flux": [1.5 * i for i in range(10)]}


def test_read_only_folder_with_wal(folder: Path, tmp_path: Path) -> None:
    """Committed changes still in the WAL (a writer is running) are seen."""
    writer = sqlite3.connect(folder / "runs.sqlite", isolation_level=None)
    try:
        writer.execute("PRAGMA wal_autocheckpoint=0")
        writer.execute("UPDATE run_variables SET value = 'from the WAL' "
                       "WHERE name = 'comment' AND run = 3 AND proposal = ?", (PROPOSAL,))
        assert (folder / "runs.sqlite-wal").stat().st_size > 0
        got = _read_only(folder, tmp_path)
    finally:
        writer.close()
    assert got["comments"] == ["good run", None, "from the WAL"]
