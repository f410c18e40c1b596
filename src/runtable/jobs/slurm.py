"""Jobs on Slurm: batches of runs as job arrays whose tasks pull runs until none is left.

The queue hands :class:`SlurmExecutor` every job waiting for Slurm at once
(:meth:`~SlurmExecutor.submit_batch`); it writes them into a batch folder
(:mod:`runtable.jobs.batch`) and submits *one* ``sbatch --array`` with one task per
worker (``concurrent_jobs``, within ``slurm_max_jobs`` Slurm jobs in all). Each task
(:mod:`runtable.jobs.slurm_worker`) imports once and then executes runs one after the
other, each in a fresh forked process, reporting per run in the batch folder. So a
reprocess of 2,000 runs is one ``sbatch``, the scheduler starts a handful of jobs
instead of 2,000, and every run still has its own state, log, limits and error.

Following: the batch folders are read every ``poll_interval`` (files only; this is
what makes per-run states live). Slurm itself is asked every ``status_interval``, with
one ``squeue`` for all batches, only to notice tasks that ended without saying so
(time limit, out of memory, node failure, ``scancel`` by someone): the run such a task
was executing gets the task's end as its error, runs no task took are queued again.
``sacct`` is used, when the site has accounting, for arrays ``squeue`` no longer
knows (after ``MinJobAge``); without it they count as vanished.

See ``docs/adr/008-slurm-job-arrays-pull-workers.md`` for the options weighed.
"""

from __future__ import annotations

import collections
import logging
import shlex
import shutil
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from runtable.execute.fragment import journal_path, partial_path
from runtable.execute.runner import log_path_for
from runtable.execute.subprocess import child_env
from runtable.sharing import shared_dir

from .batch import CANCELLED, BatchFolder, Manifest, find_batches
from .executor import Executor, finished_update
from .limits import Limits, parse_slurm_time
from .model import Job, JobState, Update

log = logging.getLogger("runtable.jobs")

CLIENT_TIMEOUT_S = 30.0
#: Slurm's default ``MaxArraySize`` is 1001 (task ids 0-1000).
MAX_ARRAY_TASKS = 1000
#: A run goes back to the queue (its task's time ran out during it, or every task of its
#: array ended before taking it) at most this often; then it fails.
MAX_REQUEUES = 2
#: Slurm states after which a job never runs again, and what they mean for the run a
#: task was executing when it ended.
_FINAL = {
    "COMPLETED": (JobState.FAILED, "ProcessingCrashed"),
    "CANCELLED": (JobState.CANCELLED, "Cancelled"),
    "FAILED": (JobState.FAILED, "ProcessingCrashed"),
    "TIMEOUT": (JobState.FAILED, "TimeLimitExceeded"),
    "OUT_OF_MEMORY": (JobState.FAILED, "MemoryLimitExceeded"),
    "NODE_FAIL": (JobState.FAILED, "ProcessingCrashed"),
    "BOOT_FAIL": (JobState.FAILED, "ProcessingCrashed"),
    "DEADLINE": (JobState.FAILED, "TimeLimitExceeded"),
    "PREEMPTED": (JobState.FAILED, "ProcessingCrashed"),
    "SPECIAL_EXIT": (JobState.FAILED, "ProcessingCrashed"),
    "REVOKED": (JobState.FAILED, "ProcessingCrashed"),
    "VANISHED": (JobState.FAILED, "ProcessingCrashed"),
}
_DROP_ENV = ("DISPLAY", "LD_PRELOAD")

#: Slurm client calls made by this process, by command (``sbatch``, ``squeue``, ...):
#: the scheduler traffic, for benchmarks and tests.
CALLS: collections.Counter[str] = collections.Counter()


class SlurmError(RuntimeError):
    """A Slurm command failed."""


_available: tuple[float, str | None] = (-1e9, None)
_AVAILABLE_TTL_S = 30.0


def slurm_available(cached: bool = True) -> str | None:
    """None when Slurm answers here, else why not (cached for 30 s)."""
    global _available
    now = time.monotonic()
    if cached and now - _available[0] < _AVAILABLE_TTL_S:
        return _available[1]
    _available = (now, _slurm_available())
    return _available[1]


