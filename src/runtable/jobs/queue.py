"""The job queue: persisted jobs, dispatched to executors, state changes as events.

Restart policy: queued jobs stay queued. Slurm jobs that were running, or waiting in
a submitted Slurm batch, are re-attached and followed to their end. Local jobs that
were running are marked failed ("service restarted while running") and their
variables get that error: the warm parent and its children die with the service, and
re-queuing them automatically could loop forever on a job that takes the machine down.
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import replace
from pathlib import Path
from typing import Any

from ..selection import RAW, Selection
from .ctxcheck import inspect_context
from .errors import make_error, write_error_fragment
from .executor import Executor, LocalExecutor
from .limits import Limits
from .model import Job, JobEvent, JobState, Progress, Update
from .slurm import SlurmExecutor, slurm_available
from .store import JobStore

log = logging.getLogger("runtable.jobs")

EventCallback = Callable[[JobEvent], None]
ProgressCallback = Callable[[Job, Progress], None]
_SETTINGS_TTL_S = 2.0
#: A batching executor (Slurm) gets queued jobs once none was added for this long, so
#: that a "reprocess all" being queued becomes one batch ...
BATCH_SETTLE_S = 0.25
#: ... but no job waits longer than this for more to come.
BATCH_WAIT_MAX_S = 5.0
#: Finished jobs are forgotten after this long (at the next start of a queue).
KEEP_FINISHED_S = 7 * 24 * 3600.0
_SETTING_KEYS = ("concurrent_jobs", "noncluster_cpus", "noncluster_mem", "slurm_time",
                 "slurm_partition", "slurm_reservation", "slurm_account", "slurm_qos",
                 "slurm_max_jobs", "context_python", "executor", "job_time_limit_s",
                 "stuck_after_s")


class JobQueue:
    """Jobs for one database folder.

    ``executors`` maps ``"local"``/``"slurm"`` to :class:`Executor` instances
    (default: a :class:`LocalExecutor` and a :class:`SlurmExecutor`); ``settings``
    overrides the folder's settings (mostly for tests). Drive it with :meth:`start`
    (a background thread) or by calling :meth:`step` yourself. ``on_event`` is called
    for every state change, from the thread that runs :meth:`step`.
    """

    def __init__(
        self,
        db_dir: str | Path,
        *,
        executors: Mapping[str, Executor] | None = None,
        settings: Mapping[str, Any] | None = None,
        on_event: EventCallback | None = None,
        tick_s: float = 0.25,
    ) -> None:
        # Absolute: jobs run with the folder as their working directory.
        self.db_dir = Path(db_dir).absolute()
        self.store = JobStore(self.db_dir)
        if executors is None:
            executors = {
                "local": LocalExecutor(stderr=self.db_dir / "process_logs" / "jobs-local.log"),
                "slurm": SlurmExecutor(),
            }
        self.executors = dict(executors)
        self._overrides = dict(settings or {})
        self._callbacks: list[EventCallback] = [on_event] if on_event else []
        self._paused_callbacks: list[Callable[[str | None], None]] = []
        self._progress_callbacks: list[ProgressCallback] = []
        #: The latest progress of each running job, by job id.
        self._progress: dict[int, Progress] = {}
        self._lock = threading.RLock()
        self._wake = threading.Event()
        self._thread: threading.Thread | None = None
        self._stopping = False
        self._settings: dict[str, Any] = {}
        self._settings_at = 0.0
        self.tick_s = tick_s
        #: Why new jobs are not being started (the context file does not load), or None.
        self.paused_reason: str | None = None
        for ex in self.executors.values():
            ex.notify = self._wake.set
            ex.on_progress = self._on_progress
            ex.db_dir = self.db_dir
        self.store.prune(KEEP_FINISHED_S)
        self._recover()

    # -- public API ----------------------------------------------------------------------

    def subscribe(self, callback: EventCallback) -> None:
        """Call ``callback(JobEvent)`` for every state change (keep it quick: it runs
        in the queue's thread with the queue locked)."""
        self._callbacks.append(callback)

    def subscribe_progress(self, callback: ProgressCallback) -> None:
        """Call ``callback(job, progress)`` for each progress report of a running job
        (from an executor's thread; keep it quick)."""
        self._progress_callbacks.append(callback)

    def progress(self, job_id: int) -> Progress | None:
        """The latest progress reported by a running job, if any."""
        return self._progress.get(job_id)

    def _on_progress(self, progress: Progress) -> None:
        with self._lock:
            job = self.store.get(progress.job_id)
            if job is None or job.state.final:
                return  # a report overtaken by the job's end
            self._progress[job.id] = progress
            if job.state is JobState.RUNNING:
                self._tell_progress(job, progress)
            # else: told right after the job's ``running`` state (see _emit), so that
            # listeners see a job start before it reports progress.

    def _tell_progress(self, job: Job, progress: Progress) -> None:
        for callback in list(self._progress_callbacks):
            with contextlib.suppress(Exception):
                callback(job, progress)

    def subscribe_paused(self, callback: Callable[[str | None], None]) -> None:
        """Call ``callback(paused_reason)`` whenever :attr:`paused_reason` changes."""
        self._paused_callbacks.append(callback)

    def submit(
        self,
        proposal: int,
        run: int,
        selection: Selection = RAW,
    ) -> list[Job]:
        """Queue processing of one run. With ``selection.cluster`` None the run's
        cluster=True variables (if any are selected) become a separate job for Slurm,
        the rest a job for the configured executor; returns the jobs created."""
        settings = self.settings()
        default = "slurm" if settings.get("executor") == "slurm" else "local"
        cluster = selection.cluster
        parts: list[tuple[bool | None, str]] = [(cluster, "slurm" if cluster else default)]
        if cluster is None:
            info = inspect_context(self.db_dir, settings.get("context_python"))
            if info.problems is None and info.select(replace(selection, cluster=True)):
                parts = [(True, "slurm")]
                if info.select(replace(selection, cluster=False)):
                    parts.insert(0, (False, default))
        jobs = []
        with self._lock:
            for flag, executor in parts:
                if executor == "slurm" and "slurm" not in self.executors:
                    executor = "local"
                job = Job.of(replace(selection, cluster=flag), id=0, proposal=proposal,
                             run=run, executor=executor)
                job = self.store.add(job)
                jobs.append(job)
                self._emit(job, None)
        self._wake.set()
        return jobs

    def cancel(self, job_id: int) -> bool:
        """Cancel a queued or running job; False if it already ended (or is unknown).
        A running job is reported ``cancelled`` once it has stopped."""
        with self._lock:
            job = self.store.get(job_id)
            if job is None or job.state.final:
                return False
            if job.state is JobState.QUEUED and not job.external_id:
                self._apply(job, Update(job.id, JobState.CANCELLED, error_type="Cancelled",
                                        message="Cancelled before it started"))
            else:
                self.executors[job.executor].cancel(job)
        self._wake.set()
        return True

    def get(self, job_id: int) -> Job | None:
        """The job with this id, as stored."""
        return self.store.get(job_id)

    def jobs(self, states: Iterable[JobState] | None = None) -> list[Job]:
        """Jobs in submission order, optionally only those in ``states``."""
        return self.store.list(states)

    def settings(self) -> dict[str, Any]:
        """The folder's settings that concern jobs (re-read every few seconds)."""
        now = time.monotonic()
        if now - self._settings_at > _SETTINGS_TTL_S or not self._settings:
            from runtable.store import open_db
            from runtable.store.settings import with_defaults

            values: dict[str, Any] = with_defaults({})
            try:
                with open_db(self.db_dir, readonly=True) as db:
                    values = db.settings()
            except Exception:  # a folder being created or migrated: keep defaults
                log.debug("could not read settings of %s", self.db_dir, exc_info=True)
            values.update(self._overrides)
            values["db_dir"] = self.db_dir
            self._settings = {k: values.get(k) for k in (*_SETTING_KEYS, "db_dir")}
            self._settings_at = now
        return dict(self._settings)

    def step(self) -> list[JobEvent]:
        """One round: collect executors' news, check the context file, start what may
        start. Returns the events it produced."""
        events: list[JobEvent] = []
        with self._lock:
            self._collecting = events
            try:
                for executor in self.executors.values():
                    for update in executor.poll():
                        job = self.store.get(update.job_id)
                        if job is not None and not job.state.final:
                            self._apply(job, update)
                self._dispatch()
            finally:
                self._collecting = None
        return events

    def wait(self, job_ids: Iterable[int], timeout: float = 60.0) -> list[Job]:
        """Block until these jobs have ended (stepping the queue if no background thread
        does); returns them. Raises TimeoutError."""
        ids = list(job_ids)
        deadline = time.monotonic() + timeout
        while True:
            if self._thread is None:
                self.step()
            jobs = [self.store.get(i) for i in ids]
            if all(j is not None and j.state.final for j in jobs):
                return jobs  # type: ignore[return-value]
            if time.monotonic() > deadline:
                raise TimeoutError(f"jobs still running after {timeout:g} s: "
                                   f"{[(j.id, j.state.value) for j in jobs if j]}")
            if self._thread is None:
                self._wake.wait(0.05)
                self._wake.clear()
            else:
                time.sleep(0.05)  # the wake-up event belongs to the background thread

    def start(self) -> None:
        """Run :meth:`step` in a background thread until :meth:`close`."""
        if self._thread is not None:
            return
        self._stopping = False
        self._thread = threading.Thread(target=self._loop, daemon=True,
                                        name="runtable-jobs")
        self._thread.start()

    def close(self, requeue_running: bool = False) -> None:
        """Stop the background thread and the local workers (running local jobs are
        killed; Slurm jobs keep running and are re-attached by the next queue).

        ``requeue_running``: put the local jobs this kills back in the queue, so the
        next queue on the folder runs them again. A service stopping on purpose does
        this; otherwise the next start reports them failed (``ServiceRestarted``).
        """
        self._stopping = True
        self._wake.set()
        if self._thread is not None:
            self._thread.join(10)
            self._thread = None
        if requeue_running:
            with self._lock:
                for job in self.store.list([JobState.RUNNING]):
                    if job.executor == "local":
                        log.info("job %d (run %d) will run again at the next start",
                                 job.id, job.run)
                        self.store.save(job.copy(state=JobState.QUEUED, started_at=None,
                                                 external_id=None))
        for executor in self.executors.values():
            executor.shutdown()
        self.store.close()

    def __enter__(self) -> JobQueue:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- internals -----------------------------------------------------------------------

    _collecting: list[JobEvent] | None = None

    def _loop(self) -> None:
        while not self._stopping:
            try:
                self.step()
            except Exception:  # the queue must outlive any single failure
                log.exception("job queue step failed")
            self._wake.wait(self.tick_s)
            self._wake.clear()

    def _recover(self) -> None:
        for job in self.store.list([JobState.RUNNING, JobState.QUEUED]):
            if job.state is JobState.QUEUED and not job.external_id:
                continue  # still ours to dispatch
            executor = self.executors.get(job.executor)
            if job.executor != "local" and executor is not None and executor.attach(job):
                continue
            if job.state is JobState.QUEUED:
                # Handed to a batch that is gone before it started: nothing was lost.
                self._apply(job, Update(job.id, JobState.QUEUED, message="Queued again: "
                                        f"its Slurm job {job.external_id} is gone"))
                continue
            self._apply(job, Update(job.id, JobState.FAILED, error_type="ServiceRestarted",
                                    message="The service restarted while the job was "
                                            "running"))
        for executor in self.executors.values():
            executor.recovered()

    def _dispatch(self) -> None:
        settings = self.settings()
        # Checked even with nothing queued, so a broken file is reported as soon as it
        # is saved; unchanged files cost a stat (see ctxcheck).
        problems = inspect_context(self.db_dir, settings.get("context_python")).problems
        if problems != self.paused_reason:
            if problems:
                log.warning("Not starting jobs: the context file does not load:\n%s",
                            problems)
            else:
                log.info("The context file loads again; starting jobs")
            self.paused_reason = problems
            for callback in list(self._paused_callbacks):
                with contextlib.suppress(Exception):
                    callback(problems)
        if problems:
            return
        # Jobs with an external id were handed to a batch already.
        queued = [j for j in self.store.list([JobState.QUEUED]) if not j.external_id]
        if not queued:
            return
        limit = int(settings.get("concurrent_jobs") or 1)
        running = self.store.list([JobState.RUNNING])
        busy = {name: sum(j.executor == name for j in running) for name in self.executors}
        limits = Limits.from_settings(settings)
        batches: dict[str, list[Job]] = {}
        for job in queued:
            name = job.executor if job.executor in self.executors else "local"
            if name == "slurm" and slurm_available() is not None and "local" in self.executors:
                # No Slurm here (a laptop demo): cluster variables run locally.
                name = "local"
            executor = self.executors[name]
            job = job.copy(executor=name)
            if executor.batches:
                batches.setdefault(name, []).append(job)
                continue
            if busy.get(name, 0) >= limit:
                continue
            try:
                external = executor.submit(job, limits, settings)
            except Exception as exc:
                log.exception("could not submit job %d", job.id)
                self._apply(job, Update(job.id, JobState.FAILED, error_type="ProcessingCrashed",
                                        message=f"Could not start the job: {exc}"))
                continue
            busy[name] = busy.get(name, 0) + 1
            self._apply(job, Update(job.id, JobState.RUNNING, external_id=external))
        for executor_name, jobs in batches.items():
            self._dispatch_batch(self.executors[executor_name], jobs, limits, settings)

    def _dispatch_batch(self, executor: Executor, jobs: list[Job], limits: Limits,
                        settings: dict[str, Any]) -> None:
        now = time.time()
        if (now - max(j.submitted_at for j in jobs) < BATCH_SETTLE_S
                and now - min(j.submitted_at for j in jobs) < BATCH_WAIT_MAX_S):
            return  # more are being queued: wait for them
        try:
            updates = executor.submit_batch(jobs, limits, settings)
        except Exception as exc:
            log.exception("could not submit %d job(s) to %s", len(jobs), executor.name)
            for job in jobs:
                self._apply(job, Update(job.id, JobState.FAILED,
                                        error_type="ProcessingCrashed",
                                        message=f"Could not start the job: {exc}"))
            return
        by_id = {j.id: j for j in jobs}
        for update in updates:
            self._apply(by_id[update.job_id], update)

    def _apply(self, job: Job, update: Update) -> None:
        previous = job.state
        changes: dict[str, Any] = {"state": update.state}
        if update.state is JobState.QUEUED:
            # Handed to a batch (an external id), or back in the queue (none).
            changes.update(external_id=update.external_id, started_at=None)
        elif update.external_id is not None:
            changes["external_id"] = update.external_id
        if update.message is not None:
            changes["message"] = update.message
        if update.fragment is not None:
            changes["fragment"] = update.fragment
        now = update.at or time.time()
        if update.state is JobState.RUNNING and job.started_at is None:
            changes["started_at"] = now
        if update.state.final:
            changes["finished_at"] = now
        new = job.copy(**changes)
        if update.state in (JobState.FAILED, JobState.CANCELLED) and not new.fragment:
            new = self._record_failure(new, update)
        self.store.save(new)
        if previous is not new.state or (new.state is JobState.QUEUED
                                         and new.external_id != job.external_id):
            self._emit(new, previous)

    def _record_failure(self, job: Job, update: Update) -> Job:
        """Keep what the job had finished, and give every other variable it was
        computing the job's error, in a fragment the store merges, so the table shows
        why (see :mod:`runtable.jobs.errors`)."""
        message = update.message or "Processing failed"
        try:
            info = inspect_context(self.db_dir, self.settings().get("context_python"))
            names = [n for n in info.select(job.selection)
                     if not info.variables[n].transient]
            path = write_error_fragment(self.db_dir, job.proposal, job.run, names,
                                        make_error(update.error_type, message),
                                        partial=update.partial)
        except Exception:
            log.exception("could not write the error fragment of job %d", job.id)
            return job
        return job.copy(fragment=str(path)) if path else job

    def _emit(self, job: Job, previous: JobState | None) -> None:
        if job.state is not JobState.RUNNING:
            self._progress.pop(job.id, None)
        event = JobEvent(job, previous)
        if self._collecting is not None:
            self._collecting.append(event)
        for callback in list(self._callbacks):
            with contextlib.suppress(Exception):
                callback(event)
        progress = self._progress.get(job.id)
        if progress is not None and job.state is JobState.RUNNING:
            self._tell_progress(job, progress)
