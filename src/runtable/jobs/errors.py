"""Error fragments: how a job that died shows up in the table.

When a job crashes, runs out of memory or time, or is cancelled, it leaves no
fragment of its own. The queue then writes one with the same error for every
variable the job was computing, through the execute package's fragment writer, so
the store merges it like any other and each cell says why it is empty.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

from runtable.execute import write_fragment


class JobError(Exception):
    """Base of the errors recorded for a job's variables when the job itself died."""


class ProcessingCrashed(JobError):
    """The processing process ended without reporting (crash, signal, ``os._exit``)."""


class MemoryLimitExceeded(JobError):
    """The job used more memory than ``noncluster_mem`` and was killed."""


class TimeLimitExceeded(JobError):
    """The job ran longer than its time limit and was killed."""


class Cancelled(JobError):
    """Someone cancelled the job."""


class ServiceRestarted(JobError):
    """The service stopped while the job was running."""


_CLASSES: dict[str, type[JobError]] = {
    c.__name__: c for c in (JobError, ProcessingCrashed, MemoryLimitExceeded,
                            TimeLimitExceeded, Cancelled, ServiceRestarted)
}


class _ErrorResults:
    """A Results-like object: no cells, the same error for every name."""

    def __init__(self, names: Iterable[str], error: BaseException) -> None:
        self.cells: dict[str, object] = {}
        self.errors = dict.fromkeys(names, error)
        self.provenance = "runtable.jobs"


def make_error(error_type: str | None, message: str) -> JobError:
    """An exception whose class is named ``error_type`` (one of ours, or a
    :class:`JobError` subclass made up with that name, e.g. for ``ContextFileErrors``
    reported by a child); default :class:`ProcessingCrashed`."""
    if not error_type:
        return ProcessingCrashed(message)
    cls = _CLASSES.get(error_type)
    if cls is None and error_type.isidentifier():
        # Only the name is recorded in the fragment; the class itself is a stand-in.
        cls = _CLASSES.setdefault(error_type, type(error_type, (JobError,), {}))
    return (cls or ProcessingCrashed)(message)


def write_error_fragment(
    db_dir: str | Path,
    proposal: int,
    run: int,
    names: Iterable[str],
    error: BaseException,
) -> Path | None:
    """Write a fragment recording ``error`` for each of ``names``; None if no names."""
    names = list(names)
    if not names:
        return None
    return write_fragment(_ErrorResults(names, error), Path(db_dir) / "extracted_data",
                          proposal, run)
