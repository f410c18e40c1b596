"""The core of :class:`~runtable.store.folder.DatabaseFolder`: opening ``runs.sqlite``
(read-only too; upgrading an older format), the folder's paths, write transactions,
the per-run files' lock, and the ``runs`` views' columns."""

from __future__ import annotations

import contextlib
import fcntl
import logging
import os
import sqlite3
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Self
from urllib.parse import quote

from ...sharing import repair, shared_dir, shared_file
from .. import schema
from ..errors import (
    DamagedDatabase,
    ReadOnlyError,
    UnsupportedVersionError,
)

log = logging.getLogger("runtable.store.folder")

DB_NAME = "runs.sqlite"
EXTRACTED_DIR = "extracted_data"
LOGS_DIR = "process_logs"
CONTEXT_NAME = "context.py"
BUSY_TIMEOUT_S = 30.0
#: How long closing a writable folder waits for the background update of its
#: columnar copy (a pass is at most a few blocks' work).
CLOSE_WAIT_S = 30.0


def _connect(db_path: Path, readonly: bool) -> sqlite3.Connection:
    if readonly:
        uri = f"file:{quote(str(db_path))}?mode=ro"
        conn = sqlite3.connect(uri, uri=True, isolation_level=None, timeout=BUSY_TIMEOUT_S,
                               check_same_thread=False)
        try:
            conn.execute("SELECT count(*) FROM sqlite_master").fetchone()
        except sqlite3.OperationalError:
            # A WAL database in a folder we cannot write, with no -shm file left
            # by a writer: SQLite can only read it as an immutable file.
            conn.close()
            conn = sqlite3.connect(f"file:{quote(str(db_path))}?immutable=1", uri=True,
                                   isolation_level=None, check_same_thread=False)
    else:
        conn = sqlite3.connect(db_path, isolation_level=None, timeout=BUSY_TIMEOUT_S,
                               check_same_thread=False)
        # WAL: readers never block the writer nor wait for it.
        conn.execute("PRAGMA journal_mode=WAL")
        # FULL: a committed comment survives a power cut, not just a crash.
        conn.execute("PRAGMA synchronous=FULL")
    conn.execute(f"PRAGMA busy_timeout={int(BUSY_TIMEOUT_S * 1000)}")
    conn.execute("PRAGMA foreign_keys=ON")
    return conn


