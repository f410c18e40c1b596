"""One writer per database folder, enforced by an OS lock held for the writer's lifetime.

The process that merges results and runs the job queue of a folder (the service under
``runtable serve``, or ``runtable reprocess`` when no service runs) calls
:func:`become_writer` first and keeps the returned :class:`WriterLock` until it stops.
A second would-be writer gets :class:`FolderBusy`, whose message names the running
one (command, process id, host, URL).

The lock is ``flock`` on ``<db>/.runtable-writer.lock``, which also holds the writer's
description as JSON. The kernel drops the lock when its process ends, however it ends
(``kill -9`` too), so a file left behind never blocks anyone. The file is never removed
by runtable (removing it could race a process that is opening it); a person must not
remove it while a writer runs.

``flock`` locks belong to one open file, not to the process, so reading the file from
the writer's own process (or from anywhere) never drops the lock. Edits people make
(comments, typed-in values, settings) are single SQLite transactions, safe from any
process at any time: they do not need this lock.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import socket
import threading
import time
from dataclasses import asdict, dataclass
from pathlib import Path

from ..sharing import FILE_MODE, shared_file
from .errors import StoreError

LOCK_NAME = ".runtable-writer.lock"

# Locks this process holds, by folder: a second attempt from the same process is
# refused without opening the file again.
_held: dict[Path, WriterLock] = {}
_held_lock = threading.Lock()


@dataclass(frozen=True)
class WriterInfo:
    """Who writes a folder: the command, its process and host, and its URL if it serves."""

    command: str
    pid: int
    host: str
    started: float
    url: str | None = None

    def describe(self) -> str:
        """``"runtable serve (process 123 on host1, http://…)"``."""
        where = f"process {self.pid}" + (f" on {self.host}" if self.host else "")
        if self.url:
            where += f", {self.url}"
        return f"{self.command} ({where})"


class FolderBusy(StoreError):
    """Another process is the folder's writer; ``holder`` describes it (None if it
    could not be read)."""

    def __init__(self, db_dir: Path, holder: WriterInfo | None, command: str) -> None:
        self.db_dir = db_dir
        self.holder = holder
        running = holder.describe() if holder is not None else "another runtable process"
        super().__init__(
            f"{running} is already writing the database folder {db_dir}, and only one "
            f"process may write a folder; {command} was not started. "
            + (_HINT_SERVE if holder is not None and holder.url else _HINT_OTHER))


_HINT_SERVE = ("Use that server (its web page, or `runtable reprocess`, which hands runs "
               "to it), or stop it first.")
_HINT_OTHER = "Wait until it has finished, or stop it first."


class WriterLock:
    """The right to write one database folder, held until :meth:`release`."""

    def __init__(self, db_dir: Path, fd: int, info: WriterInfo) -> None:
        self.db_dir = db_dir
        self.info = info
        self._fd: int | None = fd

    @property
    def held(self) -> bool:
        return self._fd is not None

    def update(self, *, url: str | None) -> None:
        """Record the URL this writer serves (named to anyone it refuses)."""
        self.info = WriterInfo(**{**asdict(self.info), "url": url})
        if self._fd is not None:
            _write_info(self._fd, self.info)

    def release(self) -> None:
        """Give up the lock (idempotent). The file stays: removing it could race a
        process that is opening it."""
        with _held_lock:
            if _held.get(self.db_dir) is self:
                del _held[self.db_dir]
        fd, self._fd = self._fd, None
        if fd is not None:
            with contextlib.suppress(OSError):
                fcntl.flock(fd, fcntl.LOCK_UN)
            os.close(fd)

    def __enter__(self) -> WriterLock:
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()


def become_writer(db_dir: str | os.PathLike[str], command: str,
                  url: str | None = None) -> WriterLock:
    """Take the folder's writer lock for ``command`` (e.g. ``"runtable serve"``), or
    raise :class:`FolderBusy` naming the process that holds it. :class:`StoreError`
    when the lock file cannot be created (a folder this user cannot write)."""
    folder = Path(db_dir).absolute()
    with _held_lock:
        mine = _held.get(folder)
        if mine is not None:
            raise FolderBusy(folder, mine.info, command)
        try:
            fd = _open_lock_file(folder / LOCK_NAME)
        except OSError as exc:
            raise StoreError(f"Cannot write the database folder {folder} "
                             f"({exc.strerror or exc}); {command} needs to") from None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            holder = _read_info(fd)
            os.close(fd)
            raise FolderBusy(folder, holder, command) from None
        info = WriterInfo(command=command, pid=os.getpid(), host=socket.gethostname(),
                          started=time.time(), url=url)
        _write_info(fd, info)
        lock = WriterLock(folder, fd, info)
        _held[folder] = lock
        return lock


def current_writer(db_dir: str | os.PathLike[str]) -> WriterInfo | None:
    """The process writing ``db_dir`` now, or None when no one holds the lock."""
    folder = Path(db_dir).absolute()
    with _held_lock:
        mine = _held.get(folder)
    if mine is not None:
        return mine.info
    try:
        fd = os.open(folder / LOCK_NAME, os.O_RDONLY)
    except OSError:
        return None
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
        except OSError:
            return _read_info(fd) or WriterInfo("another runtable process", 0, "", 0.0)
        fcntl.flock(fd, fcntl.LOCK_UN)
        return None
    finally:
        os.close(fd)


def _open_lock_file(path: Path) -> int:
    # Group members run the same commands on a shared folder (runtable.sharing).
    fd = os.open(path, os.O_RDWR | os.O_CREAT, FILE_MODE)
    os.set_inheritable(fd, False)  # children (jobs) must not keep the lock alive
    shared_file(path)
    return fd


def _write_info(fd: int, info: WriterInfo) -> None:
    data = (json.dumps(asdict(info)) + "\n").encode()
    with contextlib.suppress(OSError):
        os.ftruncate(fd, 0)
        os.pwrite(fd, data, 0)


def _read_info(fd: int) -> WriterInfo | None:
    try:
        data = json.loads(os.pread(fd, 65536, 0) or b"null")
        return WriterInfo(command=str(data["command"]), pid=int(data["pid"]),
                          host=str(data.get("host", "")), started=float(data["started"]),
                          url=data.get("url"))
    except (OSError, ValueError, KeyError, TypeError):
        return None
