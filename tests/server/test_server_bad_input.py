"""Two people on one cell, and input that used to break the server for everyone: every
answer here is a 2xx or a 4xx with a sentence, never a 5xx, and nothing typed is lost
without the person knowing (a real server in a thread)."""

from __future__ import annotations

import json
import sqlite3
import threading
from collections.abc import Iterator
from typing import Any

import pytest

from runtable.events import EventBus
from runtable.server.app import close_app, create_app
from runtable.store import create_folder, open_db
from runtable.testing.server_thread import serve_in_thread

from .helpers import TOKEN, RunningServer

PROPOSAL = 1234
HUGE = 2**63


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    db_dir = tmp_path_factory.mktemp("db")
    with create_folder(db_dir, PROPOSAL) as db:
        db.add_user_variable("count", "integer")
        db.add_user_variable("temp", "number")
        db.add_user_variable("sample", "string")
        for run in (1, 2, 3):
            db.ensure_run(PROPOSAL, run)
    app = create_app(db_dir, TOKEN, bus=EventBus(), notify=lambda run, data: None)
    with serve_in_thread(app) as url:
        yield RunningServer(url=url, token=TOKEN, app=app, bus=app.state.bus, db_dir=db_dir)
    close_app(app)


def call(server: RunningServer, method: str, path: str, body: Any = None,
         headers: dict[str, str] | None = None) -> tuple[int, Any]:
    status, _, content = server.request(method, path, body=body, headers=headers)
    try:
        return status, json.loads(content) if content else None
    except ValueError:
        return status, content


# -- two people, one cell ------------------------------------------------------------
@pytest.mark.parametrize(("path", "field", "first", "second"), [
    ("/api/runs/1/comment", "text", "sample A", "sample B"),
    ("/api/runs/1/values/temp", "value", 4.5, 7.25),
])
def test_of_two_edits_made_on_the_same_value_the_second_is_refused_with_the_current(
        server, path, field, first, second):
    call(server, "PUT", path, {field: None})
    assert call(server, "PUT", path, {field: first, "base": None})[0] == 200
    status, body = call(server, "PUT", path, {field: second, "base": None})
    assert status == 409, body
    assert body["current"] == first and "meanwhile" in body["detail"]
    # Made on what is stored now, it goes through.
    assert call(server, "PUT", path, {field: second, "base": first})[0] == 200
    with open_db(server.db_dir, readonly=True) as db:
        assert db.get_value(PROPOSAL, 1, path.rsplit("/", 1)[1]) == second


def test_racing_editors_never_lose_an_edit_silently(server):
    path = "/api/runs/2/comment"
    for round_ in range(20):
        base = f"round {round_}"
        call(server, "PUT", path, {"text": base})
        answers: list[tuple[int, Any]] = []
        barrier = threading.Barrier(2)

        def edit(who: str, base: str = base, barrier: threading.Barrier = barrier,
                 answers: list = answers) -> None:
            barrier.wait()
            answers.append(call(server, "PUT", path, {"text": f"{base} by {who}",
                                                      "base": base}))

        threads = [threading.Thread(target=edit, args=(who,)) for who in ("ann", "bob")]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        statuses = sorted(status for status, _ in answers)
        assert statuses == [200, 409], answers
        stored = next(body["text"] for status, body in answers if status == 200)
        refused = next(body for status, body in answers if status == 409)
        assert refused["current"] == stored  # the loser's page learns what won


# -- time comments (the Notes panel) ---------------------------------------------------
@pytest.mark.parametrize("stamp", ["NaN", "Infinity", "-Infinity", "1e300"])
def test_a_time_comment_at_no_valid_time_is_refused(server, stamp):
    body = f'{{"text": "beam down", "timestamp": {stamp}}}'.encode()
    status, answer = call(server, "POST", "/api/time-comments", body)
    assert status == 422, answer
    assert call(server, "GET", "/api/time-comments")[0] == 200


def test_a_bad_time_already_stored_does_not_break_the_notes(server):
    with sqlite3.connect(server.db_dir / "runs.sqlite") as conn:
        conn.execute("INSERT INTO time_comments(timestamp, comment) VALUES (?, ?)",
                     (float("nan"), "from another program"))
        conn.execute("INSERT INTO time_comments(timestamp, comment) VALUES (?, ?)",
                     ("not a time", "from yet another"))
    status, notes = call(server, "GET", "/api/time-comments")
    assert status == 200, notes
    bad = [n for n in notes if n["text"] in ("from another program", "from yet another")]
    assert len(bad) == 2 and all(n["timestamp"] is None for n in bad)
    # ... and it can be fixed from the page.
    fixed = call(server, "PUT", f"/api/time-comments/{bad[0]['id']}",
                 {"text": "fixed", "timestamp": 1.7e9})
    assert fixed[0] == 200 and fixed[1]["timestamp"] == 1.7e9


# -- numbers and texts that do not fit -------------------------------------------------
@pytest.mark.parametrize(("name", "raw"), [
    ("count", str(HUGE)), ("count", "1e20"), ("count", str(-HUGE - 1)),
    ("temp", "1" + "0" * 400), ("temp", "-" + "9" * 400), ("sample", '"\\ud800"'),
])
def test_values_that_cannot_be_stored_are_refused_not_crashed_on(server, name, raw):
    status, answer = call(server, "PUT", f"/api/runs/3/values/{name}",
                          f'{{"value": {raw}}}'.encode())
    assert status == 422, answer
    assert answer["detail"].startswith("Run 3, ")


@pytest.mark.parametrize(("method", "path", "body"), [
    ("PUT", "/api/runs/1/comment", '{"text": "bad \\udfff half"}'),
    ("POST", "/api/time-comments", '{"text": "\\ud83d alone"}'),
    ("POST", "/api/variables", '{"title": "t \\ud800", "type": "number"}'),
    ("PUT", "/api/runs/1/comment", json.dumps({"text": "x" * 100_001})),
    ("PUT", "/api/runs/1/values/sample", json.dumps({"value": "x" * 100_001})),
])
def test_texts_with_lone_surrogates_or_too_long_are_refused(server, method, path, body):
    status, answer = call(server, method, path, body.encode())
    assert status == 422, answer


@pytest.mark.parametrize(("method", "path", "body"), [
    ("PUT", f"/api/runs/{HUGE}/comment", {"text": "x"}),
    ("GET", f"/api/cell/{HUGE}/count/data", None),
    ("GET", f"/api/cell/{HUGE}/count/thumbnail.png", None),
    ("GET", f"/api/runs/{HUGE}/log", None),
    ("PUT", f"/api/runs/{HUGE}/values/count", {"value": 1}),
    ("PUT", f"/api/time-comments/{HUGE}", {"text": "x"}),
    ("DELETE", f"/api/time-comments/{HUGE}", None),
    ("DELETE", f"/api/jobs/{HUGE}", None),
    ("POST", "/api/runs", {"runs": [HUGE]}),
    ("POST", "/api/notify", {"run": 10**20}),
])
def test_ids_beyond_what_sqlite_holds_are_client_errors(server, method, path, body):
    status, answer = call(server, method, path, body)
    assert 400 <= status < 500, (status, answer)


def test_a_json_route_sent_another_content_type_is_a_client_error(server):
    status, answer = call(server, "PUT", "/api/runs/1/comment", b"text=hello",
                          headers={"Content-Type": "application/x-www-form-urlencoded"})
    assert status == 422, answer
    assert "detail" in answer
