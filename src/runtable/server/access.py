"""How the web app reaches the database folder: one writer, many readers.

* Writes (comments, user values, new variables, time comments) go through a single
  writable :class:`~runtable.store.DatabaseFolder`, opened on the first edit. It
  serialises its own transactions, so requests in several worker threads can edit at
  once; the service's merger writes the same SQLite file through its own connection and
  SQLite's lock orders the two (WAL mode, ``busy_timeout``).
* Reads use one read-only connection per thread: the writer's connection would show
  its own uncommitted transaction, and a read-only connection never blocks a writer.

A folder the server cannot write is still shown; edits then answer 503 saying why.
"""

from __future__ import annotations

import sqlite3
import threading
from pathlib import Path

from ..store import DatabaseFolder, StoreError, UnsupportedVersionError, open_db


class FolderUnwritable(Exception):
    """The database folder cannot be opened for writing (edits are impossible)."""


class FolderAccess:
    """The writer and the per-thread readers of one database folder."""

    def __init__(self, db_dir: Path) -> None:
        self.db_dir = db_dir
        self._writer: DatabaseFolder | None = None
        self._writer_lock = threading.Lock()
        self._local = threading.local()
        self._readers: list[DatabaseFolder] = []
        self._readers_lock = threading.Lock()
        self._proposal: int | None = None

    def writer(self) -> DatabaseFolder:
        """The writable folder (opened on first use); :class:`FolderUnwritable` if not."""
        with self._writer_lock:
            if self._writer is None:
                try:
                    self._writer = open_db(self.db_dir)
                except (OSError, sqlite3.Error, StoreError) as exc:
                    raise FolderUnwritable(
                        f"The server cannot write {self.db_dir} ({exc}); edits are "
                        "disabled until it can") from exc
            return self._writer

    def reader(self) -> DatabaseFolder:
        """This thread's read-only view of the folder."""
        db = getattr(self._local, "db", None)
        if db is None:
            try:
                db = open_db(self.db_dir, readonly=True)
            except UnsupportedVersionError:
                # An older format: opening it writable upgrades it (a reader cannot).
                self.writer()
                db = open_db(self.db_dir, readonly=True)
            self._local.db = db
            with self._readers_lock:
                self._readers.append(db)
        return db

    @property
    def proposal(self) -> int | None:
        """The folder's proposal number (None only for a folder without one)."""
        if self._proposal is None:
            self._proposal = self.reader().proposal
        return self._proposal

    def run_proposal(self, run: int) -> int | None:
        """The proposal of ``run`` in ``run_info``, or None when the run is unknown.

        The folder's own proposal wins when a folder holds runs of several.
        """
        rows = self.reader().run_proposals(run)
        if not rows:
            return None
        return self.proposal if self.proposal in rows else rows[0]

    def close(self) -> None:
        """Close every connection (the app is shutting down)."""
        with self._writer_lock:
            if self._writer is not None:
                self._writer.close()
                self._writer = None
        with self._readers_lock:
            for db in self._readers:
                db.close()
            self._readers.clear()
