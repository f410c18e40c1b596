"""POST /api/notify: validation, the hook, and what its errors become."""

from __future__ import annotations

import json

import pytest

from .helpers import RunningServer


@pytest.fixture(autouse=True)
def fresh_hook(server: RunningServer) -> None:
    server.notified.clear()
    server.notify_error = None


def test_notify_calls_the_hook(server: RunningServer) -> None:
    status, _, body = server.request("POST", "/api/notify", body={"run": 7, "data": "proc"})
    assert status == 202
    assert json.loads(body) == {"ok": True, "run": 7, "data": "proc"}
    status, _, _ = server.request("POST", "/api/notify", body={"run": 8})
    assert status == 202
    assert server.notified == [(7, "proc"), (8, "raw")]  # data defaults to raw


@pytest.mark.parametrize(("body", "mentions"), [
    ({"run": -1}, "run"),
    ({"run": "5"}, "run"),       # strict: a string is not a run number
    ({"run": 5.5}, "run"),
    ({"run": True}, "run"),
    ({}, "run"),
    ({"run": 5, "data": "all"}, "data"),
    (b"not json", "json"),
    ([5], "body"),
])
def test_bad_input_is_422_with_a_readable_message(
    server: RunningServer, body: object, mentions: str
) -> None:
    status, _, content = server.request("POST", "/api/notify", body=body)
    assert status == 422
    detail = json.loads(content)["detail"]
    assert isinstance(detail, str) and mentions in detail.lower()
    assert server.notified == []


def test_hook_errors(server: RunningServer) -> None:
    server.notify_error = ValueError("run 5 is not a run of this proposal")
    status, _, content = server.request("POST", "/api/notify", body={"run": 5})
    assert (status, json.loads(content)["detail"]) == (
        422, "run 5 is not a run of this proposal")
    server.notify_error = RuntimeError("RunWatcher is not running")
    status, _, content = server.request("POST", "/api/notify", body={"run": 5})
    assert (status, json.loads(content)["detail"]) == (503, "RunWatcher is not running")


def test_no_hook_is_503(server: RunningServer) -> None:
    hook = server.app.state.notify
    server.app.state.notify = None
    try:
        status, _, content = server.request("POST", "/api/notify", body={"run": 5})
    finally:
        server.app.state.notify = hook
    assert status == 503
    assert "no run watcher" in json.loads(content)["detail"]
