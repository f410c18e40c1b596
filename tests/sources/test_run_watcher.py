"""RunWatcher on real folders: appeared, ready when quiet or notified, robustness."""

from __future__ import annotations

import logging
import os
import shutil
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from runtable.sources import RunAppeared, RunEvent, RunReady, RunWatcher
from runtable.testing import MockProposal, add_proc_run, add_raw_run, make_proposal

QUIET = 0.3  # ready_quiet_s used by most tests
POLL = 0.1  # poll_interval_s used by most tests
TIMEOUT = 5.0  # how long to wait for an event before failing


class Recorder:
    """An on_event callback that keeps events with arrival times and lets tests wait."""

    def __init__(self) -> None:
        self.events: list[tuple[float, RunEvent]] = []
        self._cond = threading.Condition()

    def __call__(self, event: RunEvent) -> None:
        with self._cond:
            self.events.append((time.monotonic(), event))
            self._cond.notify_all()

    def seen(self) -> list[RunEvent]:
        with self._cond:
            return [e for _, e in self.events]

    def wait_for(self, event: RunEvent, count: int = 1, timeout: float = TIMEOUT) -> float:
        """Wait until ``event`` was seen ``count`` times; return when it last arrived."""

        def times() -> list[float]:
            return [t for t, e in self.events if e == event]

        with self._cond:
            if not self._cond.wait_for(lambda: len(times()) >= count, timeout):
                pytest.fail(f"no {event} (x{count}) within {timeout} s; saw {self.seen()}")
            return times()[count - 1]


StartWatcher = Callable[..., tuple[Recorder, RunWatcher]]


@pytest.fixture
def start_watcher() -> Iterator[StartWatcher]:
    """Start RunWatchers with fast test timings; all are stopped at teardown."""
    watchers: list[RunWatcher] = []

    def start(path: Path, **kwargs: object) -> tuple[Recorder, RunWatcher]:
        kwargs.setdefault("ready_quiet_s", QUIET)
        kwargs.setdefault("poll_interval_s", POLL)
        recorder = Recorder()
        watcher = RunWatcher(path, recorder, **kwargs)  # type: ignore[arg-type]
        watcher.start()
        watchers.append(watcher)
        return recorder, watcher

    yield start
    for watcher in watchers:
        watcher.stop()


@pytest.fixture
def prop(tmp_path: Path) -> MockProposal:
    """An empty proposal of our own (no raw/ or proc/ yet)."""
    return make_proposal(tmp_path, runs=[])


def write_file(path: Path, size: int = 100) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "ab") as f:
        f.write(b"x" * size)


def make_old(path: Path, age_s: float = 3600) -> None:
    """Backdate a folder and its files, as if written long ago."""
    t = time.time() - age_s
    for p in [*path.iterdir(), path]:
        os.utime(p, (t, t))


inotify_or_polling = pytest.mark.parametrize(
    "use_inotify", [True, False], ids=["inotify", "polling"]
)


@inotify_or_polling
def test_new_run_appears_then_ready(
    prop: MockProposal, start_watcher: StartWatcher, use_inotify: bool
) -> None:
    rec, watcher = start_watcher(prop.path, use_inotify=use_inotify)
    # The run is written beside the proposal and moved in at once (raw/ did not exist
    # when the watcher started): written in place, a loaded machine can pause longer
    # than the quiet period between two files, and the run is then rightly quiet early.
    staged = add_raw_run(MockProposal(prop.root / "staging", prop.proposal), 5)
    for p in [*staged.iterdir(), staged]:
        os.utime(p)
    t_done = time.monotonic()
    prop.raw_dir(5).parent.mkdir(parents=True)
    staged.rename(prop.raw_dir(5))
    t_ready = rec.wait_for(RunReady(5, "raw", "quiet"))
    assert rec.seen() == [RunAppeared(5, "raw"), RunReady(5, "raw", "quiet")]
    assert t_ready - t_done >= QUIET * 0.9
    assert not watcher.is_pending(5, "raw")


