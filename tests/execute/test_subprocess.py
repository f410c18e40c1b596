"""run_in_subprocess and ``python -m runtable.execute``: whatever the child does, the
caller gets a RunOutcome."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from runtable.execute import read_fragment
from runtable.execute.subprocess import command, describe_exit
from runtable.selection import Selection
from runtable.testing.subprocess_run import run_in_subprocess

GOOD = '''
from runtable.context import Variable

@Variable(title="Trains")
def n_trains(run):
    print("counting trains")
    return len(run.train_ids)

@Variable(title="Bad")
def bad(run):
    raise ValueError("bad value")
'''

DIES = '''
import os, signal, sys
from runtable.context import Variable

@Variable(title="Fine")
def fine(run):
    return 1

@Variable(title="Dies")
def dies(run, fine: "var#fine"):
    sys.stderr.write("about to die\\n")
    {how}
'''


def make_db(tmp_path, code: str):
    db = tmp_path / "db"
    db.mkdir()
    (db / "context.py").write_text(textwrap.dedent(code))
    return db


def test_success(data_root, tmp_path):
    db = make_db(tmp_path, GOOD)
    out = run_in_subprocess(db, 1234, 1, python=sys.executable)
    assert out.succeeded, out.failure
    assert out.ok == ["n_trains"] and out.errors == {"bad": ("ValueError", "bad value")}
    assert read_fragment(out.fragment).summaries["n_trains"].value == 64
    assert "subprocess" in out.durations
    log = out.log_path.read_text()
    assert log.startswith("----- Processing r1 (p1234)")
    assert "counting trains" in log and "----- Finished r1 (p1234)" in log


@pytest.mark.parametrize(
    ("how", "expected"),
    [
        ("os._exit(3)", "exited with code 3"),
        ("os.kill(os.getpid(), signal.SIGKILL)", "was killed by SIGKILL"),
    ],
)
def test_child_dies(data_root, tmp_path, how, expected):
    db = make_db(tmp_path, DIES.format(how=how))
    out = run_in_subprocess(db, 1234, 1)
    assert not out.succeeded and out.fragment is None
    assert out.failure == ("ProcessError", f"The processing process {expected}")
    log = out.log_path.read_text()
    assert "about to die" in log  # the child's stderr is in the log
    assert f"----- Failed r1 (p1234): The processing process {expected}" in log


def test_broken_context(data_root, tmp_path):
    db = make_db(tmp_path, "from runtable.context import Variable\n\nboom(\n")
    out = run_in_subprocess(db, 1234, 1)
    assert not out.succeeded and out.fragment is None
    assert "context.py:3" in out.failure[1]


def test_timeout_kills_child(data_root, tmp_path):
    db = make_db(tmp_path, '''
        import time
        from runtable.context import Variable

        @Variable
        def slow(run):
            time.sleep(60)
    ''')
    out = run_in_subprocess(db, 1234, 1, timeout=3)
    assert out.failure[0] == "Timeout" and out.durations["total"] < 30


def test_missing_interpreter(tmp_path):
    out = run_in_subprocess(tmp_path, 1234, 1, python=tmp_path / "no-python")
    assert not out.succeeded and "Could not start" in out.failure[1]
    assert "Could not start" in out.log_path.read_text()


def test_command_line(tmp_path):
    cmd = command(tmp_path, 1, 2, selection=Selection("proc", ("a", "b"), ("x",), True),
                  context_file="c.py", python="/py")
    assert cmd == ["/py", "-m", "runtable.execute", "1", "2", "--in", str(tmp_path),
                   "--data", "proc", "--var", "a", "--var", "b", "--match", "x",
                   "--cluster-job", "--context", "c.py"]
    assert "--no-cluster" in command(tmp_path, 1, 2, selection=Selection("raw", cluster=False))


def test_module_prints_one_json_line(data_root, tmp_path):
    db = make_db(tmp_path, GOOD)
    proc = subprocess.run(
        [sys.executable, "-m", "runtable.execute", "1234", "1", "--in", str(db),
         "--var", "n_trains"],
        capture_output=True, text=True, check=True,
    )
    lines = proc.stdout.splitlines()
    assert len(lines) == 1  # the context's print() went elsewhere
    assert json.loads(lines[0])["ok"] == ["n_trains"]


def test_describe_exit():
    assert describe_exit(-15) == "The processing process was killed by SIGTERM"
    assert describe_exit(2) == "The processing process exited with code 2"
    assert "without reporting" in describe_exit(0)


@pytest.mark.parametrize("selection", [
    Selection("proc", ("a", "b"), ("x y",), True),
    Selection("all", cluster=False),
    Selection("raw"),
])
def test_the_command_line_reads_back_as_the_same_run_and_selection(tmp_path, selection):
    from runtable.execute.__main__ import parse_args, selection_of

    args = parse_args(command(tmp_path, 7, 8, selection=selection, context_file="c.py")[3:])
    assert (args.proposal, args.run, args.db_dir, args.context) == (7, 8, tmp_path, Path("c.py"))
    assert selection_of(args) == selection
