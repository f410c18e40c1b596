"""Kill the merging process (SIGKILL) at every step and check that restarting
with merge_pending ends in exactly the state of an uninterrupted merge."""

from __future__ import annotations

import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import xarray as xr

from runtable.store import create_folder, open_db

from .conftest import PROPOSAL
from .fragments import write_fragment
from .test_merge import h5_tree, rows

CHILD = """
import os, signal, sys, time
from runtable.store import merge, open_db

target, count, delay = sys.argv[2], int(sys.argv[3]), float(sys.argv[4])
seen = 0

def hook(step):
    global seen
    if delay:
        time.sleep(delay)  # widen every window for the timed kills
    if step == target:
        seen += 1
        if seen == count:
            os.kill(os.getpid(), signal.SIGKILL)

merge.checkpoint_hook = hook
with open_db(sys.argv[1]) as db:
    print("ready", flush=True)
    db.merge_pending()
"""


def prepare(folder: Path) -> None:
    """A folder with merged data, user input, and three fragments waiting."""
    with create_folder(folder, PROPOSAL) as db:
        write_fragment(folder, PROPOSAL, 1, {"a": 1, "b": np.arange(5.0), "c": "old"},
                       start_time=100.0, mtime=1000)
        db.merge_pending()
        db.add_user_variable("note", "number")
        db.set_user_value(PROPOSAL, 1, "note", "2.5")
        db.set_comment(PROPOSAL, 1, "precious comment")
        db.add_time_comment("beam down", timestamp=50)
    da = xr.DataArray(np.arange(6.0).reshape(2, 3), dims=("t", "x"),
                      coords={"t": [0.5, 1.5]}, name="img")
    write_fragment(folder, PROPOSAL, 1, {"a": 2, "d": da, "note": 99}, start_time=101.0,
                   errors={"c": ValueError("bad")}, mtime=2000)
    write_fragment(folder, PROPOSAL, 2, {"a": 3, "d": da}, mtime=3000)
    write_fragment(folder, PROPOSAL, 1, {"b": np.ones(3)}, mtime=4000)


def state(folder: Path) -> tuple:
    with open_db(folder) as db:
        assert db.integrity_check() == "ok"
        leftovers = sorted(p.name for p in db.extracted_dir.iterdir()
                           if not p.name.startswith("."))
        runs = db.conn.execute("SELECT proposal, run, start_time FROM run_info").fetchall()
        comments = [(c.timestamp, c.comment) for c in db.time_comments()]
        return (rows(db), [tuple(r) for r in runs], comments, leftovers,
                {n: h5_tree(db.extracted_dir / n) for n in leftovers})


@pytest.fixture(scope="module")
def expected(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, tuple]:
    template = tmp_path_factory.mktemp("crash") / "template"
    prepare(template)
    reference = template.with_name("reference")
    shutil.copytree(template, reference)
    with open_db(reference) as db:
        assert len(db.merge_pending()) == 3
    return template, state(reference)


def run_child(folder: Path, step: str, count: int, delay: float = 0.0,
              kill_after: float | None = None) -> int:
    with subprocess.Popen([sys.executable, "-c", CHILD, str(folder), step, str(count),
                           str(delay)], stdout=subprocess.PIPE, text=True) as proc:
        if kill_after is not None:
            assert proc.stdout is not None
            proc.stdout.readline()
            time.sleep(kill_after)
            proc.kill()
        return proc.wait(timeout=60)


def recover_and_check(folder: Path, expected_state: tuple) -> None:
    with open_db(folder) as db:
        db.merge_pending()
        assert db.get_value(PROPOSAL, 1, "comment") == "precious comment"
        assert db.get_value(PROPOSAL, 1, "note") == 2.5
    got = state(folder)
    assert got[0] == expected_state[0]  # rows, nothing lost or doubled
    assert got[1:] == expected_state[1:]
    with open_db(folder) as db:
        path = db.run_file(PROPOSAL, 1)
        xr.open_dataarray(path, group="d", engine="h5netcdf").load()


@pytest.mark.parametrize(("step", "count"), [
    ("read", 1), ("hdf5_copy", 1), ("hdf5_copy", 4), ("hdf5_tmp_written", 1),
    ("hdf5_replaced", 1), ("db_written", 1), ("db_committed", 1), ("fragment_removed", 1),
    ("hdf5_replaced", 2),  # the new run's first fragment (hard-linked into place)
    ("db_written", 2), ("db_committed", 2), ("hdf5_tmp_written", 2), ("db_committed", 3),
])
def test_kill_at_step(tmp_path: Path, expected: tuple[Path, tuple], step: str,
                      count: int) -> None:
    template, expected_state = expected
    folder = tmp_path / "db"
    shutil.copytree(template, folder)
    assert run_child(folder, step, count) == -9
    recover_and_check(folder, expected_state)


@pytest.mark.parametrize("kill_after", [0.0, 0.05, 0.12, 0.2, 0.3])
def test_kill_at_random_time(tmp_path: Path, expected: tuple[Path, tuple],
                             kill_after: float) -> None:
    template, expected_state = expected
    folder = tmp_path / "db"
    shutil.copytree(template, folder)
    run_child(folder, "never", 0, delay=0.01, kill_after=kill_after)
    recover_and_check(folder, expected_state)


def test_kill_twice_in_a_row(tmp_path: Path, expected: tuple[Path, tuple]) -> None:
    template, expected_state = expected
    folder = tmp_path / "db"
    shutil.copytree(template, folder)
    assert run_child(folder, "hdf5_replaced", 1) == -9
    assert run_child(folder, "db_written", 1) == -9
    recover_and_check(folder, expected_state)


def test_user_edits_survive_a_killed_merge(tmp_path: Path, expected: tuple[Path, tuple]) -> None:
    template, _ = expected
    folder = tmp_path / "db"
    shutil.copytree(template, folder)
    assert run_child(folder, "db_written", 1) == -9
    with open_db(folder) as db:
        # Edits made after the crash, before recovery, are kept by recovery.
        db.set_comment(PROPOSAL, 1, "edited after crash")
        db.set_user_value(PROPOSAL, 2, "note", 7)
        db.merge_pending()
        assert db.get_value(PROPOSAL, 1, "comment") == "edited after crash"
        assert db.get_value(PROPOSAL, 2, "note") == 7
        assert db.get_value(PROPOSAL, 1, "a") == 2
