"""One writer per folder: a second `runtable serve` is refused while the first runs, and
`runtable reprocess` hands its runs to the running service (real processes)."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from runtable.server import discovery
from runtable.store import open_db
from runtable.testing import add_raw_run

from .conftest import SETTINGS, TIMEOUT, values, wait_for

URL_RE = re.compile(r"(http://127\.0\.0\.1:\d+)/\?token=\S+")


def _runtable(*args: str) -> list[str]:
    return [sys.executable, "-m", "runtable.cli", *args]


def _env() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if k != "RUNTABLE_TOKEN"}


def _serve(folder: Path, log: Path) -> tuple[subprocess.Popen[str], str]:
    with open(log, "w") as err:
        proc = subprocess.Popen(_runtable("serve", str(folder), "--port", "0"),
                                stdout=subprocess.PIPE, stderr=err, text=True, env=_env())
    assert proc.stdout is not None
    for line in proc.stdout:
        if match := URL_RE.search(line):
            return proc, match[1]
    proc.kill()
    pytest.fail(f"no URL printed: {log.read_text()}")


def _stop(proc: subprocess.Popen[str]) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
    proc.communicate(timeout=60)


def test_a_second_serve_is_refused_and_reprocess_hands_runs_to_the_first(
        proposal, folder, tmp_path):
    with open_db(folder) as db:
        for key, value in {**SETTINGS, "ready_quiet_s": 3600}.items():
            db.set_setting(key, value)
    first, url = _serve(folder, tmp_path / "first.log")
    try:
        second = subprocess.run(_runtable("serve", str(folder), "--port", "0"),
                                capture_output=True, text=True, timeout=120, env=_env())
        assert second.returncode == 1, second.stdout + second.stderr
        assert "Traceback" not in second.stderr
        assert second.stderr.startswith("Error: runtable serve (process "
                                        f"{first.pid} on "), second.stderr
        assert url in second.stderr and "only one process may write" in second.stderr
        # The refused server advertised nothing and removed nothing.
        info = discovery.read_server_file(folder)
        assert info is not None and info.pid == first.pid and info.url == url

        add_raw_run(proposal, 1)
        handed = subprocess.run(_runtable("reprocess", "1", "--in", str(folder)),
                                capture_output=True, text=True, timeout=120, env=_env())
        assert handed.returncode == 0, handed.stderr
        assert "handed the runs to it, 1 job queued" in handed.stdout
        # The first server, the only writer, processes the run.
        wait_for(lambda: values(folder, 1), what="run 1 processed by the service")
        assert values(folder, 1) == {"answer": 42, "n_trains": 64}
    finally:
        _stop(first)
    from runtable.store import current_writer

    assert current_writer(folder) is None


HOLD = """
import sys, time
from runtable.store import become_writer
lock = become_writer(sys.argv[1], "runtable reprocess")
print("held", flush=True)
time.sleep(600)
"""


def test_the_writer_lock_names_its_holder_and_dies_with_it(folder):
    from runtable.store import FolderBusy, become_writer, current_writer

    holder = subprocess.Popen([sys.executable, "-c", HOLD, str(folder)],
                              stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout is not None and holder.stdout.readline() == "held\n"
        info = current_writer(folder)
        assert info is not None and info.pid == holder.pid
        assert info.command == "runtable reprocess"
        with pytest.raises(FolderBusy, match=f"runtable reprocess \\(process {holder.pid} "):
            become_writer(folder, "runtable serve")
        # Deleting the discovery file (what a stopping second server used to do)
        # changes nothing: the lock is the kernel's, not a file's presence.
        (folder / discovery.SERVER_FILE).unlink(missing_ok=True)
        with pytest.raises(FolderBusy):
            become_writer(folder, "runtable serve")
    finally:
        holder.kill()  # SIGKILL: no clean-up code runs
        holder.communicate(timeout=TIMEOUT)
    assert current_writer(folder) is None
    with become_writer(folder, "runtable serve") as lock:
        assert lock.info.pid == os.getpid()
        with pytest.raises(FolderBusy):  # once per process too
            become_writer(folder, "runtable reprocess")
    assert current_writer(folder) is None
