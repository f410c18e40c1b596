"""The task of a Slurm job array, run here as a plain process (as Slurm would start
it, with ``SLURM_ARRAY_TASK_ID``): pulling runs from a batch folder, one process per
run, per-run events, cancel requests, the end of the task's time."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import h5py

from runtable.execute.subprocess import child_env
from runtable.jobs import Job
from runtable.jobs.batch import CANCELLED, BatchFolder, Manifest

from .conftest import PROPOSAL, wait_for, write_context

BY_RUN = '''
import os, time
from runtable.context import Variable

@Variable(title="Answer")
def answer(run, number: "meta#run_number"):
    if number == 2:
        os._exit(3)
    if number == 3:
        time.sleep(float(os.environ.get("SLOW_S", "60")))
    return 40 + number
'''


def _batch(folder: Path, runs: list[int], *, task_time_s: float = 300.0,
           run_time_s: float = 300.0) -> BatchFolder:
    items = tuple(Job(id=100 + i, proposal=PROPOSAL, run=run)
                  for i, run in enumerate(runs))
    return BatchFolder.create(folder, Manifest(
        db_dir=str(folder), items=items, run_time_s=run_time_s, task_time_s=task_time_s,
        mem_bytes=2 * 2**30, cpus=1))


def _start(batch: BatchFolder, task: int, **env: str) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "runtable.jobs.slurm_worker", str(batch.path)],
        env=child_env({"SLURM_ARRAY_TASK_ID": str(task), "SLURM_ARRAY_JOB_ID": "77", **env}),
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT)


def _events(batch: BatchFolder) -> list[dict]:
    return BatchFolder(batch.path).read_events()


def _finished(events: list[dict]) -> dict[int, dict]:
    return {e["id"]: e for e in events if e["event"] == "finished"}


def test_two_tasks_share_the_runs_and_each_run_is_executed_once(folder):
    write_context(folder, BY_RUN)
    batch = _batch(folder, [1, 3, 1, 3, 1], run_time_s=60)
    procs = [_start(batch, task, SLOW_S="0") for task in (0, 1)]
    for proc in procs:
        out, _ = proc.communicate(timeout=120)
        assert proc.returncode == 0, out.decode()
    events = _events(batch)
    started = [e["id"] for e in events if e["event"] == "started"]
    assert sorted(started) == [100, 101, 102, 103, 104]
    finished = _finished(events)
    assert sorted(finished) == [100, 101, 102, 103, 104]
    for event in finished.values():
        assert event["killed"] is None and '"failure":null' in event["outcome"]
        assert event["task"] in (0, 1)
    assert {e["task"] for e in events if e["event"] == "worker"} == {0, 1}
    assert [e["event"] for e in events].count("exit") == 2
    assert set(batch.claims().values()) <= {"0", "1"}
    assert len(list((folder / "extracted_data").glob(f"p{PROPOSAL}_r*.ready.h5"))) == 5


def test_a_crashing_run_ends_alone_and_the_task_goes_on(folder):
    write_context(folder, BY_RUN)
    batch = _batch(folder, [2, 1])
    proc = _start(batch, 0)
    proc.communicate(timeout=120)
    assert proc.returncode == 0
    finished = _finished(_events(batch))
    crashed, fine = finished[100], finished[101]
    assert crashed["returncode"] == 3 and crashed["outcome"] is None
    assert '"failure":null' in fine["outcome"]


def test_a_task_with_everything_taken_exits_without_starting_a_pool(folder):
    batch = _batch(folder, [1, 1])
    assert batch.claim(0, "5") and batch.claim(1, CANCELLED)
    start = time.monotonic()
    proc = _start(batch, 3)
    proc.communicate(timeout=60)
    assert proc.returncode == 0
    assert [e["event"] for e in _events(batch)] == ["worker", "exit"]
    assert time.monotonic() - start < 20  # no warm parent (several seconds of imports)


def test_a_cancel_request_stops_the_running_run_and_the_next_one_runs(folder):
    write_context(folder, BY_RUN)
    batch = _batch(folder, [3, 1])
    proc = _start(batch, 0)
    reader = BatchFolder(batch.path)
    seen: list[dict] = []
    wait_for(lambda: seen.extend(reader.read_events()) or any(
        e["event"] == "started" for e in seen), timeout=60, what="the slow run to start")
    batch.request_cancel(100)
    proc.communicate(timeout=60)
    finished = _finished(_events(batch))
    assert finished[100]["killed"] == "Cancelled"
    assert '"failure":null' in finished[101]["outcome"]


def test_a_cancel_request_before_the_start_skips_the_run(folder):
    batch = _batch(folder, [3])
    batch.request_cancel(100)
    proc = _start(batch, 0)
    proc.communicate(timeout=60)
    [event] = _finished(_events(batch)).values()
    assert event["killed"] == "Cancelled" and event["message"] == "Cancelled before it started"


def test_a_run_cut_short_by_the_end_of_the_task_is_released(folder):
    """The task's time (30 s, of which it keeps 5 s in hand; long enough for the first
    run on a loaded machine) runs out during its second run: that run is released, to
    be queued again, not failed."""
    write_context(folder, BY_RUN)
    batch = _batch(folder, [1, 3], task_time_s=30, run_time_s=300)
    proc = _start(batch, 0)
    proc.communicate(timeout=60)
    events = _events(batch)
    assert '"failure":null' in _finished(events)[100]["outcome"]
    [released] = [e for e in events if e["event"] == "released"]
    assert released["id"] == 101 and "time ran out" in released["message"]
    assert 101 not in _finished(events)


def test_the_first_run_of_a_task_gets_the_whole_task_and_fails_when_it_runs_out(folder):
    write_context(folder, BY_RUN)
    batch = _batch(folder, [3], task_time_s=12, run_time_s=300)
    proc = _start(batch, 0)
    proc.communicate(timeout=60)
    [event] = _finished(_events(batch)).values()
    assert event["killed"] == "TimeLimitExceeded"
    assert "end of the Slurm job's time limit (12 s)" in event["message"]


def test_a_task_of_a_removed_batch_exits_quietly(tmp_path):
    proc = subprocess.run([sys.executable, "-m", "runtable.jobs.slurm_worker",
                           str(tmp_path / "gone")], capture_output=True, text=True,
                          env=child_env(), timeout=60)
    assert proc.returncode == 0 and "is gone; nothing to do" in proc.stderr


def test_events_are_read_once_and_only_whole_lines(tmp_path):
    batch = _batch(tmp_path, [1])
    reader = BatchFolder(batch.path)
    batch.append_event(0, {"event": "worker"})
    with open(batch.events_path(0), "ab") as f:
        f.write(b'{"event":"star')  # a line being written
    assert [e["event"] for e in reader.read_events()] == ["worker"]
    with open(batch.events_path(0), "ab") as f:
        f.write(b'ted","id":100}\n')
    assert reader.read_events() == [{"event": "started", "id": 100}]
    assert reader.read_events() == []
    assert os.path.exists(batch.path / "manifest.json")


def test_a_tasks_warm_parent_imports_pandas_and_xarray_once_its_first_run_is_going(folder):
    """The first run starts before the warm parent imports pandas and xarray (it
    imports them itself if it needs them); the runs after it find them imported."""
    write_context(folder, '''
        import sys
        from runtable.context import Variable

        @Variable(title="Preloaded")
        def preloaded(run):
            return int("xarray" in sys.modules and "pandas" in sys.modules)
    ''')
    batch = _batch(folder, [1, 1])
    proc = _start(batch, 0)
    proc.communicate(timeout=120)
    outcomes = [_finished(_events(batch))[job]["outcome"] for job in (100, 101)]
    fragments = [json.loads(o)["fragment"] for o in outcomes]
    with h5py.File(fragments[0]) as first, h5py.File(fragments[1]) as second:
        assert first["preloaded/data"][()] == 0
        assert second["preloaded/data"][()] == 1


def test_a_run_over_the_memory_limit_ends_alone(folder):
    write_context(folder, '''
        import numpy as np
        from runtable.context import Variable

        @Variable(title="Big")
        def big(run, number: "meta#run_number"):
            if number == 3:
                block = np.ones((3 * 2**30) // 8)  # 3 GB, touched
                return float(block.sum())
            return 1
    ''')
    items = (Job(100, PROPOSAL, 3), Job(101, PROPOSAL, 1))
    batch = BatchFolder.create(folder, Manifest(
        db_dir=str(folder), items=items, run_time_s=120, task_time_s=300,
        mem_bytes=1 * 2**30, cpus=1))
    proc = _start(batch, 0)
    proc.communicate(timeout=120)
    finished = _finished(_events(batch))
    assert finished[100]["killed"] == "MemoryLimitExceeded"
    assert '"failure":null' in finished[101]["outcome"]


def test_a_batch_folder_is_the_teams_whatever_the_umask(tmp_path):
    old = os.umask(0o077)
    try:
        batch = _batch(tmp_path, [1])
        batch.set_submitted("12", 1)
        batch.claim(0, "0")
        batch.request_cancel(100)
        batch.append_event(0, {"event": "worker"})
    finally:
        os.umask(old)
    for d in (batch.path.parent, batch.path, batch.path / "claims", batch.path / "cancel"):
        assert d.stat().st_mode & 0o7777 == 0o2775, d
    for f in ("manifest.json", "submitted.json", "claims/0", "cancel/100", "task-0.events"):
        assert (batch.path / f).stat().st_mode & 0o777 == 0o664, f
