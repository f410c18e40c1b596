"""The client side of the warm parent protocol (:mod:`runtable.jobs.warm`).

:class:`WarmProcess` starts ``python -m runtable.jobs.warm`` in a given interpreter,
writes requests to it as JSON lines and delivers each event it prints to a callback,
from a reader thread. Both :class:`~runtable.jobs.LocalExecutor` (the service's
local jobs) and ``runtable reprocess`` talk to the warm parent through it; what they
do with the events is their own business.

Kept apart from :mod:`runtable.jobs.warm` so that the warm parent, which runs in the
context's interpreter, imports nothing it does not need.
"""

from __future__ import annotations

import contextlib
import json
import subprocess
import tempfile
import threading
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import IO, Any

from runtable.execute.source import EXECUTOR_ENV, JOB_ID_ENV
from runtable.sharing import shared_dir, shared_file

#: The event the reader delivers last, once the warm parent has exited; the warm
#: parent itself never prints it.
EOF = "eof"


def run_request(job_id: int, db_dir: str | Path, job: Any, *, cpus: int,
                mem_bytes: int | None, time_s: float | None, partial: str | None,
                threads: int | None = None, executor: str = "local") -> dict[str, Any]:
    """The warm parent's ``run`` request for ``job`` (anything with ``proposal``,
    ``run`` and a :class:`~runtable.selection.Selection` ``selection``, e.g. a
    :class:`~runtable.jobs.Job`), reported back under ``job_id``; ``partial``: where it
    writes its fragment while it runs (see :mod:`runtable.jobs.errors`); ``executor``
    (``local`` or ``slurm``) and the job id reach the job's environment, from where
    :func:`runtable.execute.source.job_source` records them with its values."""
    return {"op": "run", "id": job_id, "db_dir": str(db_dir), "proposal": job.proposal,
            "run": job.run, **job.selection.fields(), "cpus": cpus,
            "mem_bytes": mem_bytes, "time_s": time_s, "threads": threads,
            "partial": partial, "env": {JOB_ID_ENV: str(job_id), EXECUTOR_ENV: executor}}


class WarmProcess:
    """One warm parent (``python -m runtable.jobs.warm`` in ``python``), started at once.

    ``on_event(process, event)`` is called from a reader thread for every event
    (a dict) the warm parent prints, in order, and last with
    ``{"event": "eof", "returncode": N}`` once it has exited (whatever the reason).

    Its stderr goes to the file ``stderr`` (appended to), or, with
    ``capture_stderr``, to a temporary file; either way :meth:`stderr_tail` tells
    what it printed there. Otherwise it goes where this process's stderr goes.

    ``env``: its environment (default: :func:`runtable.execute.subprocess.child_env`).
    ``fork_first``: the warm parent's ``--fork-first`` (some imports only once the
    first job runs).

    It runs in a session of its own: Ctrl-C in a terminal reaches only this
    process, which decides when the warm parent stops (:meth:`close`).
    """

    def __init__(self, python: str, on_event: Callable[[WarmProcess, dict], None], *,
                 stderr: str | Path | None = None, capture_stderr: bool = False,
                 name: str = "runtable-warm-reader",
                 env: Mapping[str, str] | None = None, fork_first: bool = False) -> None:
        if stderr is not None and capture_stderr:
            raise ValueError("give either a stderr file or capture_stderr, not both")
        self.python = python
        self._on_event = on_event
        self._write_lock = threading.Lock()
        self._stderr_file: IO[bytes] | None = None  # a temporary file we own
        self._stderr_path: Path | None = None
        self._stderr_start = 0  # where this process's part of the stderr file starts
        target: IO[bytes] | None = None
        if stderr is not None:
            self._stderr_path = Path(stderr)
            shared_dir(self._stderr_path.parent)
            target = open(self._stderr_path, "ab")  # noqa: SIM115 - the child keeps it
            shared_file(self._stderr_path)
            self._stderr_start = target.seek(0, 2)
        elif capture_stderr:
            target = self._stderr_file = tempfile.TemporaryFile()  # noqa: SIM115 - close()
        try:
            self._proc = subprocess.Popen(
                [python, "-m", "runtable.jobs.warm", *(["--fork-first"] if fork_first else [])],
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE, stderr=target,
                env=dict(env) if env is not None else _child_env(),
                start_new_session=True)
        except BaseException:
            if self._stderr_file is not None:
                self._stderr_file.close()
            raise
        finally:
            if self._stderr_path is not None and target is not None:
                target.close()
        self._reader = threading.Thread(target=self._read, daemon=True, name=name)
        self._reader.start()

    @property
    def pid(self) -> int:
        """The warm parent's process id."""
        return self._proc.pid

    def poll(self) -> int | None:
        """Its exit code, or None while it runs."""
        return self._proc.poll()

    def wait(self, timeout: float | None = None) -> int | None:
        """Its exit code once it has exited; None if still running after ``timeout`` s."""
        try:
            return self._proc.wait(timeout)
        except subprocess.TimeoutExpired:
            return None

    def send(self, request: dict) -> None:
        """Write one request (see :mod:`runtable.jobs.warm`); OSError if the warm
        parent no longer reads them (it has exited, or was closed)."""
        line = (json.dumps(request) + "\n").encode()
        with self._write_lock:
            stdin = self._proc.stdin
            assert stdin is not None
            try:
                stdin.write(line)
                stdin.flush()
            except ValueError:  # closed by close() or after the warm parent exited
                raise BrokenPipeError("the warm parent's input is closed") from None

    def stderr_tail(self, lines: int = 5) -> str:
        """The last lines the warm parent printed to stderr (why it died, say); empty
        when its stderr is not kept in a file."""
        try:
            if self._stderr_file is not None:
                self._stderr_file.seek(0)
                data = self._stderr_file.read()
            elif self._stderr_path is not None:
                with open(self._stderr_path, "rb") as f:
                    f.seek(self._stderr_start)
                    data = f.read()
            else:
                return ""
        except (OSError, ValueError):
            return ""
        text = data.decode("utf-8", "replace").strip()
        return "\n".join(text.splitlines()[-lines:])

    def close(self, timeout: float = 10, *, join_reader: bool = True) -> None:
        """Stop the warm parent: end of its input makes it kill the jobs it still runs
        and exit; killed if it has not within ``timeout`` s (its jobs die with it, they
        watch their parent). Safe to call twice. ``join_reader=False`` when the
        caller holds a lock its ``on_event`` takes (the ``eof`` event comes later)."""
        self._close_stdin()
        if self.wait(timeout) is None:
            self._proc.kill()
            self._proc.wait()
        if join_reader and threading.current_thread() is not self._reader:
            self._reader.join(5)
        if self._stderr_file is not None:
            # The reader never touches it; stderr_tail() after close() returns "".
            self._stderr_file.close()

    def _close_stdin(self) -> None:
        with self._write_lock, contextlib.suppress(OSError, ValueError):
            assert self._proc.stdin is not None
            self._proc.stdin.close()

    def _read(self) -> None:
        stdout = self._proc.stdout
        assert stdout is not None
        for line in stdout:
            try:
                event = json.loads(line)
            except ValueError:
                continue
            if isinstance(event, dict):
                self._on_event(self, event)
        stdout.close()
        returncode = self._proc.wait()
        self._close_stdin()
        self._on_event(self, {"event": EOF, "returncode": returncode})


def _child_env() -> dict[str, str]:
    # Imported here: runtable.execute loads numpy and h5py, which a Slurm task's
    # worker (it passes its own environment) does not need.
    from runtable.execute.subprocess import child_env

    return child_env()
