"""``<db_dir>/jobs.sqlite``: the job queue on disk, so a restart loses nothing.

Owned by the jobs package (not part of the reference's data format). WAL mode,
one row per job; the service process is the only writer.
"""

from __future__ import annotations

import json
import sqlite3
import threading
import time
from collections.abc import Iterable
from pathlib import Path

from ..sharing import shared_file
from .model import Job, JobState

FILENAME = "jobs.sqlite"

_SCHEMA = """
CREATE TABLE IF NOT EXISTS jobs (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    proposal INTEGER NOT NULL,
    run INTEGER NOT NULL,
    data TEXT NOT NULL,
    variables TEXT NOT NULL,      -- JSON list
    match TEXT NOT NULL,          -- JSON list
    cluster INTEGER,              -- NULL = all, 0 / 1
    executor TEXT NOT NULL,
    state TEXT NOT NULL,
    external_id TEXT,
    submitted_at REAL NOT NULL,
    started_at REAL,
    finished_at REAL,
    message TEXT,
    fragment TEXT
);
CREATE INDEX IF NOT EXISTS jobs_state ON jobs(state);
"""

_COLUMNS = ("id", "proposal", "run", "data", "variables", "match", "cluster", "executor",
            "state", "external_id", "submitted_at", "started_at", "finished_at", "message",
            "fragment")


class JobStore:
    """Jobs persisted in SQLite. Thread-safe (one connection behind a lock)."""

    def __init__(self, db_dir: str | Path) -> None:
        self.path = Path(db_dir) / FILENAME
        self._lock = threading.Lock()
        new = not self.path.exists()
        self._conn = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None,
                                     timeout=30)
        if new:
            # Before WAL mode: SQLite gives its -wal/-shm files the database's mode.
            self._conn.execute("PRAGMA user_version").fetchone()
            shared_file(self.path)
        self._conn.execute("PRAGMA journal_mode=WAL")
        self._conn.execute("PRAGMA synchronous=NORMAL")
        self._conn.executescript(_SCHEMA)

    def close(self) -> None:
        with self._lock:
            self._conn.close()

    def add(self, job: Job) -> Job:
        """Insert ``job`` (its id is ignored) and return it with the new id."""
        row = _to_row(job)
        del row["id"]
        with self._lock:
            cur = self._conn.execute(
                f"INSERT INTO jobs ({', '.join(row)}) VALUES ({', '.join('?' * len(row))})",
                tuple(row.values()),
            )
        return job.copy(id=cur.lastrowid)

    def save(self, job: Job) -> None:
        """Write every field of an existing job."""
        row = _to_row(job)
        job_id = row.pop("id")
        with self._lock:
            self._conn.execute(
                f"UPDATE jobs SET {', '.join(f'{k} = ?' for k in row)} WHERE id = ?",
                (*row.values(), job_id),
            )

    def get(self, job_id: int) -> Job | None:
        with self._lock:
            row = self._conn.execute(
                f"SELECT {', '.join(_COLUMNS)} FROM jobs WHERE id = ?", (job_id,)
            ).fetchone()
        return _from_row(row) if row else None

    def list(self, states: Iterable[JobState] | None = None, limit: int | None = None
             ) -> list[Job]:
        """Jobs in submission order, optionally only in some states."""
        sql = f"SELECT {', '.join(_COLUMNS)} FROM jobs"
        args: list[object] = []
        if states is not None:
            states = list(states)
            sql += f" WHERE state IN ({', '.join('?' * len(states))})"
            args += [s.value for s in states]
        sql += " ORDER BY id"
        if limit is not None:
            sql += " LIMIT ?"
            args.append(limit)
        with self._lock:
            rows = self._conn.execute(sql, args).fetchall()
        return [_from_row(r) for r in rows]

    def prune(self, older_than_s: float) -> int:
        """Forget finished jobs that ended more than ``older_than_s`` seconds ago."""
        cutoff = time.time() - older_than_s
        with self._lock:
            cur = self._conn.execute(
                "DELETE FROM jobs WHERE state IN ('done', 'failed', 'cancelled') "
                "AND finished_at < ?", (cutoff,))
        return cur.rowcount


def _to_row(job: Job) -> dict[str, object]:
    return {
        "id": job.id, "proposal": job.proposal, "run": job.run, "data": job.data,
        "variables": json.dumps(list(job.variables)), "match": json.dumps(list(job.match)),
        "cluster": None if job.cluster is None else int(job.cluster),
        "executor": job.executor, "state": job.state.value, "external_id": job.external_id,
        "submitted_at": job.submitted_at, "started_at": job.started_at,
        "finished_at": job.finished_at, "message": job.message, "fragment": job.fragment,
    }


def _from_row(row: tuple) -> Job:
    d = dict(zip(_COLUMNS, row))
    return Job(
        id=d["id"], proposal=d["proposal"], run=d["run"], data=d["data"],
        variables=tuple(json.loads(d["variables"])), match=tuple(json.loads(d["match"])),
        cluster=None if d["cluster"] is None else bool(d["cluster"]),
        executor=d["executor"], state=JobState(d["state"]), external_id=d["external_id"],
        submitted_at=d["submitted_at"], started_at=d["started_at"],
        finished_at=d["finished_at"], message=d["message"], fragment=d["fragment"],
    )


def active_jobs(db_dir: str | Path) -> list[Job]:
    """Queued and running jobs of ``db_dir``, oldest first, read without a JobQueue.

    Opens ``jobs.sqlite`` read-only (never creating or changing it), so the web server
    can show processing state beside a service or without one; [] when there is none.
    """
    from urllib.parse import quote

    path = Path(db_dir) / FILENAME
    if not path.is_file():
        return []
    try:
        conn = sqlite3.connect(f"file:{quote(str(path))}?mode=ro", uri=True, timeout=5)
    except sqlite3.Error:
        return []
    try:
        rows = conn.execute(
            f"SELECT {', '.join(_COLUMNS)} FROM jobs WHERE state IN (?, ?) ORDER BY id",
            (JobState.QUEUED.value, JobState.RUNNING.value)).fetchall()
    except sqlite3.Error:
        return []  # no jobs table yet, or a file that is not ours
    finally:
        conn.close()
    return [_from_row(r) for r in rows]
