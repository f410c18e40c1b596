"""The catch-up decision on its own: plain data in, the runs to queue out (no threads,
folders or queue)."""

from __future__ import annotations

from runtable.service.catchup import runs_to_catch_up
from runtable.sources import RunOnDisk

NAMES = {"raw": ["xgm"], "proc": ["peaks"]}


def _disk(*runs: tuple[int, bool, bool]) -> list[RunOnDisk]:
    return [RunOnDisk(run, raw, proc) for run, raw, proc in runs]


def test_runs_complete_on_disk_and_never_processed_are_queued_raw_first() -> None:
    on_disk = _disk((3, True, True), (4, True, False), (5, False, True))
    assert runs_to_catch_up(on_disk, [], NAMES, {}) == [
        (3, "raw"), (4, "raw"), (3, "proc"), (5, "proc")]


def test_a_run_with_a_stored_value_of_that_data_is_not_queued_again() -> None:
    on_disk = _disk((3, True, True), (4, True, True))
    stored = {"raw": {3}, "proc": {4}}
    assert runs_to_catch_up(on_disk, [], NAMES, stored) == [(4, "raw"), (3, "proc")]


def test_a_run_with_a_job_of_any_state_is_left_to_it_and_all_stands_for_both() -> None:
    on_disk = _disk((3, True, True), (4, True, True), (5, True, True))
    jobs = [(3, "raw"), (4, "all")]
    assert runs_to_catch_up(on_disk, jobs, NAMES, {}) == [(5, "raw"), (3, "proc"),
                                                          (5, "proc")]


def test_data_the_context_file_has_no_stored_variables_for_is_not_processed() -> None:
    on_disk = _disk((3, True, True))
    assert runs_to_catch_up(on_disk, [], {"raw": [], "proc": ["peaks"]}, {}) == [
        (3, "proc")]
    assert runs_to_catch_up(on_disk, [], {}, {}) == []


def test_a_run_notified_since_the_start_is_left_to_that_signal() -> None:
    on_disk = _disk((3, True, True))
    assert runs_to_catch_up(on_disk, [], NAMES, {}, notified={(3, "raw")}) == [
        (3, "proc")]
