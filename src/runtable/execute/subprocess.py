"""Executing a run in a separate Python process: :func:`run_in_subprocess`.

The child runs ``python -m runtable.execute`` (the user's chosen interpreter,
``context_python``), which prints its :class:`~.runner.RunOutcome` as one JSON line
on stdout. Its stderr is appended to the run's log. Whatever happens to the child
(a crash, ``os._exit``, a signal, a timeout) the caller gets a RunOutcome back.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import BinaryIO

from ..sharing import shared_dir
from .runner import RunDataName, RunOutcome, log_path_for


def command(
    db_dir: str | Path,
    proposal: int,
    run: int,
    *,
    data: RunDataName = "raw",
    variables: Sequence[str] = (),
    match: Sequence[str] = (),
    cluster: bool | None = None,
    context_file: str | Path | None = None,
    python: str | Path | None = None,
) -> list[str]:
    """The command line that executes one run (also what a Slurm job runs)."""
    cmd = [str(python or sys.executable), "-m", "runtable.execute", str(proposal), str(run),
           "--in", str(db_dir), "--data", data]
    for name in variables:
        cmd += ["--var", name]
    for title in match:
        cmd += ["--match", title]
    if cluster is True:
        cmd.append("--cluster-job")
    elif cluster is False:
        cmd.append("--no-cluster")
    if context_file is not None:
        cmd += ["--context", str(context_file)]
    return cmd


def run_in_subprocess(
    db_dir: str | Path,
    proposal: int,
    run: int,
    *,
    data: RunDataName = "raw",
    variables: Sequence[str] = (),
    match: Sequence[str] = (),
    cluster: bool | None = None,
    context_file: str | Path | None = None,
    python: str | Path | None = None,
    timeout: float | None = None,
    env: Mapping[str, str] | None = None,
    on_start: Callable[[subprocess.Popen], None] | None = None,
) -> RunOutcome:
    """Execute one run with ``python`` (default: this interpreter) in a child process.

    Arguments are those of :func:`~.runner.execute_run`; ``timeout`` (seconds) kills
    the child and everything it started. ``on_start`` is called with the child's
    ``Popen`` once it has started, so that a caller running several in threads can
    stop them (:func:`kill_process_group`). Never raises for what happens in the
    child: a non-zero exit, a signal or a timeout becomes ``RunOutcome.failure``.
    """
    # Absolute: the child runs with cwd=db_dir, where a relative path means nothing.
    db_dir = Path(db_dir).absolute()
    log_path = log_path_for(db_dir, proposal, run)
    shared_dir(log_path.parent)
    cmd = command(db_dir, proposal, run, data=data, variables=variables, match=match,
                  cluster=cluster, context_file=context_file, python=python)
    start = time.perf_counter()
    outcome = RunOutcome(proposal, run, log_path=log_path)
    with open(log_path, "ab") as log:
        try:
            proc = subprocess.Popen(
                cmd, cwd=db_dir, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                stderr=log, env=child_env(env),
                # Own process group: a timeout kills the variables' child processes too.
                start_new_session=True,
            )
        except OSError as exc:
            outcome.failure = (type(exc).__name__, f"Could not start {cmd[0]}: {exc}")
            return _finish(outcome, start, log)
        if on_start is not None:
            on_start(proc)
        try:
            stdout, _ = proc.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            _kill_group(proc)
            proc.communicate()
            outcome.failure = ("Timeout", f"Processing took longer than {timeout:g} s; killed")
            return _finish(outcome, start, log)
        except BaseException:
            _kill_group(proc)
            proc.wait()
            raise
    parsed = _parse(stdout)
    if parsed is not None:
        parsed.durations["subprocess"] = round(time.perf_counter() - start, 6)
        return parsed
    outcome.failure = ("ProcessError", describe_exit(proc.returncode))
    with open(log_path, "ab") as log:
        return _finish(outcome, start, log)


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


def _finish(outcome: RunOutcome, start: float, log: BinaryIO) -> RunOutcome:
    outcome.durations["total"] = round(time.perf_counter() - start, 6)
    assert outcome.failure is not None
    message = outcome.failure[1]
    log.write(f"----- Failed r{outcome.run} (p{outcome.proposal}): {message} -----\n".encode())
    return outcome


def _parse(stdout: bytes) -> RunOutcome | None:
    # The outcome is the last line; anything before it was printed by accident.
    for line in reversed(stdout.decode("utf-8", "replace").splitlines()):
        if line.startswith("{"):
            try:
                return RunOutcome.from_json(line)
            except (ValueError, TypeError):
                return None
    return None


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


def kill_process_group(proc: subprocess.Popen) -> None:
    """Kill a child started by :func:`run_in_subprocess` and everything it started."""
    _kill_group(proc)


def _kill_group(proc: subprocess.Popen) -> None:
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        proc.kill()
