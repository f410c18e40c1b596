"""Executing one run in a new interpreter: :func:`run_in_subprocess`, for tests and
benchmarks.

runtable itself executes runs in a warm parent's forked children
(:mod:`runtable.jobs.warm`) or in Slurm tasks; this is the plain way, a new
``python -m runtable.execute`` per run, which tests use to check that command and
benchmarks use as the cold baseline.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from pathlib import Path
from typing import BinaryIO, Unpack

from ..execute.runner import RunOutcome, log_path_for
from ..execute.subprocess import CommandOptions, command, describe_exit, run_json_child
from ..sharing import shared_dir


def run_in_subprocess(
    db_dir: str | Path,
    proposal: int,
    run: int,
    *,
    timeout: float | None = None,
    env: Mapping[str, str] | None = None,
    **options: Unpack[CommandOptions],
) -> RunOutcome:
    """Execute one run in a child process: ``python -m runtable.execute`` with ``python``
    (default: this interpreter).

    ``options`` are those of :func:`~runtable.execute.subprocess.command` (``selection``,
    ``context_file``, ``python``); ``timeout`` (seconds) kills the child and everything
    it started; ``env`` is added to the child's environment. The child's stderr is
    appended to the run's log. Never raises for what happens in the child: a non-zero
    exit, a signal or a timeout becomes ``RunOutcome.failure``.
    """
    # Absolute: the child runs with cwd=db_dir, where a relative path means nothing.
    db_dir = Path(db_dir).absolute()
    log_path = log_path_for(db_dir, proposal, run)
    shared_dir(log_path.parent)
    cmd = command(db_dir, proposal, run, **options)
    start = time.perf_counter()
    outcome = RunOutcome(proposal, run, log_path=log_path)
    with open(log_path, "ab") as log:
        try:
            answer = run_json_child(cmd, cwd=db_dir, timeout=timeout, stderr=log, env=env)
        except OSError as exc:
            outcome.failure = (type(exc).__name__, f"Could not start {cmd[0]}: {exc}")
            return _finish(outcome, start, log)
        if answer.timed_out:
            outcome.failure = ("Timeout", f"Processing took longer than {timeout:g} s; killed")
            return _finish(outcome, start, log)
        parsed = _parse(answer.line)
        if parsed is not None:
            parsed.durations["subprocess"] = round(time.perf_counter() - start, 6)
            return parsed
        outcome.failure = ("ProcessError", describe_exit(answer.returncode or 0))
        return _finish(outcome, start, log)


def _finish(outcome: RunOutcome, start: float, log: BinaryIO) -> RunOutcome:
    outcome.durations["total"] = round(time.perf_counter() - start, 6)
    assert outcome.failure is not None
    message = outcome.failure[1]
    log.write(f"----- Failed r{outcome.run} (p{outcome.proposal}): {message} -----\n".encode())
    return outcome


def _parse(line: str | None) -> RunOutcome | None:
    if line is None:
        return None
    try:
        return RunOutcome.from_json(line)
    except (ValueError, TypeError):
        return None
