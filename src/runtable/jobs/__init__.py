"""Scheduling: the job queue, job states, and the executors that run jobs.

- :class:`JobQueue` (one per database folder) keeps jobs in ``<db_dir>/jobs.sqlite``,
  dispatches them (at most ``concurrent_jobs`` per executor, and none while the context
  file does not load: see :attr:`JobQueue.paused_reason`), reports every state change
  as a :class:`JobEvent`, and when a job dies (crash, memory or time limit, cancel)
  writes an error fragment naming the reason for each variable it was computing.
- :class:`LocalExecutor`: a warm parent process in the context's Python
  (:mod:`runtable.jobs.warm`) forks a fresh child per job, with CPU, memory and time
  limits.
- :class:`SlurmExecutor`: the jobs waiting for Slurm go out together as one job array
  whose tasks (:mod:`runtable.jobs.slurm_worker`) pull runs from a batch folder
  (:mod:`runtable.jobs.batch`) until none is left, each run still a job of its own.
- :func:`check_context`: does the context file load (checked in a child process,
  cached until the file changes)?

Design choices (see the module docstrings for details):

- Restart: queued jobs stay queued; Slurm jobs that were running are re-attached;
  local jobs that were running are marked failed with ``ServiceRestarted`` (their
  processes die with the service; re-running them automatically could loop on a job
  that brings the machine down).
- Local limits: ``noncluster_cpus`` -> CPU affinity (+ ``OMP_NUM_THREADS`` & co.),
  ``noncluster_mem`` -> a watchdog on the resident memory of the job's process group,
  time -> ``job_time_limit_s`` if set, else ``slurm_time``. Breaking one kills the
  job's whole process group.
- Slurm: a job stays QUEUED (with the array's id as external id) until a task of
  the array starts executing it; then it is RUNNING.

Typical use by the service::

    queue = JobQueue(db_dir, on_event=publish)
    queue.start()
    queue.submit(1234, 5, Selection("raw"))
    ...
    queue.close()
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .ctxcheck import ContextInfo, check_context, inspect_context
    from .errors import (
        Cancelled,
        JobError,
        MemoryLimitExceeded,
        ProcessingCrashed,
        ServiceRestarted,
        TimeLimitExceeded,
        write_error_fragment,
    )
    from .executor import Executor, LocalExecutor
    from .limits import Limits, parse_memory, parse_slurm_time
    from .model import Job, JobEvent, JobState, Progress, Update
    from .queue import JobQueue
    from .slurm import SlurmExecutor, slurm_available
    from .store import active_jobs

# Imported on first use: a Slurm task (runtable.jobs.slurm_worker) loads this package
# before it knows whether there is anything to do, and needs none of it.
_HOMES = {
    "ctxcheck": ("ContextInfo", "check_context", "inspect_context"),
    "errors": ("Cancelled", "JobError", "MemoryLimitExceeded", "ProcessingCrashed",
               "ServiceRestarted", "TimeLimitExceeded", "write_error_fragment"),
    "executor": ("Executor", "LocalExecutor"),
    "limits": ("Limits", "parse_memory", "parse_slurm_time"),
    "model": ("Job", "JobEvent", "JobState", "Progress", "Update"),
    "queue": ("JobQueue",),
    "slurm": ("SlurmExecutor", "slurm_available"),
    "store": ("active_jobs",),
}
_WHERE = {name: module for module, names in _HOMES.items() for name in names}


def __getattr__(name: str) -> Any:
    module = _WHERE.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f".{module}", __name__), name)
    globals()[name] = value
    return value


__all__ = [
    "Cancelled",
    "ContextInfo",
    "Executor",
    "Job",
    "JobError",
    "JobEvent",
    "JobQueue",
    "JobState",
    "Limits",
    "LocalExecutor",
    "MemoryLimitExceeded",
    "ProcessingCrashed",
    "Progress",
    "ServiceRestarted",
    "SlurmExecutor",
    "TimeLimitExceeded",
    "Update",
    "active_jobs",
    "check_context",
    "inspect_context",
    "parse_memory",
    "parse_slurm_time",
    "slurm_available",
    "write_error_fragment",
]