class FolderCore:
    """An open database folder: what every part of
    :class:`~runtable.store.folder.DatabaseFolder` builds on."""

    def __init__(self, path: str | os.PathLike[str], readonly: bool = False, *,
                 defer_slow_upgrade: bool = False) -> None:
        self.path = Path(path).absolute()
        self.readonly = readonly
        if not self.db_path.is_file():
            raise FileNotFoundError(f"No {DB_NAME} in {self.path}")
        self._lock = threading.RLock()
        self._schema_cache: tuple[int, set[str]] | None = None
        _refuse_empty(self.db_path)
        try:
            self.conn = _connect(self.db_path, readonly)
        except sqlite3.OperationalError:
            raise
        except sqlite3.DatabaseError as exc:
            raise DamagedDatabase(self.db_path, exc) from None
        try:
            version = schema.detect_version(self.conn)
            schema.check_openable(version)
            if readonly:
                if version < schema.LATEST_VERSION:
                    raise UnsupportedVersionError(
                        f"{self.db_path} uses data format v{version}; open it once with "
                        f"write access to upgrade it to v{schema.LATEST_VERSION}"
                    )
            else:
                start = schema.migrate(self.conn, defer_slow_upgrade)
                # Earlier versions made these writable by everyone.
                for path in (self.path, self.extracted_dir, self.logs_dir, self.db_path):
                    repair(path)
                # Views made by older versions (or placeholders) may lack columns.
                # Checking costs a scan of the names, so only in those cases.
                if start < schema.LATEST_VERSION or len(self._view_columns()) <= 4:
                    names = set(schema.all_variable_names(self.conn))
                    if not names <= self._view_columns():
                        with self.transaction():
                            self._ensure_view_columns(names)
        except sqlite3.OperationalError:
            self.conn.close()
            raise
        except sqlite3.DatabaseError as exc:
            self.conn.close()
            raise DamagedDatabase(self.db_path, exc) from None
        except BaseException:
            self.conn.close()
            raise

    def finish_upgrade(self) -> bool:
        """Do the steps of the upgrade that opening with ``defer_slow_upgrade`` left
        (an index over every cell); returns whether there were any."""
        self._check_writable()
        with self._lock:
            if not schema.needs_upgrade(self.conn):
                return False
            schema.migrate_runtable(self.conn)
            return True

    @property
    def db_path(self) -> Path:
        return self.path / DB_NAME

    @property
    def extracted_dir(self) -> Path:
        return self.path / EXTRACTED_DIR

    @property
    def logs_dir(self) -> Path:
        return self.path / LOGS_DIR

    @property
    def context_path(self) -> Path:
        return self.path / CONTEXT_NAME

    def run_file(self, proposal: int, run: int) -> Path:
        """Path of the per-run HDF5 file (which may not exist yet)."""
        return self.extracted_dir / f"p{proposal}_r{run}.h5"

    def close(self) -> None:
        if not self.readonly:
            from .. import tablecopy

            # (A process about to end should not stop its keeper in mid-write: the
            # copy would stay behind, costing every reader time until the next write.)
            tablecopy.settle(tablecopy.copy_dir(self.path), CLOSE_WAIT_S)
        self.conn.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        mode = "read-only" if self.readonly else "writable"
        return f"<DatabaseFolder {self.path} ({mode})>"

    def _check_writable(self) -> None:
        if self.readonly:
            raise ReadOnlyError(f"{self.path} was opened read-only")

    @contextlib.contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        """A write transaction: commits on success, rolls back on any exception.

        Every write of the folder passes here, so after each commit the table's
        columnar copy is brought up to date, in the background
        (:func:`runtable.store.tablecopy.schedule`)."""
        self._check_writable()
        with self._lock:
            self.conn.execute("BEGIN IMMEDIATE")
            try:
                yield self.conn
            except BaseException:
                self.conn.execute("ROLLBACK")
                raise
            self.conn.execute("COMMIT")
        self._update_table_copy()

    def _update_table_copy(self) -> None:
        from .. import tablecopy

        try:
            tablecopy.schedule(self.db_path, tablecopy.copy_dir(self.path))
        except Exception:  # the commit stands; a stale copy only costs readers time
            log.warning("Could not update the table's copy in %s", self.path, exc_info=True)

    @contextlib.contextmanager
    def hdf5_lock(self) -> Iterator[None]:
        """Exclusive right to rewrite per-run HDF5 files (across processes)."""
        self._check_writable()
        shared_dir(self.extracted_dir)
        lock_path = self.extracted_dir / ".runtable-merge.lock"
        with self._lock, open(lock_path, "a") as lockfile:
            shared_file(lock_path)
            fcntl.flock(lockfile, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(lockfile, fcntl.LOCK_UN)

    @property
    def data_format_version(self) -> int:
        return schema.detect_version(self.conn)

    def integrity_check(self) -> str:
        """SQLite's integrity check: ``'ok'`` or the problems found."""
        rows = self.conn.execute("PRAGMA integrity_check").fetchall()
        return "\n".join(r[0] for r in rows)

    def _view_columns(self) -> set[str]:
        version = self.conn.execute("PRAGMA schema_version").fetchone()[0]
        if self._schema_cache is None or self._schema_cache[0] != version:
            self._schema_cache = (version, schema.view_columns(self.conn))
        return self._schema_cache[1]

    def _ensure_view_columns(self, names: set[str]) -> bool:
        """Rebuild the views if some *names* are not columns yet (inside a transaction)."""
        if names <= self._view_columns():
            return False
        schema.rebuild_views(self.conn)
        return True


def _refuse_empty(db_path: Path) -> None:
    """SQLite takes an empty file for an empty database and would write a new one
    over it: a zero-byte ``runs.sqlite`` is refused instead (its WAL may hold data)."""
    try:
        empty = db_path.stat().st_size == 0
        wal = db_path.with_name(db_path.name + "-wal")
        empty = empty and not (wal.exists() and wal.stat().st_size > 0)
    except OSError:
        return
    if empty:
        raise DamagedDatabase(db_path, "it is empty: 0 bytes")
