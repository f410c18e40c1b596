"""Where runs come from: the European XFEL proposal layout, and noticing new runs.

* :func:`find_proposal` -- a proposal number to its folder;
  :func:`default_database_folder` -- to its database folder;
  :func:`proposal_dir` -- a database folder to the proposal folder holding its runs.
* :func:`scan_runs` -- the runs on disk (raw and proc), for catching up on start.
* :class:`RunWatcher` -- events as runs appear and become complete:
  :class:`RunAppeared`, :class:`RunReady`; :meth:`RunWatcher.notify` for an
  explicit "this run is complete" signal.
* :func:`open_run` -- open a run's data with ``extra_data``.

Importing this package does not import ``extra_data`` or ``watchdog``.
"""

from __future__ import annotations

from ..selection import DATA_KINDS, DataKind
from .layout import (
    DATABASE_SUBDIR,
    ProposalNotFoundError,
    RunOnDisk,
    default_database_folder,
    find_proposal,
    open_run,
    proposal_dir,
    scan_runs,
)
from .watcher import RunAppeared, RunEvent, RunReady, RunWatcher

__all__ = [
    "DATABASE_SUBDIR",
    "DATA_KINDS",
    "DataKind",
    "ProposalNotFoundError",
    "RunAppeared",
    "RunEvent",
    "RunOnDisk",
    "RunReady",
    "RunWatcher",
    "default_database_folder",
    "find_proposal",
    "open_run",
    "proposal_dir",
    "scan_runs",
]
