"""`runtable demo`: the live demo (service + server + runs arriving) and `--once`,
run as real commands on real mock runs."""

from __future__ import annotations

import json
import os
import re
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


@pytest.fixture(scope="module")
def demo_once(tmp_path_factory: pytest.TempPathFactory) -> tuple[subprocess.CompletedProcess,
                                                                 Path, dict[str, str]]:
    """`runtable demo --once --runs 4` as after `./dev demo`: the command started by its
    path, not on PATH. The answer, the demo folder and the environment."""
    demo_dir = tmp_path_factory.mktemp("once") / "demo"
    script = Path(sys.executable).with_name("runtable")
    env = {**demo_env(), "PATH": os.defpath}
    done = subprocess.run([str(script), "demo", str(demo_dir), "--once", "--runs", "4"],
                          capture_output=True, text=True, env=env, timeout=600)
    return done, demo_dir, env


def test_demo_once_prints_the_table_and_guards_other_folders(demo_once, tmp_path: Path) -> None:
    done, demo_dir, env = demo_once
    assert done.returncode == 0, done.stdout + done.stderr
    assert "p1234: 4 runs" in done.stdout
    assert "lysozyme" in done.stdout or "insulin" in done.stdout  # the Sample column
    assert (demo_dir / ".runtable-demo").is_file()
    # Run 4 skips its sample on purpose (background run): no error to count.
    assert "4 runs processed: 4 ok, 0 failed; 1 variable skipped on purpose." in done.stdout

    # Its hints run as printed, in the same shell (no `runtable: command not found`).
    hint = next(line for line in done.stdout.splitlines() if "# this table again" in line)
    again = subprocess.run(hint.split("#")[0], shell=True, capture_output=True, text=True,
                           env=env, timeout=120)
    assert again.returncode == 0, (hint, again.stderr)
    assert "p1234: 4 runs" in again.stdout
    assert "`runtable` is not on your PATH here" in done.stdout

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


@pytest.mark.parametrize("how", ["option", "environment"])
def test_demo_refuses_a_short_token_with_a_clear_error_before_building(
        tmp_path: Path, how: str) -> None:
    args, env = [], demo_env()
    if how == "option":
        args = ["--token", "abc"]
    else:
        env["RUNTABLE_TOKEN"] = "abc"
    done = subprocess.run([*RUNTABLE, "demo", str(tmp_path / "d"), *args],
                          capture_output=True, text=True, env=env, timeout=120)
    assert done.returncode == 1
    assert "Traceback" not in done.stderr
    assert "token needs at least 8 characters" in done.stderr
    assert not (tmp_path / "d").exists()


@pytest.mark.parametrize("runs", ["-1", "201"])
def test_demo_rejects_run_counts_out_of_range(tmp_path: Path, runs: str) -> None:
    done = subprocess.run([*RUNTABLE, "demo", str(tmp_path / "d"), "--once", "--runs", runs],
                          capture_output=True, text=True, env=demo_env(), timeout=120)
    assert done.returncode == 1
    assert "--runs must be between" in done.stderr


def test_the_read_api_page_runs_as_written(demo_once, monkeypatch: pytest.MonkeyPatch,
                                           capsys: pytest.CaptureFixture[str]) -> None:
    """docs/api.md: its examples, in order, on the demo folder they are written for."""
    done, demo_dir, _ = demo_once
    assert done.returncode == 0, done.stdout + done.stderr
    page = (Path(__file__).parents[2] / "docs" / "api.md").read_text()
    blocks = re.findall(r"```python\n(.*?)```", page, re.S)
    assert len(blocks) >= 5
    monkeypatch.chdir(demo_dir.parent)
    monkeypatch.setenv("RUNTABLE_CACHE_DIR", "off")
    namespace: dict[str, object] = {}
    for block in blocks:
        exec(compile(block, "docs/api.md", "exec"), namespace)
    assert "'sample' was skipped in p1234, r4: Skip: no sample" in capsys.readouterr().out
    assert namespace["db"].runs() == [1, 2, 3, 4]
