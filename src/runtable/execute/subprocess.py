"""Running Python in the context's environment, in a separate process.

Every child of runtable that runs the user's code does it in the folder's
``context_python`` (:func:`child_env`), prints one JSON line of answer on stdout and is
killed with its whole process group when it takes too long: :func:`run_json_child`,
used by the queue's check that the context file loads
(:mod:`runtable.jobs.ctxcheck`) and the editor's check of a text
(:mod:`runtable.server.contextcheck`). :func:`command` is the command line that
executes one run in a new interpreter (``python -m runtable.execute``: tests and
benchmarks run it, through :mod:`runtable.testing.subprocess_run`);
:func:`describe_exit` puts a child's end in words.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypedDict, Unpack

from ..selection import RAW, Selection


class CommandOptions(TypedDict, total=False):
    """What :func:`command` takes besides the run, as keywords (so that a caller can
    pass them on without spelling them again)."""

    #: Which variables (default: those of raw data).
    selection: Selection
    #: The context file (default: ``<db_dir>/context.py``).
    context_file: str | Path | None
    #: The interpreter (default: this one).
    python: str | Path | None


def command(db_dir: str | Path, proposal: int, run: int,
            **options: Unpack[CommandOptions]) -> list[str]:
    """The command line of ``python -m runtable.execute`` for one run (read back by
    :func:`runtable.execute.__main__.parse_args`).

        >>> command("/db", 1234, 5, python="python3")
        ['python3', '-m', 'runtable.execute', '1234', '5', '--in', '/db', '--data', 'raw']
    """
    selection = options.get("selection", RAW)
    context_file = options.get("context_file")
    cmd = [str(options.get("python") or sys.executable), "-m", "runtable.execute",
           str(proposal), str(run), "--in", str(db_dir), "--data", selection.data]
    for name in selection.variables:
        cmd += ["--var", name]
    for title in selection.match:
        cmd += ["--match", title]
    if selection.cluster is True:
        cmd.append("--cluster-job")
    elif selection.cluster is False:
        cmd.append("--no-cluster")
    if context_file is not None:
        cmd += ["--context", str(context_file)]
    return cmd


@dataclass
class ChildAnswer:
    """What a child that answers with one JSON line left behind (:func:`run_json_child`).

    ``line``: its answer, the last line of stdout that starts with ``{`` (lines
    before it were printed by accident), or None; ``stderr``: what it wrote there,
    when the caller asked for it as a pipe."""

    line: str | None
    returncode: int | None
    stderr: bytes = b""
    timed_out: bool = False


def run_json_child(cmd: Sequence[str], *, cwd: str | Path, timeout: float | None,
                   input: bytes | None = None, stderr: Any = subprocess.PIPE,
                   env: Mapping[str, str] | None = None) -> ChildAnswer:
    """Run ``cmd`` (Python in the context's environment: :func:`child_env` plus ``env``)
    in ``cwd`` and read its one JSON line of answer.

    The child gets a session of its own, so that a time-out (``timeout`` seconds) kills
    whatever it started too, and so does an exception in the caller (re-raised). stdin
    is ``input``, or nothing. ``stderr``: a pipe (the default, then in the answer) or
    an open file. Raises ``OSError`` only when the child cannot be started."""
    proc = subprocess.Popen(
        list(cmd), cwd=cwd, env=child_env(env),
        stdin=subprocess.DEVNULL if input is None else subprocess.PIPE,
        stdout=subprocess.PIPE, stderr=stderr, start_new_session=True)
    try:
        out, err = proc.communicate(input, timeout=timeout)
    except subprocess.TimeoutExpired:
        _kill_group(proc)
        proc.communicate()
        return ChildAnswer(None, proc.returncode, timed_out=True)
    except BaseException:
        _kill_group(proc)
        proc.wait()
        raise
    line = next((line for line in reversed(out.decode("utf-8", "replace").splitlines())
                 if line.startswith("{")), None)
    return ChildAnswer(line, proc.returncode, err or b"")


def describe_exit(returncode: int) -> str:
    """Why a processing process ended without reporting, in words."""
    if returncode < 0:
        try:
            name = signal.Signals(-returncode).name
        except ValueError:
            name = f"signal {-returncode}"
        return f"The processing process was killed by {name}"
    if returncode == 0:
        return "The processing process exited without reporting a result"
    return f"The processing process exited with code {returncode}"


def child_env(extra: Mapping[str, str] | None = None) -> dict[str, str]:
    """The environment for a process running ``runtable`` in the context's Python:
    this one's, plus ``PYTHONPATH`` for a source checkout, plus ``extra``."""
    env = dict(os.environ)
    src = _source_checkout()
    if src is not None:
        # A source checkout isn't installed in the target interpreter; an installed
        # runtable is, and its site-packages must not leak into another Python.
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [src, env.get("PYTHONPATH")]))
    env.setdefault("PYTHONUNBUFFERED", "1")
    if extra:
        env.update(extra)
    return env


def _source_checkout() -> str | None:
    import runtable

    parent = Path(runtable.__file__).resolve().parent.parent
    if parent.name in ("site-packages", "dist-packages"):
        return None
    return str(parent)


def _kill_group(proc: subprocess.Popen) -> None:
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        proc.kill()
