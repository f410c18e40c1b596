"""Batches on the real single-node Slurm: one job array per batch, each run with its
own state, error, log and cancel; tasks killed by Slurm; a restart while an array
runs. The node has 2 CPUs: two 1-CPU tasks run at once, a third one waits."""

from __future__ import annotations

import subprocess
import time

import pytest

from runtable.jobs import JobState
from runtable.jobs import slurm as slurm_module
from runtable.selection import Selection
from runtable.store import open_db

from .conftest import PROPOSAL, wait_for, write_context
from .test_job_backends import SLEEPS
from .test_jobs_units import CLUSTERED

BY_RUN = '''
import os, time
from runtable.context import Variable

@Variable(title="First")
def first(run):
    return 1

@Variable(title="Answer")
def answer(run, number: "meta#run_number", one: "var#first"):
    print("started run", number, flush=True)
    if number == 2:
        os._exit(3)
    if number == 3:
        time.sleep(300)
    return 40 + number
'''

TAKES_3_S = '''
import time
from runtable.context import Variable

@Variable(title="Answer")
def answer(run):
    time.sleep(3)
    return 42
'''


@pytest.fixture(autouse=True)
def _needs_slurm(slurm_ready):
    if slurm_ready is not None:
        pytest.skip(f"Slurm cannot run here: {slurm_ready}")


def _cell(folder, run, name):
    with open_db(folder) as db:
        db.merge_pending()
        return db.get_value(PROPOSAL, run, name), db.get_attributes(PROPOSAL, run, name)


def _tasks(array: str) -> dict[str, str]:
    """Slurm's state of each task of ``array`` (task id -> state)."""
    proc = subprocess.run(["squeue", "--jobs", array, "-r", "-t", "all", "-h", "-o", "%K %T"],
                          capture_output=True, text=True, timeout=30)
    return dict(line.split() for line in proc.stdout.splitlines() if line.strip())


def _running(queue, job_id: int) -> bool:
    queue.step()
    return queue.get(job_id).state is JobState.RUNNING


def test_a_reprocess_is_one_array_and_each_run_has_its_own_states(make_queue, folder):
    events = []
    queue = make_queue("slurm", concurrent_jobs=2)
    queue.subscribe(events.append)
    calls = dict(slurm_module.CALLS)
    start = time.monotonic()
    jobs = [j for run in (1, 2, 3, 1, 2, 3) for j in queue.submit(PROPOSAL, run)]
    done = queue.wait([j.id for j in jobs], timeout=120)
    took = time.monotonic() - start
    assert [j.state for j in done] == [JobState.DONE] * 6, [j.message for j in done]
    made = {k: v - calls.get(k, 0) for k, v in slurm_module.CALLS.items()}
    assert made["sbatch"] == 1
    # Slurm is asked about the array every few seconds, not once per run; whether it
    # answers at all (`scontrol ping`), at most every 30 s.
    assert made.get("squeue", 0) <= took / 5.0 + 2
    assert made.get("scontrol", 0) <= took / 30.0 + 1
    [array] = {j.external_id.split("_")[0] for j in done}
    for job in done:
        mine = [e for e in events if e.job.id == job.id]
        assert [e.state for e in mine] == ["queued", "queued", "running", "done"]
        assert mine[1].job.message.startswith(f"In Slurm job {array} (6 runs, 2 workers)")
        assert mine[2].job.message.startswith(f"Slurm job {job.external_id} on ")
    assert {j.external_id for j in done} <= {f"{array}_0", f"{array}_1"}
    for run in (1, 2, 3):
        assert _cell(folder, run, "answer")[0] == 42
    assert not (folder / "slurm_batches").exists()  # nothing left behind


def test_runs_that_fail_in_a_batch_fail_alone(make_queue, folder):
    """One worker, three runs: a crash and a time-out end only their own run."""
    write_context(folder, BY_RUN)
    queue = make_queue("slurm", concurrent_jobs=1, job_time_limit_s=4)
    jobs = [j for run in (2, 3, 1) for j in queue.submit(PROPOSAL, run)]
    crashed, slow, fine = queue.wait([j.id for j in jobs], timeout=120)
    assert fine.state is JobState.DONE, fine.message
    assert crashed.state is JobState.FAILED and "exited with code 3" in crashed.message
    assert slow.state is JobState.FAILED and "exceeded the time limit" in slow.message
    assert fine.external_id == crashed.external_id == slow.external_id  # the same task
    assert _cell(folder, 1, "answer")[0] == 41
    assert _cell(folder, 2, "answer")[1]["error_cls"] == "ProcessingCrashed"
    assert _cell(folder, 3, "answer")[1]["error_cls"] == "TimeLimitExceeded"
    # What the runs had finished before they died is kept.
    assert _cell(folder, 2, "first")[0] == _cell(folder, 3, "first")[0] == 1
    log = (folder / "process_logs" / f"r3-p{PROPOSAL}.out").read_text()
    assert "started run 3" in log


