"""Jobs, their states and the events a queue reports."""

from __future__ import annotations

import enum
import time
from dataclasses import dataclass, field, replace
from typing import Any, Literal

from ..selection import DataName, Selection

ExecutorName = Literal["local", "slurm"]


class JobState(enum.StrEnum):
    """Where a job is in its life. ``done``, ``failed`` and ``cancelled`` are final."""

    QUEUED = "queued"
    RUNNING = "running"
    DONE = "done"
    FAILED = "failed"
    CANCELLED = "cancelled"

    @property
    def final(self) -> bool:
        """True for states a job never leaves."""
        return self in (JobState.DONE, JobState.FAILED, JobState.CANCELLED)


@dataclass
class Job:
    """One execution of the context file for one run.

    ``data``, ``variables``, ``match`` and ``cluster`` are what it computes, the fields
    of a :class:`~runtable.selection.Selection` (:attr:`selection`; a job's row keeps
    them as columns). ``external_id`` is
    the worker pid (local) or the Slurm job id; ``message`` says why a job failed.
    """

    id: int
    proposal: int
    run: int
    data: DataName = "raw"
    variables: tuple[str, ...] = ()
    match: tuple[str, ...] = ()
    cluster: bool | None = None
    executor: ExecutorName = "local"
    state: JobState = JobState.QUEUED
    external_id: str | None = None
    submitted_at: float = field(default_factory=time.time)
    started_at: float | None = None
    finished_at: float | None = None
    message: str | None = None
    #: Fragment written by the job (local executor only; Slurm jobs' fragments are
    #: found in ``extracted_data``).
    fragment: str | None = None

    @property
    def selection(self) -> Selection:
        """What the job computes, as one value."""
        return Selection(self.data, self.variables, self.match, self.cluster)

    @classmethod
    def of(cls, selection: Selection, **fields: Any) -> Job:
        """A job that computes ``selection``, with its other ``fields``."""
        return cls(data=selection.data, variables=selection.variables,
                   match=selection.match, cluster=selection.cluster, **fields)

    def copy(self, **changes: object) -> Job:
        """A copy with some fields changed."""
        return replace(self, **changes)  # type: ignore[arg-type]


@dataclass(frozen=True)
class JobEvent:
    """A job changed state. ``job`` is a snapshot after the change."""

    job: Job
    previous: JobState | None

    @property
    def state(self) -> JobState:
        return self.job.state


@dataclass(frozen=True)
class Update:
    """What an executor reports about one of its jobs (see :class:`Executor.poll`)."""

    job_id: int
    state: JobState
    external_id: str | None = None
    message: str | None = None
    fragment: str | None = None
    #: Exception class name to record for the selected variables when the job failed
    #: without writing a fragment (e.g. ``TimeLimitExceeded``).
    error_type: str | None = None
    #: The fragment the job was writing when it died (``….writing.h5``), if known: what
    #: it had finished is taken from there.
    partial: str | None = None
    #: When it happened (epoch seconds), if the executor learns it later (a Slurm
    #: task's event); None: now.
    at: float | None = None


@dataclass(frozen=True)
class Progress:
    """How far a running job is (see :mod:`runtable.context.tracking`): computing
    ``variable`` after ``done`` of ``total`` variables finished, ``step`` of ``steps``
    inside it (``steps`` None: not reported), ``variable_s`` seconds into it, reported
    at ``at`` (epoch seconds)."""

    job_id: int
    variable: str
    done: int
    total: int
    step: int = 0
    steps: int | None = None
    variable_s: float = 0.0
    at: float = field(default_factory=time.time)

    def text(self) -> str:
        """``"agipd_mean, 3 of 14, 41 s (1200 of 10000)"``: the variable being
        computed is the third of 14; ``"14 of 14 done"`` between or after them."""
        if not self.variable:
            return f"{self.done} of {self.total} done"
        out = f"{self.variable}, {self.done + 1} of {self.total}, {self.variable_s:.0f} s"
        if self.steps:
            out += f" ({self.step} of {self.steps})"
        elif self.step:
            out += f" ({self.step} done)"
        return out

    @classmethod
    def from_event(cls, event: dict) -> Progress:
        """From a warm worker's ``progress`` event (raises KeyError/TypeError/ValueError
        for a malformed one)."""
        steps = event.get("steps")
        return cls(int(event["id"]), str(event["variable"]), int(event["done"]),
                   int(event["total"]), int(event.get("step") or 0),
                   None if steps is None else int(steps),
                   float(event.get("variable_s") or 0.0),
                   float(event.get("at") or time.time()))
