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
from runtable.jobs.batch import BatchFolder, Manifest
from runtable.jobs.errors import make_error
from runtable.jobs.slurm import (
    TaskState,
    job_env,
    parse_sacct,
    parse_squeue,
    sbatch_command,
)
from runtable.selection import Selection

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


def _sbatch(tmp_path, tasks=4, **settings):
    batch = BatchFolder.create(tmp_path, Manifest(
        db_dir=str(tmp_path), items=(Job(1, 1234, 7, "proc", ("a",), (), True),),
        run_time_s=3600, task_time_s=3600, mem_bytes=5 * 2**30, cpus=3))
    cmd = sbatch_command(batch, tasks, Limits(cpus=3, mem="5G", slurm_time="01:00:00"),
                         {"db_dir": tmp_path, **settings})
    return batch, cmd


def test_sbatch_command_submits_one_array_of_workers(tmp_path):
    batch, cmd = _sbatch(tmp_path, slurm_partition="upex")
    assert cmd[:2] == ["sbatch", "--parsable"]
    assert cmd[cmd.index("--array") + 1] == "0-3"
    assert cmd[cmd.index("--job-name") + 1] == "p1234-runtable"
    assert cmd[cmd.index("--time") + 1] == "01:00:00"
    assert cmd[cmd.index("--cpus-per-task") + 1] == "3"
    assert cmd[cmd.index("--mem") + 1] == "5G"
    assert cmd[cmd.index("-o") + 1] == str(batch.path / "task-%a.log")
    assert cmd[cmd.index("--chdir") + 1] == str(tmp_path.absolute())
    assert cmd[cmd.index("--partition") + 1] == "upex"
    for absent in ("--reservation", "--account", "--qos", "--clusters"):
        assert absent not in cmd
    wrap = shlex.split(cmd[cmd.index("--wrap") + 1])
    assert wrap[0] == "exec"
    assert wrap[2:] == ["-m", "runtable.jobs.slurm_worker", str(batch.path)]


def test_sbatch_reservation_wins_over_partition(tmp_path):
    _, cmd = _sbatch(tmp_path, slurm_partition="upex", slurm_reservation="beamtime")
    assert cmd[cmd.index("--reservation") + 1] == "beamtime"
    assert "--partition" not in cmd


def test_sbatch_charges_the_account_and_qos_of_the_settings(tmp_path):
    _, cmd = _sbatch(tmp_path, slurm_account="exfel", slurm_qos="short")
    assert cmd[cmd.index("--account") + 1] == "exfel"
    assert cmd[cmd.index("--qos") + 1] == "short"


def test_sbatch_uses_context_python(tmp_path):
    _, cmd = _sbatch(tmp_path, context_python="/opt/env/bin/python")
    assert shlex.split(cmd[-1])[1] == "/opt/env/bin/python"


def test_parse_squeue_reads_states_reasons_and_wait_statuses():
    text = ("17|1|CANCELLED|None|15|\n17|0|TIMEOUT|TimeLimit|15|\n"
            "19|0|FAILED|NonZeroExitCode|768|\n19|3|PENDING|Resources|0|\n")
    states = parse_squeue(text)
    assert states["17"][0] == TaskState("TIMEOUT", "TimeLimit", "0:15")
    assert states["19"][0].describe("19_0") == ("Slurm job 19_0 ended FAILED (exit code 3), "
                                                "reason NonZeroExitCode")
    assert states["17"][0].describe("17_0") == ("Slurm job 17_0 ended TIMEOUT (signal 15), "
                                                "reason TimeLimit")
    assert not states["19"][3].final and states["19"][0].final


def test_parse_sacct_skips_ranges_of_pending_tasks():
    text = ("21_0|COMPLETED|0:0\n21_1|OUT_OF_MEMORY|0:125\n21_2|CANCELLED by 0|0:15\n"
            "21_[3-9]|PENDING|0:0\n")
    states = parse_sacct(text)
    assert sorted(states["21"]) == [0, 1, 2]
    assert states["21"][1].state == "OUT_OF_MEMORY" and states["21"][2].state == "CANCELLED"


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
    assert info.select(Selection("raw")) == ["base", "tmp", "heavy"]  # execution order
    assert info.select(Selection("proc")) == ["proc_thing"]
    assert info.select(Selection("all", cluster=True)) == ["base", "heavy"]
    assert info.select(Selection("raw", cluster=False)) == ["base", "tmp"]
    assert info.select(Selection("all", ("heavy",))) == ["base", "heavy"]
    assert info.select(Selection("all", match=("PROC",))) == ["proc_thing"]
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
    jobs = queue.submit(PROPOSAL, 1, Selection("all"))
    assert [(j.cluster, j.executor) for j in jobs] == [(False, "local"), (True, "slurm")]
    assert all(j.state is JobState.QUEUED for j in jobs)
    [only] = queue.submit(PROPOSAL, 1, Selection("proc"))
    assert (only.cluster, only.executor) == (None, "local")
    [cl] = queue.submit(PROPOSAL, 1, Selection("raw", cluster=True))
    assert cl.executor == "slurm"
    # Only a cluster variable asked for: no empty local job.
    [heavy] = queue.submit(PROPOSAL, 1, Selection("raw", ("heavy",)))
    assert (heavy.cluster, heavy.executor) == (True, "slurm")


def test_a_run_goes_back_to_the_queue_twice_then_fails():
    from runtable.jobs import SlurmExecutor

    ex = SlurmExecutor()
    again = [ex._requeue(7, "The Slurm job's time ran out", "TimeLimitExceeded",
                         "raise slurm_time") for _ in range(3)]
    assert [u.state for u in again] == [JobState.QUEUED, JobState.QUEUED, JobState.FAILED]
    assert again[0].external_id is None and again[0].message.endswith("; queued again")
    assert again[2].error_type == "TimeLimitExceeded"
    assert again[2].message.endswith("given up after 2 tries: raise slurm_time")


@pytest.mark.parametrize("selection", [
    Selection("raw"), Selection("proc"), Selection("all"), Selection("all", cluster=True),
    Selection("raw", cluster=False), Selection("all", ("heavy",)),
    Selection("all", match=("proc", "TMP")), Selection("proc", ("heavy",)),
])
def test_the_service_and_the_loaded_context_select_the_same_names(folder, selection):
    """One rule: the service's description of the file (no numpy, no user code) and the
    loaded Pipeline pick the same variables for every selection."""
    from runtable.context import Pipeline

    write_context(folder, CLUSTERED)
    pipeline = Pipeline.from_context_file(folder / "context.py")
    loaded = pipeline.select(selection.variables, selection.match, selection.data,
                             selection.cluster)
    assert inspect_context(folder).select(selection) == list(loaded.vars)


def test_a_name_the_file_no_longer_defines_is_an_error_when_loaded_and_left_out_by_the_queue(
        folder):
    from runtable.context import Pipeline

    write_context(folder, CLUSTERED)
    with pytest.raises(KeyError, match="No variable named 'gone'"):
        Pipeline.from_context_file(folder / "context.py").select(["gone", "heavy"])
    info = inspect_context(folder)
    assert info.select(Selection("all", ("gone", "heavy"))) == ["base", "heavy"]
    assert info.select(Selection("all", ("gone",))) == []