def test_a_task_killed_by_slurms_time_limit_fails_only_the_run_it_held(make_queue, folder):
    """Slurm ends one task for its time limit (lowered while it runs): the run it was
    executing fails with TimeLimitExceeded; the other task processes the rest."""
    write_context(folder, BY_RUN)
    queue = make_queue("slurm", concurrent_jobs=2)
    slow, *others = [j for run in (3, 1, 1, 1) for j in queue.submit(PROPOSAL, run)]
    wait_for(lambda: _running(queue, slow.id), timeout=60, what="the slow run to start")
    task = queue.get(slow.id).external_id
    subprocess.run(["scontrol", "update", f"JobId={task}", "TimeLimit=1"], check=True,
                   capture_output=True, timeout=30)
    done = queue.wait([j.id for j in others], timeout=60)
    assert [j.state for j in done] == [JobState.DONE] * 3
    [slow] = queue.wait([slow.id], timeout=180)  # Slurm checks time limits every 30 s
    assert slow.state is JobState.FAILED
    assert slow.message == f"Slurm job {task} ended TIMEOUT (signal 15), reason TimeLimit"
    assert _cell(folder, 3, "answer")[1]["error_cls"] == "TimeLimitExceeded"
    assert _cell(folder, 3, "first")[0] == 1  # finished before Slurm ended the task
    log = (folder / "process_logs" / f"r3-p{PROPOSAL}.out").read_text()
    assert f"----- Slurm job {task} ended TIMEOUT" in log


def test_cancelling_every_run_of_a_batch_cancels_its_array(make_queue, folder):
    write_context(folder, SLEEPS)
    # Three workers on a 2-CPU node: the third task waits in Slurm (Resources).
    queue = make_queue("slurm", concurrent_jobs=3)
    jobs = [j for run in (1, 2, 3, 1) for j in queue.submit(PROPOSAL, run)]
    wait_for(lambda: sum(_running(queue, j.id) for j in jobs) == 2, timeout=90,
             what="two runs to start")
    array = queue.get(jobs[0].id).external_id.split("_")[0]
    waiting = [j for j in jobs if queue.get(j.id).state is JobState.QUEUED]
    for job in waiting:
        assert queue.cancel(job.id)
        assert queue.wait([job.id], timeout=5)[0].message == "Cancelled before it started"
    for job in jobs:
        queue.cancel(job.id)
    ended = queue.wait([j.id for j in jobs], timeout=60)
    assert [j.state for j in ended] == [JobState.CANCELLED] * 4
    for run in (1, 2, 3):
        assert _cell(folder, run, "slow")[1]["error_cls"] == "Cancelled"
    # No task keeps running or waiting for nothing.
    wait_for(lambda: not {"RUNNING", "PENDING"} & set(_tasks(array).values()), timeout=30,
             what=f"the tasks of Slurm job {array} to end")
    assert "CANCELLED" in _tasks(array).values()  # the one that never started


def test_a_restart_while_an_array_runs_follows_it_to_the_end(make_queue, folder):
    write_context(folder, TAKES_3_S)
    queue = make_queue("slurm", concurrent_jobs=1)
    calls = slurm_module.CALLS["sbatch"]
    jobs = [j for run in (1, 2, 3) for j in queue.submit(PROPOSAL, run)]
    wait_for(lambda: _running(queue, jobs[0].id), timeout=60, what="the first run to start")
    queue.close()  # the array goes on without anyone watching
    time.sleep(3)
    again = make_queue("slurm", concurrent_jobs=1)
    assert [again.get(j.id).state for j in jobs] == [JobState.RUNNING] + [JobState.QUEUED] * 2
    done = again.wait([j.id for j in jobs], timeout=120)
    assert [j.state for j in done] == [JobState.DONE] * 3, [j.message for j in done]
    assert slurm_module.CALLS["sbatch"] == calls + 1  # followed, not submitted again
    for run in (1, 2, 3):
        assert _cell(folder, run, "answer")[0] == 42


def test_cluster_and_other_variables_of_a_run_merge_into_one_row_on_slurm(make_queue,
                                                                           folder):
    write_context(folder, CLUSTERED)
    queue = make_queue("slurm")
    jobs = queue.submit(PROPOSAL, 1, Selection("raw"))
    assert [(j.cluster, j.executor) for j in jobs] == [(False, "slurm"), (True, "slurm")]
    done = queue.wait([j.id for j in jobs], timeout=90)
    assert [j.state for j in done] == [JobState.DONE] * 2, [j.message for j in done]
    assert len({j.external_id.split("_")[0] for j in done}) == 1  # one array
    assert _cell(folder, 1, "base")[0] == 1 and _cell(folder, 1, "heavy")[0] == 2