def test_inotify_reports_faster_than_polling(
    prop: MockProposal, start_watcher: StartWatcher
) -> None:
    (prop.path / "raw").mkdir()
    # Polls are 30 s apart: events within seconds can only come from inotify.
    rec, _ = start_watcher(prop.path, poll_interval_s=30)
    t0 = time.monotonic()
    write_file(prop.raw_dir(6) / "RAW-R0006-DA01-S00000.h5")
    rec.wait_for(RunAppeared(6, "raw"))
    rec.wait_for(RunReady(6, "raw", "quiet"))
    assert time.monotonic() - t0 < 5


@pytest.mark.parametrize(
    ("use_inotify", "poll"),
    # Polls rarer than the quiet period: with inotify, its events must reveal the
    # writes; without, the second look just before declaring a run ready must.
    [(True, 30.0), (False, 0.7)],
    ids=["inotify", "polling"],
)
def test_run_being_written_is_not_ready_until_quiet(
    prop: MockProposal, start_watcher: StartWatcher, use_inotify: bool, poll: float
) -> None:
    quiet = 0.4
    rec, watcher = start_watcher(
        prop.path, ready_quiet_s=quiet, poll_interval_s=poll, use_inotify=use_inotify
    )
    data_file = prop.raw_dir(7) / "RAW-R0007-DA01-S00000.h5"
    prop.raw_dir(7).mkdir(parents=True)
    rec.wait_for(RunAppeared(7, "raw"))
    # Keep writing for four quiet periods (more than two polls), in steps much
    # shorter than one.
    end = time.monotonic() + 4 * quiet
    while time.monotonic() < end:
        write_file(data_file)
        last_write = time.monotonic()
        time.sleep(0.03)
    assert RunReady(7, "raw") not in rec.seen()
    assert watcher.is_pending(7, "raw")
    t_ready = rec.wait_for(RunReady(7, "raw", "quiet"))
    assert t_ready - last_write >= quiet


@pytest.mark.parametrize(
    ("use_inotify", "poll"), [(True, 30.0), (False, POLL)], ids=["inotify", "polling"]
)
def test_empty_run_folder_waits_for_files(
    prop: MockProposal, start_watcher: StartWatcher, use_inotify: bool, poll: float
) -> None:
    rec, watcher = start_watcher(prop.path, use_inotify=use_inotify, poll_interval_s=poll)
    prop.raw_dir(8).mkdir(parents=True)
    t_appeared = rec.wait_for(RunAppeared(8, "raw"))
    # Wait out two quiet periods (short: QUIET is 0.3 s) with the folder empty.
    time.sleep(2 * QUIET)
    assert watcher.is_pending(8, "raw")
    write_file(prop.raw_dir(8) / "RAW-R0008-DA01-S00000.h5")
    assert rec.wait_for(RunReady(8, "raw")) - t_appeared > 2 * QUIET
    assert rec.seen() == [RunAppeared(8, "raw"), RunReady(8, "raw")]


def test_notify_makes_ready_at_once_and_again(
    prop: MockProposal, start_watcher: StartWatcher
) -> None:
    # A quiet period far longer than the test: only notify can make it ready.
    rec, watcher = start_watcher(prop.path, ready_quiet_s=600)
    write_file(prop.raw_dir(9) / "RAW-R0009-DA01-S00000.h5")
    rec.wait_for(RunAppeared(9, "raw"))
    assert watcher.is_pending(9, "raw")
    t0 = time.monotonic()
    watcher.notify(9, "raw")
    assert rec.wait_for(RunReady(9, "raw", "notify")) - t0 < 1.0
    assert not watcher.is_pending(9, "raw")
    # Notified again: a reprocessing request, reported again.
    watcher.notify(9)
    rec.wait_for(RunReady(9, "raw", "notify"), count=2)
    assert rec.seen() == [
        RunAppeared(9, "raw"),
        RunReady(9, "raw", "notify"),
        RunReady(9, "raw", "notify"),
    ]


