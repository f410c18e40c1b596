"""A batch of runs handed to Slurm as one job array: its folder in the database folder.

The service and the array's tasks (:mod:`runtable.jobs.slurm_worker`, on other
machines) share nothing but the file system, so a batch is a folder that both read
and write, each file with one writer::

    slurm_batches/<name>/
        manifest.json       the jobs (each an item: what to execute, and where its
                            run writes its fragment meanwhile), the database folder,
                            limits; written once by the service before ``sbatch``
        submitted.json      the array's Slurm job id and number of tasks, written by
                            the service after ``sbatch``
        claims/<index>      made with O_EXCL: by the task that processes item <index>
                            (content: its task id), or by the service when the job is
                            cancelled before any task took it (content: ``cancelled``)
        cancel/<job id>     the service asks the task running that job to stop it
        task-<n>.events     JSON lines appended by task n: ``worker`` (it started),
                            ``started`` / ``finished`` per run (the warm parent's own
                            events, see :mod:`runtable.jobs.warm`), ``released`` (a run
                            it stopped because the task's time ran out; queued again),
                            ``exit`` (it ended on its own)
        task-<n>.log        task n's own output (each run logs to its process_logs file)

Claiming with ``O_EXCL`` is atomic on local disks, NFS (v3 and later) and GPFS, so
every item is processed by at most one task, and a task that starts late simply finds
less to do (the tasks *pull* work: see ``docs/adr/008-slurm-job-arrays-pull-workers.md``).
Its folders and files are the team's, like the rest of the database folder
(:mod:`runtable.sharing`). This module imports only the standard library (and
:mod:`runtable.jobs.model`, :mod:`runtable.sharing`): the workers load it before
deciding whether there is anything to do.
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import shutil
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from runtable.sharing import FILE_MODE, shared_dir

from ..selection import Selection
from .model import Job

#: Where batches live, in the database folder.
BATCHES_DIR = "slurm_batches"
MANIFEST = "manifest.json"
SUBMITTED = "submitted.json"
CANCELLED = "cancelled"
FORMAT_VERSION = 1


def _job_to_json(job: Job) -> dict[str, Any]:
    return {"id": job.id, "proposal": job.proposal, "run": job.run,
            **job.selection.fields()}


def _job_from_json(d: Mapping[str, Any]) -> Job:
    return Job.of(Selection.from_fields(d), id=int(d["id"]), proposal=int(d["proposal"]),
                  run=int(d["run"]), executor="slurm")


@dataclass(frozen=True)
class Manifest:
    """What every task of a batch needs to know."""

    db_dir: str
    #: The jobs, by what they execute (id, proposal, run, data, variables, match,
    #: cluster); a task reports on each under its job id.
    items: tuple[Job, ...]
    #: Wall time of one run (``job_time_limit_s``, else ``slurm_time``).
    run_time_s: float
    #: Wall time of a task (``slurm_time``): a task stops taking runs before it ends.
    task_time_s: float
    #: Memory one run may use (the task's ``--mem``), checked by the warm parent.
    mem_bytes: int | None
    #: CPUs of a task (``--cpus-per-task``): thread pools are sized to it.
    cpus: int
    #: For each item, where its run writes its fragment while it runs: what it had
    #: finished is kept if it dies (see :mod:`runtable.jobs.errors`).
    partials: tuple[str, ...] = ()

    def partial(self, index: int) -> str | None:
        return self.partials[index] if index < len(self.partials) else None

    def to_json(self) -> str:
        return json.dumps({"version": FORMAT_VERSION, "db_dir": self.db_dir,
                           "run_time_s": self.run_time_s, "task_time_s": self.task_time_s,
                           "mem_bytes": self.mem_bytes, "cpus": self.cpus,
                           "items": [_job_to_json(j) for j in self.items],
                           "partials": list(self.partials)})

    @classmethod
    def from_json(cls, text: str) -> Manifest:
        d = json.loads(text)
        if d.get("version") != FORMAT_VERSION:
            raise ValueError(f"batch manifest version {d.get('version')!r}, expected "
                             f"{FORMAT_VERSION} (a different runtable wrote it)")
        return cls(db_dir=d["db_dir"], items=tuple(_job_from_json(i) for i in d["items"]),
                   run_time_s=float(d["run_time_s"]), task_time_s=float(d["task_time_s"]),
                   mem_bytes=d.get("mem_bytes"), cpus=int(d.get("cpus") or 1),
                   partials=tuple(d.get("partials") or ()))


class BatchFolder:
    """One batch's folder (see the module docstring); both sides use it."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self._manifest: Manifest | None = None
        self._offsets: dict[str, int] = {}

    @classmethod
    def create(cls, db_dir: str | Path, manifest: Manifest) -> BatchFolder:
        """A new batch folder under ``<db_dir>/slurm_batches`` holding ``manifest``."""
        name = time.strftime("%Y%m%d-%H%M%S-") + secrets.token_hex(4)
        batch = cls(Path(db_dir) / BATCHES_DIR / name)
        shared_dir(batch.path / "claims")
        shared_dir(batch.path / "cancel")
        _write_atomic(batch.path / MANIFEST, manifest.to_json())
        batch._manifest = manifest
        return batch

    def manifest(self) -> Manifest:
        if self._manifest is None:
            self._manifest = Manifest.from_json((self.path / MANIFEST).read_text())
        return self._manifest

    # -- the Slurm job --------------------------------------------------------------------

    def set_submitted(self, slurm_id: str, tasks: int) -> None:
        """Record the array's job id and its number of tasks (after ``sbatch``)."""
        _write_atomic(self.path / SUBMITTED, json.dumps({"slurm_id": slurm_id,
                                                         "tasks": tasks}))

    def submitted(self) -> tuple[str, int] | None:
        """``(slurm_id, tasks)``, or None when the batch was never submitted."""
        try:
            d = json.loads((self.path / SUBMITTED).read_text())
            return str(d["slurm_id"]), int(d["tasks"])
        except (OSError, ValueError, KeyError, TypeError):
            return None

    # -- claims and cancel requests ----------------------------------------------------------

    def claim(self, index: int, owner: str) -> bool:
        """Take item ``index`` for ``owner`` (a task id, or :data:`CANCELLED`); False when
        someone took it first."""
        try:
            fd = _create(self.path / "claims" / str(index), os.O_EXCL)
        except (FileExistsError, FileNotFoundError):  # taken, or the batch is gone
            return False
        try:
            os.write(fd, owner.encode())
        finally:
            os.close(fd)
        return True

    def claims(self) -> dict[int, str]:
        """Item index -> who took it (an owner being written reads as "")."""
        out = {}
        with contextlib.suppress(FileNotFoundError):
            for entry in os.scandir(self.path / "claims"):
                if entry.name.isdigit():
                    try:
                        out[int(entry.name)] = Path(entry.path).read_text()
                    except OSError:
                        out[int(entry.name)] = ""
        return out

    def request_cancel(self, job_id: int) -> None:
        """Ask the task running job ``job_id`` to stop it."""
        with contextlib.suppress(FileExistsError):
            os.close(_create(self.path / "cancel" / str(job_id), os.O_EXCL))

    def cancel_requested(self, job_id: int) -> bool:
        return (self.path / "cancel" / str(job_id)).exists()

    # -- events ----------------------------------------------------------------------------

    def events_path(self, task: int) -> Path:
        return self.path / f"task-{task}.events"

    def log_path(self, task: int) -> Path:
        return self.path / f"task-{task}.log"

    def append_event(self, task: int, event: Mapping[str, Any]) -> None:
        """Append one event of ``task`` (one ``write`` of one line: readers never see
        half of it once it is there)."""
        line = (json.dumps({**event, "task": task, "at": round(time.time(), 3)},
                           separators=(",", ":")) + "\n").encode()
        fd = _create(self.events_path(task), os.O_APPEND)
        try:
            while line:
                line = line[os.write(fd, line):]
        finally:
            os.close(fd)

    def read_events(self) -> list[dict[str, Any]]:
        """Events appended by any task since the last call (complete lines only)."""
        out: list[dict[str, Any]] = []
        try:
            entries = sorted(e.name for e in os.scandir(self.path) if e.name.endswith(".events"))
        except FileNotFoundError:
            return out
        for name in entries:
            offset = self._offsets.get(name, 0)
            try:
                with open(self.path / name, "rb") as f:
                    f.seek(offset)
                    data = f.read()
            except OSError:
                continue
            end = data.rfind(b"\n") + 1  # a line after the last newline is being written
            if not end:
                continue
            self._offsets[name] = offset + end
            lines = data[:end].splitlines()
            for line in lines:
                try:
                    event = json.loads(line)
                except ValueError:
                    continue
                if isinstance(event, dict):
                    out.append(event)
        return out

    def log_tail(self, task: int, lines: int = 10) -> str:
        """The last lines task ``task`` printed (why it died, say)."""
        try:
            with open(self.log_path(task), "rb") as f:
                f.seek(0, 2)
                f.seek(max(0, f.tell() - 8192))
                text = f.read().decode("utf-8", "replace")
        except OSError:
            return ""
        return "\n".join(text.strip().splitlines()[-lines:])

    def remove(self) -> None:
        """Delete the batch folder (and ``slurm_batches`` once it is empty)."""
        shutil.rmtree(self.path, ignore_errors=True)
        with contextlib.suppress(OSError):
            self.path.parent.rmdir()


def find_batches(db_dir: str | Path) -> Iterable[BatchFolder]:
    """The batch folders of ``db_dir`` (oldest first)."""
    root = Path(db_dir) / BATCHES_DIR
    if not root.is_dir():
        return []
    return [BatchFolder(p) for p in sorted(root.iterdir()) if p.is_dir()]


def _create(path: Path, flags: int) -> int:
    """Open ``path`` for writing, creating it as a file of the team's
    (:data:`runtable.sharing.FILE_MODE`, whatever the umask)."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | flags, FILE_MODE)
    with contextlib.suppress(OSError):
        os.fchmod(fd, FILE_MODE)
    return fd


def _write_atomic(path: Path, text: str) -> None:
    tmp = path.with_name(f".{path.name}.{secrets.token_hex(4)}.tmp")
    tmp.write_text(text)
    os.chmod(tmp, FILE_MODE)
    os.replace(tmp, path)
