"""A job that dies erases nothing: what it had finished is kept, the variables it had
not finished keep their earlier values with the failure noted, and no partial file is
left behind. Real processes: the service's warm worker, and `runtable reprocess`."""

from __future__ import annotations

import subprocess
import sys

import h5py

from runtable.events import ValuesMerged
from runtable.store import open_db
from runtable.testing import add_raw_run

from .conftest import PROPOSAL, TIMEOUT, values, write_context

# `first` reads a generation number; in generation 2 `crash` kills its process (as a
# segfault or a limit would) after `first` is done, and `last` never starts.
DYING = '''
import os
import numpy as np
from runtable.context import Variable

@Variable(title="First")
def first(run):
    with open("generation.txt") as f:
        return int(f.read())

@Variable(title="Crash")
def crash(run, g: "var#first"):
    if g == 2:
        os._exit(3)
    if g == 3:
        hog = np.ones(600 * 2**20 // 8)  # 600 MiB resident, over the limit
        import time; time.sleep(60)
    return g * 10

@Variable(title="Last")
def last(run, c: "var#crash"):
    return np.full(5, c + 1.0)
'''


def _failed(folder, run, name):
    with open_db(folder, readonly=True) as db:
        return (db.get_attributes(PROPOSAL, run, name) or {}).get("failed")


def _h5(folder, run):
    with h5py.File(folder / "extracted_data" / f"p{PROPOSAL}_r{run}.h5", "r") as f:
        return {name: f[name]["data"][()].tolist() for name in ("first", "crash", "last")}


def _leftovers(folder):
    return sorted(p.name for p in (folder / "extracted_data").iterdir()
                  if ".writing" in p.name or p.name.endswith(".ready.h5"))


def test_a_job_that_dies_keeps_what_it_finished_and_the_values_before(
        start_service, proposal, folder):
    write_context(folder, DYING)
    (folder / "generation.txt").write_text("1")
    service, bus = start_service(ready_quiet_s=3600)
    add_raw_run(proposal, 1)
    service.notify(1, "raw")
    bus.wait(ValuesMerged, run=1)
    service.wait_idle()
    assert _h5(folder, 1) == {"first": 1, "crash": 10, "last": [11.0] * 5}

    (folder / "generation.txt").write_text("2")
    service.reprocess([1])
    bus.wait(ValuesMerged, count=2, run=1)
    service.wait_idle()
    got = values(folder, 1)
    assert got["first"] == 2  # finished before the crash: kept, not replaced by the error
    assert got["crash"] == 10  # not finished: the earlier value stays ...
    for name in ("crash", "last"):  # ... with the failure on the cell
        failed = _failed(folder, 1, name)
        assert failed is not None and failed["error_cls"] == "ProcessingCrashed", name
    assert _failed(folder, 1, "first") is None
    assert _h5(folder, 1) == {"first": 2, "crash": 10, "last": [11.0] * 5}
    assert _leftovers(folder) == []

    # A computation that succeeds replaces the values and clears the failure.
    (folder / "generation.txt").write_text("4")
    service.reprocess([1])
    bus.wait(ValuesMerged, count=3, run=1)
    service.wait_idle()
    assert values(folder, 1)["crash"] == 40 and _failed(folder, 1, "crash") is None
    assert _h5(folder, 1) == {"first": 4, "crash": 40, "last": [41.0] * 5}


def test_a_reprocess_that_runs_out_of_memory_keeps_the_values_before(proposal, folder):
    write_context(folder, DYING)
    add_raw_run(proposal, 1)
    with open_db(folder) as db:
        db.set_setting("noncluster_mem", "300M")
        db.set_setting("noncluster_cpus", 1)

    def reprocess():
        return subprocess.run([sys.executable, "-m", "runtable.cli", "reprocess", "1",
                               "--in", str(folder)], capture_output=True, text=True,
                              timeout=TIMEOUT)

    (folder / "generation.txt").write_text("1")
    assert reprocess().returncode == 0
    assert _h5(folder, 1) == {"first": 1, "crash": 10, "last": [11.0] * 5}
    (folder / "generation.txt").write_text("3")
    result = reprocess()
    assert result.returncode == 0, result.stderr
    assert "MemoryLimitExceeded" in result.stdout
    got = values(folder, 1)
    assert got["first"] == 3 and got["crash"] == 10
    for name in ("crash", "last"):
        assert _failed(folder, 1, name)["error_cls"] == "MemoryLimitExceeded", name
    assert _h5(folder, 1) == {"first": 3, "crash": 10, "last": [11.0] * 5}
    assert _leftovers(folder) == []
    log = (folder / "process_logs" / f"r1-p{PROPOSAL}.out").read_text()
    assert "more than the limit of 300M; killed" in log
