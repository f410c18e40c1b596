"""Error fragments: how a job that died shows up in the table.

When a job crashes, runs out of memory or time, or is cancelled, it leaves no
finished fragment. A job saves each variable as it finishes (in its ``….writing.h5``
partial fragment, with a journal of the finished names), so
:func:`write_error_fragment` -- the one entry point, called once per run of a job
that died -- takes what the job had finished from there and records the job's error
for the variables it had not. Those errors are marked as job failures: the merge
keeps the value a variable had before, with the failure shown on the cell, until a
computation succeeds. The partial fragment is removed afterwards.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterable
from pathlib import Path

from runtable.execute import write_fragment

log = logging.getLogger("runtable.jobs")


class JobError(Exception):
    """Base of the errors recorded for a job's variables when the job itself died."""

    #: The merge keeps a variable's previous value beside this error (see the module).
    keeps_previous_value = True


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
    partial: str | Path | None = None,
) -> Path | None:
    """The fragment of one run of a job that died: what it had finished, taken from its
    ``partial`` fragment (the ``….writing.h5`` it was writing, if known), and
    ``error`` for each other name of ``names``. Removes the partial fragment. None
    when there is nothing to record."""
    from runtable.execute.fragment import journal_path

    names = list(names)
    out_dir = Path(db_dir) / "extracted_data"
    try:
        done = finished_names(partial) if partial is not None else []
        if partial is not None and done:
            try:
                return _salvage(Path(partial), out_dir, proposal, run, done,
                                [n for n in names if n not in done], error)
            except Exception:
                log.warning("Could not take the finished results of run %d from %s; "
                            "recording the job's error for all its variables", run, partial,
                            exc_info=True)
        if not names:
            return None
        return write_fragment(_ErrorResults(names, error), out_dir, proposal, run)
    finally:
        if partial is not None:
            for path in (Path(partial), journal_path(partial)):
                with contextlib.suppress(OSError):
                    path.unlink()


def finished_names(partial: str | Path) -> list[str]:
    """The variables a job had saved completely in its partial fragment ``partial``."""
    from runtable.execute.fragment import journal_path

    try:
        text = journal_path(partial).read_text("utf-8", errors="replace")
    except OSError:
        return []
    # A name is complete only with its newline (the job may have died writing it).
    return list(dict.fromkeys(line for line in text.split("\n")[:-1] if line))


def _salvage(partial: Path, out_dir: Path, proposal: int, run: int, done: list[str],
             left: list[str], error: BaseException) -> Path:
    import h5py

    from runtable.execute.fragment import SPECIAL_GROUPS, FragmentWriter, partial_path
    from runtable.store.h5merge import copy_variables

    tmp = partial_path(out_dir, proposal, run)
    try:
        with h5py.File(partial, "r") as src, h5py.File(tmp, "w") as out:
            for key, value in src.attrs.items():
                out.attrs[key] = value
            present = {k for k in src if k not in SPECIAL_GROUPS}
            for group in SPECIAL_GROUPS:
                out.require_group(group)
                present.update(src.get(group, {}))
            copy_variables(src, out, present - set(done))
        writer = FragmentWriter(out_dir, proposal, run, path=tmp, journal=False)
        for name in left:
            writer.add(name, error)
        return writer.finish()
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
