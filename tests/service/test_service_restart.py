"""Catch-up on start, restarts, and a context file that breaks and is fixed."""

from __future__ import annotations

import time
from pathlib import Path

from runtable.events import (
    ContextStatus,
    JobStateChanged,
    RunAdded,
    ValuesMerged,
    VariablesChanged,
)
from runtable.jobs import JobState, write_error_fragment
from runtable.store import open_db
from runtable.testing import add_proc_run, add_raw_run

from .conftest import CONTEXT, PROPOSAL, age_runs, values, wait_for, write_context

SLOW = '''
import time
from runtable.context import Variable

@Variable(title="Slow")
def slow(run):
    time.sleep(120)
    return 1
'''


def _jobs(service) -> list[tuple[int, str]]:
    return sorted((j.run, j.data) for j in service.queue.jobs())


def test_catch_up_processes_what_arrived_while_stopped(start_service, proposal, folder):
    add_raw_run(proposal, 1)
    add_raw_run(proposal, 2)
    add_proc_run(proposal, 2)
    age_runs(proposal)
    first, bus = start_service()
    first.wait_idle()
    # Never processed = no job and no value for any variable of that data: all three.
    assert _jobs(first) == [(1, "raw"), (2, "proc"), (2, "raw")]
    assert {e.run for e in bus.of(RunAdded)} == {1, 2}
    assert values(folder, 2) == {"answer": 42, "n_trains": 64, "frames": 7}
    first.stop()

    # While stopped: a new run arrives, a job's fragment is left unmerged, and a
    # fragment that cannot be read lies in the folder.
    add_raw_run(proposal, 3)
    age_runs(proposal)
    write_error_fragment(folder, PROPOSAL, 1, ["answer"], RuntimeError("left over"))
    garbage = folder / "extracted_data" / f"p{PROPOSAL}_r1.garbage.ready.h5"
    garbage.write_bytes(b"not HDF5")

    second, bus = start_service()
    second.wait_idle()
    merged = bus.wait(ValuesMerged, run=1)
    assert merged.names == ("answer",)
    assert values(folder, 1)["answer"] == ("error", "RuntimeError")
    bus.wait(ValuesMerged, run=3)
    # Only run 3 was new work; runs 1 and 2 were not processed again.
    assert _jobs(second) == [(1, "raw"), (2, "proc"), (2, "raw"), (3, "raw")]
    assert [e.run for e in bus.of(RunAdded)] == [3]
    assert garbage.exists()  # left for a person to look at, not deleted


def test_broken_context_pauses_jobs_until_fixed(start_service, proposal, folder):
    service, bus = start_service(ready_quiet_s=3600)
    bus.wait(ContextStatus, ok=True)
    write_context(folder, '''
        from runtable.context import Variable

        @Variable(title="Broken")
        def broken(run:
            return 1
    ''')
    status = bus.wait(ContextStatus, ok=False)
    assert any("context.py" in line for line in status.problems), status.problems
    add_raw_run(proposal, 5)
    service.notify(5, "raw")
    bus.wait(JobStateChanged, run=5, state="queued")
    time.sleep(2)  # many queue rounds: none may start the job
    assert not bus.of(JobStateChanged, run=5, state="running")
    assert service.queue.paused_reason is not None

    write_context(folder, CONTEXT + '''
@Variable(title="New column")
def new_column(run):
    return "new"
''')
    bus.wait(ContextStatus, count=2, ok=True)
    bus.wait(ValuesMerged, run=5)
    assert values(folder, 5)["new_column"] == "new"
    assert bus.of(VariablesChanged)[-1].names == ("new_column",)
    with open_db(folder, readonly=True) as db:
        assert db.variables()["new_column"].title == "New column"
    events = [e for _, _, e in bus.events if isinstance(e, ContextStatus)]
    assert [e.ok for e in events] == [True, False, True]


def test_queued_jobs_survive_a_restart(start_service, proposal, folder):
    write_context(folder, "this is not python\n")
    first, bus = start_service(ready_quiet_s=3600)
    bus.wait(ContextStatus, ok=False)
    add_raw_run(proposal, 7)
    first.notify(7, "raw")
    [queued] = [bus.wait(JobStateChanged, run=7, state="queued")]
    first.stop()

    write_context(folder, CONTEXT)
    second, bus = start_service(ready_quiet_s=3600)
    bus.wait(ValuesMerged, run=7)
    second.wait_idle()
    [job] = second.queue.jobs()
    assert (str(job.id), job.state) == (queued.job_id, JobState.DONE)
    assert values(folder, 7) == {"answer": 42, "n_trains": 64}


def test_a_job_interrupted_by_stop_runs_again_at_the_next_start(start_service, proposal,
                                                                  folder: Path):
    write_context(folder, SLOW)
    first, bus = start_service(ready_quiet_s=3600)
    add_raw_run(proposal, 8)
    first.notify(8, "raw")
    bus.wait(JobStateChanged, run=8, state="running")
    first.stop()

    write_context(folder, CONTEXT)
    second, bus = start_service(ready_quiet_s=3600)
    bus.wait(ValuesMerged, run=8)
    second.wait_idle()
    assert values(folder, 8) == {"answer": 42, "n_trains": 64}
    [job] = second.queue.jobs()
    assert job.state is JobState.DONE


def test_a_run_is_found_when_the_proposal_folder_appears_later(tmp_path, monkeypatch):
    from runtable.service import Service
    from runtable.store import create_folder
    from runtable.testing import make_proposal

    from .conftest import SETTINGS, RecordingBus

    monkeypatch.setenv("EXTRA_DATA_DATA_ROOT", str(tmp_path / "data"))
    (tmp_path / "data").mkdir()
    create_folder(tmp_path / "db", PROPOSAL, context_text=CONTEXT).close()
    service = Service(tmp_path / "db", settings=SETTINGS, poll_interval_s=0.2,
                      context_poll_s=0.1)
    bus = RecordingBus()
    service.start(bus)
    try:
        bus.wait(ContextStatus, ok=True)
        assert service.proposal_path is None
        prop = make_proposal(tmp_path / "data", PROPOSAL, runs=[1])
        wait_for(lambda: service.proposal_path is not None, what="the proposal folder")
        assert service.proposal_path == prop.path
        bus.wait(ValuesMerged, run=1)
    finally:
        service.stop()
