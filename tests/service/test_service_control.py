"""Processing control through the service: reprocess a selection, cancel queued and
running jobs, delete a variable while a job runs, pre-create empty rows."""

from __future__ import annotations

import h5py
import pytest

from runtable.events import ContextStatus, JobStateChanged, RunAdded, VariablesChanged
from runtable.jobs import JobState
from runtable.selection import Selection
from runtable.store import open_db
from runtable.testing import add_raw_run

from .conftest import PROPOSAL, TIMEOUT, values, wait_for, write_context

# `slow` waits while the file `hold` exists in the database folder (the jobs' working
# directory), so a test decides how long a job runs.
CONTEXT = '''
import time
from pathlib import Path
from runtable.context import Variable

@Variable(title="Answer")
def answer(run):
    return 42

@Variable(title="Stamp")
def stamp(run):
    return time.time()

@Variable(title="Slow")
def slow(run):
    deadline = time.time() + 80
    while Path("hold").exists() and time.time() < deadline:
        time.sleep(0.05)
    return 1
'''


def stamps(folder, run: int) -> dict[str, float]:
    """Each variable's timestamp in ``run_variables``: changes when it is recomputed."""
    with open_db(folder, readonly=True) as db:
        return dict(db.conn.execute(
            "SELECT name, timestamp FROM run_variables WHERE proposal = ? AND run = ?",
            (PROPOSAL, run)).fetchall())


@pytest.fixture
def processed(start_service, proposal, folder):
    """A service on runs 1 and 2, both processed once with CONTEXT."""
    write_context(folder, CONTEXT)
    add_raw_run(proposal, 1)
    add_raw_run(proposal, 2)
    service, bus = start_service(ready_quiet_s=0.3)
    bus.wait(ContextStatus, ok=True)
    for run in (1, 2):
        service.notify(run, "raw")
    wait_for(lambda: len(values(folder, 1)) == 3 and len(values(folder, 2)) == 3,
             what="runs 1 and 2 processed")
    service.wait_idle(TIMEOUT)
    return service, bus


def test_reprocess_only_the_chosen_runs_and_variables(processed, folder):
    service, _ = processed
    before1, before2 = stamps(folder, 1), stamps(folder, 2)
    jobs = service.reprocess([1], Selection("raw", ("stamp",)))
    assert [(j.run, j.data, j.variables) for j in jobs] == [(1, "raw", ("stamp",))]
    service.wait_idle(TIMEOUT)
    after1 = stamps(folder, 1)
    assert after1["stamp"] > before1["stamp"]
    assert after1["answer"] == before1["answer"]  # not recomputed
    assert stamps(folder, 2) == before2
    assert service.queue.get(jobs[0].id).state is JobState.DONE

    # No variables named: all of them, for every run given.
    jobs = service.reprocess([2, 1, 2], Selection("all"))
    assert sorted(j.run for j in jobs) == [1, 2]
    assert all(j.variables == () for j in jobs)
    service.wait_idle(TIMEOUT)
    assert stamps(folder, 2)["answer"] > before2["answer"]
    listed = {j.id: j for j in service.jobs()}
    assert {j.id for j in jobs} <= set(listed)
    assert all(listed[j.id].state is JobState.DONE for j in jobs)


def test_reprocess_rejects_bad_arguments(processed):
    service, _ = processed
    with pytest.raises(ValueError, match="data must be"):
        service.reprocess([1], Selection("calibrated"))
    with pytest.raises(ValueError, match="non-negative integer"):
        service.reprocess([-3])
    with pytest.raises(ValueError, match="non-negative integer"):
        service.add_runs(["7"])


def test_cancel_a_queued_and_a_running_job(processed, folder):
    service, bus = processed
    service.queue._overrides["concurrent_jobs"] = 1  # one at a time: the second waits
    service.queue._settings_at = 0.0
    (folder / "hold").touch()
    [first] = service.reprocess([1], Selection("raw", ("slow",)))
    [second] = service.reprocess([2], Selection("raw", ("slow",)))
    bus.wait(JobStateChanged, job_id=str(first.id), state="running")
    assert service.queue.get(second.id).state is JobState.QUEUED

    assert service.cancel(second.id) is True
    bus.wait(JobStateChanged, job_id=str(second.id), state="cancelled")
    assert service.cancel(first.id) is True
    bus.wait(JobStateChanged, job_id=str(first.id), state="cancelled")
    assert service.queue.get(first.id).state is JobState.CANCELLED
    # Ended jobs and unknown ones cannot be cancelled.
    assert service.cancel(first.id) is False
    assert service.cancel(99_999) is False
    service.wait_idle(TIMEOUT)
    # The cancelled run's cell keeps its value and says why it was not computed
    # again; the other variables are intact.
    assert values(folder, 1)["slow"] == 1
    with open_db(folder, readonly=True) as db:
        assert db.get_attributes(PROPOSAL, 1, "slow")["failed"]["error_cls"] == "Cancelled"
    assert values(folder, 1)["answer"] == 42
    (folder / "hold").unlink()


def test_delete_variable_while_a_job_computes_it(processed, folder):
    service, bus = processed
    (folder / "hold").touch()
    [job] = service.reprocess([1], Selection("raw"))
    bus.wait(JobStateChanged, job_id=str(job.id), state="running")

    service.delete_variable("stamp")  # returns once done by the writer thread
    bus.wait(VariablesChanged, names=("stamp",))
    with open_db(folder, readonly=True) as db:
        assert "stamp" not in db.variables()
        assert db.conn.execute(
            "SELECT COUNT(*) FROM run_variables WHERE name = 'stamp'").fetchone() == (0,)
    with h5py.File(folder / "extracted_data" / f"p{PROPOSAL}_r2.h5", "r") as f:
        assert "stamp" not in f and "stamp" not in f[".reduced"]
        assert "answer" in f

    # The job still running computes it again: it comes back for run 1 only, whole.
    (folder / "hold").unlink()
    service.wait_idle(TIMEOUT)
    assert service.queue.get(job.id).state is JobState.DONE
    with open_db(folder, readonly=True) as db:
        assert db.integrity_check() == "ok"
        assert db.variables()["stamp"].title == "Stamp"  # its column is back, titled
        rows = dict(db.conn.execute(
            "SELECT run, COUNT(*) FROM run_variables WHERE name = 'stamp' GROUP BY run"))
    assert rows == {1: 1}
    with h5py.File(folder / "extracted_data" / f"p{PROPOSAL}_r1.h5", "r") as f:
        assert "stamp" in f and "stamp" in f[".reduced"]
        assert set(values(folder, 1)) == {"answer", "stamp", "slow"}

    with pytest.raises(KeyError):
        service.delete_variable("no_such_variable")


def test_add_runs_makes_empty_rows_once(processed, folder):
    service, bus = processed
    assert service.add_runs([6, 5, 1, 5]) == [5, 6]
    bus.wait(RunAdded, run=5)
    bus.wait(RunAdded, run=6)
    assert service.add_runs([5, 6]) == []
    assert len(bus.of(RunAdded, run=5)) == 1
    with open_db(folder, readonly=True) as db:
        assert {(PROPOSAL, 5), (PROPOSAL, 6)} <= set(db.runs())
    assert values(folder, 5) == {}


def test_control_needs_a_running_service(folder):
    from runtable.service import Service

    service = Service(folder)
    with pytest.raises(RuntimeError, match="not running"):
        service.jobs()
    with pytest.raises(RuntimeError, match="not running"):
        service.reprocess([1])