def _slurm_available() -> str | None:
    if shutil.which("sbatch") is None:
        return "sbatch is not installed"
    try:
        proc = _run(["scontrol", "ping"], check=False)
    except SlurmError as exc:
        return f"scontrol ping failed: {exc}"
    if "is UP" not in proc.stdout:
        return f"slurmctld is not answering: {(proc.stdout + proc.stderr).strip()}"
    return None


def job_env() -> dict[str, str]:
    """The environment a Slurm job gets: ours, without variables of an enclosing Slurm
    job (which would confuse the new one), the display and preloaded libraries."""
    env = child_env()
    for key in list(env):
        if key.startswith("SLURM_") or key in _DROP_ENV:
            del env[key]
    return env


def sbatch_command(batch: BatchFolder, tasks: int, limits: Limits,
                   settings: dict[str, Any]) -> list[str]:
    """The ``sbatch`` command line of ``batch``: an array of ``tasks`` workers, each
    with the resources of one job (reference behaviour §2) and the site's settings."""
    db_dir = Path(settings["db_dir"]).absolute()
    python = settings.get("context_python") or sys.executable
    proposal = batch.manifest().items[0].proposal
    cmd = ["sbatch", "--parsable", "--job-name", f"p{proposal}-runtable",
           "--array", f"0-{tasks - 1}", "--time", limits.slurm_time,
           "--cpus-per-task", str(limits.cpus), "--mem", limits.mem,
           "-o", str(batch.path / "task-%a.log"), "--chdir", str(db_dir)]
    if settings.get("slurm_reservation"):
        cmd += ["--reservation", str(settings["slurm_reservation"])]
    elif settings.get("slurm_partition"):
        cmd += ["--partition", str(settings["slurm_partition"])]
    if settings.get("slurm_account"):
        cmd += ["--account", str(settings["slurm_account"])]
    if settings.get("slurm_qos"):
        cmd += ["--qos", str(settings["slurm_qos"])]
    worker = [str(python), "-m", "runtable.jobs.slurm_worker", str(batch.path)]
    cmd += ["--wrap", "exec " + shlex.join(worker)]
    return cmd


def _run(cmd: list[str], check: bool = True) -> subprocess.CompletedProcess[str]:
    CALLS[cmd[0]] += 1
    try:
        # umask 002: Slurm creates the job's log with the submitter's umask, and the
        # job's own files are the team's (runtable.sharing).
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=CLIENT_TIMEOUT_S,
                              stdin=subprocess.DEVNULL, env=job_env(), umask=0o002)
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise SlurmError(f"{cmd[0]} failed: {exc}") from exc
    if check and proc.returncode != 0:
        raise SlurmError(f"{shlex.join(cmd[:3])}... exited {proc.returncode}: "
                         f"{proc.stderr.strip()}")
    return proc


@dataclass(frozen=True)
class TaskState:
    """What Slurm says about one task of an array."""

    state: str
    reason: str = ""
    #: ``code:signal`` as ``scontrol`` and ``sacct`` print it.
    exit: str = "0:0"

    @property
    def final(self) -> bool:
        return self.state in _FINAL

    def describe(self, name: str) -> str:
        if self is VANISHED:
            return f"Slurm job {name} vanished (Slurm no longer knows it)"
        message = f"Slurm job {name} ended {self.state}"
        code, _, sig = self.exit.partition(":")
        if sig not in ("", "0"):
            message += f" (signal {sig})"
        elif code not in ("", "0"):
            message += f" (exit code {code})"
        if self.reason and self.reason not in ("None", "(null)"):
            message += f", reason {self.reason}"
        return message


VANISHED = TaskState("VANISHED", "Slurm no longer knows it")

_SQUEUE_FORMAT = "ArrayJobID:|,ArrayTaskID:|,State:|,Reason:|,exit_code:|"


