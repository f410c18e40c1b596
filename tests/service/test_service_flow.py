"""New runs in, results out: detection, quiet period, notify, proc after raw, events."""

from __future__ import annotations

import time

import pytest

from runtable.events import (
    ContextStatus,
    JobProgress,
    JobStateChanged,
    RunAdded,
    ValuesMerged,
    VariablesChanged,
)
from runtable.jobs import JobState
from runtable.store import open_db
from runtable.testing import add_proc_run, add_raw_run

from .conftest import PROC_NAMES, PROPOSAL, RAW_NAMES, values


@pytest.mark.parametrize("use_inotify", [True, False], ids=["inotify", "polling-only"])
def test_new_run_folder_is_a_row_at_once_and_processed_when_quiet(start_service, proposal,
                                                                     folder, use_inotify):
    # Polling alone is what network file systems, where inotify sees nothing, get.
    service, bus = start_service(ready_quiet_s=1.5, use_inotify=use_inotify)
    bus.wait(ContextStatus, ok=True)
    run_dir = add_raw_run(proposal, 1)
    # When the folder's files last changed, on the clock of the event times (a
    # few ms of slack: file times come from the kernel's coarser clock).
    newest = max(p.stat().st_mtime for p in (run_dir, *run_dir.iterdir()))
    written = newest - (time.time() - time.monotonic()) - 0.05
    added = bus.wait(RunAdded, run=1)
    merged = bus.wait(ValuesMerged, run=1)
    assert merged.names == RAW_NAMES
    queued = bus.wait(JobStateChanged, run=1, state="queued")
    # Complete means quiet for ready_quiet_s: not queued before that.
    assert bus.time_of(queued) >= written + 1.5
    assert bus.time_of(added) < bus.time_of(queued)
    assert values(folder, 1) == {"answer": 42, "n_trains": 64}
    [job] = service.queue.jobs()
    assert (job.run, job.data, job.state) == (1, "raw", JobState.DONE)


def test_notify_processes_at_once_and_events_come_in_order(start_service, proposal, folder):
    # An hour of quiet: only the explicit signal can start this run's processing.
    service, bus = start_service(ready_quiet_s=3600)
    bus.wait(ContextStatus, ok=True)
    add_raw_run(proposal, 4)
    bus.wait(RunAdded, run=4)
    service.notify(4, "raw")
    bus.wait(ValuesMerged, run=4)
    assert values(folder, 4) == {"answer": 42, "n_trains": 64}

    kinds = [(type(e).__name__, getattr(e, "state", None)) for _, _, e in bus.events
             if getattr(e, "run", 4) == 4
             and not isinstance(e, ContextStatus | VariablesChanged | JobProgress)]
    assert kinds == [("RunAdded", None), ("JobStateChanged", "queued"),
                     ("JobStateChanged", "running"), ("JobStateChanged", "done"),
                     ("ValuesMerged", None)]
    seqs = [seq for _, seq, _ in bus.events]
    assert seqs == list(range(1, len(seqs) + 1))
    # The variables table was filled from the context file on start.
    assert bus.of(VariablesChanged)[0].names == ("answer", "frames", "n_trains")
    # The same run notified again is processed again (a legitimate reprocessing request).
    service.notify(4, "raw")
    bus.wait(ValuesMerged, count=2, run=4)


def test_proc_data_triggers_the_proc_variables_after_raw(start_service, proposal, folder):
    service, bus = start_service(ready_quiet_s=3600)
    add_raw_run(proposal, 2)
    service.notify(2, "raw")
    raw = bus.wait(ValuesMerged, run=2)
    assert raw.names == RAW_NAMES
    add_proc_run(proposal, 2)
    service.notify(2, "proc")
    proc = bus.wait(ValuesMerged, count=2, run=2)
    assert proc.names == PROC_NAMES
    assert values(folder, 2) == {"answer": 42, "n_trains": 64, "frames": 7}
    assert [(j.run, j.data) for j in service.queue.jobs()] == [(2, "raw"), (2, "proc")]


def test_notify_checks_its_input(start_service):
    service, _ = start_service()
    for run, data in ((-1, "raw"), (3, "calibrated"), (True, "raw")):
        try:
            service.notify(run, data)
        except ValueError as exc:
            assert str(run) in str(exc) or data in str(exc)
        else:
            raise AssertionError(f"notify({run!r}, {data!r}) was accepted")
    service.stop()
    try:
        service.notify(1, "raw")
    except RuntimeError as exc:
        assert "not running" in str(exc)
    else:
        raise AssertionError("notify after stop was accepted")


def test_runs_of_the_proposal_folder_are_found_without_the_data_root(
        start_service, proposal, folder, monkeypatch):
    # The folder at its default place names its proposal folder; jobs must find the
    # runs there too, even with no EXTRA_DATA_DATA_ROOT set.
    monkeypatch.delenv("EXTRA_DATA_DATA_ROOT")
    service, bus = start_service(ready_quiet_s=3600)
    add_raw_run(proposal, 6)
    service.notify(6, "raw")
    bus.wait(ValuesMerged, run=6)
    assert values(folder, 6)["n_trains"] == 64
    assert service.proposal == PROPOSAL


def test_a_changed_quiet_period_applies_without_a_restart(start_service, proposal, folder):
    with open_db(folder) as db:
        db.set_setting("ready_quiet_s", 3600)
    service, bus = start_service(ready_quiet_s=None)
    assert service.ready_quiet_s == 3600
    add_raw_run(proposal, 3)
    bus.wait(RunAdded, run=3)
    with open_db(folder) as db:  # as `runtable config ready_quiet_s 0.5` does
        db.set_setting("ready_quiet_s", 0.5)
    bus.wait(ValuesMerged, run=3)  # an hour early: only the new setting allows it
    assert service.ready_quiet_s == 0.5


def test_a_folder_that_is_not_a_database_is_refused(tmp_path):
    from runtable.service import Service, ServiceError

    with pytest.raises(ServiceError, match=r"not a database folder.*runtable init"):
        Service(tmp_path)
