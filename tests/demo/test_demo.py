"""`runtable demo`: the live demo (service + server + runs arriving) and `--once`,
run as real commands on real mock runs."""

from __future__ import annotations

import json
import os
import re
import signal
import sqlite3
import subprocess
import sys
import threading
import time
import urllib.request
from pathlib import Path

import pytest

RUNTABLE = [sys.executable, "-m", "runtable.cli"]
TOKEN = "demo-test-token-0123456789"


def _env() -> dict[str, str]:
    env = dict(os.environ)
    # The demo must find its own mock proposal, whatever the caller's data root.
    env.pop("EXTRA_DATA_DATA_ROOT", None)
    env["RUNTABLE_CACHE_DIR"] = "off"
    return env


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
    proc = subprocess.Popen(
        [*RUNTABLE, "demo", str(demo_dir), "--runs", "1", "--every", "2", "--max-runs", "3",
         "--port", "0", "--token", TOKEN],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=_env())
    lines: list[str] = []
    reader = threading.Thread(target=lambda: lines.extend(proc.stdout), daemon=True)
    reader.start()
    try:
        deadline = time.monotonic() + 240
        url = None
        while time.monotonic() < deadline and url is None:
            match = next((re.search(r"(http://\S+)/\?token=(\S+)", line) for line in lines
                          if "token=" in line), None)
            url = match.group(1) if match else None
            assert proc.poll() is None, "".join(lines)
            time.sleep(0.2)
        assert url is not None, "".join(lines)
        assert match is not None and match.group(2) == TOKEN

        request = urllib.request.Request(f"{url}/api/health",
                                         headers={"Authorization": f"Bearer {TOKEN}"})
        with urllib.request.urlopen(request, timeout=30) as response:
            assert json.load(response)["version"]

        # Run 1 is caught up on start; runs 2 and 3 arrive while the demo runs, and
        # each gets its proc variable once its proc data follows.
        db_path = demo_dir / "amore" / "runs.sqlite"
        while time.monotonic() < deadline and set(_proc_values(db_path)) != {1, 2, 3}:
            assert proc.poll() is None, "".join(lines)
            time.sleep(0.5)
        values = _proc_values(db_path)
        assert set(values) == {1, 2, 3}, "".join(lines)
        assert len(set(values.values())) == 3  # seeded per run: every run differs
        out = "".join(lines)
        assert "Demo: run 3 proc data written." in out
        assert "Demo: run 4" not in out  # --max-runs is respected
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGINT)
        status = proc.wait(timeout=60)
        reader.join(timeout=10)
        proc.stdout.close()
    assert status == 0, "".join(lines)
    assert "Stopped." in "".join(lines)
    with sqlite3.connect(db_path) as conn:
        assert conn.execute("PRAGMA integrity_check").fetchone() == ("ok",)


def test_demo_once_prints_the_table_and_guards_other_folders(tmp_path: Path) -> None:
    demo_dir = tmp_path / "demo"
    done = subprocess.run([*RUNTABLE, "demo", str(demo_dir), "--once", "--runs", "2"],
                          capture_output=True, text=True, env=_env(), timeout=600)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "p1234: 2 runs" in done.stdout
    assert "lysozyme" in done.stdout or "insulin" in done.stdout  # the Sample column
    assert (demo_dir / ".runtable-demo").is_file()

    precious = tmp_path / "precious"
    precious.mkdir()
    (precious / "notes.txt").write_text("beamtime notes")
    refused = subprocess.run([*RUNTABLE, "demo", str(precious), "--once", "--runs", "1"],
                             capture_output=True, text=True, env=_env(), timeout=120)
    assert refused.returncode == 1
    assert "was not made by `runtable demo`" in refused.stderr
    assert (precious / "notes.txt").read_text() == "beamtime notes"


def test_demo_rejects_bad_options(tmp_path: Path) -> None:
    done = subprocess.run([*RUNTABLE, "demo", str(tmp_path / "d"), "--every", "0"],
                          capture_output=True, text=True, env=_env(), timeout=120)
    assert done.returncode == 1
    assert "--every must be a positive number" in done.stderr
    assert not (tmp_path / "d").exists()


@pytest.mark.parametrize("runs", ["-1", "201"])
def test_demo_rejects_run_counts_out_of_range(tmp_path: Path, runs: str) -> None:
    done = subprocess.run([*RUNTABLE, "demo", str(tmp_path / "d"), "--once", "--runs", runs],
                          capture_output=True, text=True, env=_env(), timeout=120)
    assert done.returncode == 1
    assert "--runs must be between" in done.stderr