def test_notify_before_folder_shows(prop: MockProposal, start_watcher: StartWatcher) -> None:
    rec, watcher = start_watcher(prop.path)
    watcher.notify(10, "proc")
    rec.wait_for(RunReady(10, "proc", "notify"))
    # The folder shows up later: already reported, so no second round for it.
    write_file(prop.proc_dir(10) / "CORR-R0010-AGIPD00-S00000.h5")
    write_file(prop.raw_dir(11) / "RAW-R0011-DA01-S00000.h5")
    rec.wait_for(RunReady(11, "raw"))  # events are in order: anything for 10 came before
    assert [e for e in rec.seen() if e.run == 10] == [
        RunAppeared(10, "proc"),
        RunReady(10, "proc", "notify"),
    ]


@inotify_or_polling
def test_proc_after_raw_and_proc_folder_created_later(
    prop: MockProposal, start_watcher: StartWatcher, use_inotify: bool
) -> None:
    write_file(prop.raw_dir(1) / "RAW-R0001-DA01-S00000.h5")
    make_old(prop.raw_dir(1))
    assert not (prop.path / "proc").exists()
    rec, _ = start_watcher(prop.path, use_inotify=use_inotify)
    add_raw_run(prop, 2)
    rec.wait_for(RunReady(2, "raw"))
    add_proc_run(prop, 2)  # creates proc/ too
    rec.wait_for(RunReady(2, "proc"))
    add_proc_run(prop, 1)
    rec.wait_for(RunReady(1, "proc"))
    assert rec.seen() == [
        RunAppeared(2, "raw"),
        RunReady(2, "raw"),
        RunAppeared(2, "proc"),
        RunReady(2, "proc"),
        RunAppeared(1, "proc"),
        RunReady(1, "proc"),
    ]


def test_runs_on_disk_at_start(prop: MockProposal, start_watcher: StartWatcher) -> None:
    # r0001: written long ago -> settled, not reported (catch-up's job).
    write_file(prop.raw_dir(1) / "RAW-R0001-DA01-S00000.h5")
    make_old(prop.raw_dir(1))
    # r0002: folder recently changed -> still being written, tracked.
    write_file(prop.raw_dir(2) / "RAW-R0002-DA01-S00000.h5")
    # r0003: the newest run; its folder looks old but a file is still growing.
    write_file(prop.raw_dir(3) / "RAW-R0003-DA01-S00000.h5")
    make_old(prop.raw_dir(3))
    write_file(prop.raw_dir(3) / "RAW-R0003-DA01-S00000.h5")
    rec, watcher = start_watcher(prop.path)
    assert not watcher.is_pending(1, "raw")
    # (Tracked runs 2 and 3 are told by their events: on a loaded machine their quiet
    # period may be over before a check of is_pending right after the start.)
    rec.wait_for(RunReady(2, "raw"))
    rec.wait_for(RunReady(3, "raw"))
    assert sorted(rec.seen(), key=repr) == sorted(
        [RunAppeared(2, "raw"), RunReady(2, "raw"), RunAppeared(3, "raw"), RunReady(3, "raw")],
        key=repr,
    )
    # A settled run notified (e.g. reprocess): appeared then ready, like any other.
    watcher.notify(1)
    rec.wait_for(RunReady(1, "raw", "notify"))
    assert rec.seen()[-2:] == [RunAppeared(1, "raw"), RunReady(1, "raw", "notify")]


@inotify_or_polling
def test_deleted_run_is_forgotten(
    prop: MockProposal, start_watcher: StartWatcher, use_inotify: bool
) -> None:
    quiet = 0.6  # time for the test to delete the folder before it could be ready
    rec, watcher = start_watcher(prop.path, ready_quiet_s=quiet, use_inotify=use_inotify)
    write_file(prop.raw_dir(4) / "RAW-R0004-DA01-S00000.h5")
    rec.wait_for(RunAppeared(4, "raw"))
    shutil.rmtree(prop.raw_dir(4))
    write_file(prop.raw_dir(5) / "RAW-R0005-DA01-S00000.h5")
    rec.wait_for(RunReady(5, "raw"))
    assert RunReady(4, "raw") not in rec.seen()
    assert not watcher.is_pending(4, "raw")
    # Created again under the same number: a new run folder, reported afresh.
    write_file(prop.raw_dir(4) / "RAW-R0004-DA01-S00000.h5")
    rec.wait_for(RunAppeared(4, "raw"), count=2)
    rec.wait_for(RunReady(4, "raw"))


