"""A running job's progress reaches the event bus (what the page and `runtable events`
show) between its ``running`` and its ``done``."""

from __future__ import annotations

from runtable.server.events import (
    ContextStatus,
    JobProgress,
    JobStateChanged,
    RunAdded,
    ValuesMerged,
)
from runtable.testing import add_raw_run

from .conftest import write_context

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
