"""Noticing new runs in a proposal's ``raw/`` and ``proc/`` folders as they arrive.

:class:`RunWatcher` reports two kinds of event per run and data kind (``'raw'`` or
``'proc'``, tracked independently):

* :class:`RunAppeared` as soon as a new ``r<NNNN>`` folder is seen;
* :class:`RunReady` once the run is complete: it holds at least one file and its
  files have not changed (count, sizes, mtimes) for ``ready_quiet_s`` seconds
  (``reason='quiet'``), or :meth:`RunWatcher.notify` said so (``reason='notify'``).

How it notices: a worker thread lists ``raw/`` and ``proc/`` every
``poll_interval_s`` (one ``scandir`` each, no per-run system calls, so thousands of
run folders cost little) and looks into the few folders still being written. That
alone is enough on network file systems where inotify sees nothing. With
``use_inotify=True`` it also subscribes, through ``watchdog``, to changes of the
proposal folder, ``raw/``, ``proc/`` and each run folder still being written, which
cuts the delay before "appeared" to milliseconds and catches writes between polls.
"""

from __future__ import annotations

import contextlib
import logging
import os
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from ..selection import DATA_KINDS, DataKind, check_data_kind
from .layout import list_run_dirs, run_number

log = logging.getLogger(__name__)

ReadyReason = Literal["quiet", "notify"]


@dataclass(frozen=True)
class RunAppeared:
    """A run folder for ``data`` was seen for the first time (its files may be incomplete)."""

    run: int
    data: DataKind


@dataclass(frozen=True)
class RunReady:
    """The run's ``data`` folder is complete and can be processed.

    ``reason`` is ``'quiet'`` when its files stopped changing, ``'notify'`` when
    :meth:`RunWatcher.notify` was called.
    """

    run: int
    data: DataKind
    reason: ReadyReason = "quiet"


RunEvent = RunAppeared | RunReady

# watchdog event types that mean a file or folder changed. Opening and reading
# (our own jobs read the runs) must not count, or a run being read never goes quiet.
_CHANGE_EVENTS = frozenset({"created", "deleted", "modified", "moved", "closed", "attrib"})
_ENTRY_EVENTS = frozenset({"created", "deleted", "moved"})

Fingerprint = tuple[int, int, int, int]

# Each watchdog watch holds an inotify instance (128 per user by default), so only
# this many run folders are watched at once; polling covers the rest.
_MAX_RUN_WATCHES = 32


def _fingerprint(run_dir: str | Path) -> Fingerprint:
    """(file count, total size, newest file mtime, folder mtime) of a run folder.

    Run folders are flat, so files in sub-folders are not looked into. The folder's
    own mtime catches renames, which leave count and sizes alike.
    """
    count = size = newest = 0
    with os.scandir(run_dir) as entries:
        for entry in entries:
            try:
                if not entry.is_file():
                    continue
                st = entry.stat()
            except OSError:
                continue  # removed while we looked, or a dangling link
            count += 1
            size += st.st_size
            newest = max(newest, st.st_mtime_ns)
    return count, size, newest, os.stat(run_dir).st_mtime_ns


@dataclass(slots=True)
class _Track:
    """What the worker knows about one (run, data)."""

    path: Path
    ready: bool
    announced: bool  # RunAppeared was reported
    on_disk: bool = True  # seen on disk (a notify may come before the folder shows)
    fingerprint: Fingerprint | None = None
    changed_at: float = 0.0  # time.monotonic() of the last change seen
    watch: Any = None  # watchdog ObservedWatch while pending


