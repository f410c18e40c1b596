"""Edits through the real server: comments, user-editable variables and their values,
time comments; validation, 404s, events on the WebSocket, concurrent editors."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from websockets.sync.client import ClientConnection, connect

from runtable.events import EventBus
from runtable.server.app import close_app, create_app
from runtable.server.edits import name_from_title
from runtable.store import ValidationError, create_folder, open_db
from runtable.testing.server_thread import serve_in_thread

from .helpers import TOKEN, RunningServer

PROPOSAL = 1234
RUNS = range(1, 21)


@pytest.fixture
def server(tmp_path: Path) -> Iterator[RunningServer]:
    """A real server on a folder with runs 1-20 and one computed variable."""
    db_dir = tmp_path / "db"
    with create_folder(db_dir, PROPOSAL) as db:
        db.update_computed_variables({"n_trains": {"title": "Trains"}})
        for run in RUNS:
            db.ensure_run(PROPOSAL, run)
    bus = EventBus()
    app = create_app(db_dir, TOKEN, bus=bus)
    with serve_in_thread(app) as url:
        yield RunningServer(url=url, token=TOKEN, app=app, bus=bus, db_dir=db_dir)
    close_app(app)


def call(server: RunningServer, method: str, path: str, body: Any = None
         ) -> tuple[int, Any]:
    status, _, content = server.request(method, path, body=body)
    return status, json.loads(content) if content else None


@contextmanager
def events(server: RunningServer) -> Iterator[ClientConnection]:
    with connect(server.url.replace("http://", "ws://") + "/api/events", open_timeout=5,
                 additional_headers={"Authorization": f"Bearer {server.token}"}) as ws:
        assert json.loads(ws.recv(timeout=5))["kind"] == "hello"
        yield ws


def next_event(ws: ClientConnection) -> dict[str, Any]:
    event = json.loads(ws.recv(timeout=10))
    del event["seq"]
    return event


def table(server: RunningServer, query: str = "") -> dict[str, Any]:
    status, body = call(server, "GET", "/api/table" + query)
    assert status == 200
    return body


# -- comments ------------------------------------------------------------------------------
def test_comment_is_stored_published_and_shown(server: RunningServer) -> None:
    with events(server) as ws:
        assert call(server, "PUT", "/api/runs/3/comment", {"text": "bad beam"}) == (
            200, {"run": 3, "text": "bad beam"})
        assert next_event(ws) == {"kind": "comment_set", "proposal": PROPOSAL, "run": 3,
                                  "text": "bad beam"}
        assert table(server, "?runs=3")["comment"] == ["bad beam"]
        # Empty text clears it.
        assert call(server, "PUT", "/api/runs/3/comment", {"text": ""}) == (
            200, {"run": 3, "text": None})
        assert next_event(ws) == {"kind": "comment_set", "proposal": PROPOSAL, "run": 3,
                                  "text": ""}
    assert table(server, "?runs=3")["comment"] == [None]
    with open_db(server.db_dir, readonly=True) as db:
        assert db.get_value(PROPOSAL, 3, "comment") is None


@pytest.mark.parametrize(("path", "body", "status", "mentions"), [
    ("/api/runs/99/comment", {"text": "x"}, 404, "Run 99 is not in this table"),
    ("/api/runs/3/comment", {"text": 5}, 422, "text"),
    ("/api/runs/3/comment", {}, 422, "text"),
    ("/api/runs/abc/comment", {"text": "x"}, 422, "run"),
])
def test_comment_errors(server: RunningServer, path: str, body: Any, status: int,
                        mentions: str) -> None:
    got, content = call(server, "PUT", path, body)
    assert got == status
    assert mentions in content["detail"]


# -- user-editable variables -----------------------------------------------------------------
@pytest.mark.parametrize(("title", "name"), [
    ("Sample", "sample"), ("Sample / Temp (K)", "sample_temp_k"), ("2nd try", "v_2nd_try"),
    ("Température", "temperature"), ("Comment", "comment_"), ("  x--y  ", "x_y"),
])
def test_names_from_titles(title: str, name: str) -> None:
    assert name_from_title(title) == name


def test_a_title_without_letters_is_refused() -> None:
    with pytest.raises(ValidationError, match="give a name"):
        name_from_title("µ/??")


def test_create_variable_and_place_it(server: RunningServer) -> None:
    with events(server) as ws:
        status, var = call(server, "POST", "/api/variables", {
            "title": "Sample / Temp (K)", "type": "number", "description": "From the log",
            "after": "comment"})
        assert status == 201
        assert var == {"name": "sample_temp_k", "title": "Sample / Temp (K)",
                       "description": "From the log", "tags": [], "user_editable": True,
                       "type": "number", "units": None, "after": "comment"}
        assert next_event(ws) == {"kind": "variables_changed", "names": ["sample_temp_k"]}
    status, var = call(server, "POST", "/api/variables", {
        "title": "Good run?", "name": "good", "type": "boolean", "after": "n_trains"})
    assert status == 201 and var["name"] == "good"
    status, _ = call(server, "POST", "/api/variables", {"title": "Notes", "type": "string"})
    assert status == 201
    snap = table(server)
    assert [v["name"] for v in snap["variables"]] == [
        "sample_temp_k", "n_trains", "good", "notes"]
    assert snap["variables"][0]["description"] == "From the log"
    assert snap["columns"]["good"] == {"values": [None] * len(RUNS), "cells": {}}


@pytest.mark.parametrize(("body", "mentions"), [
    ({"title": "Trains", "name": "n_trains", "type": "number"}, "already exists"),
    ({"title": "X", "type": "float"}, "use one of boolean, integer, number, string"),
    ({"title": "X", "name": "1abc", "type": "string"}, "not a valid variable name"),
    ({"title": "X", "name": "run", "type": "string"}, "reserved"),
    ({"title": "X", "type": "string", "after": "nothing"}, "'after' names no variable"),
    ({"title": "   ", "type": "string"}, "needs a title"),
    ({"title": "?!", "type": "string"}, "give a name"),
    ({"type": "string"}, "title"),
])
def test_create_variable_errors(server: RunningServer, body: dict, mentions: str) -> None:
    status, content = call(server, "POST", "/api/variables", body)
    assert status == 422
    assert mentions in content["detail"]
    with open_db(server.db_dir, readonly=True) as db:
        assert set(db.variables()) == {"n_trains"}  # nothing half-made


def test_values_are_validated_stored_and_published(server: RunningServer) -> None:
    call(server, "POST", "/api/variables", {"title": "Good", "type": "boolean"})
    call(server, "POST", "/api/variables", {"title": "Energy", "type": "number"})
    call(server, "POST", "/api/variables", {"title": "Shots", "type": "integer"})
    with events(server) as ws:
        assert call(server, "PUT", "/api/runs/2/values/good", {"value": "yes"}) == (
            200, {"run": 2, "name": "good", "value": True})
        assert next_event(ws) == {"kind": "user_value_set", "proposal": PROPOSAL, "run": 2,
                                  "name": "good", "value": True}
        assert call(server, "PUT", "/api/runs/2/values/energy", {"value": "9.3"})[1][
            "value"] == 9.3
        assert next_event(ws)["value"] == 9.3
        assert call(server, "PUT", "/api/runs/2/values/shots", {"value": 12})[1][
            "value"] == 12
        assert next_event(ws)["value"] == 12
    snap = table(server, "?runs=2")
    assert snap["columns"]["good"] == {"values": [True], "cells": {"0": {"provenance": "user"}}}
    assert snap["columns"]["energy"]["values"] == [9.3]
    # null (or "" for non-strings) clears.
    assert call(server, "PUT", "/api/runs/2/values/energy", {"value": ""})[1]["value"] is None
    assert table(server, "?runs=2")["columns"]["energy"] == {"values": [None], "cells": {}}


@pytest.mark.parametrize(("path", "body", "status", "mentions"), [
    ("/api/runs/2/values/energy", {"value": "abc"}, 422,
     "Run 2, Energy: 'abc' is not a number (this column takes numbers"),
    ("/api/runs/2/values/shots", {"value": 1.5}, 422, "is not an integer"),
    ("/api/runs/2/values/good", {"value": "maybe"}, 422, "true or false"),
    ("/api/runs/2/values/energy", {"value": [1, 2]}, 422, "not a list"),
    ("/api/runs/2/values/energy", {}, 422, "value"),
    ("/api/runs/2/values/n_trains", {"value": 3}, 422, "computed by the context file"),
    ("/api/runs/2/values/nothing", {"value": 3}, 404, "no variable named 'nothing'"),
    ("/api/runs/77/values/energy", {"value": 3}, 404, "Run 77"),
])
def test_value_errors(server: RunningServer, path: str, body: Any, status: int,
                      mentions: str) -> None:
    call(server, "POST", "/api/variables", {"title": "Good", "type": "boolean"})
    call(server, "POST", "/api/variables", {"title": "Energy", "type": "number"})
    call(server, "POST", "/api/variables", {"title": "Shots", "type": "integer"})
    call(server, "PUT", "/api/runs/2/values/energy", {"value": 1.0})
    seq = server.bus.last_seq
    got, content = call(server, "PUT", path, body)
    assert got == status
    assert mentions in content["detail"]
    assert server.bus.last_seq == seq  # nothing published
    assert table(server, "?runs=2")["columns"]["energy"]["values"] == [1.0]  # nothing lost


# -- time comments -------------------------------------------------------------------------
def test_time_comments_crud(server: RunningServer) -> None:
    with events(server) as ws:
        status, first = call(server, "POST", "/api/time-comments",
                             {"text": "beam down", "timestamp": 1.7e9})
        assert status == 201
        assert first == {"id": first["id"], "timestamp": 1.7e9, "text": "beam down"}
        assert next_event(ws) == {"kind": "time_comment", "action": "added", **first}
        status, second = call(server, "POST", "/api/time-comments", {"text": "now"})
        assert status == 201 and second["timestamp"] > 1.7e9
        next_event(ws)
        status, edited = call(server, "PUT", f"/api/time-comments/{first['id']}",
                              {"text": "beam back", "timestamp": "2024-01-01T00:00:00+00:00"})
        assert status == 200
        assert edited == {"id": first["id"], "timestamp": 1704067200.0, "text": "beam back"}
        assert next_event(ws) == {"kind": "time_comment", "action": "edited", **edited}
        assert call(server, "GET", "/api/time-comments") == (200, [edited, second])
        assert call(server, "DELETE", f"/api/time-comments/{second['id']}") == (204, None)
        assert next_event(ws) == {"kind": "time_comment", "action": "deleted",
                                  "id": second["id"], "timestamp": None, "text": None}
    assert call(server, "GET", "/api/time-comments") == (200, [edited])


@pytest.mark.parametrize(("method", "path", "body", "status", "mentions"), [
    ("POST", "/api/time-comments", {"text": "  "}, 422, "needs some text"),
    ("POST", "/api/time-comments", {"text": "x", "timestamp": "yesterday"}, 422,
     "timestamp"),
    ("PUT", "/api/time-comments/999", {"text": "x"}, 404, "no time comment with id 999"),
    ("DELETE", "/api/time-comments/999", None, 404, "no time comment with id 999"),
])
def test_time_comment_errors(server: RunningServer, method: str, path: str, body: Any,
                             status: int, mentions: str) -> None:
    got, content = call(server, method, path, body)
    assert got == status
    assert mentions in content["detail"]


def test_edits_need_the_token(server: RunningServer) -> None:
    for method, path, body in [("PUT", "/api/runs/1/comment", {"text": "x"}),
                               ("POST", "/api/variables", {"title": "A", "type": "string"}),
                               ("POST", "/api/time-comments", {"text": "x"})]:
        status, _, _ = server.request(method, path, body=body, token=None)
        assert status == 401
    with open_db(server.db_dir, readonly=True) as db:
        assert db.get_value(PROPOSAL, 1, "comment") is None
        assert db.time_comments() == []


# -- two editors at once -----------------------------------------------------------------
def test_concurrent_editors_lose_nothing(server: RunningServer) -> None:
    """Threads editing different cells at once: every edit is stored and shown."""
    call(server, "POST", "/api/variables", {"title": "Energy", "type": "number"})
    call(server, "POST", "/api/variables", {"title": "Note", "type": "string"})
    failures: list[Any] = []
    barrier = threading.Barrier(4)

    def editor(kind: int) -> None:
        barrier.wait()
        for run in RUNS:
            if kind == 0:
                got = call(server, "PUT", f"/api/runs/{run}/comment", {"text": f"c{run}"})
            elif kind == 1:
                got = call(server, "PUT", f"/api/runs/{run}/values/energy",
                           {"value": run / 4})
            elif kind == 2:
                got = call(server, "PUT", f"/api/runs/{run}/values/note",
                           {"value": f"n{run}"})
            else:
                got = call(server, "POST", "/api/time-comments", {"text": f"t{run}"})
            if got[0] not in (200, 201):
                failures.append(got)

    threads = [threading.Thread(target=editor, args=(k,)) for k in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert failures == []
    snap = table(server)
    assert snap["comment"] == [f"c{r}" for r in RUNS]
    assert snap["columns"]["energy"]["values"] == [r / 4 for r in RUNS]
    assert snap["columns"]["note"]["values"] == [f"n{r}" for r in RUNS]
    assert sorted(c["text"] for c in call(server, "GET", "/api/time-comments")[1]) == \
        sorted(f"t{r}" for r in RUNS)
    with open_db(server.db_dir, readonly=True) as db:
        assert db.integrity_check() == "ok"
