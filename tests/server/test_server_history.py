"""The history routes on a real server: values computed by real jobs on real mock runs,
a context change, the stale marker, the texts and their diff, standalone comments."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from runtable.context.codehash import text_sha256
from runtable.execute import execute_run
from runtable.server.app import create_app
from runtable.store import create_folder
from runtable.testing import MockProposal
from runtable.testing.server_thread import serve_in_thread

from .helpers import TOKEN, RunningServer

CONTEXT_V1 = '''
from damnit_ctx import Variable, Cell
import numpy as np

@Variable(title="Trains")
def n_trains(run):
    return len(run.train_ids)

@Variable(title="Doubled")
def doubled(run, n: "var#n_trains"):
    return n * 2

@Variable(title="Trend")
def trend(run):
    return np.linspace(0, 1, 20)

@Variable(title="Image")
def image(run):
    return np.arange(100.0).reshape(10, 10)
'''
CONTEXT_V2 = CONTEXT_V1.replace("return n * 2", "return n * 2 + 1")


@pytest.fixture
def server(tmp_path: Path, data_root: MockProposal) -> Iterator[RunningServer]:
    db_dir = tmp_path / "amore"
    create_folder(db_dir, data_root.proposal, CONTEXT_V1).close()
    app = create_app(db_dir, TOKEN)
    with serve_in_thread(app) as url:
        yield RunningServer(url=url, token=TOKEN, app=app, bus=app.state.bus, db_dir=db_dir)


def process(server: RunningServer, run: int) -> None:
    from runtable.store import open_db

    outcome = execute_run(server.db_dir, 1234, run)
    assert outcome.failure is None and not outcome.errors, outcome
    with open_db(server.db_dir) as db:
        db.merge_fragment(outcome.fragment)


def get(server: RunningServer, path: str) -> tuple[int, object]:
    status, _, body = server.request("GET", path)
    return status, json.loads(body)


def test_history_stale_marks_and_the_diff_follow_a_context_change(
        server: RunningServer) -> None:
    process(server, 1)
    process(server, 2)
    sha1, sha2 = text_sha256(CONTEXT_V1), text_sha256(CONTEXT_V2)

    status, answer = get(server, "/api/runs/1/history/doubled")
    assert status == 200, answer
    (entry,) = answer["entries"]
    assert (entry["value"], entry["context_sha256"], entry["stale"]) == (128, sha1, False)
    assert entry["origin"] == "context file" and entry["current"]
    assert answer["context"]["sha256"] == sha1
    assert get(server, "/api/history/stale")[1]["stale"] == {}

    (server.db_dir / "context.py").write_text(CONTEXT_V2)
    status, stale = get(server, "/api/history/stale")
    assert stale == {"context": sha2, "problems": None, "stale": {"doubled": [1, 2]}}
    entry = get(server, "/api/runs/1/history/doubled")[1]["entries"][0]
    assert entry["stale"] is True
    assert get(server, "/api/runs/1/history/n_trains")[1]["entries"][0]["stale"] is False

    process(server, 1)
    assert get(server, "/api/history/stale")[1]["stale"] == {"doubled": [2]}
    entries = get(server, "/api/runs/1/history/doubled")[1]["entries"]
    assert [(e["value"], e["context_sha256"], e["stale"], e["current"]) for e in entries] == [
        (128, sha1, True, False), (129, sha2, False, True)]

    # Thumbnails and trendlines come with what the dialog draws.
    image = get(server, "/api/runs/1/history/image")[1]["entries"][-1]
    assert image["text"] == "<image>" and image["png"].startswith("iVBORw0KGgo")
    trend = get(server, "/api/runs/1/history/trend")[1]["entries"][-1]
    assert trend["text"] == "<trendline>" and len(trend["points"]) == 20

    text = get(server, f"/api/context/texts/{sha1}")[1]
    assert text["text"] == CONTEXT_V1 and set(text["code"]) == {
        "n_trains", "doubled", "trend", "image"}
    diff = get(server, f"/api/context/diff?a={sha1}&b={sha2}")[1]
    assert "-    return n * 2" in diff["diff"] and "+    return n * 2 + 1" in diff["diff"]
    assert (diff["added"], diff["removed"], diff["same"]) == (1, 1, False)
    assert get(server, f"/api/context/diff?a={sha2}")[1]["same"] is True


def test_history_answers_bad_requests_with_a_sentence(server: RunningServer) -> None:
    status, answer = get(server, "/api/runs/99/history/doubled")
    assert status == 404 and "not in this table" in answer["detail"]
    status, answer = get(server, "/api/context/texts/" + "0" * 64)
    assert status == 404 and "No context text" in answer["detail"]
    status, answer = get(server, "/api/context/diff?a=../../etc/passwd")
    assert status == 422 and "neither a context text's SHA-256" in answer["detail"]
    status, answer = get(server, "/api/context/diff?a=" + "0" * 64)
    assert status == 404 and "not kept" in answer["detail"]
    status, answer = get(server, "/api/time-comments/5/history")
    assert status == 404 and "never was" in answer["detail"]


def test_a_standalone_comments_edits_are_listed(server: RunningServer) -> None:
    status, _, body = server.request("POST", "/api/time-comments",
                                     body={"text": "beam down", "timestamp": 1.7e9})
    comment = json.loads(body)
    server.request("PUT", f"/api/time-comments/{comment['id']}",
                   body={"text": "beam down (vacuum)"})
    status, versions = get(server, f"/api/time-comments/{comment['id']}/history")
    assert status == 200
    assert [(v["comment"], v["replaced_at"] is None) for v in versions] == [
        ("beam down", False), ("beam down (vacuum)", True)]