class RunWatcher:
    """Watch one proposal folder and call ``on_event`` for each run event.

    ``on_event`` is called from the watcher's own thread, one event at a time, in
    order: a :class:`RunAppeared` always comes before the first :class:`RunReady`
    for the same (run, data). An exception raised by ``on_event`` is logged and the
    watcher carries on. It should return quickly (queue the work, don't do it).

    Each (run, data) is reported ready once. A later :meth:`notify` for a run already
    ready reports it again: a facility hook saying "this run's data is complete (again)"
    is a legitimate reprocessing request. A run folder that is deleted is forgotten, so
    one created again under the same number is reported afresh.

    Runs already on disk when :meth:`start` is called are not reported, since a
    catch-up with :func:`~runtable.sources.scan_runs` handles them; except those still
    being written, which are tracked and reported like new runs. :meth:`is_pending`
    tells a catch-up which those are.

    ``ready_quiet_s`` may be changed while it runs (a setting edited by a person);
    the new value applies from the worker's next round.

    Works as a context manager::

        with RunWatcher(path, queue.put, ready_quiet_s=30):
            ...
    """

    def __init__(
        self,
        proposal_path: str | Path,
        on_event: Callable[[RunEvent], object],
        *,
        ready_quiet_s: float = 30.0,
        poll_interval_s: float = 2.0,
        use_inotify: bool = True,
    ) -> None:
        if not ready_quiet_s >= 0:
            raise ValueError(f"ready_quiet_s must be >= 0, not {ready_quiet_s!r}")
        if not poll_interval_s > 0:
            raise ValueError(f"poll_interval_s must be > 0, not {poll_interval_s!r}")
        # Absolute, so that paths from watchdog compare with it.
        self.proposal_path = Path(proposal_path).absolute()
        self.ready_quiet_s = float(ready_quiet_s)
        self.poll_interval_s = float(poll_interval_s)
        self.use_inotify = use_inotify
        self._on_event = on_event

        # Only the worker thread (and start(), before the worker exists) touches these.
        self._tracks: dict[tuple[int, DataKind], _Track] = {}
        # The keys of tracks not ready yet: the few folders looked into every round.
        self._pending: set[tuple[int, DataKind]] = set()
        self._run_watches = 0
        self._dir_watches: dict[Path, Any] = {}
        self._warned: set[str] = set()
        self._observer: Any = None
        self._hint_handler: Any = None
        self._initial_events: list[RunEvent] = []
        self._settled: frozenset[tuple[int, DataKind]] = frozenset()

        # Filled from other threads (notify(), watchdog's), drained by the worker.
        self._inbox_lock = threading.Lock()
        self._notifies: list[tuple[int, DataKind]] = []
        self._touched: set[tuple[int, DataKind]] = set()
        self._rescan = False
        # Pending runs without a quiet deadline (empty or unreadable folders): a
        # change in one must wake the worker. Rebound (never mutated) by the worker.
        self._wake_on_touch: frozenset[tuple[int, DataKind]] = frozenset()
        self._wake = threading.Event()
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None

    # -- public API ------------------------------------------------------------

    def start(self) -> None:
        """Take stock of the runs on disk and start watching (returns at once)."""
        if self._thread is not None:
            raise RuntimeError("RunWatcher already started")
        if self.use_inotify:
            self._start_observer()
        # Watches first, stock-taking second: a run created in between is then
        # either in the stock (and judged by its mtimes) or seen as new.
        self._update_dir_watches()
        self._take_stock()
        self._thread = threading.Thread(
            target=self._run, name=f"RunWatcher({self.proposal_path.name})", daemon=True
        )
        self._thread.start()

    def stop(self, timeout: float | None = 10.0) -> None:
        """Stop watching; pending runs are dropped. Safe to call more than once."""
        self._stopping.set()
        self._wake.set()
        thread = self._thread
        if thread is not None and thread is not threading.current_thread():
            thread.join(timeout)
            if thread.is_alive():
                log.warning("RunWatcher thread did not stop within %s s", timeout)
        if self._observer is not None:
            observer, self._observer = self._observer, None
            observer.stop()
            if observer is not threading.current_thread():
                observer.join(timeout)

    def notify(self, run: int, data: str = "raw") -> None:
        """Mark ``run``'s ``data`` as complete now: reports ``RunReady(reason='notify')``.

        Called by the service when a facility's "migration complete" message or an
        HTTP request says so. Does not check the folder exists: such messages can
        come before a network file system shows it. The event is reported from the
        watcher's thread, typically within milliseconds.
        """
        data = check_data_kind(data)
        if isinstance(run, bool) or not isinstance(run, int) or run < 0:
            raise ValueError(f"run must be a non-negative integer, not {run!r}")
        if self._thread is None or self._stopping.is_set():
            raise RuntimeError("RunWatcher is not running")
        with self._inbox_lock:
            self._notifies.append((run, data))
        self._wake.set()

    def is_pending(self, run: int, data: str = "raw") -> bool:
        """Whether (run, data) was seen but is not ready yet, so a RunReady will follow.

        A catch-up started after :meth:`start` can skip such runs.
        """
        # A single dict lookup and attribute read: atomic, no lock needed.
        track = self._tracks.get((run, check_data_kind(data)))
        return track is not None and not track.ready

    def settled_at_start(self) -> frozenset[tuple[int, DataKind]]:
        """The (run, data) already on disk and complete when :meth:`start` took stock.

        The watcher never reports these; a catch-up decides which of them still need
        processing. Every other run folder is reported by the watcher itself.
        """
        return self._settled

    def __enter__(self) -> RunWatcher:
        self.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    # -- the worker ------------------------------------------------------------

    def _run(self) -> None:
        next_scan = 0.0
        events = self._initial_events
        self._initial_events = []
        self._emit(events)
        while not self._stopping.is_set():
            # Clear before draining: a hint arriving after this wakes the next wait.
            self._wake.clear()
            now = time.monotonic()
            with self._inbox_lock:
                notifies, self._notifies = self._notifies, []
                touched, self._touched = self._touched, set()
                rescan, self._rescan = self._rescan, False
            events = []
            failed = False
            try:
                for key in touched & self._pending:
                    # Look now, so a first file in an empty folder starts its
                    # quiet deadline; the event itself counts as a change.
                    if self._refresh(key, self._tracks[key], now):
                        self._tracks[key].changed_at = now
                if rescan or now >= next_scan:
                    self._scan(now, events)
                    next_scan = now + self.poll_interval_s
                # Notifies before the quiet check, so a run both notified and quiet
                # in the same round is reported once.
                for run, data in notifies:
                    self._notified(run, data, events)
                self._check_quiet(time.monotonic(), events)
            except Exception:
                # A bug or an odd file system must not silently end the watching.
                log.exception("RunWatcher round failed; carrying on")
                failed = True
                next_scan = max(next_scan, now + self.poll_interval_s)
            self._emit(events)
            deadlines = [next_scan]
            no_deadline = set()
            for key in self._pending:
                t = self._tracks[key]
                if t.fingerprint is not None and t.fingerprint[0]:
                    deadlines.append(t.changed_at + self.ready_quiet_s)
                else:
                    no_deadline.add(key)
            self._wake_on_touch = frozenset(no_deadline)
            if failed:  # wait for the next poll rather than spin on the failure
                deadlines = [next_scan]
            self._wake.wait(max(0.0, min(deadlines) - time.monotonic()))
        self._unschedule_all()

    def _emit(self, events: list[RunEvent]) -> None:
        for event in events:
            if self._stopping.is_set():
                return
            log.debug("Run event: %s", event)
            try:
                self._on_event(event)
            except Exception:
                log.exception("Run event handler failed for %s", event)

    def _take_stock(self) -> None:
        """Record the runs on disk at start: settled ones silently, others as pending."""
        now, wall = time.monotonic(), time.time()
        for data in DATA_KINDS:
            entries = self._list(data)
            if not entries:
                continue
            newest_run = max(entries)
            for run, entry in entries.items():
                track = _Track(Path(entry.path), ready=True, announced=False)
                self._tracks[(run, data)] = track
                try:
                    recent = wall - entry.stat().st_mtime < self.ready_quiet_s
                except OSError:
                    continue
                # Only the newest run and recently changed folders can still be
                # written to; looking into every folder would be slow on big proposals.
                if not (recent or run == newest_run):
                    continue
                fingerprint = self._fingerprint(track.path)
                if fingerprint is None:
                    continue
                newest_s = max(fingerprint[2], fingerprint[3]) / 1e9
                if wall - newest_s < self.ready_quiet_s:
                    # Still being written: follow it like a new run.
                    track.ready = False
                    track.announced = True
                    track.fingerprint = fingerprint
                    track.changed_at = now
                    self._pending.add((run, data))
                    self._watch_run(track)
                    self._initial_events.append(RunAppeared(run, data))
        self._settled = frozenset(key for key, t in self._tracks.items() if t.ready)

    def _scan(self, now: float, events: list[RunEvent]) -> None:
        """List raw/ and proc/: new runs appear, deleted ones are forgotten."""
        self._update_dir_watches()
        for data in DATA_KINDS:
            entries = self._list(data)
            if entries is None:
                continue  # missing or unreadable: leave what we know alone
            known = {run for (run, d), t in self._tracks.items() if d == data and t.on_disk}
            for run in sorted(entries.keys() - known):
                self._appeared(run, data, Path(entries[run].path), now, events)
            gone = known - entries.keys()
            # An empty listing where runs were is more likely a file-system hiccup
            # than every run deleted; forgetting them all would re-report them all.
            if gone and (entries or len(gone) == 1):
                for run in gone:
                    log.info("Run folder %s/r%04d disappeared", data, run)
                    self._forget((run, data))
        for key in list(self._pending):
            self._refresh(key, self._tracks[key], now)

    def _list(self, data: DataKind) -> dict[int, os.DirEntry[str]] | None:
        data_dir = self.proposal_path / data
        try:
            entries = list_run_dirs(data_dir)
        except FileNotFoundError:
            return None  # not there yet (proc/ often comes later)
        except OSError as exc:
            self._warn_once(str(data_dir), f"Cannot list {data_dir}: {exc}")
            return None
        self._warned.discard(str(data_dir))
        return entries

    def _appeared(
        self, run: int, data: DataKind, path: Path, now: float, events: list[RunEvent]
    ) -> None:
        key = (run, data)
        track = self._tracks.get(key)
        if track is not None:
            # Notified before the folder showed: it is already ready.
            track.on_disk = True
            track.path = path
            return
        track = _Track(path, ready=False, announced=True, changed_at=now)
        self._tracks[key] = track
        self._pending.add(key)
        events.append(RunAppeared(run, data))
        self._watch_run(track)
        self._refresh(key, track, now)

    def _refresh(self, key: tuple[int, DataKind], track: _Track, now: float) -> bool:
        """Look into a pending run folder; returns False if it is gone."""
        try:
            fingerprint = _fingerprint(track.path)
        except FileNotFoundError:
            if track.on_disk:
                log.info("Run folder %s disappeared before it was complete", track.path)
                self._forget(key)
            return False
        except OSError as exc:
            # Unreadable: it cannot be judged complete; only notify() can say so.
            self._warn_once(str(track.path), f"Cannot read {track.path}: {exc}")
            track.fingerprint = None
            return True
        self._warned.discard(str(track.path))
        if fingerprint != track.fingerprint:
            track.fingerprint = fingerprint
            track.changed_at = now
        return True

    def _fingerprint(self, path: Path) -> Fingerprint | None:
        try:
            return _fingerprint(path)
        except OSError as exc:
            if not isinstance(exc, FileNotFoundError):
                self._warn_once(str(path), f"Cannot read {path}: {exc}")
            return None

    def _check_quiet(self, now: float, events: list[RunEvent]) -> None:
        for key in list(self._pending):
            track = self._tracks[key]
            if track.fingerprint is None:
                continue
            if now - track.changed_at < self.ready_quiet_s:
                continue
            # Look again: with polling alone, the last look may be a poll ago.
            if not self._refresh(key, track, now) or track.changed_at == now:
                continue
            if track.fingerprint is None or track.fingerprint[0] == 0:
                continue  # an empty folder is not a complete run
            self._set_ready(key, track, "quiet", events)

    def _notified(self, run: int, data: DataKind, events: list[RunEvent]) -> None:
        key = (run, data)
        track = self._tracks.get(key)
        if track is None:
            path = self.proposal_path / data / f"r{run:04d}"
            track = _Track(path, ready=False, announced=False, on_disk=False)
            self._tracks[key] = track
        self._set_ready(key, track, "notify", events)

    def _set_ready(
        self,
        key: tuple[int, DataKind],
        track: _Track,
        reason: ReadyReason,
        events: list[RunEvent],
    ) -> None:
        run, data = key
        if not track.announced:
            events.append(RunAppeared(run, data))
            track.announced = True
        track.ready = True
        self._pending.discard(key)
        self._unwatch_run(track)
        events.append(RunReady(run, data, reason))

    def _forget(self, key: tuple[int, DataKind]) -> None:
        track = self._tracks.pop(key, None)
        self._pending.discard(key)
        if track is not None:
            self._unwatch_run(track)

    def _warn_once(self, key: str, message: str) -> None:
        # Polling repeats every few seconds; say it once until it recovers.
        if key not in self._warned:
            self._warned.add(key)
            log.warning("%s", message)

    # -- inotify (watchdog) ----------------------------------------------------

    def _start_observer(self) -> None:
        try:
            from watchdog.events import FileSystemEvent, FileSystemEventHandler
            from watchdog.observers import Observer
        except ImportError as exc:  # pragma: no cover - watchdog is a dependency
            log.warning("watchdog unavailable (%s); polling only", exc)
            return

        watcher = self

        class _Hints(FileSystemEventHandler):
            def on_any_event(self, event: FileSystemEvent) -> None:
                if event.event_type in _CHANGE_EVENTS:
                    watcher._hint(os.fsdecode(event.src_path), event.event_type)
                    if event.dest_path:
                        watcher._hint(os.fsdecode(event.dest_path), event.event_type)

        _quiet_watchdog_race()
        observer = Observer()
        observer.daemon = True
        try:
            observer.start()
        except Exception as exc:
            log.warning("Cannot start file-system notifications (%s); polling only", exc)
            return
        self._observer = observer
        self._hint_handler = _Hints()

    def _hint(self, path: str, event_type: str) -> None:
        """Called from watchdog's thread: remember what changed and wake the worker."""
        try:
            parts = Path(path).relative_to(self.proposal_path).parts
        except ValueError:
            return
        if not parts or parts[0] not in DATA_KINDS:
            rescan = True  # the proposal folder: raw/ or proc/ may have been created
            key = None
        else:
            data: DataKind = parts[0]
            run = run_number(parts[1]) if len(parts) > 1 else None
            key = None if run is None else (run, data)
            # A change of raw/ itself, or a run folder added or removed: list again.
            rescan = len(parts) == 1 or (len(parts) == 2 and event_type in _ENTRY_EVENTS)
        with self._inbox_lock:
            if key is not None:
                self._touched.add(key)
            self._rescan = self._rescan or rescan
        # A write inside a run folder only pushes its quiet deadline back; the worker
        # applies that when it wakes for the deadline, so a folder being written at
        # full speed does not wake it for every write.
        if rescan or key in self._wake_on_touch:
            self._wake.set()

    def _schedule(self, path: Path) -> Any:
        if self._observer is None:
            return None
        try:
            return self._observer.schedule(self._hint_handler, str(path), recursive=False)
        except Exception as exc:
            # e.g. the inotify watch limit: polling still covers it.
            if not isinstance(exc, FileNotFoundError):
                self._warn_once("watch", f"Cannot watch {path} ({exc}); polling instead")
            return None

    def _unschedule(self, watch: Any) -> None:
        if watch is None or self._observer is None:
            return
        # It may already be gone with its deleted folder.
        with contextlib.suppress(Exception):
            self._observer.unschedule(watch)

    def _update_dir_watches(self) -> None:
        if self._observer is None:
            return
        for path in (self.proposal_path, *(self.proposal_path / d for d in DATA_KINDS)):
            watch = self._dir_watches.get(path)
            exists = path.is_dir()
            if watch is None and exists:
                watch = self._schedule(path)
                if watch is not None:
                    self._dir_watches[path] = watch
            elif watch is not None and not exists:
                # Deleted: drop the dead watch so a new folder gets a new one.
                self._unschedule(self._dir_watches.pop(path))

    def _watch_run(self, track: _Track) -> None:
        if track.watch is None and self._run_watches < _MAX_RUN_WATCHES:
            track.watch = self._schedule(track.path)
            self._run_watches += track.watch is not None

    def _unwatch_run(self, track: _Track) -> None:
        watch, track.watch = track.watch, None
        if watch is not None:
            self._run_watches -= 1
            self._unschedule(watch)

    def _unschedule_all(self) -> None:
        for track in self._tracks.values():
            self._unwatch_run(track)
        for watch in self._dir_watches.values():
            self._unschedule(watch)
        self._dir_watches.clear()


def _drop_inactive_emitter(record: logging.LogRecord) -> bool:
    return "called when the thread is inactive" not in record.getMessage()


def _quiet_watchdog_race() -> None:
    """Silence watchdog's ERROR about an event that reached a watch being removed.

    We remove a run folder's watch once the run is ready, often while files in it are
    still being touched; watchdog then drops the event (harmless: polling covers it)
    but logs an error that would alarm whoever watches the service's terminal.
    """
    wd_log = logging.getLogger("watchdog.observers.inotify")
    if _drop_inactive_emitter not in wd_log.filters:
        wd_log.addFilter(_drop_inactive_emitter)
