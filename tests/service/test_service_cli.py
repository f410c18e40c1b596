"""End to end: `runtable serve` as a real process, `runtable notify`, `runtable events`."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys

import pytest

from runtable.store import open_db
from runtable.testing import add_raw_run

from .conftest import SETTINGS, TIMEOUT, age_runs, values, wait_for

URL_RE = re.compile(r"http://127\.0\.0\.1:\d+/\?token=\S+")


def _runtable(*args: str) -> list[str]:
    return [sys.executable, "-m", "runtable.cli", *args]


def _env() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if k != "RUNTABLE_TOKEN"}


def start_serve(folder, log_path) -> subprocess.Popen[str]:
    """``runtable serve FOLDER`` as a real process, once it printed its URL (its log in
    ``log_path``); stop it with SIGTERM."""
    with open(log_path, "w") as log:
        serve = subprocess.Popen(_runtable("serve", str(folder), "--port", "0"),
                                 stdout=subprocess.PIPE, stderr=log, text=True, env=_env())
    assert serve.stdout is not None
    for line in serve.stdout:
        if URL_RE.search(line):
            return serve
    serve.kill()
    serve.communicate()
    pytest.fail(f"no URL printed: {log_path.read_text()}")


def start_events(folder, kind: str, count: int) -> subprocess.Popen[str]:
    """``runtable events --kind KIND -n COUNT`` as a real process, once connected."""
    events = subprocess.Popen(
        _runtable("events", "--in", str(folder), "--kind", kind, "-n", str(count)),
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=_env())
    assert events.stderr is not None
    assert events.stderr.readline().startswith("Connected to the service at ")
    return events


def test_serve_notify_and_events_end_to_end(proposal, folder, tmp_path):
    with open_db(folder) as db:
        for key, value in {**SETTINGS, "ready_quiet_s": 3600}.items():
            db.set_setting(key, value)
    add_raw_run(proposal, 1)  # on disk (and complete) before the service starts
    age_runs(proposal)
    log_path = tmp_path / "serve.log"
    serve = start_serve(folder, log_path)
    events = None
    try:
        # The run on disk at start is caught up on (before the events client connects).
        wait_for(lambda: values(folder, 1), what="run 1 to be processed")
        events = start_events(folder, "values_merged", 1)

        add_raw_run(proposal, 2)
        notify = subprocess.run(_runtable("notify", "2", "--in", str(folder)),
                                capture_output=True, text=True, timeout=60, env=_env())
        assert notify.returncode == 0, notify.stderr
        out, err = events.communicate(timeout=TIMEOUT)
        assert events.returncode == 0, err
        [merged] = [json.loads(line) for line in out.splitlines()]
        assert {k: merged[k] for k in ("kind", "run", "names")} == {
            "kind": "values_merged", "run": 2, "names": ["answer", "n_trains"]}
    finally:
        if events is not None and events.poll() is None:
            events.kill()
            events.communicate()
        serve.send_signal(signal.SIGTERM)
        out, _ = serve.communicate(timeout=60)
    assert serve.returncode == 0, log_path.read_text()
    assert "Stopped." in out
    log_text = log_path.read_text()
    assert "Notified that run 2 (raw) is complete" in log_text
    assert "Catching up: queued 1 run(s) never processed: 1 (raw)" in log_text
    assert values(folder, 1) == values(folder, 2) == {"answer": 42, "n_trains": 64}


def test_serve_refuses_a_folder_without_a_proposal(tmp_path):
    import sqlite3

    from runtable.store import create_folder

    create_folder(tmp_path, 1234).close()
    with sqlite3.connect(tmp_path / "runs.sqlite") as conn:
        conn.execute("DELETE FROM metameta WHERE key = 'proposal'")
    result = subprocess.run(_runtable("serve", str(tmp_path), "--port", "0"),
                            capture_output=True, text=True, timeout=60, env=_env())
    assert result.returncode == 1
    assert "has no proposal set; set it with `runtable config proposal NUMBER`" in \
        result.stderr


PROGRESSING = '''
import time
from pathlib import Path
from damnit_ctx import Variable, progress

@Variable(title="Slow")
def slow(run):
    for _ in progress(range(1000)):
        if not Path("hold").exists():
            break
        time.sleep(0.05)
    return 1
'''


def test_runtable_events_prints_a_running_jobs_progress(proposal, folder, tmp_path):
    from .conftest import write_context

    write_context(folder, PROGRESSING)
    with open_db(folder) as db:
        for key, value in {**SETTINGS, "ready_quiet_s": 3600}.items():
            db.set_setting(key, value)
    hold = folder / "hold"
    hold.touch()
    log_path = tmp_path / "serve.log"
    serve = start_serve(folder, log_path)
    events = None
    try:
        events = start_events(folder, "job_progress", 3)
        add_raw_run(proposal, 1)
        notify = subprocess.run(_runtable("notify", "1", "--in", str(folder)),
                                capture_output=True, text=True, timeout=60, env=_env())
        assert notify.returncode == 0, notify.stderr
        out, err = events.communicate(timeout=TIMEOUT)
        assert events.returncode == 0, err
        reports = [json.loads(line) for line in out.splitlines()]
        assert [r["kind"] for r in reports] == ["job_progress"] * 3
        assert [r["seq"] for r in reports] == sorted(r["seq"] for r in reports)
        assert all(r["run"] == 1 and r["total"] == 1 for r in reports)
        slow = [r for r in reports if r["variable"] == "slow"]
        assert slow and all(r["steps"] == 1000 for r in slow)
        assert [r["step"] for r in slow] == sorted(r["step"] for r in slow)
    finally:
        hold.unlink(missing_ok=True)
        if events is not None and events.poll() is None:
            events.kill()
            events.communicate()
        serve.send_signal(signal.SIGTERM)
        serve.communicate(timeout=60)
    assert serve.returncode == 0, log_path.read_text()
