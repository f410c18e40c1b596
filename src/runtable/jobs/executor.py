"""The interface both executors implement, and the local one (warm process pool)."""

from __future__ import annotations

import abc
import contextlib
import logging
import queue
import sys
import threading
from collections.abc import Callable
from pathlib import Path

from runtable.execute import RunOutcome
from runtable.execute.fragment import partial_path
from runtable.execute.subprocess import describe_exit

from .limits import Limits
from .model import Job, JobState, Progress, Update
from .warm_client import EOF, WarmProcess, run_request

log = logging.getLogger("runtable.jobs")


class Executor(abc.ABC):
    """Runs jobs somewhere and reports what happens to them.

    ``submit`` starts a job (raising only when it could not be handed over at all),
    ``poll`` returns the state changes since the last call (it must not block for
    long), ``cancel`` asks for a running job to be stopped (reported later by
    ``poll`` as ``cancelled``), ``attach`` follows a job started by an earlier
    service process, ``shutdown`` stops everything this executor started.

    An executor with ``batches = True`` is given every job waiting for it at once
    (``submit_batch``) and decides itself how many it takes; its jobs stay ``queued``
    (with an external id) until it reports them running.
    """

    name: str
    #: Takes waiting jobs all at once (:meth:`submit_batch`) rather than one by one.
    batches: bool = False
    #: The database folder whose jobs this executor runs (set by the queue).
    db_dir: Path | None = None

    #: Called (from any thread) when ``poll`` has something new; the queue uses it to
    #: wake up instead of waiting for its next tick.
    notify: Callable[[], None] | None = None
    #: Called (from any thread) with each :class:`Progress` of a running job.
    on_progress: Callable[[Progress], None] | None = None

    def _progress(self, event: dict) -> None:
        if self.on_progress is None:
            return
        try:
            progress = Progress.from_event(event)
        except (KeyError, TypeError, ValueError):
            log.warning("malformed progress event %r", event)
            return
        self.on_progress(progress)

    @abc.abstractmethod
    def submit(self, job: Job, limits: Limits, settings: dict) -> str | None:
        """Start ``job``; returns its external id if known at once."""

    def submit_batch(self, jobs: list[Job], limits: Limits, settings: dict
                     ) -> list[Update]:
        """Take some or all of ``jobs`` (executors with ``batches``): an update for each
        job taken, with its external id; raises when none could be handed over."""
        raise NotImplementedError

    @abc.abstractmethod
    def poll(self) -> list[Update]:
        """State changes since the last call."""

    @abc.abstractmethod
    def cancel(self, job: Job) -> None:
        """Stop a running job."""

    def attach(self, job: Job) -> bool:
        """Follow a job left running by a previous service; False if impossible."""
        return False

    def recovered(self) -> None:  # noqa: B027 - optional
        """Every job of the previous service was offered to :meth:`attach`."""

    def shutdown(self) -> None:  # noqa: B027 - optional for executors with no resources
        """Stop all jobs and release resources."""


