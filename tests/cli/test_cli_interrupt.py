"""Ctrl-C during `runtable reprocess`: a real process, interrupted as a terminal does."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from pathlib import Path

from runtable.store import create_folder, open_db
from runtable.testing import MockProposal

from .cli_helpers import cli_env, runtable_cmd, stored_values

# Run 1 is quick; every other run records its process id and then takes ten minutes.
SLOW_CONTEXT = '''
import os, time
from damnit_ctx import Variable

@Variable(title="Quick")
def quick(run, n: "meta#run_number"):
    if n != 1:
        with open(os.path.join({piddir!r}, f"r{{n}}.pid"), "w") as f:
            f.write(str(os.getpid()))
        time.sleep(600)
    return n * 10
'''


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # A zombie waiting for its parent counts as gone.
    try:
        return Path(f"/proc/{pid}/stat").read_text().split()[2] != "Z"
    except OSError:
        return False


def test_ctrl_c_merges_what_finished_and_kills_the_rest(
        tmp_path: Path, data_root: MockProposal) -> None:
    piddir = tmp_path / "pids"
    piddir.mkdir()
    folder = tmp_path / "amore"
    create_folder(folder, data_root.proposal, SLOW_CONTEXT.format(piddir=str(piddir))).close()

    proc = subprocess.Popen(
        runtable_cmd("reprocess", "all", "-j", "2", "--in", folder),
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        env=cli_env(data_root.root), start_new_session=True)
    try:
        lines = []
        while not any(ln.startswith("r0001") for ln in lines):
            line = proc.stdout.readline()
            assert line, f"reprocess ended early: {proc.wait()} {proc.stderr.read()}"
            lines.append(line)
        deadline = time.monotonic() + 120
        while not (piddir / "r2.pid").exists():
            assert time.monotonic() < deadline, "run 2 never started"
            assert proc.poll() is None, proc.stderr.read()
            time.sleep(0.05)
        while not (piddir / "r2.pid").read_text():
            time.sleep(0.05)
        slow_pid = int((piddir / "r2.pid").read_text())

        # What a terminal does on Ctrl-C: SIGINT to the foreground process group.
        os.killpg(proc.pid, signal.SIGINT)
        stdout, stderr = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()

    assert proc.returncode == 130, stderr
    assert "r0001  ok      1 variable" in "".join(lines)
    assert "Stopping" in stdout
    assert "Interrupted. 3 runs processed: 1 ok, 2 failed." in stderr
    assert "Traceback" not in stderr
    # Run 1 was merged; the others left nothing behind, and no process of theirs lives.
    assert stored_values(folder) == {(1, "quick"): 10}
    assert (folder / "extracted_data" / "p1234_r1.h5").is_file()
    assert not list((folder / "extracted_data").glob("*.ready.h5"))
    assert not list((folder / "extracted_data").glob("p1234_r[23]*"))
    # Run 3 was handed to the worker when run 1 finished, so it may have started just
    # before the Ctrl-C (on a loaded machine); if it did, it was killed too.
    pids = [slow_pid]
    if (piddir / "r3.pid").exists() and (piddir / "r3.pid").read_text():
        pids.append(int((piddir / "r3.pid").read_text()))
    deadline = time.monotonic() + 30
    while any(_alive(pid) for pid in pids) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not any(_alive(pid) for pid in pids), "an interrupted run's process still runs"
    with open_db(folder) as db:
        assert db.integrity_check() == "ok"
        assert db.merge_pending() == []
