"""Processing control over HTTP: reprocess, jobs, cancel, logs, delete a variable, new
rows; against a real server with the real service on a mock proposal (and a server
without a service, which answers 503)."""

from __future__ import annotations

import json
import textwrap
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from runtable.events import EventBus
from runtable.server.app import create_app
from runtable.server.processing import read_log_chunk
from runtable.service import Service
from runtable.store import create_folder, open_db
from runtable.testing import make_proposal
from runtable.testing.server_thread import serve_in_thread

from .helpers import TOKEN, RunningServer, wait_for

PROPOSAL = 4321
TIMEOUT = 90.0

# `slow` waits while the file `hold` exists in the database folder (the jobs' working
# directory), so a test decides how long a job runs.
CONTEXT = '''
import time
from pathlib import Path
from runtable.context import Variable

@Variable(title="Answer")
def answer(run):
    print("computing the answer")
    return 42

@Variable(title="Stamp")
def stamp(run):
    return time.time()

@Variable(title="Extra")
def extra(run):
    return 7

@Variable(title="Slow")
def slow(run):
    deadline = time.time() + 80
    while Path("hold").exists() and time.time() < deadline:
        time.sleep(0.05)
    return 1
'''


class Served(RunningServer):
    service: Service


def call(srv: RunningServer, method: str, path: str, body: Any = None) -> tuple[int, Any]:
    status, _, raw = srv.request(method, path, body=body)
    return status, json.loads(raw) if raw else None


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    """The app with a running service on a proposal whose runs 1 and 2 are processed."""
    prop = make_proposal(tmp_path_factory.mktemp("data"), PROPOSAL, runs=[1, 2])
    db_dir = prop.path / "usr" / "Shared" / "amore"
    create_folder(db_dir, PROPOSAL, context_text=textwrap.dedent(CONTEXT)).close()
    service = Service(db_dir, settings={"noncluster_cpus": 1, "noncluster_mem": "2G",
                                        "concurrent_jobs": 1, "ready_quiet_s": 0.3},
                      poll_interval_s=0.2, context_poll_s=0.1, proposal_path=prop.path)
    bus = EventBus()
    service.start(bus)
    try:
        service.wait_idle(TIMEOUT)
        app = create_app(db_dir, TOKEN, bus=bus, notify=service.notify, control=service)
        with serve_in_thread(app) as url:
            srv = Served(url=url, token=TOKEN, app=app, bus=bus, db_dir=db_dir)
            srv.service = service
            wait_for(lambda: len(values(db_dir, 2)) == 4, TIMEOUT)
            service.wait_idle(TIMEOUT)
            yield srv
    finally:
        service.stop()


def values(db_dir: Path, run: int) -> dict[str, Any]:
    with open_db(db_dir, readonly=True) as db:
        names = [r[0] for r in db.conn.execute(
            "SELECT name FROM run_variables WHERE run = ?", (run,))]
        return {n: db.get_value(PROPOSAL, run, n) for n in names}


def job_state(srv: RunningServer, job_id: int) -> str:
    status, body = call(srv, "GET", "/api/jobs")
    assert status == 200
    return next(j["state"] for j in body["jobs"] if j["id"] == job_id)


# -- reprocess and jobs ------------------------------------------------------------------
def test_reprocess_a_range_queues_jobs_that_refresh_values(served):
    with open_db(served.db_dir, readonly=True) as db:
        before = {run: db.get_value(PROPOSAL, run, "stamp") for run in (1, 2)}
    status, body = call(served, "POST", "/api/reprocess",
                        {"runs": "1-2", "variables": ["stamp"], "data": "raw"})
    assert status == 202, body
    jobs = body["jobs"]
    assert [(j["run"], j["data"], j["variables"], j["state"]) for j in jobs] == [
        (1, "raw", ["stamp"], "queued"), (2, "raw", ["stamp"], "queued")]
    for job in jobs:
        wait_for(lambda job=job: job_state(served, job["id"]) == "done", TIMEOUT)
    served.service.wait_idle(TIMEOUT)
    with open_db(served.db_dir, readonly=True) as db:
        for run in (1, 2):
            assert db.get_value(PROPOSAL, run, "stamp") > before[run]

    status, body = call(served, "GET", "/api/jobs")
    listed = {j["id"]: j for j in body["jobs"]}
    job = listed[jobs[0]["id"]]
    assert job["executor"] == "local" and job["started_at"] <= job["finished_at"]
    assert set(job) == {"id", "proposal", "run", "data", "variables", "state", "executor",
                        "submitted_at", "started_at", "finished_at", "message", "progress",
                        "stuck_since"}
    assert job["progress"] is None and job["stuck_since"] is None  # it has ended

    # null variables: all of them, "all" runs: every run of the table.
    status, body = call(served, "POST", "/api/reprocess", {"runs": "all", "variables": None})
    assert status == 202
    assert sorted(j["run"] for j in body["jobs"]) == [1, 2]
    assert all(j["variables"] is None and j["data"] == "all" for j in body["jobs"])
    served.service.wait_idle(TIMEOUT)


