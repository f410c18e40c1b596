"""Run ranges are compared with the runs that exist, never expanded: a request for
runs 1-1000000000 costs the serving process nothing (a real `runtable serve`)."""

from __future__ import annotations

import json
import urllib.error
import urllib.request

from runtable.store import create_folder

from .helpers import TOKEN
from .test_server_serve import _start


def _peak_rss_mb(pid: int) -> float:
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    raise AssertionError("no VmHWM")


def _reprocess(base: str, runs: str) -> tuple[int, dict]:
    req = urllib.request.Request(f"{base}/api/reprocess", method="POST",
                                 data=json.dumps({"runs": runs}).encode(),
                                 headers={"Authorization": f"Bearer {TOKEN}",
                                          "Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(req, timeout=60) as resp:
            return resp.status, json.loads(resp.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


def test_huge_run_ranges_cost_the_service_nothing(tmp_path) -> None:
    with create_folder(tmp_path, 1234) as db:
        for run in (3, 4, 9):
            db.ensure_run(1234, run)
    # No proposal folder to catch up from (a service started earlier in this process
    # may have pointed EXTRA_DATA_DATA_ROOT at a mock proposal with runs 1-3).
    proc, match = _start(tmp_path, RUNTABLE_TOKEN=TOKEN,
                         EXTRA_DATA_DATA_ROOT=str(tmp_path / "no-proposals"))
    try:
        base = match[1]
        assert _reprocess(base, "1-2")[0] == 422  # warm: the route's imports are done
        before = _peak_rss_mb(proc.pid)
        status, answer = _reprocess(base, "1-3000000")
        assert status == 422, answer
        assert "Run(s) 1-2, 5-8, 10-3000000 are not in the table (it has runs 3-4, 9)" \
            in answer["detail"]
        # Expanding 1-3000000 used to take some 350 MB. (Checked before the next
        # request: expanding that one would take the machine's memory.)
        assert _peak_rss_mb(proc.pid) - before < 50
        status, answer = _reprocess(base, "5-1000000000000000000")
        assert status == 422 and "10-1000000000000000000 are not" in answer["detail"]
    finally:
        proc.terminate()
        proc.communicate(timeout=60)
