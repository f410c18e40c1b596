"""One test body, two executors: the warm local pool and a real Slurm."""

from __future__ import annotations

import time

from runtable.jobs import Job, JobState, SlurmExecutor
from runtable.store import open_db

from .conftest import PROPOSAL, wait_for, write_context

SLEEPS = '''
import time
from runtable.context import Variable

@Variable(title="Slow")
def slow(run):
    print("started sleeping", flush=True)
    time.sleep(60)
    return 1
'''

EXITS = '''
import os
from runtable.context import Variable

@Variable(title="Fine")
def fine(run):
    return 1

@Variable(title="Exits")
def exits(run, fine: "var#fine"):
    os._exit(3)
'''


def _merged(folder):
    with open_db(folder) as db:
        db.merge_pending()
        return {name: (db.get_value(PROPOSAL, 1, name), db.get_attributes(PROPOSAL, 1, name))
                for name in ("n_trains", "answer", "slow", "fine", "exits")}


def test_job_runs_and_fragment_merges(make_queue, folder, backend):
    events = []
    queue = make_queue(backend)
    queue.subscribe(events.append)
    [job] = queue.submit(PROPOSAL, 1)
    assert job.executor == backend and job.state is JobState.QUEUED
    [job] = queue.wait([job.id], timeout=60)
    assert job.state is JobState.DONE, job.message
    assert job.external_id  # pid or Slurm job id
    assert job.started_at and job.finished_at >= job.started_at
    assert [e.state for e in events] == [JobState.QUEUED, JobState.RUNNING, JobState.DONE]
    assert list((folder / "extracted_data").glob(f"p{PROPOSAL}_r1.*.ready.h5"))
    values = _merged(folder)
    assert values["answer"][0] == 42
    assert values["n_trains"][0] > 0
    log = (folder / "process_logs" / f"r1-p{PROPOSAL}.out").read_text()
    assert "Finished r1" in log


def test_crash_gives_the_unfinished_variables_an_error(make_queue, folder, backend):
    write_context(folder, EXITS)
    queue = make_queue(backend)
    [job] = queue.submit(PROPOSAL, 1)
    [job] = queue.wait([job.id], timeout=60)
    assert job.state is JobState.FAILED
    assert "exit code 3" in job.message or "exited with code 3" in job.message
    values = _merged(folder)
    unfinished = ["exits"]
    if backend == "local":  # finished before the crash: kept (Slurm jobs: not yet)
        assert values["fine"] == (1, None)
    else:
        unfinished.append("fine")
    for name in unfinished:
        value, attrs = values[name]
        assert value is None
        assert attrs["error_cls"] == "ProcessingCrashed"
        assert "3" in attrs["error"]


def test_cancel_running(make_queue, folder, backend):
    write_context(folder, SLEEPS)
    queue = make_queue(backend)
    [job] = queue.submit(PROPOSAL, 1)
    log = folder / "process_logs" / f"r1-p{PROPOSAL}.out"
    wait_for(lambda: queue.step() is not None and log.exists()
             and "started sleeping" in log.read_text(), timeout=40, what="job to start")
    assert queue.cancel(job.id)
    start = time.monotonic()
    [job] = queue.wait([job.id], timeout=30)
    assert time.monotonic() - start < 20
    assert job.state is JobState.CANCELLED
    assert "Cancelled" in job.message
    value, attrs = _merged(folder)["slow"]
    assert value is None and attrs["error_cls"] == "Cancelled"
    assert not queue.cancel(job.id)  # already over


def test_slurm_job_that_vanishes_is_failed(make_queue, folder, slurm_ready):
    import pytest

    if slurm_ready is not None:
        pytest.skip(f"Slurm cannot run here: {slurm_ready}")
    queue = make_queue("slurm")
    # A job a previous service started, whose id Slurm no longer knows.
    stale = queue.store.add(Job(id=0, proposal=PROPOSAL, run=1, executor="slurm",
                                state=JobState.RUNNING, external_id="987654321"))
    queue.close()
    queue = make_queue("slurm")  # restart: re-attaches the running Slurm job
    assert queue.get(stale.id).state is JobState.RUNNING
    [job] = queue.wait([stale.id], timeout=20)
    assert job.state is JobState.FAILED
    assert "vanished" in job.message


def test_slurm_executor_reports_failed_exit_code(folder, slurm_ready):
    """The executor on its own: scontrol's ExitCode ends up in the message."""
    import pytest

    from runtable.jobs import Limits

    if slurm_ready is not None:
        pytest.skip(f"Slurm cannot run here: {slurm_ready}")
    write_context(folder, EXITS)
    ex = SlurmExecutor(poll_interval=0.2)
    job = Job(id=1, proposal=PROPOSAL, run=1, executor="slurm")
    slurm_id = ex.submit(job, Limits(cpus=1, mem="500M", slurm_time="5"),
                         {"db_dir": folder})
    assert slurm_id and slurm_id.isdigit()
    updates = []
    wait_for(lambda: updates.extend(ex.poll()) or updates, timeout=40, what="Slurm job end")
    [update] = updates
    assert update.state is JobState.FAILED
    assert update.message == f"Slurm job {slurm_id} ended FAILED (exit code 3), reason " \
                             "NonZeroExitCode"


def test_cluster_variables_run_on_slurm_the_rest_locally(make_queue, folder, slurm_ready):
    import pytest

    from .test_jobs_units import CLUSTERED

    if slurm_ready is not None:
        pytest.skip(f"Slurm cannot run here: {slurm_ready}")
    write_context(folder, CLUSTERED)
    queue = make_queue("local")
    jobs = queue.submit(PROPOSAL, 1, data="raw")
    assert [j.executor for j in jobs] == ["local", "slurm"]
    done = queue.wait([j.id for j in jobs], timeout=60)
    assert [j.state for j in done] == [JobState.DONE, JobState.DONE], [j.message for j in done]
    with open_db(folder) as db:
        db.merge_pending()
        assert db.get_value(PROPOSAL, 1, "base") == 1
        assert db.get_value(PROPOSAL, 1, "heavy") == 2


def test_slurm_job_is_followed_after_a_restart(make_queue, folder, slurm_ready):
    import pytest

    if slurm_ready is not None:
        pytest.skip(f"Slurm cannot run here: {slurm_ready}")
    queue = make_queue("slurm")
    [job] = queue.submit(PROPOSAL, 2)
    queue.step()
    assert queue.get(job.id).state is JobState.RUNNING
    queue.close()  # the Slurm job keeps going without us

    again = make_queue("slurm")
    assert again.get(job.id).state is JobState.RUNNING
    [job] = again.wait([job.id], timeout=60)
    assert job.state is JobState.DONE, job.message
    with open_db(folder) as db:
        db.merge_pending()
        assert db.get_value(PROPOSAL, 2, "answer") == 42
