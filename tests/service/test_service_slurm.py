"""The service with the Slurm executor, on a real single-node Slurm: Slurm jobs don't
report their fragments, so the service finds them by run and merges them."""

from __future__ import annotations

import pytest

from runtable.events import JobStateChanged, ValuesMerged
from runtable.selection import Selection
from runtable.testing import add_raw_run

from .conftest import RAW_NAMES, TIMEOUT, age_runs, values, write_context

SLOW = '''
import time
from runtable.context import Variable

@Variable(title="Answer")
def answer(run):
    time.sleep(2)
    return 42
'''


def test_slurm_jobs_are_merged_and_published(start_service, proposal, folder, slurm_ready):
    if slurm_ready is not None:
        pytest.skip(f"Slurm cannot run here: {slurm_ready}")
    service, bus = start_service(ready_quiet_s=3600, executor="slurm",
                                 slurm_time="00:05:00")
    add_raw_run(proposal, 1)
    service.notify(1, "raw")
    merged = bus.wait(ValuesMerged, run=1)
    assert merged.names == RAW_NAMES
    assert values(folder, 1) == {"answer": 42, "n_trains": 64}
    [job] = service.queue.jobs()
    assert job.executor == "slurm" and job.external_id
    states = bus.of(JobStateChanged, run=1)
    assert [e.state for e in states] == ["queued", "queued", "running", "done"]
    assert states[1].message.startswith("In Slurm job ")  # waiting in the array


def test_a_reprocess_on_slurm_publishes_every_runs_states(start_service, proposal,
                                                           folder, slurm_ready):
    """What the Jobs tab and `runtable events` show: each run of the one array goes
    queued -> queued (in the array) -> running (on a task) -> done."""
    if slurm_ready is not None:
        pytest.skip(f"Slurm cannot run here: {slurm_ready}")
    for run in (1, 2, 3):
        add_raw_run(proposal, run)
    age_runs(proposal)
    service, bus = start_service(ready_quiet_s=3600, executor="slurm",
                                 slurm_time="00:05:00")
    bus.wait(ValuesMerged, count=3)  # caught up
    service.wait_idle(TIMEOUT)
    before = len(bus.of(JobStateChanged))
    jobs = service.reprocess([1, 2, 3], Selection("raw"))
    bus.wait(ValuesMerged, count=6)
    events = bus.of(JobStateChanged)[before:]
    arrays = set()
    for job in jobs:
        mine = [e for e in events if e.job_id == str(job.id)]
        assert [e.state for e in mine] == ["queued", "queued", "running", "done"]
        arrays.add(mine[1].message.split()[3])
        assert mine[2].message.startswith(f"Slurm job {mine[1].message.split()[3]}_")
    assert len(arrays) == 1
    assert {j.state.value for j in service.jobs()} == {"done"}


def test_a_service_restart_while_an_array_runs_merges_every_run(start_service, proposal,
                                                                folder, slurm_ready):
    if slurm_ready is not None:
        pytest.skip(f"Slurm cannot run here: {slurm_ready}")
    write_context(folder, SLOW)
    for run in (1, 2, 3):
        add_raw_run(proposal, run)
    service, bus = start_service(ready_quiet_s=3600, executor="slurm",
                                 slurm_time="00:05:00", concurrent_jobs=1)
    for run in (1, 2, 3):
        service.notify(run, "raw")
    bus.wait(JobStateChanged, state="running")
    service.stop()  # the array goes on

    service, bus = start_service(ready_quiet_s=3600, executor="slurm",
                                 slurm_time="00:05:00", concurrent_jobs=1)
    for run in (1, 2, 3):
        bus.wait(ValuesMerged, run=run)
        assert values(folder, run)["answer"] == 42
    assert len({j.external_id.split("_")[0] for j in service.jobs()}) == 1
