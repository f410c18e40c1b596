"""A running job's progress reaches the event bus (what the page and `runtable events`
show) between its ``running`` and its ``done``; a job silent for ``stuck_after_s`` is
flagged as possibly stuck."""

from __future__ import annotations

from runtable.events import (
    ContextStatus,
    JobProgress,
    JobStateChanged,
    JobStuck,
    RunAdded,
    ValuesMerged,
)
from runtable.testing import add_raw_run

from .conftest import wait_for, write_context

SLOW = '''
import time
from runtable.context import Variable, progress

@Variable(title="Answer")
def answer(run):
    return 42

@Variable(title="Slow")
def slow(run):
    for _ in progress(range(30)):
        time.sleep(0.05)
    return 1
'''


def test_progress_events_arrive_in_order_while_a_slow_variable_runs(start_service, proposal,
                                                                    folder):
    write_context(folder, SLOW)
    service, bus = start_service(ready_quiet_s=3600)
    bus.wait(ContextStatus, ok=True)
    add_raw_run(proposal, 3)
    bus.wait(RunAdded, run=3)
    service.notify(3, "raw")
    bus.wait(ValuesMerged, run=3)

    mine = [e for _, _, e in bus.events
            if isinstance(e, JobStateChanged | JobProgress) and e.run == 3]
    states = [e.state for e in mine if isinstance(e, JobStateChanged)]
    assert states == ["queued", "running", "done"]
    running = next(i for i, e in enumerate(mine) if getattr(e, "state", "") == "running")
    done = next(i for i, e in enumerate(mine) if getattr(e, "state", "") == "done")
    progress = [e for e in mine if isinstance(e, JobProgress)]
    assert progress and all(running < mine.index(e) < done for e in progress)
    assert {e.job_id for e in progress} == {mine[0].job_id}
    assert {e.total for e in progress} == {2}
    slow = [e for e in progress if e.variable == "slow"]
    assert slow and all(e.done == 1 and e.steps == 30 for e in slow)
    assert [e.step for e in slow] == sorted(e.step for e in slow)
    assert progress[-1].done == 2 and progress[-1].variable == ""


SILENT = '''
import time
from pathlib import Path
from runtable.context import Variable

@Variable(title="Silent")
def silent(run):
    while Path("hold").exists():
        time.sleep(0.1)
    while Path("hold2").exists():
        print("awake again", flush=True)
        time.sleep(0.1)
    return 1
'''


def _stuck_events_after(bus, event) -> list[JobStuck]:
    with bus._cond:
        seq0 = next(seq for _, seq, e in bus.events if e is event)
        return [e for _, seq, e in bus.events if seq > seq0 and isinstance(e, JobStuck)]


def test_a_silent_job_is_flagged_possibly_stuck_and_unflagged_when_it_prints(
        start_service, proposal, folder):
    write_context(folder, SILENT)
    (folder / "hold").touch()
    (folder / "hold2").touch()
    try:
        service, bus = start_service(ready_quiet_s=3600, stuck_after_s=2)
        bus.wait(ContextStatus, ok=True)
        add_raw_run(proposal, 5)
        bus.wait(RunAdded, run=5)
        service.notify(5, "raw")
        # Flagged once silent since its report that "silent" started (on a loaded
        # machine it may be flagged before, while starting; that report lifts it).
        started = bus.wait(JobProgress, run=5, variable="silent")
        wait_for(lambda: [e.stuck for e in _stuck_events_after(bus, started)][-1:] == [True],
                 what="the job to be flagged")
        stuck = _stuck_events_after(bus, started)[-1]
        assert service.job_stuck(int(stuck.job_id)) == stuck.last_activity
        [job] = [j for j in service.jobs() if j.run == 5]
        assert service.last_activity(job) >= stuck.last_activity
        (folder / "hold").unlink()  # it prints, again and again: signs of life
        wait_for(lambda: any(not e.stuck for e in _stuck_events_after(bus, stuck)),
                 what="the job to be unflagged")
        unstuck = _stuck_events_after(bus, stuck)[0]
        assert not unstuck.stuck and unstuck.last_activity > stuck.last_activity
        assert service.job_stuck(int(stuck.job_id)) is None
        (folder / "hold2").unlink()
        bus.wait(ValuesMerged, run=5)
    finally:
        for name in ("hold", "hold2"):
            (folder / name).unlink(missing_ok=True)