def test_slurm_max_jobs_caps_the_workers_submitted_at_once(folder):
    """Each batch gets at most concurrent_jobs workers, and all batches together at most
    slurm_max_jobs; what does not fit waits (nothing is submitted)."""
    from runtable.jobs import Job, Limits, SlurmExecutor

    write_context(folder, SLEEPS)
    ex = SlurmExecutor()
    settings = {"db_dir": folder, "concurrent_jobs": 2, "slurm_max_jobs": 3}
    limits = Limits(cpus=1, mem="500M", slurm_time="5")
    jobs = [Job(id=i, proposal=PROPOSAL, run=1, executor="slurm") for i in range(1, 7)]
    arrays = []
    try:
        first = ex.submit_batch(jobs[:3], limits, settings)
        arrays.append(first[0].external_id)
        assert "2 workers" in first[0].message
        second = ex.submit_batch(jobs[3:5], limits, settings)
        arrays.append(second[0].external_id)
        assert "1 worker)" in second[0].message
        assert ex.submit_batch(jobs[5:], limits, settings) == []
        assert [len(_tasks(a)) for a in arrays] == [2, 1]
    finally:
        subprocess.run(["scancel", *arrays], timeout=30)


def test_runs_no_task_took_go_to_a_new_array_when_the_tasks_are_gone(make_queue, folder):
    """Someone cancels the only task of an array: the run it held fails, the runs it
    had not taken yet are queued again and processed by a new array."""
    write_context(folder, TAKES_3_S)
    queue = make_queue("slurm", concurrent_jobs=1)
    held, *rest = [j for run in (1, 2, 3) for j in queue.submit(PROPOSAL, run)]
    wait_for(lambda: _running(queue, held.id), timeout=60, what="the first run to start")
    task = queue.get(held.id).external_id
    subprocess.run(["scancel", task], check=True, timeout=30)
    [held] = queue.wait([held.id], timeout=60)
    assert held.state is JobState.FAILED
    assert held.message == f"Slurm job {task} ended CANCELLED (signal 15)"
    done = queue.wait([j.id for j in rest], timeout=120)
    assert [j.state for j in done] == [JobState.DONE] * 2, [j.message for j in done]
    assert {j.external_id.split("_")[0] for j in done} != {task.split("_")[0]}
    assert _cell(folder, 1, "answer")[1]["error_cls"] == "ProcessingCrashed"
    assert _cell(folder, 2, "answer")[0] == _cell(folder, 3, "answer")[0] == 42


def test_an_array_whose_tasks_cannot_start_fails_its_runs_with_their_output(
        make_queue, folder, tmp_path):
    """A worker that cannot run on the nodes (here: an interpreter wrapper that refuses
    to) fails every run of the array with how the tasks ended and what they printed."""
    import sys

    python = tmp_path / "python"
    python.write_text(f'#!/bin/sh\ncase "$*" in *slurm_worker*) '
                      f'echo "no runtable on this node" >&2; exit 7;; esac\n'
                      f'exec {sys.executable} "$@"\n')
    python.chmod(0o755)
    queue = make_queue("slurm", concurrent_jobs=2, context_python=str(python))
    jobs = [j for run in (1, 2, 3) for j in queue.submit(PROPOSAL, run)]
    done = queue.wait([j.id for j in jobs], timeout=90)
    assert [j.state for j in done] == [JobState.FAILED] * 3
    for job in done:
        assert "ended FAILED (exit code 7), reason NonZeroExitCode before processing any " \
               "run" in job.message
        assert "no runtable on this node" in job.message
    log = (folder / "process_logs" / f"r2-p{PROPOSAL}.out").read_text()
    assert "no runtable on this node" in log
    assert _cell(folder, 2, "answer")[1]["error_cls"] == "ProcessingCrashed"


def test_a_batch_slurm_refuses_fails_its_runs_at_once(make_queue, folder):
    queue = make_queue("slurm", slurm_partition="no-such-partition")
    jobs = [j for run in (1, 2) for j in queue.submit(PROPOSAL, run)]
    done = queue.wait([j.id for j in jobs], timeout=30)
    assert [j.state for j in done] == [JobState.FAILED] * 2
    assert "Could not start the job: sbatch" in done[0].message
    assert "partition" in done[0].message.lower()
    assert not (folder / "slurm_batches").exists()
