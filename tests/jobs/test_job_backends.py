"""One test body, two executors: the warm local pool and a real Slurm."""

from __future__ import annotations

import time

from runtable.jobs import Job, JobState, SlurmExecutor
from runtable.selection import Selection
from runtable.store import open_db
from runtable.store.history import cell_history

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
    # On Slurm, a job waits in the batch's array (queued, with the array's id) until a
    # task of the array takes it.
    handed = [JobState.QUEUED] if backend == "slurm" else []
    assert [e.state for e in events] == [JobState.QUEUED, *handed, JobState.RUNNING,
                                         JobState.DONE]
    assert list((folder / "extracted_data").glob(f"p{PROPOSAL}_r1.*.ready.h5"))
    values = _merged(folder)
    assert values["answer"][0] == 42
    assert values["n_trains"][0] > 0
    log = (folder / "process_logs" / f"r1-p{PROPOSAL}.out").read_text()
    assert "Finished r1" in log
    # Each value records the job that computed it and where (a task of an array on Slurm).
    with open_db(folder) as db:
        [entry] = cell_history(db, PROPOSAL, 1, "answer")
    source = entry.merge.source
    assert source["job"] == job.id and source["executor"] == backend
    assert entry.merge.context_sha256
    if backend == "slurm":
        assert source["slurm_array_job_id"] and source["slurm_array_task_id"].isdigit()
        assert f"Slurm job {source['slurm_array_job_id']}_" in entry.merge.job
    else:
        assert "slurm_job_id" not in source


def test_crash_gives_the_unfinished_variables_an_error(make_queue, folder, backend):
    write_context(folder, EXITS)
    queue = make_queue(backend)
    [job] = queue.submit(PROPOSAL, 1)
    [job] = queue.wait([job.id], timeout=60)
    assert job.state is JobState.FAILED
    assert "exit code 3" in job.message or "exited with code 3" in job.message
    values = _merged(folder)
    assert values["fine"] == (1, None)  # finished before the crash: kept
    for name in ["exits"]:
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

    from runtable.jobs.batch import BatchFolder, Manifest

    if slurm_ready is not None:
        pytest.skip(f"Slurm cannot run here: {slurm_ready}")
    queue = make_queue("slurm")
    # A batch a previous service submitted, whose array Slurm no longer knows.
    stale = queue.store.add(Job(id=0, proposal=PROPOSAL, run=1, executor="slurm",
                                state=JobState.RUNNING, external_id="987654321_0"))
    batch = BatchFolder.create(folder, Manifest(
        db_dir=str(folder), items=(Job(stale.id, PROPOSAL, 1),), run_time_s=60,
        task_time_s=60, mem_bytes=None, cpus=1))
    batch.set_submitted("987654321", 1)
    batch.append_event(0, {"event": "started", "id": stale.id, "host": "gone"})
    queue.close()
    queue = make_queue("slurm")  # restart: re-attaches the batch
    assert queue.get(stale.id).state is JobState.RUNNING
    [job] = queue.wait([stale.id], timeout=30)
    assert job.state is JobState.FAILED
    assert "Slurm job 987654321_0 vanished" in job.message
    assert not batch.path.exists()  # nothing left to follow


def test_a_running_slurm_job_without_its_batch_fails_at_restart(make_queue, folder,
                                                                 slurm_ready):
    import pytest

    if slurm_ready is not None:
        pytest.skip(f"Slurm cannot run here: {slurm_ready}")
    queue = make_queue("slurm")
    lost = queue.store.add(Job(id=0, proposal=PROPOSAL, run=1, executor="slurm",
                               state=JobState.RUNNING, external_id="987654321_0"))
    waiting = queue.store.add(Job(id=0, proposal=PROPOSAL, run=2, executor="slurm",
                                  state=JobState.QUEUED, external_id="987654321"))
    queue.close()
    queue = make_queue("slurm")
    assert queue.get(lost.id).state is JobState.FAILED
    assert "restarted" in queue.get(lost.id).message
    # Not started yet: it is simply queued again, and processed.
    again = queue.get(waiting.id)
    assert again.state is JobState.QUEUED and again.external_id != "987654321"
    [job] = queue.wait([waiting.id], timeout=60)
    assert job.state is JobState.DONE, job.message


def test_slurm_executor_alone_reports_each_run_of_a_batch(folder, slurm_ready):
    """The executor on its own: a batch of two runs, one of which exits with code 3."""
    import pytest

    from runtable.jobs import Limits

    if slurm_ready is not None:
        pytest.skip(f"Slurm cannot run here: {slurm_ready}")
    write_context(folder, EXITS)
    ex = SlurmExecutor(poll_interval=0.2)
    ex.db_dir = folder
    jobs = [Job(id=1, proposal=PROPOSAL, run=1, executor="slurm", variables=("fine",)),
            Job(id=2, proposal=PROPOSAL, run=1, executor="slurm")]
    handed = ex.submit_batch(jobs, Limits(cpus=1, mem="500M", slurm_time="5"),
                             {"db_dir": folder, "concurrent_jobs": 1})
    [array] = {u.external_id for u in handed}
    assert array.isdigit() and [u.state for u in handed] == [JobState.QUEUED] * 2
    updates = []
    wait_for(lambda: updates.extend(ex.poll()) or
             sum(u.state.final for u in updates) == 2, timeout=60, what="both runs' ends")
    by_job = {u.job_id: u for u in updates if u.state.final}
    assert by_job[1].state is JobState.DONE and by_job[1].fragment
    assert by_job[2].state is JobState.FAILED
    assert by_job[2].message == "The processing process exited with code 3"
    assert {u.external_id for u in updates} == {f"{array}_0"}


def test_cluster_variables_run_on_slurm_the_rest_locally(make_queue, folder, slurm_ready):
    import pytest

    from .test_jobs_units import CLUSTERED

    if slurm_ready is not None:
        pytest.skip(f"Slurm cannot run here: {slurm_ready}")
    write_context(folder, CLUSTERED)
    queue = make_queue("local")
    jobs = queue.submit(PROPOSAL, 1, Selection("raw"))
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
    wait_for(lambda: queue.step() is not None and queue.get(job.id).external_id,
             timeout=10, what="the job to go to Slurm")
    queue.close()  # the Slurm job keeps going without us

    again = make_queue("slurm")
    assert again.get(job.id).external_id
    [job] = again.wait([job.id], timeout=60)
    assert job.state is JobState.DONE, job.message
    with open_db(folder) as db:
        db.merge_pending()
        assert db.get_value(PROPOSAL, 2, "answer") == 42
