"""The service with the Slurm executor, on a real single-node Slurm: Slurm jobs don't
report their fragments, so the service finds them by run and merges them."""

from __future__ import annotations

import pytest

from runtable.server.events import JobStateChanged, ValuesMerged
from runtable.testing import add_raw_run

from .conftest import RAW_NAMES, values


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
    assert [e.state for e in bus.of(JobStateChanged, run=1)] == ["queued", "running", "done"]
