"""A context file that imports a helper module kept beside it, in the database folder,
loads and runs in every place runtable loads or runs one: a job of the local pool
(warm fork) and of Slurm, the service's inspection of the file, the web editor's check,
``runtable check``, ``runtable reprocess``, and a subprocess in ``context_python``."""

from __future__ import annotations

import subprocess
import sys

from runtable.execute import execute_run
from runtable.jobs import JobState, inspect_context
from runtable.server.contextcheck import check_text
from runtable.store import open_db
from runtable.testing.subprocess_run import run_in_subprocess

from .conftest import PROPOSAL, write_context

HELPER = '''
def trains_times_two(run):
    return 2 * len(run.train_ids)
'''

CONTEXT = '''
from damnit_ctx import Variable
from beamtime_helpers import trains_times_two

@Variable(title="Doubled")
def doubled(run):
    return trains_times_two(run)

@Variable(title="Lazy")
def lazy(run):
    import lazy_helper  # imported only when the variable runs
    return lazy_helper.VALUE
'''


def _with_helpers(folder):
    (folder / "beamtime_helpers.py").write_text(HELPER)
    (folder / "lazy_helper.py").write_text("VALUE = 7\n")
    write_context(folder, CONTEXT)


def _merged(folder) -> dict:
    with open_db(folder) as db:
        db.merge_pending()
        return {n: db.get_value(PROPOSAL, 1, n) for n in ("doubled", "lazy")}


def test_in_a_job_of_each_executor(make_queue, folder, backend, tmp_path, monkeypatch):
    _with_helpers(folder)
    monkeypatch.chdir(tmp_path)  # the queue's process does not run in the folder
    queue = make_queue(backend)
    [job] = queue.submit(PROPOSAL, 1)
    [job] = queue.wait([job.id], timeout=120)
    assert job.state is JobState.DONE, job.message
    assert _merged(folder) == {"doubled": 128, "lazy": 7}


def test_in_the_services_inspection_and_the_editors_check(folder, tmp_path, monkeypatch):
    _with_helpers(folder)
    monkeypatch.chdir(tmp_path)
    info = inspect_context(folder, sys.executable)
    assert info.problems is None
    assert set(info.variables) == {"doubled", "lazy"}
    result = check_text(CONTEXT, folder)
    assert result.ok, result.errors
    broken = check_text(CONTEXT.replace("beamtime_helpers", "beamtime_helperz"), folder)
    assert not broken.ok
    assert f"looked in the context file's folder {folder}" in broken.errors[0].message


def test_in_runtable_check_and_reprocess(folder, tmp_path):
    _with_helpers(folder)
    runtable = [sys.executable, "-m", "runtable.cli"]
    proc = subprocess.run([*runtable, "check", str(folder / "context.py")], cwd=tmp_path,
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    proc = subprocess.run([*runtable, "reprocess", "1", "--in", str(folder)], cwd=tmp_path,
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert _merged(folder) == {"doubled": 128, "lazy": 7}


def test_in_this_process_and_in_a_subprocess(folder, tmp_path, monkeypatch):
    _with_helpers(folder)
    monkeypatch.chdir(tmp_path)
    outcome = execute_run(folder, PROPOSAL, 1, capture_output=False)
    assert outcome.ok == ["doubled", "lazy"], (outcome.failure, outcome.errors)
    outcome = run_in_subprocess(folder, PROPOSAL, 1)
    assert outcome.ok == ["doubled", "lazy"], (outcome.failure, outcome.errors)
    for name in ("beamtime_helpers", "lazy_helper"):
        sys.modules.pop(name, None)
