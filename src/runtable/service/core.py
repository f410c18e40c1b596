"""The :class:`Service`: watcher -> jobs -> one writer thread -> events.

Threads and who does what:

* the watcher's thread (:class:`~runtable.sources.RunWatcher`) and :meth:`Service.notify`
  only *queue tasks* for the writer;
* the job queue's thread (:class:`~runtable.jobs.JobQueue`) runs jobs, publishes their
  state changes and queues the merge of each finished job's fragment;
* the writer thread runs the tasks one at a time. It is the only code of the process
  that writes the database folder (runs, merges, the ``variables`` table) and the only
  one that submits jobs, so "is this run processed already?" and "queue it" never race;
* processing control (:meth:`Service.reprocess`, :meth:`~Service.cancel`,
  :meth:`~Service.jobs`, :meth:`~Service.delete_variable`, :meth:`~Service.add_runs`)
  is called from the web server's threads: reprocessing and cancelling go straight to
  the queue (which has its own lock); deleting a variable and creating rows are tasks
  of the writer thread that the caller waits for, so a deletion never races a merge;
* the monitor thread notices changes of the context file (a ``stat`` every
  ``context_poll_s``), loads it in a child process in the ``context_python`` interpreter
  (:func:`runtable.jobs.inspect_context`, shared with the queue's own check) and
  publishes ``context_status``; it also retries what could not be done yet, and flags
  a running job possibly stuck when neither its log nor its progress has moved for
  ``stuck_after_s`` (``job_stuck``).

Catch-up ("never processed"): a run's raw (or proc) data on disk counts as processed
when a job for that run and data (or ``all``) is in the queue's store (queued, running
or finished within the queue's retention), or when the database holds a value or an
error for at least one of the context file's raw (proc) variables for that run. Runs
the watcher did not find complete when it started (being written, or new since) are
left to the watcher. Catch-up waits for the
context file to load, since which variables exist decides what "processed" means.
"""

from __future__ import annotations

import contextlib
import logging
import os
import queue
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from concurrent.futures import Future
from dataclasses import replace
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any

from runtable.events import (
    ContextStatus,
    Event,
    EventBus,
    JobProgress,
    JobStateChanged,
    JobStuck,
    RunAdded,
    ValuesMerged,
    VariablesChanged,
)
from runtable.jobs import (
    ContextInfo,
    Executor,
    Job,
    JobEvent,
    JobQueue,
    JobState,
    Progress,
    inspect_context,
)
from runtable.selection import ALL, DATA_KINDS, Selection, check_data_kind
from runtable.service.catchup import runs_to_catch_up

if TYPE_CHECKING:
    from runtable.sources import RunEvent, RunWatcher
    from runtable.store import DatabaseFolder
    from runtable.store.merge import MergeResult

log = logging.getLogger("runtable.service")

#: While a merge has failed (disk full, ...), waiting fragments are retried this often.
MERGE_RETRY_S = 30.0
#: How often running jobs are checked for being possibly stuck (``stuck_after_s``), at
#: most.
STUCK_CHECK_S = 2.0
#: How often changed settings (``ready_quiet_s``) are looked for.
SETTINGS_TTL_S = 2.0
#: :meth:`Service.jobs` lists finished jobs of this last stretch of time ...
RECENT_JOBS_S = 24 * 3600.0
#: ... but no more than this many of them (a reprocess of everything makes thousands).
RECENT_JOBS_MAX = 200
#: How long a control call waits for the writer thread (it may be merging a big run).
WRITER_WAIT_S = 120.0
#: Most rows :meth:`Service.add_runs` creates in one call.
MAX_NEW_RUNS = 10_000
_ACTIVE = (JobState.QUEUED, JobState.RUNNING)


class ServiceError(Exception):
    """The service cannot start for the reason given (a message a person can act on)."""


