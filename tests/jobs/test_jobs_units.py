"""Small pieces: limits, the sbatch command line, the environment, the selection of
variables a failed job marks, the context check and the split of cluster variables."""

from __future__ import annotations

import shlex

import pytest

from runtable.jobs import (
    Job,
    JobState,
    Limits,
    check_context,
    inspect_context,
    parse_memory,
    parse_slurm_time,
)
from runtable.jobs.errors import make_error
from runtable.jobs.slurm import job_env, parse_scontrol, sbatch_command

from .conftest import PROPOSAL, write_context


@pytest.mark.parametrize(("text", "expected"), [
    ("25G", 25 * 2**30), ("512M", 512 * 2**20), ("4000", 4000 * 2**20), ("64K", 65536),
    ("1T", 2**40), ("2g", 2 * 2**30),
])
def test_parse_memory(text, expected):
    assert parse_memory(text) == expected


def test_parse_memory_rejects_nonsense():
    with pytest.raises(ValueError, match="memory size"):
        parse_memory("lots")


@pytest.mark.parametrize(("text", "seconds"), [
    ("02:00:00", 7200), ("30", 1800), ("5:30", 330), ("1-12", 36 * 3600),
    ("1-0:30", 86400 + 1800), ("2-01:00:05", 2 * 86400 + 3605),
])
def test_parse_slurm_time(text, seconds):
    assert parse_slurm_time(text) == seconds


def test_limits_from_settings():
    limits = Limits.from_settings({"noncluster_cpus": 2, "noncluster_mem": "1G",
                                   "slurm_time": "00:10:00"})
    assert (limits.cpus, limits.mem_bytes, limits.time_s) == (2, 2**30, 600)
    assert Limits.from_settings({"job_time_limit_s": "3.5"}).time_s == 3.5


def _sbatch(tmp_path, **settings):
    job = Job(id=1, proposal=1234, run=7, data="proc", variables=("a",), cluster=True)
    cmd = sbatch_command(job, Limits(cpus=3, mem="5G", slurm_time="01:00:00"),
                         {"db_dir": tmp_path, **settings})
    return cmd


def test_sbatch_command(tmp_path):
    cmd = _sbatch(tmp_path, slurm_partition="upex")
    assert cmd[:2] == ["sbatch", "--parsable"]

    assert "--open-mode=append" in cmd
    assert cmd[cmd.index("--job-name") + 1] == "r7-p1234-runtable"
    assert cmd[cmd.index("--time") + 1] == "01:00:00"
    assert cmd[cmd.index("--cpus-per-task") + 1] == "3"
    assert cmd[cmd.index("--mem") + 1] == "5G"
    assert cmd[cmd.index("-o") + 1] == str(tmp_path / "process_logs" / "r7-p1234.out")
    assert cmd[cmd.index("--partition") + 1] == "upex"
    assert "--reservation" not in cmd and "--clusters" not in " ".join(cmd)
    inner = shlex.split(cmd[cmd.index("--wrap") + 1])
    assert inner[1:6] == ["-m", "runtable.execute", "1234", "7", "--in"]
    assert "--cluster-job" in inner and inner[inner.index("--var") + 1] == "a"
    assert inner[inner.index("--data") + 1] == "proc"



def test_sbatch_reservation_wins_over_partition(tmp_path):
    cmd = _sbatch(tmp_path, slurm_partition="upex", slurm_reservation="beamtime")
    assert cmd[cmd.index("--reservation") + 1] == "beamtime"
    assert "--partition" not in cmd


def test_sbatch_uses_context_python(tmp_path):
    cmd = _sbatch(tmp_path, context_python="/opt/env/bin/python")
    assert shlex.split(cmd[-1])[0] == "/opt/env/bin/python"


def test_job_env_drops_slurm_display_and_preload(monkeypatch):
    monkeypatch.setenv("SLURM_JOB_ID", "5")
    monkeypatch.setenv("SLURM_ARRAY_TASK_ID", "1")
    monkeypatch.setenv("DISPLAY", ":0")
    monkeypatch.setenv("LD_PRELOAD", "libfoo.so")
    monkeypatch.setenv("KEEP_ME", "yes")
    env = job_env()
    assert not any(k.startswith("SLURM_") for k in env)
    assert "DISPLAY" not in env and "LD_PRELOAD" not in env
    assert env["KEEP_ME"] == "yes"


def test_parse_scontrol():
    line = ("JobId=12 JobName=r1-p1234-runtable UserId=root(0) JobState=FAILED "
            "Reason=NonZeroExitCode Dependency=(null) ExitCode=3:0 RunTime=00:00:01")
    info = parse_scontrol(line)
    assert info["JobState"] == "FAILED" and info["ExitCode"] == "3:0"
    assert info["Reason"] == "NonZeroExitCode"


def test_make_error_names():
    assert type(make_error("TimeLimitExceeded", "x")).__name__ == "TimeLimitExceeded"
    assert type(make_error(None, "x")).__name__ == "ProcessingCrashed"
    err = make_error("ContextFileErrors", "bad file")
    assert type(err).__name__ == "ContextFileErrors" and str(err) == "bad file"


CLUSTERED = '''
from runtable.context import Variable

@Variable(title="Base")
def base(run):
    return 1

@Variable(title="Proc thing", data="proc")
def proc_thing(run):
    return 2

@Variable(title="Heavy", cluster=True)
def heavy(run, b: "var#base"):
    return b + 1

@Variable(title="Tmp", transient=True)
def tmp(run):
    return 0
'''


def test_inspect_context_and_selection(folder):
    write_context(folder, CLUSTERED)
    info = inspect_context(folder)
    assert info.problems is None
    assert info.variables["heavy"].deps == ("base",)
    assert info.variables["heavy"].cluster and info.variables["tmp"].transient
    assert info.select("raw") == ["base", "tmp", "heavy"]  # execution order
    assert info.select("proc") == ["proc_thing"]
    assert info.select("all", cluster=True) == ["base", "heavy"]
    assert info.select("raw", cluster=False) == ["base", "tmp"]
    assert info.select("all", names=["heavy"]) == ["base", "heavy"]
    assert info.select("all", match=["PROC"]) == ["proc_thing"]
    assert inspect_context(folder) is info  # cached until the file changes


def test_check_context_problems(folder):
    write_context(folder, "from runtable.context import Variable\n1/0\n")
    problems = check_context(folder)
    assert "context.py:2: ZeroDivisionError" in problems
    (folder / "context.py").unlink()
    assert "does not exist" in check_context(folder)


def test_cluster_variables_become_a_separate_slurm_job(make_queue, folder):
    write_context(folder, CLUSTERED)
    queue = make_queue("local")
    jobs = queue.submit(PROPOSAL, 1, data="all")
    assert [(j.cluster, j.executor) for j in jobs] == [(False, "local"), (True, "slurm")]
    assert all(j.state is JobState.QUEUED for j in jobs)
    [only] = queue.submit(PROPOSAL, 1, data="proc")
    assert (only.cluster, only.executor) == (None, "local")
    [cl] = queue.submit(PROPOSAL, 1, cluster=True)
    assert cl.executor == "slurm"
    # Only a cluster variable asked for: no empty local job.
    [heavy] = queue.submit(PROPOSAL, 1, variables=["heavy"])
    assert (heavy.cluster, heavy.executor) == (True, "slurm")