@pytest.mark.parametrize(("body", "message"), [
    ({"runs": "5-3"}, "goes backwards"),
    ({"runs": "two"}, "is not a run number"),
    ({"runs": ""}, "No runs given"),
    ({"runs": "1, 40-45, 47"}, "Run(s) 40-45, 47 are not in the table"),
    ({"runs": "1", "variables": ["nope"]}, "defines no variable nope"),
    ({"runs": "1", "variables": []}, "No variables chosen"),
    ({"runs": "1", "variables": ["answer"], "data": "proc"}, "computed from proc data"),
    ({"runs": "1", "data": "calibrated"}, "data:"),
    ({"variables": None}, "runs:"),
])
def test_reprocess_bad_input_says_what_is_wrong(served, body, message):
    status, answer = call(served, "POST", "/api/reprocess", body)
    assert status == 422
    assert message in answer["detail"]


def test_cancel_a_running_and_a_queued_job(served):
    hold = served.db_dir / "hold"
    hold.touch()
    try:
        _, body = call(served, "POST", "/api/reprocess",
                       {"runs": "1,2", "variables": ["slow"], "data": "raw"})
        first, second = (j["id"] for j in body["jobs"])
        wait_for(lambda: job_state(served, first) == "running", TIMEOUT)
        # One job at a time here: the second is still queued.
        status, job = call(served, "DELETE", f"/api/jobs/{second}")
        assert status == 202 and job["state"] == "cancelled"
        status, job = call(served, "DELETE", f"/api/jobs/{first}")
        assert status == 202
        wait_for(lambda: job_state(served, first) == "cancelled", TIMEOUT)
    finally:
        hold.unlink()
    status, answer = call(served, "DELETE", f"/api/jobs/{first}")
    assert status == 409 and "has ended already: cancelled" in answer["detail"]
    status, answer = call(served, "DELETE", "/api/jobs/987654")
    assert status == 404 and "no job 987654" in answer["detail"]
    served.service.wait_idle(TIMEOUT)


# -- logs --------------------------------------------------------------------------------
def test_log_follows_the_run_log_from_an_offset(served):
    status, log = call(served, "GET", "/api/runs/1/log")
    assert status == 200
    assert log["exists"] and log["file"] == f"process_logs/r1-p{PROPOSAL}.out"
    assert "computing the answer" in log["text"]
    assert log["next_offset"] == log["size"] and not log["more"]
    # Nothing new: empty text, same offset.
    status, again = call(served, "GET", f"/api/runs/1/log?offset={log['next_offset']}")
    assert (again["text"], again["next_offset"]) == ("", log["next_offset"])
    status, answer = call(served, "GET", "/api/runs/99/log")
    assert status == 404 and "no run 99" in answer["detail"]
    status, answer = call(served, "GET", "/api/runs/1/log?offset=-1")
    assert status == 422


def test_log_of_a_run_never_processed(served):
    status, _ = call(served, "POST", "/api/runs", {"runs": [500]})
    assert status == 201
    status, log = call(served, "GET", "/api/runs/500/log?offset=0")
    assert status == 200
    assert (log["exists"], log["text"], log["size"], log["restarted"]) == (False, "", 0, False)


def test_read_log_chunk_survives_growth_truncation_and_deletion(tmp_path):
    path = tmp_path / "r1.out"
    path.write_text("line one\n")
    piece = read_log_chunk(path, 0)
    assert (piece["text"], piece["next_offset"]) == ("line one\n", 9)
    with path.open("a") as f:
        f.write("line two\n")
    piece = read_log_chunk(path, 9)
    assert (piece["text"], piece["offset"], piece["restarted"]) == ("line two\n", 9, False)
    # Rotated: the file is shorter than the offset, so it is read again from the start.
    path.write_text("new\n")
    piece = read_log_chunk(path, 18)
    assert (piece["text"], piece["offset"], piece["restarted"]) == ("new\n", 0, True)
    path.unlink()
    piece = read_log_chunk(path, 4)
    assert (piece["exists"], piece["text"], piece["restarted"]) == (False, "", True)


