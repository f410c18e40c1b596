"""Jobs that crash, run out of memory or time, or are cancelled: the run's cells say
why, and the service carries on with the next run."""

from __future__ import annotations

from runtable.events import JobStateChanged, ValuesMerged
from runtable.testing import add_raw_run

from .conftest import values, write_context

TROUBLE = '''
import os
import time

import numpy as np
from runtable.context import Variable

@Variable(title="Work")
def work(run, n: "meta#run_number"):
    if n == 1:
        os._exit(3)  # a crash: no exception, no result
    if n == 2:
        chunks = [np.ones(50 * 2**20 // 8) for _ in range(16)]  # 800 MiB, resident
        time.sleep(60)
    if n in (3, 4):
        time.sleep(60)
    return n

@Variable(title="Other")
def other(run):
    return 1
'''


def test_crash_memory_and_time_limits_mark_the_cells(start_service, proposal, folder):
    write_context(folder, TROUBLE)
    service, bus = start_service(ready_quiet_s=3600, noncluster_mem="300M",
                                 job_time_limit_s=10)
    for run in (1, 2, 3, 5):
        add_raw_run(proposal, run)
        service.notify(run, "raw")
    for run in (1, 2, 3, 5):
        bus.wait(ValuesMerged, run=run)
    service.wait_idle()
    # A crashed job leaves no results: every variable it computed gets its error.
    assert values(folder, 1) == {"work": ("error", "ProcessingCrashed"),
                                 "other": ("error", "ProcessingCrashed")}
    assert values(folder, 2)["work"] == ("error", "MemoryLimitExceeded")
    assert values(folder, 3)["work"] == ("error", "TimeLimitExceeded")
    # ... and the service went on.
    assert values(folder, 5) == {"work": 5, "other": 1}
    states = {e.run: (e.state, e.message) for e in bus.of(JobStateChanged)}
    assert states[5] == ("done", "")
    for run, words in ((1, "exit"), (2, "300M"), (3, "time limit")):
        state, message = states[run]
        assert state == "failed" and words in message, (run, message)


def test_cancelled_job_marks_the_cells_and_the_service_goes_on(start_service, proposal,
                                                                 folder):
    write_context(folder, TROUBLE)
    service, bus = start_service(ready_quiet_s=3600)
    add_raw_run(proposal, 4)
    service.notify(4, "raw")
    running = bus.wait(JobStateChanged, run=4, state="running")
    assert service.queue.cancel(int(running.job_id))
    bus.wait(JobStateChanged, run=4, state="cancelled")
    bus.wait(ValuesMerged, run=4)
    assert values(folder, 4) == {"work": ("error", "Cancelled"),
                                 "other": ("error", "Cancelled")}
    add_raw_run(proposal, 6)
    service.notify(6, "raw")
    bus.wait(ValuesMerged, run=6)
    assert values(folder, 6) == {"work": 6, "other": 1}