def parse_squeue(text: str) -> dict[str, dict[int, TaskState]]:
    """``squeue -r -O`` lines (see :data:`_SQUEUE_FORMAT`) as array id -> task -> state.
    ``exit_code`` there is the raw wait status."""
    out: dict[str, dict[int, TaskState]] = {}
    for line in text.splitlines():
        parts = line.split("|")
        if len(parts) < 5 or not parts[1].strip().isdigit():
            continue
        array, task, state, reason, status = (p.strip() for p in parts[:5])
        try:
            raw = int(status)
        except ValueError:
            raw = 0
        exit_text = f"{raw >> 8}:{raw & 0x7F}"
        out.setdefault(array, {})[int(task)] = TaskState(state.split()[0], reason, exit_text)
    return out


def parse_sacct(text: str) -> dict[str, dict[int, TaskState]]:
    """``sacct -n -P -X -o JobID,State,ExitCode`` lines as array id -> task -> state
    (ranges of pending tasks, ``123_[4-9]``, are left out)."""
    out: dict[str, dict[int, TaskState]] = {}
    for line in text.splitlines():
        parts = line.strip().split("|")
        if len(parts) < 3 or "_" not in parts[0]:
            continue
        array, _, task = parts[0].partition("_")
        if not task.isdigit():
            continue
        state = parts[1].split()[0] if parts[1].strip() else "UNKNOWN"
        out.setdefault(array, {})[int(task)] = TaskState(state, "", parts[2] or "0:0")
    return out


@dataclass
class _Batch:
    """What the service knows of one batch (one array)."""

    folder: BatchFolder
    slurm_id: str
    tasks: int
    #: Jobs of this batch not finished yet -> their item index.
    index: dict[int, int] = field(default_factory=dict)
    #: Jobs being executed -> the task executing them.
    running: dict[int, int] = field(default_factory=dict)
    #: Tasks that started (a ``worker`` event): they end on their own.
    workers: set[int] = field(default_factory=set)
    #: Tasks that ended (an ``exit`` event, or a final state from Slurm).
    ended: dict[int, TaskState] = field(default_factory=dict)
    #: Jobs the service asked to cancel while a task had them.
    cancelling: set[int] = field(default_factory=set)
    started_any: bool = False
    #: Tasks still waiting in Slurm were cancelled: every run had a task already.
    pending_cancelled: bool = False

    def item(self, job_id: int) -> Job:
        return self.folder.manifest().items[self.index[job_id]]

    def partial(self, job_id: int) -> str | None:
        """The fragment the job's run writes while it runs."""
        return self.folder.manifest().partial(self.index[job_id])

    @property
    def open_tasks(self) -> int:
        return self.tasks - len(self.ended)