def test_non_run_entries_are_ignored(prop: MockProposal, start_watcher: StartWatcher) -> None:
    rec, _ = start_watcher(prop.path)
    raw = prop.path / "raw"
    for name in ("notes", "r12a", ".r0013", "R0014", "r0015.tmp"):
        write_file(raw / name / "file.h5")
    write_file(raw / "r0016")  # a file named like a run
    write_file(raw / "README")
    write_file(prop.path / "usr" / "Shared" / "amore" / "runs.sqlite")
    write_file(prop.raw_dir(17) / "RAW-R0017-DA01-S00000.h5")
    rec.wait_for(RunReady(17, "raw"))
    assert rec.seen() == [RunAppeared(17, "raw"), RunReady(17, "raw")]


def test_unreadable_folders_are_logged_and_skipped(
    prop: MockProposal,
    start_watcher: StartWatcher,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    from runtable.sources import watcher as watcher_module

    real = watcher_module._fingerprint

    def fingerprint(path):  # we run as root in CI, so simulate what chmod 000 does
        if Path(path).name == "r0020":
            raise PermissionError(13, "Permission denied", str(path))
        return real(path)

    monkeypatch.setattr(watcher_module, "_fingerprint", fingerprint)
    caplog.set_level(logging.WARNING, logger="runtable.sources")
    rec, watcher = start_watcher(prop.path)
    write_file(prop.raw_dir(20) / "RAW-R0020-DA01-S00000.h5")
    write_file(prop.raw_dir(21) / "RAW-R0021-DA01-S00000.h5")
    rec.wait_for(RunReady(21, "raw"))
    assert RunReady(20, "raw") not in rec.seen()
    assert RunAppeared(20, "raw") in rec.seen()
    assert watcher.is_pending(20, "raw")
    assert caplog.text.count("Cannot read") == 1  # said once, not every poll
    watcher.notify(20)  # the explicit signal still works
    rec.wait_for(RunReady(20, "raw", "notify"))


def test_handler_errors_do_not_stop_the_watcher(
    prop: MockProposal, caplog: pytest.LogCaptureFixture
) -> None:
    rec = Recorder()

    def on_event(event: RunEvent) -> None:
        rec(event)
        if event.run == 30:
            raise RuntimeError("handler bug")

    with RunWatcher(prop.path, on_event, ready_quiet_s=QUIET, poll_interval_s=POLL):
        write_file(prop.raw_dir(30) / "RAW-R0030-DA01-S00000.h5")
        rec.wait_for(RunReady(30, "raw"))
        write_file(prop.raw_dir(31) / "RAW-R0031-DA01-S00000.h5")
        rec.wait_for(RunReady(31, "raw"))
    assert "handler bug" in caplog.text


def test_lifecycle_and_argument_checks(prop: MockProposal) -> None:
    with pytest.raises(ValueError, match="ready_quiet_s"):
        RunWatcher(prop.path, print, ready_quiet_s=-1)
    with pytest.raises(ValueError, match="poll_interval_s"):
        RunWatcher(prop.path, print, poll_interval_s=0)
    watcher = RunWatcher(prop.path / "not-yet", print, use_inotify=True)
    with pytest.raises(RuntimeError, match="not running"):
        watcher.notify(1)
    with watcher:  # a proposal folder that does not exist yet is fine
        with pytest.raises(RuntimeError, match="already started"):
            watcher.start()
        with pytest.raises(ValueError, match="'raw' or 'proc'"):
            watcher.notify(1, "all")
        with pytest.raises(ValueError, match="non-negative integer"):
            watcher.notify(-1)
    watcher.stop()  # stopping twice is harmless
    with pytest.raises(RuntimeError, match="not running"):
        watcher.notify(1)
    assert not any(t.name.startswith("RunWatcher") for t in threading.enumerate())


def test_proposal_folder_created_after_start(tmp_path: Path, start_watcher: StartWatcher) -> None:
    prop = MockProposal(tmp_path / "root", 4321)
    rec, _ = start_watcher(prop.path)
    write_file(prop.raw_dir(1) / "RAW-R0001-DA01-S00000.h5")
    rec.wait_for(RunReady(1, "raw"))
