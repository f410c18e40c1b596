"""Where a fragment was written: the one place that tells which job, where and with
which runtable (recorded with every merged value, see docs/history.md).

Launchers say which job a process is through its environment: ``RUNTABLE_JOB_ID``
(runtable's own job number) and ``RUNTABLE_EXECUTOR`` (``local`` or ``slurm``);
Slurm adds its own ``SLURM_*`` variables, which are read only when the executor is
Slurm or unknown (a local job forked by a service that runs inside a Slurm allocation
inherits the allocation's variables, which say nothing about the job).
"""

from __future__ import annotations

import getpass
import os
import socket
import time
from typing import Any

#: Environment variables of a job's launcher.
JOB_ID_ENV = "RUNTABLE_JOB_ID"
EXECUTOR_ENV = "RUNTABLE_EXECUTOR"
#: Slurm's variables and the keys they are recorded under.
_SLURM = (("SLURM_JOB_ID", "slurm_job_id"), ("SLURM_ARRAY_JOB_ID", "slurm_array_job_id"),
          ("SLURM_ARRAY_TASK_ID", "slurm_array_task_id"),
          ("SLURM_CLUSTER_NAME", "slurm_cluster"))


def user_name() -> str:
    """This process's user name (its uid where there is no name, as in some containers)."""
    try:
        return getpass.getuser()
    except Exception:
        return str(os.getuid()) if hasattr(os, "getuid") else "unknown"


def job_source() -> dict[str, Any]:
    """This process as the source of a fragment: ``runtable`` (version), ``host``,
    ``user``, ``pid``, ``written_at`` (epoch seconds), and when known ``job`` (runtable's
    job number), ``executor`` and Slurm's job, array and cluster ids."""
    from runtable import __version__

    source: dict[str, Any] = {"runtable": __version__, "host": socket.gethostname(),
                              "user": user_name(), "pid": os.getpid(),
                              "written_at": round(time.time(), 3)}
    job = os.environ.get(JOB_ID_ENV, "")
    if job.isdigit():
        source["job"] = int(job)
    executor = os.environ.get(EXECUTOR_ENV) or None
    if executor is not None:
        source["executor"] = executor
    if executor in (None, "slurm"):
        for env, key in _SLURM:
            if os.environ.get(env):
                source[key] = os.environ[env]
    return source