class SlurmExecutor(Executor):
    """Batches of jobs as Slurm job arrays of pulling workers (see the module
    docstring). Batch folders are read at most every ``poll_interval`` seconds, Slurm
    asked at most every ``status_interval`` seconds (slurmctld is shared: don't hammer
    it)."""

    name = "slurm"
    batches = True

    def __init__(self, poll_interval: float = 0.25, status_interval: float = 5.0) -> None:
        self.poll_interval = poll_interval
        self.status_interval = status_interval
        self._batches: dict[str, _Batch] = {}  # by Slurm array id
        self._updates: list[Update] = []
        self._lock = threading.Lock()
        self._last_poll = -1e9
        self._last_status = time.monotonic()
        self._requeues: collections.Counter[int] = collections.Counter()
        self._found: dict[str, _Batch] | None = None  # batch folders seen on attach
        self._sacct: bool | None = None  # does sacct work here? (None: not tried)

    # -- submitting ------------------------------------------------------------------------

    def submit(self, job: Job, limits: Limits, settings: dict) -> str | None:
        """One job as a batch of its own (the queue uses :meth:`submit_batch`)."""
        updates = self.submit_batch([job], limits, settings)
        if not updates:
            raise SlurmError("no Slurm job may be submitted now (slurm_max_jobs reached)")
        return updates[0].external_id

    def submit_batch(self, jobs: list[Job], limits: Limits, settings: dict) -> list[Update]:
        """Submit ``jobs`` as one array; returns an update (still queued, now in the
        array) for each job taken: none while ``slurm_max_jobs`` tasks are open."""
        with self._lock:
            open_tasks = sum(b.open_tasks for b in self._batches.values())
        room = _setting(settings, "slurm_max_jobs") - open_tasks
        tasks = min(len(jobs), _setting(settings, "concurrent_jobs"), room, MAX_ARRAY_TASKS)
        if tasks <= 0 or not jobs:
            return []
        db_dir = Path(settings["db_dir"]).absolute()
        shared_dir(db_dir / "process_logs")
        manifest = Manifest(
            db_dir=str(db_dir),
            items=tuple(jobs),
            run_time_s=limits.time_s, task_time_s=parse_slurm_time(limits.slurm_time),
            mem_bytes=limits.mem_bytes, cpus=limits.cpus,
            partials=tuple(str(partial_path(db_dir / "extracted_data", j.proposal, j.run))
                           for j in jobs))
        folder = BatchFolder.create(db_dir, manifest)
        try:
            out = _run(sbatch_command(folder, tasks, limits, settings)).stdout.strip()
            slurm_id = out.split(";")[0]  # "jobid" or "jobid;cluster"
            if not slurm_id.isdigit():
                raise SlurmError(f"sbatch printed {out!r}, not a job id")
        except BaseException:
            folder.remove()
            raise
        folder.set_submitted(slurm_id, tasks)
        batch = _Batch(folder, slurm_id, tasks, {j.id: i for i, j in enumerate(jobs)})
        with self._lock:
            self._batches[slurm_id] = batch
        message = (f"In Slurm job {slurm_id} ({len(jobs)} runs, {tasks} "
                   f"worker{'s' if tasks > 1 else ''}), waiting for a worker")
        return [Update(j.id, JobState.QUEUED, external_id=slurm_id, message=message)
                for j in jobs]

    # -- restart ---------------------------------------------------------------------------

    def attach(self, job: Job) -> bool:
        if not job.external_id or self.db_dir is None:
            return False
        if self._found is None:
            self._found = {}
            for folder in find_batches(self.db_dir):
                submitted = folder.submitted()
                try:
                    folder.manifest()
                except (OSError, ValueError):
                    continue
                if submitted is not None:
                    self._found[submitted[0]] = _Batch(folder, *submitted)
        array, _, task = job.external_id.partition("_")
        batch = self._found.get(array)
        if batch is None:
            return False
        index = next((i for i, item in enumerate(batch.folder.manifest().items)
                      if item.id == job.id), None)
        if index is None:
            return False
        batch.index[job.id] = index
        if task.isdigit() and job.state is JobState.RUNNING:
            batch.running[job.id] = int(task)
        with self._lock:
            self._batches[array] = batch
        return True

    def recovered(self) -> None:
        """Batch folders no job was re-attached to belong to nobody: remove them."""
        if self.db_dir is None:
            return
        with self._lock:
            mine = {b.folder.path for b in self._batches.values()}
        for folder in find_batches(self.db_dir):
            if folder.path not in mine:
                folder.remove()
        self._found = None

    # -- cancelling ------------------------------------------------------------------------

    def cancel(self, job: Job) -> None:
        with self._lock:
            batch = next((b for b in self._batches.values() if job.id in b.index), None)
            if batch is None:
                return
            if job.id not in batch.running and batch.folder.claim(batch.index[job.id],
                                                                  CANCELLED):
                del batch.index[job.id]
                self._updates.append(Update(job.id, JobState.CANCELLED,
                                            error_type="Cancelled",
                                            message="Cancelled before it started"))
            else:  # a task has it (perhaps without having said so yet)
                batch.cancelling.add(job.id)
                batch.folder.request_cancel(job.id)
        if self.notify is not None:
            self.notify()

    # -- following -------------------------------------------------------------------------

    def poll(self, force: bool = False) -> list[Update]:
        with self._lock:
            updates, self._updates = self._updates, []
            now = time.monotonic()
            if not self._batches or (not force and now - self._last_poll < self.poll_interval):
                return updates
            self._last_poll = now
            status = None
            if force or now - self._last_status >= self.status_interval:
                self._last_status = now
                # Before reading the events: what a task wrote before it ended is read.
                status = self._status(list(self._batches))
            for batch in list(self._batches.values()):
                updates += self._read(batch)
                if status is not None:
                    updates += self._task_ends(batch, status.get(batch.slurm_id))
                if batch.index and batch.open_tasks == 0:
                    updates += self._leftovers(batch)
                if not batch.index:
                    self._close(batch)
                elif len(batch.running) == len(batch.index):
                    self._cancel_pending(batch)
        return updates

    def _read(self, batch: _Batch) -> list[Update]:
        updates = []
        for event in batch.folder.read_events():
            kind, task = event.get("event"), int(event.get("task", 0))
            job_id = event.get("id")
            name = f"{batch.slurm_id}_{task}"
            if kind == "worker":
                batch.workers.add(task)
                continue
            if kind == "exit":
                batch.ended.setdefault(task, TaskState("COMPLETED"))
                continue
            if job_id not in batch.index:
                continue  # not ours (any more): cancelled, or finished before a restart
            if kind == "started":
                batch.running[job_id] = task
                batch.started_any = True
                updates.append(Update(job_id, JobState.RUNNING, external_id=name,
                                      message=f"Slurm job {name} on {event.get('host')}",
                                      at=event.get("at")))
            elif kind == "finished":
                update = finished_update(event, batch.partial(job_id))
                del batch.index[job_id]
                batch.running.pop(job_id, None)
                batch.started_any = True
                updates.append(Update(job_id, update.state, external_id=name,
                                      message=update.message, fragment=update.fragment,
                                      error_type=update.error_type, partial=update.partial,
                                      at=event.get("at")))
            elif kind == "progress":
                self._progress(event)
            elif kind == "released":
                _discard(batch.partial(job_id))  # it starts afresh in its next batch
                del batch.index[job_id]
                batch.running.pop(job_id, None)
                updates.append(self._requeue(job_id, str(event.get("message")),
                                             "TimeLimitExceeded", "raise slurm_time or "
                                             "lower job_time_limit_s"))
        return updates

    def _requeue(self, job_id: int, why: str, error_type: str, advice: str) -> Update:
        """Back to the queue (a new batch), unless that happened too often already."""
        self._requeues[job_id] += 1
        if self._requeues[job_id] > MAX_REQUEUES:
            del self._requeues[job_id]
            return Update(job_id, JobState.FAILED, error_type=error_type,
                          message=f"{why}; given up after {MAX_REQUEUES} tries: {advice}")
        return Update(job_id, JobState.QUEUED, external_id=None, message=f"{why}; "
                      "queued again")

    def _task_ends(self, batch: _Batch, tasks: dict[int, TaskState] | None) -> list[Update]:
        """Runs held by tasks that ended without reporting them fail with the task's
        end (``tasks``: what Slurm says, None when it knows nothing of the array)."""
        if tasks is None:
            tasks = {}
        for task in range(batch.tasks):
            state = tasks.get(task, VANISHED)
            if state.final and task not in batch.ended:
                batch.ended[task] = state
        updates = []
        for job_id, task in list(batch.running.items()):
            if task not in batch.ended:
                continue
            end = batch.ended[task]
            name = f"{batch.slurm_id}_{task}"
            job_state, error_type = _FINAL[end.state]
            message = end.describe(name)
            if end.state == "COMPLETED":  # its worker ended, or could not report
                message = f"Slurm job {name} ended without reporting the end of this run"
            elif job_id in batch.cancelling and end.state == "CANCELLED":
                message = f"Cancelled (Slurm job {name})"
            elif job_state is JobState.CANCELLED:
                job_state, error_type = JobState.FAILED, "ProcessingCrashed"  # not by us
            self._log_task_end(batch, job_id, task, message)
            partial = batch.partial(job_id)
            del batch.index[job_id], batch.running[job_id]
            updates.append(Update(job_id, job_state, external_id=name, message=message,
                                  error_type=error_type, partial=partial))
        return updates

    def _leftovers(self, batch: _Batch) -> list[Update]:
        """Every task of ``batch`` has ended, and some runs were never taken: they go to a
        new batch, unless no task processed anything (then they fail with why)."""
        waiting = list(batch.index)
        if batch.started_any:
            batch.index.clear()
            why = f"Slurm job {batch.slurm_id} ended before a worker took this run"
            return [self._requeue(job_id, why, "ProcessingCrashed",
                                  "Slurm's workers keep ending before reaching it")
                    for job_id in waiting]
        ends = sorted({e.describe(batch.slurm_id) for e in batch.ended.values()})
        tail = batch.folder.log_tail(min(batch.ended)) if batch.ended else ""
        message = ("; ".join(ends) + " before processing any run"
                   + (f":\n{tail}" if tail else ""))
        for job_id in waiting:
            self._log_task_end(batch, job_id, None, message)
        batch.index.clear()
        return [Update(job_id, JobState.FAILED, external_id=batch.slurm_id,
                       error_type="ProcessingCrashed", message=message) for job_id in waiting]

    def _log_task_end(self, batch: _Batch, job_id: int, task: int | None,
                      message: str) -> None:
        """Append to the run's log how the task ended, and what the task printed last."""
        item = batch.item(job_id)
        tail = batch.folder.log_tail(task) if task is not None else ""
        text = f"----- {message} -----\n" + (f"{tail}\n" if tail else "")
        try:
            with open(log_path_for(batch.folder.manifest().db_dir, item.proposal, item.run),
                      "a") as log:
                log.write(text)
        except OSError:
            pass

    def _cancel_pending(self, batch: _Batch) -> None:
        """No run of ``batch`` waits for a task: tasks still waiting in Slurm would start
        only to find nothing to do, so they are cancelled (once)."""
        unstarted = set(range(batch.tasks)) - batch.workers - set(batch.ended)
        if unstarted and not batch.pending_cancelled:
            batch.pending_cancelled = True
            try:
                _run(["scancel", "--state=PENDING", batch.slurm_id], check=False)
            except SlurmError:
                log.warning("could not cancel the waiting tasks of Slurm job %s",
                            batch.slurm_id, exc_info=True)

    def _close(self, batch: _Batch) -> None:
        """Every job of ``batch`` has ended: forget it."""
        self._cancel_pending(batch)
        batch.folder.remove()
        del self._batches[batch.slurm_id]

    def _status(self, arrays: list[str]) -> dict[str, dict[int, TaskState]] | None:
        """Task states of ``arrays`` (None when Slurm could not be asked)."""
        try:
            proc = _run(["squeue", "--jobs", ",".join(arrays), "-r", "-t", "all", "-h",
                         "-O", _SQUEUE_FORMAT], check=False)
        except SlurmError:
            return None
        if proc.returncode != 0 and "Invalid job id" not in proc.stderr:
            return None  # slurmctld busy or unreachable: ask again next time
        states = parse_squeue(proc.stdout) if proc.returncode == 0 else {}
        unknown = [a for a in arrays if a not in states]
        if unknown and self._sacct is not False:
            states.update(self._sacct_states(unknown))
        return states

    def _sacct_states(self, arrays: list[str]) -> dict[str, dict[int, TaskState]]:
        try:
            proc = _run(["sacct", "-j", ",".join(arrays), "-n", "-P", "-X",
                         "-o", "JobID,State,ExitCode"], check=False)
        except SlurmError:
            return {}
        if proc.returncode != 0:
            self._sacct = False  # no accounting here ("accounting storage is disabled")
            return {}
        self._sacct = True
        return parse_sacct(proc.stdout)

    def shutdown(self) -> None:
        # Slurm jobs outlive the service on purpose: a restarted service re-attaches.
        with self._lock:
            self._batches.clear()


def _discard(partial: str | None) -> None:
    """Remove a partial fragment and its journal (the run will be computed again)."""
    if partial is not None:
        for path in (Path(partial), journal_path(partial)):
            path.unlink(missing_ok=True)


def _setting(settings: dict[str, Any], key: str) -> int:
    """An integer setting from ``settings``, or its default."""
    from runtable.store.settings import value_or_default

    return int(value_or_default(key, settings.get(key)))