def test_read_log_chunk_caps_the_size_and_keeps_characters_whole(tmp_path):
    path = tmp_path / "big.out"
    path.write_bytes(b"x" * 9 + "é".encode() + b"tail\n")  # é is 2 bytes: 9 and 10
    piece = read_log_chunk(path, 0, chunk=10)
    assert (piece["text"], piece["next_offset"], piece["more"]) == ("x" * 9, 9, True)
    piece = read_log_chunk(path, 9, chunk=10)
    assert piece["text"] == "étail\n" and not piece["more"]
    # Without an offset: the tail, from the start of a line.
    path.write_text("".join(f"line {i}\n" for i in range(1000)))
    piece = read_log_chunk(path, None, tail=100)
    assert piece["text"].startswith("line ") and piece["text"].endswith("line 999\n")
    assert piece["offset"] > 0 and len(piece["text"]) <= 100


# -- delete a variable -------------------------------------------------------------------
def test_delete_variable_everywhere_and_warn_when_the_context_still_has_it(served):
    import h5py

    status, body = call(served, "DELETE", "/api/variables/extra")
    assert status == 200
    assert body["name"] == "extra" and "still defines 'extra'" in body["warning"]
    with open_db(served.db_dir, readonly=True) as db:
        assert "extra" not in db.variables()
    for run in (1, 2):
        assert "extra" not in values(served.db_dir, run)
        with h5py.File(served.db_dir / "extracted_data" / f"p{PROPOSAL}_r{run}.h5") as f:
            assert "extra" not in f
    status, body = call(served, "DELETE", "/api/variables/extra")
    assert status == 404 and "no variable 'extra'" in body["detail"]

    # A user's own column is not in the context file: no warning.
    status, _ = call(served, "POST", "/api/variables", {"title": "Sample", "type": "string"})
    assert status == 201
    status, body = call(served, "DELETE", "/api/variables/sample")
    assert status == 200 and body["warning"] is None


# -- new rows ----------------------------------------------------------------------------
def test_add_empty_rows_after_the_last_run(served):
    with open_db(served.db_dir, readonly=True) as db:
        last = max(run for _, run in db.runs())
    status, body = call(served, "POST", "/api/runs", {"count": 2})
    assert status == 201
    assert body == {"added": [last + 1, last + 2], "existing": []}
    status, body = call(served, "POST", "/api/runs", {"runs": [last + 2, last + 10]})
    assert body == {"added": [last + 10], "existing": [last + 2]}
    with open_db(served.db_dir, readonly=True) as db:
        assert {last + 1, last + 2, last + 10} <= {run for _, run in db.runs()}
    # The row takes a comment at once.
    status, _ = call(served, "PUT", f"/api/runs/{last + 1}/comment", {"text": "sample B"})
    assert status == 200


@pytest.mark.parametrize("body", [{}, {"count": 0}, {"count": 5000}, {"runs": []},
                                  {"runs": [1], "count": 1}, {"runs": [-1]}])
def test_add_rows_rejects_bad_input(served, body):
    status, answer = call(served, "POST", "/api/runs", body)
    assert status == 422, answer
    assert answer["detail"]


# -- without a service -------------------------------------------------------------------
@pytest.mark.parametrize(("method", "path", "body"), [
    ("POST", "/api/reprocess", {"runs": "1"}),
    ("GET", "/api/jobs", None),
    ("DELETE", "/api/jobs/1", None),
    ("DELETE", "/api/variables/x", None),
    ("POST", "/api/runs", {"count": 1}),
])
def test_without_a_service_control_answers_503(server, method, path, body):
    status, answer = call(server, method, path, body)
    assert status == 503
    assert "runs without a service" in answer["detail"]


def test_log_needs_no_service(server):
    with open_db(server.db_dir) as db:
        db.ensure_run(1234, 77)
    log_dir = server.db_dir / "process_logs"
    log_dir.mkdir(exist_ok=True)
    (log_dir / "r77-p1234.out").write_text("hello\n")
    status, log = call(server, "GET", "/api/runs/77/log?offset=0")
    assert status == 200 and log["text"] == "hello\n"
