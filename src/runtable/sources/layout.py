"""The European XFEL proposal layout: finding a proposal, listing and opening its runs.

A proposal folder looks like::

    <root>/<instrument>/<cycle>/p<proposal:06d>/raw/r<run:04d>/*.h5
    <root>/<instrument>/<cycle>/p<proposal:06d>/proc/r<run:04d>/*.h5

with ``<root>`` from ``$EXTRA_DATA_DATA_ROOT`` (what ``extra_data`` reads), else
``$XFEL_DATA_ROOT`` (what the reference system also reads), else ``/gpfs/exfel/exp``.
"""

from __future__ import annotations

import logging
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

if TYPE_CHECKING:  # extra_data is heavy; only open_run imports it, when called.
    from extra_data import DataCollection

log = logging.getLogger(__name__)

DataKind = Literal["raw", "proc"]
#: The data folders of a proposal that hold run folders, in the order they are scanned.
DATA_KINDS: tuple[DataKind, ...] = ("raw", "proc")

DEFAULT_DATA_ROOT = "/gpfs/exfel/exp"
_ROOT_VARIABLES = ("EXTRA_DATA_DATA_ROOT", "XFEL_DATA_ROOT")
_RUN_DIR_RE = re.compile(r"r(\d+)")
#: Where a proposal's database folder is by default, relative to the proposal folder.
DATABASE_SUBDIR = Path("usr", "Shared", "amore")


class ProposalNotFoundError(FileNotFoundError):
    """No folder ``*/*/p<proposal:06d>`` under any data root."""


def run_number(name: str) -> int | None:
    """The run number of a run folder name (``"r0042"`` -> 42), or None if it is not one."""
    match = _RUN_DIR_RE.fullmatch(name)
    return int(match.group(1)) if match else None


def check_data_kind(data: str) -> DataKind:
    """Return ``data`` if it is ``'raw'`` or ``'proc'``, else raise ValueError."""
    if data not in DATA_KINDS:
        raise ValueError(f"data must be 'raw' or 'proc', not {data!r}")
    return data


def data_roots() -> list[tuple[Path, str]]:
    """The roots searched for proposals, each with where it came from, in search order."""
    roots: list[tuple[Path, str]] = []
    for variable in _ROOT_VARIABLES:
        value = os.environ.get(variable)
        if value and all(Path(value) != root for root, _ in roots):
            roots.append((Path(value), f"${variable}"))
    if not roots:
        roots.append((Path(DEFAULT_DATA_ROOT), "default"))
    return roots


def find_proposal(proposal: int) -> Path:
    """The folder of ``proposal``: the first ``<root>/*/*/p<proposal:06d>`` found.

    Raises :class:`ProposalNotFoundError` naming every place it looked.
    """
    if isinstance(proposal, bool) or not isinstance(proposal, int) or proposal < 0:
        raise ValueError(f"proposal must be a non-negative integer, not {proposal!r}")
    pattern = f"*/*/p{proposal:06d}"
    looked: list[str] = []
    for root, origin in data_roots():
        # sorted() so that a proposal present under two cycles resolves the same way
        # every time; that should not happen, so say so.
        found = sorted(p for p in root.glob(pattern) if p.is_dir())
        if len(found) > 1:
            log.warning(
                "Proposal %d found in several places, using the first: %s",
                proposal,
                ", ".join(map(str, found)),
            )
        if found:
            return found[0]
        looked.append(f"{root / pattern} ({origin})")
    raise ProposalNotFoundError(
        f"Proposal {proposal} not found; looked for {'; '.join(looked)}. "
        "Set EXTRA_DATA_DATA_ROOT to the folder holding <instrument>/<cycle>/p<proposal>."
    )


def default_database_folder(proposal: int) -> Path:
    """The default database folder of ``proposal``: ``<proposal folder>/usr/Shared/amore``.

    Raises :class:`ProposalNotFoundError` like :func:`find_proposal`.
    """
    return find_proposal(proposal) / DATABASE_SUBDIR


@dataclass(frozen=True)
class RunOnDisk:
    """One run found on disk by :func:`scan_runs`.

    The mtimes are of the run *folders* (epoch seconds; None when the folder is absent
    or cannot be read): they change
    when files are added or removed, not when a file grows. Reading them needs one
    ``stat`` per run, which keeps a scan of thousands of runs cheap.
    """

    run: int
    raw: bool
    proc: bool
    raw_mtime: float | None = None
    proc_mtime: float | None = None


def list_run_dirs(data_dir: Path) -> dict[int, os.DirEntry[str]]:
    """The run folders directly inside ``data_dir``, by run number.

    Names that are not ``r<digits>`` and plain files are skipped. OS errors, including
    FileNotFoundError for a missing ``data_dir``, propagate.
    """
    runs: dict[int, os.DirEntry[str]] = {}
    with os.scandir(data_dir) as entries:
        for entry in entries:
            run = run_number(entry.name)
            if run is None:
                continue
            try:
                # No extra system call where the file system reports entry types.
                if not entry.is_dir():
                    continue
            except OSError:
                continue  # vanished or unreadable between listing and checking
            if run in runs and entry.name != f"r{run:04d}":
                continue  # r42 and r0042 both present: keep the name extra_data opens
            runs[run] = entry
    return runs


def scan_runs(proposal_path: str | Path) -> list[RunOnDisk]:
    """List the runs of a proposal that have a ``raw/`` or ``proc/`` folder, by run number.

    Used on start to catch up on runs that arrived while nothing was watching.
    Unreadable folders are logged and treated as holding no runs.
    """
    proposal_path = Path(proposal_path)
    mtimes: dict[DataKind, dict[int, float | None]] = {}
    for data in DATA_KINDS:
        mtimes[data] = {}
        try:
            entries = list_run_dirs(proposal_path / data)
        except FileNotFoundError:
            continue  # proc/ in particular often appears later
        except OSError as exc:
            log.warning("Cannot list %s: %s", proposal_path / data, exc)
            continue
        for run, entry in entries.items():
            try:
                mtimes[data][run] = entry.stat().st_mtime
            except FileNotFoundError:
                pass  # deleted since listing
            except OSError as exc:
                log.warning("Cannot stat %s: %s", entry.path, exc)
                mtimes[data][run] = None
    raw, proc = mtimes["raw"], mtimes["proc"]
    return [
        RunOnDisk(
            run=run,
            raw=run in raw,
            proc=run in proc,
            raw_mtime=raw.get(run),
            proc_mtime=proc.get(run),
        )
        for run in sorted(raw.keys() | proc.keys())
    ]


def open_run(
    proposal: int | str | Path, run: int, data: str = "raw", **kwargs: Any
) -> DataCollection:
    """Open a run with ``extra_data.open_run``.

    ``proposal`` is a number (found with :func:`find_proposal`, so ``XFEL_DATA_ROOT``
    works too) or a proposal folder. ``data`` is ``'raw'``, ``'proc'``, ``'all'`` or
    ``'default'`` as in extra_data; other keyword arguments are passed on.
    """
    import extra_data

    if isinstance(proposal, int):
        path = find_proposal(proposal)
    else:
        path = Path(proposal)
    # extra_data treats a string containing '/' as the proposal folder itself.
    return extra_data.open_run(str(path.absolute()), run, data=data, **kwargs)
