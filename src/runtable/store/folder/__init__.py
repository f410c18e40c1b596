"""The database folder: ``runs.sqlite`` plus ``extracted_data/`` and ``context.py``.

:class:`DatabaseFolder` is the entry point; its parts, one concern each, are the
modules of this package: :mod:`.core` (opening, paths, transactions, locks),
:mod:`.config` (settings), :mod:`.values` (runs and stored values), :mod:`.variables` (the
``variables`` table) and :mod:`.userdata` (comments and typed-in values). Merging
fragments is :mod:`runtable.store.merge`'s.
"""

from __future__ import annotations

import os
import secrets
import sqlite3
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from ...sharing import shared_dir, shared_file
from .. import schema, settings
from ..errors import StoreError
from ..h5merge import TMP_SUFFIX
from .config import FolderSettings
from .core import CONTEXT_NAME, DB_NAME, EXTRACTED_DIR, LOGS_DIR, _connect
from .userdata import FolderUserData, TimeComment

if TYPE_CHECKING:
    from ..merge import MergeResult

__all__ = ["DatabaseFolder", "TimeComment", "create_folder", "merge_pending_in", "open_db"]

DEFAULT_CONTEXT = '''\
"""Context file: each @Variable function below becomes a column of the run table."""

from damnit_ctx import Cell, Variable  # noqa: F401
'''


class DatabaseFolder(FolderUserData, FolderSettings):
    """An open database folder. Use as a context manager or call :meth:`close`.

    Only one process should write a folder (the service, or the CLI command
    doing the work); any number may read it.
    """

    def merge_fragment(self, path: str | os.PathLike[str]) -> MergeResult:
        """Merge one ``*.ready.h5`` fragment; see :mod:`runtable.store.merge`.

        Returns a :class:`~runtable.store.merge.MergeResult`.
        """
        from ..merge import merge_fragment

        return merge_fragment(self, Path(path))

    def merge_pending(self, max_job_s: float | None = None) -> list[MergeResult]:
        """Finish interrupted work and merge every fragment waiting in
        ``extracted_data``, oldest first. Returns the list of MergeResults.
        ``max_job_s``: also remove partial fragments older than jobs may run."""
        from ..merge import merge_pending

        return merge_pending(self, max_job_s)

    def clean_temporary_files(self) -> None:
        """Remove half-written per-run files left by a crash (call under hdf5_lock)."""
        for tmp in self.extracted_dir.glob(f"*{TMP_SUFFIX}"):
            tmp.unlink(missing_ok=True)


def merge_pending_in(db_dir: str | os.PathLike[str]) -> list[MergeResult]:
    """Open the folder at *db_dir*, run :meth:`DatabaseFolder.merge_pending`, close it."""
    with DatabaseFolder(db_dir) as db:
        return db.merge_pending()


def open_db(path: str | os.PathLike[str], readonly: bool = False, *,
            defer_slow_upgrade: bool = False) -> DatabaseFolder:
    """Open an existing database folder (upgrading an older format when writable;
    with *defer_slow_upgrade*, the slow steps of that are left for
    :meth:`DatabaseFolder.finish_upgrade`)."""
    return DatabaseFolder(path, readonly=readonly, defer_slow_upgrade=defer_slow_upgrade)


def create_folder(path: str | os.PathLike[str], proposal: int,
                  context_text: str | None = None) -> DatabaseFolder:
    """Create (or re-open) a database folder for *proposal* and return it, writable.

    Makes ``runs.sqlite`` (data format v4, a new ``db_id``), ``extracted_data/``,
    ``process_logs/`` and ``context.py`` (from *context_text*, or a minimal
    template; an existing context file is kept unless *context_text* is given).
    """
    proposal = settings.SETTINGS["proposal"].parse(proposal)
    folder = Path(path).absolute()
    for directory in (folder, folder / EXTRACTED_DIR, folder / LOGS_DIR):
        shared_dir(directory)  # the team's (runtable.sharing)
    db_path = folder / DB_NAME
    if db_path.exists():
        db = DatabaseFolder(folder)
        existing = db.proposal
        if existing not in (None, proposal):
            db.close()
            raise StoreError(f"{folder} already belongs to proposal {existing}")
    else:
        # Group-writable before WAL mode: SQLite gives -wal/-shm the database's mode.
        sqlite3.connect(db_path).close()
        shared_file(db_path)
        conn = _connect(db_path, readonly=False)
        try:
            schema.migrate(conn)
            schema.with_transaction(conn, lambda: conn.executemany(
                "INSERT OR IGNORE INTO metameta(key, value) VALUES (?, ?)",
                [("db_id", secrets.token_hex(20)), ("concurrent_jobs", 15),
                 ("damnit_python", sys.executable), ("context_python", sys.executable)]))
        finally:
            conn.close()
        db = DatabaseFolder(folder)
    with db.transaction() as conn:
        conn.execute("INSERT INTO metameta(key, value) VALUES ('proposal', ?) "
                     "ON CONFLICT(key) DO UPDATE SET value = excluded.value", (proposal,))
    context = folder / CONTEXT_NAME
    if context_text is not None or not context.exists():
        tmp = context.with_name(context.name + ".tmp")
        tmp.write_text(DEFAULT_CONTEXT if context_text is None else context_text)
        shared_file(tmp)
        os.replace(tmp, context)
    return db
