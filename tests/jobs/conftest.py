"""Fixtures for the jobs tests: real database folders on the shared mock proposal,
job queues over the local and the (real, single-node) Slurm executor."""

from __future__ import annotations

import os
import textwrap
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from runtable.jobs import JobQueue, LocalExecutor, SlurmExecutor
from runtable.store import create_folder

PROPOSAL = 1234

TRIVIAL = '''
from runtable.context import Variable

@Variable(title="Trains")
def n_trains(run):
    return len(run.train_ids)

@Variable(title="Answer")
def answer(run):
    return 42
'''

#: Settings small enough for the 2-CPU test node and Slurm's bookkeeping.
TEST_SETTINGS = {"noncluster_cpus": 1, "noncluster_mem": "2G", "concurrent_jobs": 4,
                 "slurm_time": "00:05:00"}


def write_context(folder: Path, text: str) -> None:
    """Replace the folder's context file (mtime bumped so the change is seen at once)."""
    path = folder / "context.py"
    path.write_text(textwrap.dedent(text))
    st = path.stat()
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns + 1_000_000))


@pytest.fixture
def folder(tmp_path: Path, data_root) -> Path:
    """A fresh database folder for proposal 1234 with a trivial context file."""
    db = create_folder(tmp_path / "db", PROPOSAL, context_text=TRIVIAL)
    db.close()
    return tmp_path / "db"



@pytest.fixture
def make_queue(folder: Path) -> Iterator[Callable[..., JobQueue]]:
    """``make_queue(backend="local", **settings)``: a JobQueue on ``folder`` whose
    jobs all go to that backend; closed at the end of the test."""
    queues: list[JobQueue] = []

    def make(backend: str = "local", **settings) -> JobQueue:
        values = {**TEST_SETTINGS, "executor": backend, **settings}
        executors = {"local": LocalExecutor(), "slurm": SlurmExecutor(poll_interval=0.3)}
        queue = JobQueue(folder, executors=executors, settings=values, tick_s=0.05)
        queues.append(queue)
        return queue

    yield make
    for queue in queues:
        queue.close()


@pytest.fixture(params=["local", "slurm"])
def backend(request, slurm_ready) -> str:
    """Each test using this runs once per executor."""
    if request.param == "slurm" and slurm_ready is not None:
        pytest.skip(f"Slurm cannot run here: {slurm_ready}")
    return request.param


def wait_for(predicate: Callable[[], object], timeout: float = 30.0, what: str = "") -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise TimeoutError(f"timed out waiting for {what or predicate}")
        time.sleep(0.05)