class LocalExecutor(Executor):
    """Jobs on this machine, forked from a warm parent (:mod:`runtable.jobs.warm`)
    running in ``python`` (the folder's ``context_python``).

    The warm parent starts on the first submit (or :meth:`start`), and again if
    it dies or the interpreter setting changes; jobs it was running are reported
    failed.
    """

    name = "local"

    def __init__(self, python: str | Path | None = None, stderr: str | Path | None = None
                 ) -> None:
        self.python = str(python or sys.executable)
        self._stderr_path = Path(stderr) if stderr else None
        self._proc: WarmProcess | None = None
        self._updates: queue.SimpleQueue[Update] = queue.SimpleQueue()
        self._lock = threading.Lock()
        self._running: set[int] = set()
        self._partials: dict[int, str] = {}  # job id -> the fragment it writes
        self._ready = threading.Event()
        self.import_s: float | None = None

    # -- warm parent ---------------------------------------------------------------------

    def start(self, python: str | Path | None = None, wait: float | None = None) -> None:
        """Start the warm parent (restart it if ``python`` differs); ``wait``: seconds to
        wait until its imports are done."""
        with self._lock:
            if python is not None and str(python) != self.python:
                self._stop_locked()
                self.python = str(python)
            if self._proc is None or self._proc.poll() is not None:
                self._ready.clear()
                self._proc = WarmProcess(self.python, self._on_event,
                                         stderr=self._stderr_path)
        if wait:
            self._ready.wait(wait)

    def _on_event(self, proc: WarmProcess, event: dict) -> None:
        kind = event.get("event")
        if kind == "ready":
            self.import_s = event.get("import_s")
            self._ready.set()
        elif kind == "started":
            self._push(Update(event["id"], JobState.RUNNING, external_id=str(event["pid"])))
        elif kind == "progress":
            self._progress(event)
        elif kind == "finished":
            with self._lock:
                self._running.discard(event["id"])
                partial = self._partials.pop(event["id"], None)
            self._push(finished_update(event, partial))
        elif kind == EOF:
            self._on_exit(proc, event["returncode"])

    def _on_exit(self, proc: WarmProcess, returncode: int) -> None:
        # The warm parent is gone: whatever it was running is lost.
        with self._lock:
            if self._proc is proc:
                self._proc = None
                lost, self._running = self._running, set()
            else:  # stopped on purpose (shutdown or new interpreter)
                lost = set()
        for job_id in lost:
            with self._lock:
                partial = self._partials.pop(job_id, None)
            self._push(Update(job_id, JobState.FAILED, error_type="ProcessingCrashed",
                              message="The local worker pool stopped unexpectedly "
                                      f"({describe_exit(returncode)})", partial=partial))

    def _push(self, update: Update) -> None:
        self._updates.put(update)
        if self.notify is not None:
            self.notify()

    def _send(self, request: dict) -> None:
        with self._lock:
            if self._proc is None:
                raise RuntimeError("the local worker pool is not running")
            self._proc.send(request)

    # -- Executor ------------------------------------------------------------------------

    def submit(self, job: Job, limits: Limits, settings: dict) -> str | None:
        self.start(settings.get("context_python") or None)
        partial = str(partial_path(Path(settings["db_dir"]) / "extracted_data",
                                   job.proposal, job.run))
        with self._lock:
            self._running.add(job.id)
            self._partials[job.id] = partial
        request = run_request(job.id, settings["db_dir"], job, cpus=limits.cpus,
                              mem_bytes=limits.mem_bytes, time_s=limits.time_s,
                              partial=partial)
        try:
            self._send(request)
        except (OSError, RuntimeError):
            with self._lock:
                self._running.discard(job.id)
                self._partials.pop(job.id, None)
            raise
        return None

    def poll(self) -> list[Update]:
        out = []
        with contextlib.suppress(queue.Empty):
            while True:
                out.append(self._updates.get_nowait())
        return out

    def cancel(self, job: Job) -> None:
        with contextlib.suppress(OSError, RuntimeError):
            self._send({"op": "cancel", "id": job.id})

    def shutdown(self) -> None:
        with self._lock:
            self._stop_locked()

    def _stop_locked(self) -> None:
        proc, self._proc = self._proc, None
        if proc is not None:
            # Not joining its reader: its end-of-output callback takes self._lock.
            proc.close(10, join_reader=False)


def finished_update(event: dict, partial: str | None = None) -> Update:
    """What a warm parent's ``finished`` event (:mod:`runtable.jobs.warm`) means for
    the job: done, failed (with the error to record, and ``partial``, the fragment it
    was writing) or cancelled."""
    job_id = event["id"]
    killed = event.get("killed")
    if killed:
        state = JobState.CANCELLED if killed == "Cancelled" else JobState.FAILED
        return Update(job_id, state, message=event.get("message"), error_type=killed,
                      partial=partial)
    if event.get("outcome"):
        try:
            outcome = RunOutcome.from_json(event["outcome"])
        except (ValueError, TypeError):
            outcome = None
        if outcome is not None:
            fragment = str(outcome.fragment) if outcome.fragment else None
            if outcome.failure is None:
                return Update(job_id, JobState.DONE, fragment=fragment)
            cls, message = outcome.failure
            return Update(job_id, JobState.FAILED, message=f"{cls}: {message}",
                          fragment=fragment, error_type=cls)
    return Update(job_id, JobState.FAILED, error_type="ProcessingCrashed",
                  message=describe_exit(int(event.get("returncode") or 0)), partial=partial)