class Service:
    """The service of one database folder (see :mod:`runtable.service`).

    ``settings`` override the folder's settings (``ready_quiet_s``, ``concurrent_jobs``,
    ``executor``, ...; mostly for tests and benchmarks); ``executors`` replace the job
    queue's default executors. ``poll_interval_s`` and ``use_inotify`` are the run
    watcher's; ``proposal_path`` names the proposal folder when it is neither where
    the database folder is nor findable from its proposal number.

    Call :meth:`start` with an :class:`~runtable.events.EventBus`, then
    :meth:`stop`; or use it as a context manager (with its own bus, :attr:`bus`).
    """

    def __init__(
        self,
        db_dir: str | os.PathLike[str],
        *,
        settings: Mapping[str, Any] | None = None,
        executors: Mapping[str, Executor] | None = None,
        poll_interval_s: float = 2.0,
        use_inotify: bool = True,
        context_poll_s: float = 0.5,
        proposal_path: str | os.PathLike[str] | None = None,
    ) -> None:
        self.db_dir = Path(db_dir).absolute()
        if not (self.db_dir / "runs.sqlite").is_file():
            raise ServiceError(f"{self.db_dir} is not a database folder (no runs.sqlite); "
                               "create one with `runtable init`")
        self._overrides = dict(settings or {})
        self._executors = executors
        self.poll_interval_s = float(poll_interval_s)
        self.use_inotify = use_inotify
        self.context_poll_s = float(context_poll_s)
        self._proposal_arg = Path(proposal_path).absolute() if proposal_path else None

        self.bus: EventBus | None = None
        #: Where the web server of this service listens (``runtable serve`` sets it),
        #: named to any second writer the folder's lock refuses.
        self.url: str | None = None
        self.proposal: int | None = None
        #: The proposal folder being watched (None until it is found).
        self.proposal_path: Path | None = None
        self.queue: JobQueue | None = None
        self.watcher: RunWatcher | None = None
        self._db: DatabaseFolder | None = None
        #: Seconds a run folder must stay unchanged (the ``ready_quiet_s`` setting).
        self.ready_quiet_s = 0.0

        self._tasks: queue.Queue[Callable[[], None] | None] = queue.Queue()
        self._writer: threading.Thread | None = None
        self._monitor: threading.Thread | None = None
        self._stopping = threading.Event()
        self._started = False
        self._stopped = False
        self._lock = threading.Lock()
        # Writer-thread state.
        self._runs: set[int] = set()
        self._merge_failed = False
        # Shared, guarded by _lock.
        self._inflight: set[int] = set()  # jobs seen active, until their merge is done
        #: Running jobs flagged as possibly stuck: job id -> their last sign of life.
        self._stuck: dict[int, float] = {}
        self._waiting: dict[tuple[int, str], int] = {}  # (run, data) -> a queued job's id
        self._ready_seen: set[tuple[int, str]] = set()  # RunReady reported by the watcher
        self._cleanup = contextlib.ExitStack()  # undone by stop()
        self._notifies = 0  # notify() calls the watcher has not reported back yet
        #: The latest result of loading the context file (None before the first).
        self.context: ContextInfo | None = None
        self._startup_done = threading.Event()
        self._catch_up_due = True
        # Deleted variables the context file still defines (writer thread): when values
        # of one come back with a merge, so does its column's title and description.
        self._redefine: set[str] = set()

    # -- the Service protocol --------------------------------------------------------------

    def start(self, bus: EventBus | None = None, *, defer_slow_upgrade: bool = False
              ) -> None:
        """Start watching, processing and publishing on ``bus`` (a new one if None).

        Returns at once; the first load of the context file and the catch-up happen in
        the background. Raises :class:`ServiceError` when the folder has no proposal.
        With *defer_slow_upgrade*, the slow steps of upgrading a folder (an index over
        every cell) wait for :meth:`finish_upgrade`.
        """
        if self._started:
            raise RuntimeError("the service was already started")
        self._started = True
        self.bus = bus if bus is not None else EventBus()
        from runtable.store import StoreError, become_writer, open_db

        try:
            db = open_db(self.db_dir, defer_slow_upgrade=defer_slow_upgrade)
        except StoreError as exc:
            self._stopped = True
            self._cleanup.close()
            raise ServiceError(str(exc)) from None
        try:
            self.proposal = db.proposal
            if self.proposal is None:
                raise ServiceError(f"{self.db_dir} has no proposal set; set it with "
                                   "`runtable config proposal NUMBER`")
            # Held until stop(): merges and the job queue are this process's alone.
            self._cleanup.enter_context(become_writer(self.db_dir, "runtable serve",
                                                      url=self.url))
        except (StoreError, ServiceError) as exc:
            db.close()
            self._stopped = True
            self._cleanup.close()
            raise ServiceError(str(exc)) from None
        self._db = db
        self._cleanup.callback(db.close)  # before the lock is released
        self._runs = {run for prop, run in self._db.runs() if prop == self.proposal}
        self.ready_quiet_s = float(self._setting("ready_quiet_s"))
        self.queue = JobQueue(self.db_dir, executors=self._executors,
                              settings=self._overrides, on_event=self._on_job_event)
        self.queue.subscribe_progress(self._on_job_progress)
        # Jobs queued before a restart run first; a signal for one of them adds nothing.
        self._waiting = {(j.run, j.data): j.id for j in self.queue.jobs([JobState.QUEUED])}
        self._writer = threading.Thread(target=self._write_loop, daemon=True,
                                        name="runtable-writer")
        self._writer.start()
        # Fragments a crash or a stop left behind go in before anything new.
        self._tasks.put(self._merge_pending)
        self._find_proposal(warn=True)
        self._monitor = threading.Thread(target=self._monitor_loop, daemon=True,
                                         name="runtable-monitor")
        self._monitor.start()
        self.queue.start()
        log.info("Service started for %s (proposal %s; %s)", self.db_dir, self.proposal,
                 f"watching {self.proposal_path}" if self.proposal_path
                 else "its folder is not found yet")

    def finish_upgrade(self) -> None:
        """Have the writer thread do what :meth:`start` deferred of the folder's upgrade
        (merges queued meanwhile wait for it); returns at once."""
        def task() -> None:
            started = time.monotonic()
            if self.db.finish_upgrade():
                log.info("Finished upgrading %s in %.1f s", self.db_dir,
                         time.monotonic() - started)

        self._tasks.put(task)

    def notify(self, run: int, data: str = "raw") -> None:
        """``data`` ("raw" or "proc") of ``run`` is complete: process it now.

        Raises ``ValueError`` for a bad run or data, ``RuntimeError`` when the service
        is not running.
        """
        check_data_kind(data)
        _check_run(run)
        if not self._started or self._stopping.is_set():
            raise RuntimeError("the service is not running")
        log.info("Notified that run %d (%s) is complete", run, data)
        watcher = self.watcher
        if watcher is not None:
            with self._lock:
                self._notifies += 1
            try:
                watcher.notify(run, data)
            except BaseException:
                with self._lock:
                    self._notifies -= 1
                raise
        else:
            # No proposal folder found (yet): trust the signal; the job says if the
            # data cannot be opened.
            self._tasks.put(partial(self._submit, run, data))

    def stop(self) -> None:
        """Stop watching, stop the queue (local jobs it interrupts run again at the
        next start), merge what is waiting and close the database. Idempotent."""
        if self._stopped:
            return
        self._stopped = True
        self._stopping.set()
        if self.watcher is not None:
            self.watcher.stop()
        if self._monitor is not None:
            self._monitor.join(30)
        if self.queue is not None:
            self.queue.close(requeue_running=True)
        if self._writer is not None:
            self._tasks.put(None)  # after every task already queued
            self._writer.join(120)
            if self._writer.is_alive():
                # Its connection stays open: closing it under a running query would
                # crash the process, and SQLite recovers an unfinished transaction.
                log.warning("the writer thread did not finish within 120 s")
                return
        self._cleanup.close()  # the database, then the writer lock
        log.info("Service stopped for %s", self.db_dir)

    def __enter__(self) -> Service:
        if not self._started:
            self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- processing control (the web GUI's reprocess, jobs, delete, new rows) -----------

    def reprocess(self, runs: Iterable[int], selection: Selection = ALL) -> list[Job]:
        """Queue processing of ``runs`` again; returns the jobs created (several per run
        when cluster variables go to Slurm).

        ``selection.variables`` empty means every variable of the context file *when
        the job runs* (so also variables added meanwhile).
        Raises ``ValueError`` for bad arguments, ``RuntimeError`` when not running.
        """
        run_list = [_check_run(run) for run in runs]
        names = tuple(dict.fromkeys(str(v) for v in selection.variables))
        selection = replace(selection, variables=names)
        self._check_running()
        assert self.queue is not None and self.proposal is not None
        jobs: list[Job] = []
        for run in dict.fromkeys(run_list):
            jobs.extend(self.queue.submit(self.proposal, run, selection))
        log.info("Reprocessing %d run(s) (%s data, %s): %d job(s) queued", len(run_list),
                 selection.data, ", ".join(names) if names else "all variables", len(jobs))
        return jobs

    def cancel(self, job_id: int) -> bool:
        """Cancel a queued or running job; False when it already ended or is unknown.
        A running job is reported ``cancelled`` (``job_state``) once it has stopped."""
        self._check_running()
        assert self.queue is not None
        return self.queue.cancel(int(job_id))

    def job(self, job_id: int) -> Job | None:
        """The job with this id (None when unknown or forgotten)."""
        self._check_running()
        assert self.queue is not None
        return self.queue.get(int(job_id))

    def job_progress(self, job_id: int) -> Progress | None:
        """The latest progress a running job reported (None: none, or it ended)."""
        self._check_running()
        assert self.queue is not None
        return self.queue.progress(int(job_id))

    def jobs(self) -> list[Job]:
        """Queued and running jobs, plus the latest finished ones (of the last
        :data:`RECENT_JOBS_S`, at most :data:`RECENT_JOBS_MAX`), in submission order."""
        self._check_running()
        assert self.queue is not None
        everything = self.queue.jobs()
        since = time.time() - RECENT_JOBS_S
        recent = [j for j in everything if j.state.final and (j.finished_at or 0) >= since]
        keep = {j.id for j in recent[-RECENT_JOBS_MAX:]}
        return [j for j in everything if not j.state.final or j.id in keep]

    def delete_variable(self, name: str) -> None:
        """Remove variable ``name`` from the database and every per-run HDF5 file and
        publish ``variables_changed``. Done by the writer thread, so it never races a
        merge. ``KeyError`` when the database has no such variable.

        A variable the context file still defines comes back with the next processing.
        """
        self._check_running()

        def task() -> None:
            db = self.db
            if name not in db.variables() and not db.has_values(name):
                raise KeyError(name)
            db.delete_variable(name)
            info = self.context
            if info is not None and name in info.definitions:
                self._redefine.add(name)
            log.info("Deleted variable %r from the database and the run files", name)
            self._publish(VariablesChanged((name,)))

        self._on_writer(task)

    def add_runs(self, runs: Iterable[int]) -> list[int]:
        """Make empty rows for ``runs`` (e.g. to write comments ahead); runs that exist
        are left alone. Returns the runs added, each also published as ``run_added``."""
        wanted = sorted({_check_run(run) for run in runs})
        if len(wanted) > MAX_NEW_RUNS:
            raise ValueError(f"{len(wanted)} runs is too many to add at once "
                             f"(at most {MAX_NEW_RUNS})")
        self._check_running()

        def task() -> list[int]:
            added = [run for run in wanted if run not in self._runs]
            for run in added:
                self._add_run(run)
            return added

        return self._on_writer(task)

    def merge_external(self, name: str, titles: dict[str, str]) -> list[str]:
        """Merge the fragment ``extracted_data/<name>`` that a script wrote
        (:mod:`runtable.external`), on the writer thread, so it never races a merge;
        names new to the ``variables`` table get a row titled from ``titles``.
        Returns the names stored; ``ValueError`` for a name that is not a fragment's."""
        from runtable.external import merge_external
        from runtable.store.fragments import FRAGMENT_RE

        if not FRAGMENT_RE.match(name) or "/" in name:
            raise ValueError(f"{name!r} is not the name of a fragment in extracted_data")
        self._check_running()

        def task() -> list[str]:
            path = self.db.extracted_dir / name
            if not path.is_file():
                raise ValueError(f"there is no fragment {name!r} in extracted_data")
            result, added = merge_external(self.db, path, titles)
            if added:
                self._publish(VariablesChanged(tuple(added)))
            self._merged(result)
            return result.names

        return self._on_writer(task)

    def _check_running(self) -> None:
        if not self._started or self._stopping.is_set() or self.queue is None:
            raise RuntimeError("the service is not running")

    def _on_writer(self, fn: Callable[[], Any]) -> Any:
        """Run ``fn`` on the writer thread; its result, or its exception re-raised."""
        future: Future[Any] = Future()

        def task() -> None:
            if not future.set_running_or_notify_cancel():
                return
            try:
                future.set_result(fn())
            except BaseException as exc:  # handed to the caller, not the writer's log
                future.set_exception(exc)

        self._tasks.put(task)
        try:
            return future.result(WRITER_WAIT_S)
        except TimeoutError:
            future.cancel()
            raise RuntimeError(f"the service's writer was busy for {WRITER_WAIT_S:g} s "
                               "(merging?); try again in a moment") from None

    # -- for tests, benchmarks and scripts ---------------------------------------------------

    def wait_idle(self, timeout: float = 60.0) -> None:
        """Block until nothing is left to do: the first context check and catch-up done,
        no job queued or running, every finished job merged. ``TimeoutError`` otherwise.

        Runs the watcher has not reported ready yet don't count.
        """
        deadline = time.monotonic() + timeout
        if not self._startup_done.wait(timeout):
            raise TimeoutError("the service did not finish starting")
        quiet_rounds = 0
        while quiet_rounds < 2:  # twice: a job may finish between the two checks
            if time.monotonic() > deadline:
                raise TimeoutError(f"the service was still busy after {timeout:g} s")
            assert self.queue is not None
            with self._lock:
                inflight = bool(self._inflight or self._notifies)
            busy = (inflight or self._tasks.unfinished_tasks
                    or (self.context is not None and self.context.problems is None
                        and self.queue.jobs(_ACTIVE)))
            quiet_rounds = 0 if busy else quiet_rounds + 1
            time.sleep(0.02)

    # -- events from the parts -------------------------------------------------------------

    def _publish(self, event: Event) -> None:
        if self.bus is not None:
            try:
                self.bus.publish(event)
            except Exception:  # a bad payload is a bug, but must not stop the service
                log.exception("could not publish %r", event)

    def _on_run_event(self, event: RunEvent) -> None:
        """From the watcher's thread."""
        from runtable.sources import RunReady

        if isinstance(event, RunReady):
            with self._lock:
                self._ready_seen.add((event.run, event.data))
                if event.reason == "notify":
                    self._notifies = max(0, self._notifies - 1)
            self._tasks.put(partial(self._submit, event.run, event.data))
        else:
            self._tasks.put(partial(self._add_run, event.run))

    def _on_job_progress(self, job: Job, progress: Progress) -> None:
        """From an executor's thread."""
        self._publish(JobProgress(
            job_id=str(job.id), proposal=job.proposal, run=job.run,
            variable=progress.variable, done=progress.done, total=progress.total,
            step=progress.step, steps=progress.steps, variable_s=progress.variable_s))

    def _on_job_event(self, event: JobEvent) -> None:
        """From the queue (its lock is held: be quick)."""
        job = event.job
        self._publish(JobStateChanged(job_id=str(job.id), proposal=job.proposal, run=job.run,
                                      state=job.state.value, message=job.message or ""))
        with self._lock:
            key = (job.run, job.data)
            if job.state is JobState.QUEUED:
                self._waiting[key] = job.id
            elif self._waiting.get(key) == job.id:
                del self._waiting[key]
            if not job.state.final:
                self._inflight.add(job.id)
                return
        self._tasks.put(partial(self._merge_job, job))

    # -- the writer thread -----------------------------------------------------------------

    def _write_loop(self) -> None:
        while True:
            task = self._tasks.get()
            try:
                if task is None:
                    return
                task()
            except Exception:  # one failed task must not end the service's writing
                log.exception("service task failed")
            finally:
                self._tasks.task_done()

    @property
    def db(self) -> DatabaseFolder:
        assert self._db is not None
        return self._db

    def _add_run(self, run: int) -> None:
        if run in self._runs:
            return
        assert self.proposal is not None
        self.db.ensure_run(self.proposal, run)
        self._runs.add(run)
        self._publish(RunAdded(self.proposal, run))

    def _submit(self, run: int, data: str) -> None:
        assert self.queue is not None and self.proposal is not None
        self._add_run(run)
        if self._stopping.is_set():
            log.info("Run %d (%s) not queued: the service is stopping; the next start "
                     "catches up on it", run, data)
            return
        info = self.context
        if info is not None and info.problems is None and not _names_for(info, data):
            log.info("Run %d: %s data is complete, but the context file has no %s "
                     "variables; nothing to do", run, data, data)
            return
        with self._lock:
            waiting = self._waiting.get((run, data))
        if waiting is not None:
            # A job that has not started yet will read the complete data anyway.
            log.info("Run %d (%s) is already queued (job %d)", run, data, waiting)
            return
        self.queue.submit(self.proposal, run, Selection(data))  # type: ignore[arg-type]

    def _merge_job(self, job: Job) -> None:
        try:
            if job.fragment:
                paths = [Path(job.fragment)]
            else:
                # A job that reported none (e.g. a Slurm task killed between writing
                # its fragment and saying so) may still have left one.
                paths = sorted(self.db.extracted_dir.glob(
                    f"p{job.proposal}_r{job.run}.*.ready.h5"))
            for path in paths:
                self._merge(path)
        finally:
            with self._lock:
                self._inflight.discard(job.id)

    def _merge(self, path: Path) -> None:
        try:
            result = self.db.merge_fragment(path)
        except FileNotFoundError:
            return  # merged already (by a catch-up or an earlier retry)
        except Exception:
            # The fragment stays in extracted_data; the monitor retries it later.
            log.exception("Could not merge %s; will try again", path)
            self._merge_failed = True
            return
        self._merged(result)

    def _merged(self, result: MergeResult) -> None:
        if result.proposal == self.proposal and result.run not in self._runs:
            self._runs.add(result.run)  # merging made the row
            self._publish(RunAdded(result.proposal, result.run))
        if not result.already_merged and result.names:
            back = self._redefine.intersection(result.names)
            info = self.context
            if back and info is not None:
                self._redefine -= back
                self._update_variables({n: info.definitions[n] for n in back
                                        if n in info.definitions})
            self._publish(ValuesMerged(result.proposal, result.run, tuple(result.names)))

    def _merge_pending(self) -> None:
        self._merge_failed = False
        from runtable.jobs.limits import Limits
        from runtable.store.merge import pending_fragments

        assert self.queue is not None
        before = len(pending_fragments(self.db))
        results = self.db.merge_pending(Limits.from_settings(self.queue.settings()).longest_s)
        for result in results:
            self._merged(result)
        if len(results) < before:
            self._merge_failed = True  # merge_pending logged which and why

    def _update_variables(self, definitions: dict[str, dict[str, Any]]) -> None:
        changed = self.db.update_computed_variables(definitions)
        if changed:
            self._publish(VariablesChanged(tuple(sorted(changed))))

    def _catch_up(self) -> None:
        """Queue what arrived while no service watched (see the module docstring)."""
        from runtable.sources import RunOnDisk, scan_runs

        assert self.queue is not None and self.proposal is not None
        if self._stopping.is_set():
            return
        info, prop_dir = self.context, self.proposal_path
        if info is None or info.problems is not None or prop_dir is None:
            self._catch_up_due = True  # the monitor asks again once it can
            return
        if self.watcher is not None:
            # Only what was there when the watcher started: it reports everything else.
            settled = self.watcher.settled_at_start()
            on_disk = [RunOnDisk(run, (run, "raw") in settled, (run, "proc") in settled)
                       for run in sorted({run for run, _ in settled})]
        else:
            on_disk = scan_runs(prop_dir)
        for found in on_disk:
            self._add_run(found.run)
        names = {data: _names_for(info, data, stored_only=True) for data in DATA_KINDS}
        stored = {data: self.db.runs_with_values(self.proposal, names[data])
                  for data in names if names[data]}
        with self._lock:
            notified = set(self._ready_seen)  # notified since: that signal's task queues it
        jobs = [(job.run, job.data) for job in self.queue.jobs()]
        queued = []
        for run, data in runs_to_catch_up(on_disk, jobs, names, stored, notified):
            self.queue.submit(self.proposal, run, Selection(data))  # type: ignore[arg-type]
            queued.append(f"{run} ({data})")
        if queued:
            log.info("Catching up: queued %d run(s) never processed: %s", len(queued),
                     ", ".join(queued[:20]) + (" ..." if len(queued) > 20 else ""))

    # -- the monitor thread ----------------------------------------------------------------

    def _monitor_loop(self) -> None:
        last_key: tuple | None = None
        last_status: tuple[bool, str | None] | None = None
        last_definitions: list | None = None
        next_find = next_merge_retry = next_stuck_check = 0.0
        next_settings = time.monotonic() + SETTINGS_TTL_S
        while True:
            now = time.monotonic()
            try:
                if self.proposal_path is None and now >= next_find:
                    next_find = now + self.poll_interval_s
                    self._find_proposal(warn=False)
                assert self.queue is not None
                python = self.queue.settings().get("context_python")
                key = (_stat_key(self.queue.db_dir / "context.py"), python)
                if key != last_key:
                    last_key = key
                    info = inspect_context(self.queue.db_dir, python)
                    self.context = info
                    status = (info.problems is None, info.problems)
                    if status != last_status:
                        last_status = status
                        problems = tuple((info.problems or "").splitlines())
                        if info.problems:
                            log.warning("The context file does not load; new jobs wait "
                                        "until it is fixed:\n%s", info.problems)
                        self._publish(ContextStatus(ok=info.problems is None,
                                                    problems=problems))
                    # As a list: a new order of the same variables is a change too.
                    if info.problems is None and (
                            list(info.definitions.items()) != last_definitions):
                        last_definitions = list(info.definitions.items())
                        self._tasks.put(partial(self._update_variables, info.definitions))
                if (self._catch_up_due and self.proposal_path is not None
                        and self.context is not None and self.context.problems is None):
                    self._catch_up_due = False
                    self._tasks.put(self._catch_up)
                if now >= next_settings:
                    next_settings = now + SETTINGS_TTL_S
                    self._reread_settings()
                if now >= next_stuck_check:
                    next_stuck_check = now + self._check_stuck()
                if self._merge_failed and now >= next_merge_retry:
                    next_merge_retry = now + MERGE_RETRY_S
                    self._tasks.put(self._merge_pending)
            except Exception:  # the monitor must outlive any single failure
                log.exception("service monitor round failed")
            self._startup_done.set()
            if self._stopping.wait(self.context_poll_s):
                return

    def _check_stuck(self) -> float:
        """Flag running jobs that printed nothing to their run's log and reported no
        progress for ``stuck_after_s`` (publishes ``job_stuck``); unflag them when they
        do again. Returns the seconds until the next check."""
        assert self.queue is not None
        limit = float(self.queue.settings().get("stuck_after_s") or 0)
        running = {job.id: job for job in self.queue.jobs([JobState.RUNNING])}
        for job_id in [j for j in self._stuck if j not in running]:
            del self._stuck[job_id]
        if limit <= 0:
            return STUCK_CHECK_S
        now = time.time()
        for job in running.values():
            last = self.last_activity(job)
            stuck = now - last >= limit
            if stuck != (job.id in self._stuck):
                if stuck:
                    self._stuck[job.id] = last
                    log.warning("Job %d (run %d) printed nothing and made no progress for "
                                "%.0f s: possibly stuck", job.id, job.run, now - last)
                else:
                    del self._stuck[job.id]
                self._publish(JobStuck(job_id=str(job.id), proposal=job.proposal,
                                       run=job.run, stuck=stuck, last_activity=last))
        # Several checks within the limit, so that a job active again is seen as such.
        return min(STUCK_CHECK_S, limit / 4)

    def last_activity(self, job: Job) -> float:
        """When ``job`` last showed a sign of life (epoch seconds): it started, wrote
        to its run's log, or reported progress."""
        from runtable.execute.runner import log_path_for

        assert self.queue is not None
        times = [job.started_at or job.submitted_at]
        progress = self.queue.progress(job.id)
        if progress is not None:
            times.append(progress.at)
        with contextlib.suppress(OSError):
            times.append(os.stat(log_path_for(self.db_dir, job.proposal, job.run)).st_mtime)
        return max(times)

    def job_stuck(self, job_id: int) -> float | None:
        """For a running job flagged as possibly stuck: its last sign of life (epoch
        seconds); None otherwise."""
        return self._stuck.get(int(job_id))

    def _reread_settings(self) -> None:
        """Apply a changed ``ready_quiet_s`` to the watcher (the queue reads its own)."""
        if "ready_quiet_s" in self._overrides:
            return
        from runtable.store import open_db

        with open_db(self.db_dir, readonly=True) as db:
            quiet = float(db.get_setting("ready_quiet_s"))
        if quiet != self.ready_quiet_s:
            log.info("ready_quiet_s is now %g s", quiet)
            self.ready_quiet_s = quiet
            if self.watcher is not None:
                self.watcher.ready_quiet_s = quiet

    def _find_proposal(self, warn: bool) -> None:
        """Locate the proposal folder and start the watcher on it."""
        from runtable.sources import (
            ProposalNotFoundError,
            RunWatcher,
            find_proposal,
            proposal_dir,
        )

        assert self.proposal is not None
        if self._proposal_arg is not None:
            path: Path | None = self._proposal_arg if self._proposal_arg.is_dir() else None
            problem = f"{self._proposal_arg} does not exist"
        else:
            try:
                path = proposal_dir(self.db_dir, self.proposal)
                problem = ""
            except ProposalNotFoundError as exc:
                path, problem = None, str(exc)
        if path is None:
            if warn:
                log.warning("%s -- runs are processed once it is found (checked every "
                            "%g s) or when notified", problem, self.poll_interval_s)
            return
        # Jobs open runs by proposal number: make sure they find this folder.
        try:
            same = find_proposal(self.proposal).resolve() == path.resolve()
        except ProposalNotFoundError:
            same = False
        if not same:
            os.environ["EXTRA_DATA_DATA_ROOT"] = str(path.parents[2])
        with self._lock:
            if self._stopping.is_set() or self.watcher is not None:
                return
            watcher = RunWatcher(path, self._on_run_event,
                                 ready_quiet_s=self.ready_quiet_s,
                                 poll_interval_s=self.poll_interval_s,
                                 use_inotify=self.use_inotify)
            watcher.start()
            self.watcher = watcher
            self.proposal_path = path

    def _setting(self, key: str) -> Any:
        from runtable.store.settings import value_or_default

        if key in self._overrides:
            return self._overrides[key]
        return self.db.get_setting(key) if self._db is not None else value_or_default(key, None)


def _check_run(run: object) -> int:
    if isinstance(run, bool) or not isinstance(run, int) or not 0 <= run < 2**63:
        raise ValueError(f"run must be a non-negative integer below 2**63, not {run!r}")
    return run


def _names_for(info: ContextInfo, data: str, stored_only: bool = False) -> list[str]:
    """The context's variables that ``data`` triggers (only those stored in the
    database with ``stored_only``: transient ones leave no row)."""
    return [name for name, v in info.variables.items()
            if v.data == data and not (stored_only and v.transient)]


def _stat_key(path: Path) -> tuple | None:
    with contextlib.suppress(OSError):
        st = path.stat()
        return (st.st_mtime_ns, st.st_size, st.st_ino)
    return None
