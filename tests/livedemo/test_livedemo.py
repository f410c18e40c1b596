"""`runtable demo`: the live demo (service + server + runs arriving) and `--once`,
run as real commands on real mock runs."""

from __future__ import annotations

import json
import sqlite3
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from runtable.testing.demo_process import demo_env, running_demo

RUNTABLE = [sys.executable, "-m", "runtable.cli"]


def _proc_values(db_path: Path) -> dict[int, float]:
    """Run -> the demo's proc variable (agipd_mean), for runs that have it."""
    if not db_path.exists():
        return {}
    with sqlite3.connect(f"file:{db_path}?mode=ro", uri=True, timeout=10) as conn:
        try:
            rows = conn.execute("SELECT run, value FROM run_variables "
                                "WHERE name = 'agipd_mean' AND value IS NOT NULL").fetchall()
        except sqlite3.OperationalError:  # not created yet
            return {}
    return {run: value for run, value in rows}


def test_live_demo_serves_and_adds_runs(tmp_path: Path) -> None:
    demo_dir = tmp_path / "demo"
    db_path = demo_dir / "amore" / "runs.sqlite"
    with running_demo(demo_dir, "--runs", "1", "--every", "2", "--max-runs", "3") as demo:
        request = urllib.request.Request(f"{demo.url}/api/health",
                                         headers={"Authorization": f"Bearer {demo.token}"})
        with urllib.request.urlopen(request, timeout=30) as response:
            assert json.load(response)["version"]

        # Run 1 is caught up on start; runs 2 and 3 arrive while the demo runs, and
        # each gets its proc variable once its proc data follows.
        deadline = time.monotonic() + 240
        while time.monotonic() < deadline and set(_proc_values(db_path)) != {1, 2, 3}:
            demo.check_alive()
            time.sleep(0.5)
        values = _proc_values(db_path)
        assert set(values) == {1, 2, 3}, demo.output
        assert len(set(values.values())) == 3  # seeded per run: every run differs
        assert "Demo: run 3 proc data written." in demo.output
        assert "Demo: run 4" not in demo.output  # --max-runs is respected
    assert demo.proc.returncode == 0, demo.output
    assert "Stopped." in demo.output
    with sqlite3.connect(db_path) as conn:
        assert conn.execute("PRAGMA integrity_check").fetchone() == ("ok",)


def test_demo_once_prints_the_table_and_guards_other_folders(tmp_path: Path) -> None:
    demo_dir = tmp_path / "demo"
    done = subprocess.run([*RUNTABLE, "demo", str(demo_dir), "--once", "--runs", "2"],
                          capture_output=True, text=True, env=demo_env(), timeout=600)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "p1234: 2 runs" in done.stdout
    assert "lysozyme" in done.stdout or "insulin" in done.stdout  # the Sample column
    assert (demo_dir / ".runtable-demo").is_file()

    precious = tmp_path / "precious"
    precious.mkdir()
    (precious / "notes.txt").write_text("beamtime notes")
    refused = subprocess.run([*RUNTABLE, "demo", str(precious), "--once", "--runs", "1"],
                             capture_output=True, text=True, env=demo_env(), timeout=120)
    assert refused.returncode == 1
    assert "was not made by `runtable demo`" in refused.stderr
    assert (precious / "notes.txt").read_text() == "beamtime notes"


def test_demo_rejects_bad_options(tmp_path: Path) -> None:
    done = subprocess.run([*RUNTABLE, "demo", str(tmp_path / "d"), "--every", "0"],
                          capture_output=True, text=True, env=demo_env(), timeout=120)
    assert done.returncode == 1
    assert "--every must be a positive number" in done.stderr
    assert not (tmp_path / "d").exists()


@pytest.mark.parametrize("runs", ["-1", "201"])
def test_demo_rejects_run_counts_out_of_range(tmp_path: Path, runs: str) -> None:
    done = subprocess.run([*RUNTABLE, "demo", str(tmp_path / "d"), "--once", "--runs", runs],
                          capture_output=True, text=True, env=demo_env(), timeout=120)
    assert done.returncode == 1
    assert "--runs must be between" in done.stderr
