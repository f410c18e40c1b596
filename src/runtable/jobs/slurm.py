"""Jobs as Slurm batch jobs: ``sbatch`` to submit, ``squeue``/``scontrol`` to follow,
``scancel`` to cancel.

Needs no accounting daemon: no ``sacct``, no ``--clusters``. A finished job stays
visible to ``squeue -t all`` and ``scontrol show job`` for Slurm's ``MinJobAge``;
a job Slurm no longer knows is reported failed ("vanished"). The job runs
``python -m runtable.execute ...`` in the database folder and appends its output to
the run's log; its fragment lands in ``extracted_data`` for the service to merge.
"""

from __future__ import annotations

import re
import shlex
import shutil
import subprocess
import time
from pathlib import Path

from runtable.execute.runner import log_path_for
from runtable.execute.source import EXECUTOR_ENV, JOB_ID_ENV
from runtable.execute.subprocess import child_env, command
from runtable.sharing import shared_dir

from .executor import Executor
from .limits import Limits
from .model import Job, JobState, Update

CLIENT_TIMEOUT_S = 30.0
#: Slurm states after which a job never runs again, and what they mean for us.
_FINAL = {
    "COMPLETED": (JobState.DONE, None),
    "CANCELLED": (JobState.CANCELLED, "Cancelled"),
    "FAILED": (JobState.FAILED, "ProcessingCrashed"),
    "TIMEOUT": (JobState.FAILED, "TimeLimitExceeded"),
    "OUT_OF_MEMORY": (JobState.FAILED, "MemoryLimitExceeded"),
    "NODE_FAIL": (JobState.FAILED, "ProcessingCrashed"),
    "BOOT_FAIL": (JobState.FAILED, "ProcessingCrashed"),
    "DEADLINE": (JobState.FAILED, "TimeLimitExceeded"),
    "PREEMPTED": (JobState.FAILED, "ProcessingCrashed"),
    "SPECIAL_EXIT": (JobState.FAILED, "ProcessingCrashed"),
}
_DROP_ENV = ("DISPLAY", "LD_PRELOAD")


class SlurmError(RuntimeError):
    """A Slurm command failed."""


_available: tuple[float, str | None] = (-1e9, None)
_AVAILABLE_TTL_S = 30.0


def slurm_available(cached: bool = True) -> str | None:
    """None when Slurm answers here, else why not (cached for 30 s)."""
    global _available
    now = time.monotonic()
    if cached and now - _available[0] < _AVAILABLE_TTL_S:
        return _available[1]
    _available = (now, _slurm_available())
    return _available[1]


def _slurm_available() -> str | None:
    if shutil.which("sbatch") is None:
        return "sbatch is not installed"
    try:
        proc = subprocess.run(["scontrol", "ping"], capture_output=True, text=True,
                              timeout=CLIENT_TIMEOUT_S)
    except (OSError, subprocess.TimeoutExpired) as exc:
        return f"scontrol ping failed: {exc}"
    if "is UP" not in proc.stdout:
        return f"slurmctld is not answering: {(proc.stdout + proc.stderr).strip()}"
    return None


def job_env() -> dict[str, str]:
    """The environment a Slurm job gets: ours, without variables of an enclosing Slurm
    job (which would confuse the new one), the display and preloaded libraries."""
    env = child_env()
    for key in list(env):
        if key.startswith("SLURM_") or key in _DROP_ENV:
            del env[key]
    return env


def sbatch_command(job: Job, limits: Limits, settings: dict) -> list[str]:
    """The ``sbatch`` command line for ``job`` (reference behaviour §2)."""
    db_dir = Path(settings["db_dir"]).absolute()
    log_path = log_path_for(db_dir, job.proposal, job.run)
    inner = command(db_dir, job.proposal, job.run, data=job.data,  # type: ignore[arg-type]
                    variables=job.variables, match=job.match, cluster=job.cluster,
                    python=settings.get("context_python") or None)
    cmd = ["sbatch", "--parsable", "--job-name", f"r{job.run}-p{job.proposal}-runtable",
           "--time", limits.slurm_time, "--cpus-per-task", str(limits.cpus),
           "--mem", limits.mem, "-o", str(log_path), "--open-mode=append",
           "--chdir", str(db_dir),
           f"--export=ALL,{JOB_ID_ENV}={job.id},{EXECUTOR_ENV}=slurm"]
    if settings.get("slurm_reservation"):
        cmd += ["--reservation", str(settings["slurm_reservation"])]
    elif settings.get("slurm_partition"):
        cmd += ["--partition", str(settings["slurm_partition"])]
    cmd += ["--wrap", shlex.join(inner)]
    return cmd


def _run(cmd: list[str], check: bool = True) -> subprocess.CompletedProcess[str]:
    try:
        # umask 002: Slurm creates the job's log with the submitter's umask, and the
        # job's own files are the team's (runtable.sharing).
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=CLIENT_TIMEOUT_S,
                              stdin=subprocess.DEVNULL, env=job_env(), umask=0o002)
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise SlurmError(f"{cmd[0]} failed: {exc}") from exc
    if check and proc.returncode != 0:
        raise SlurmError(f"{shlex.join(cmd[:3])}... exited {proc.returncode}: "
                         f"{proc.stderr.strip()}")
    return proc


def parse_scontrol(line: str) -> dict[str, str]:
    """``scontrol show job -o`` output as a dict (values have no spaces except the
    last field's, which we don't need)."""
    return dict(m.groups() for m in re.finditer(r"(\w+)=(\S*)", line))


class SlurmExecutor(Executor):
    """Submits each job with ``sbatch`` and follows it with ``squeue``, polling at most
    every ``poll_interval`` seconds (slurmctld is shared; don't hammer it)."""

    name = "slurm"

    def __init__(self, poll_interval: float = 1.0) -> None:
        self.poll_interval = poll_interval
        self._jobs: dict[str, int] = {}  # Slurm id -> our job id
        self._cancelled: set[str] = set()
        self._last_poll = 0.0

    def submit(self, job: Job, limits: Limits, settings: dict) -> str | None:
        shared_dir(Path(settings["db_dir"], "process_logs"))
        out = _run(sbatch_command(job, limits, settings)).stdout.strip()
        slurm_id = out.split(";")[0]  # "jobid" or "jobid;cluster"
        if not slurm_id.isdigit():
            raise SlurmError(f"sbatch printed {out!r}, not a job id")
        self._jobs[slurm_id] = job.id
        return slurm_id

    def attach(self, job: Job) -> bool:
        if not job.external_id:
            return False
        self._jobs[job.external_id] = job.id
        return True

    def cancel(self, job: Job) -> None:
        if job.external_id:
            self._cancelled.add(job.external_id)
            _run(["scancel", job.external_id], check=False)

    def poll(self, force: bool = False) -> list[Update]:
        now = time.monotonic()
        if not self._jobs or (not force and now - self._last_poll < self.poll_interval):
            return []
        self._last_poll = now
        states = self._squeue(list(self._jobs))
        updates = []
        for slurm_id in list(self._jobs):
            state = states.get(slurm_id)
            if state is not None and state not in _FINAL:
                continue  # pending or running (or suspended, completing...)
            update = self._final_update(slurm_id)
            if update is not None:
                del self._jobs[slurm_id]
                self._cancelled.discard(slurm_id)
                updates.append(update)
        return updates

    def _squeue(self, ids: list[str]) -> dict[str, str]:
        proc = _run(["squeue", "--jobs", ",".join(ids), "-t", "all", "-h", "-o", "%i %T"],
                    check=False)
        states = {}
        for line in proc.stdout.splitlines():
            parts = line.split()
            if len(parts) == 2:
                states[parts[0]] = parts[1]
        return states

    def _final_update(self, slurm_id: str) -> Update | None:
        job_id = self._jobs[slurm_id]
        proc = _run(["scontrol", "show", "job", "-o", slurm_id], check=False)
        if proc.returncode != 0 or "JobState=" not in proc.stdout:
            if "Invalid job id" in proc.stderr:
                return Update(job_id, JobState.FAILED, external_id=slurm_id,
                              error_type="ProcessingCrashed",
                              message=f"Slurm job {slurm_id} vanished (Slurm no longer "
                                      "knows it)")
            return None  # slurmctld busy or unreachable: ask again next time
        info = parse_scontrol(proc.stdout)
        slurm_state = info.get("JobState", "")
        if slurm_state not in _FINAL:
            return None
        state, error_type = _FINAL[slurm_state]
        if state is JobState.DONE:
            return Update(job_id, state, external_id=slurm_id)
        code, _, sig = info.get("ExitCode", "0:0").partition(":")
        message = f"Slurm job {slurm_id} ended {slurm_state}"
        if sig not in ("", "0"):
            message += f" (signal {sig})"
        elif code not in ("", "0"):
            message += f" (exit code {code})"
        reason = info.get("Reason")
        if reason and reason != "None":
            message += f", reason {reason}"
        if slurm_state == "CANCELLED" and slurm_id in self._cancelled:
            message = f"Cancelled (Slurm job {slurm_id})"
        return Update(job_id, state, external_id=slurm_id, error_type=error_type,
                      message=message)

    def shutdown(self) -> None:
        # Slurm jobs outlive the service on purpose: a restarted service re-attaches.
        self._jobs.clear()

