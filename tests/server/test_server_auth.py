"""The token: every route refuses requests without it, in every form it may come."""

from __future__ import annotations

import json
import re

import pytest
from starlette.routing import BaseRoute, Mount, Route, WebSocketRoute
from websockets.exceptions import InvalidStatus
from websockets.sync.client import connect

from runtable.server.app import check_token, create_app
from runtable.server.auth import cookie_name

from .helpers import RunningServer


def _concrete(path: str) -> str:
    # Path parameters ({proposal}, {run:int}...) get a plausible value.
    return re.sub(r"\{[^}]+\}", "1", path)


def http_targets(routes: list[BaseRoute]) -> list[tuple[str, str]]:
    """(method, path) for every HTTP route of the app, mounts included."""
    targets = []
    for route in routes:
        if isinstance(route, Mount):
            targets.append(("GET", _concrete(route.path) + "/some-file.js"))
        elif isinstance(route, Route) or hasattr(route, "methods"):
            for method in sorted(getattr(route, "methods", None) or {"GET"}):
                targets.append((method, _concrete(route.path)))
    return targets


def ws_targets(routes: list[BaseRoute]) -> list[str]:
    """The path of every WebSocket route."""
    return [_concrete(r.path) for r in routes
            if isinstance(r, WebSocketRoute) or type(r).__name__ == "APIWebSocketRoute"]


def ws_url(server: RunningServer, path: str = "/api/events") -> str:
    return server.url.replace("http://", "ws://") + path


def test_the_app_has_the_routes_we_enumerate(server: RunningServer) -> None:
    # Guards the enumeration below: if it found nothing, the 401 tests would pass idly.
    targets = http_targets(server.app.routes)
    assert ("GET", "/api/health") in targets
    assert ("POST", "/api/notify") in targets
    assert ("GET", "/api/openapi.json") in targets
    assert ("GET", "/") in targets
    assert ws_targets(server.app.routes) == ["/api/events"]


@pytest.mark.parametrize("token", [None, "wrong-token-0123456789", ""])
@pytest.mark.parametrize("how", ["bearer", "query", "cookie"])
def test_every_http_route_refuses_a_missing_or_wrong_token(
    server: RunningServer, token: str | None, how: str
) -> None:
    targets = http_targets(server.app.routes)
    for method, path in targets:
        headers: dict[str, str] = {}
        bearer = None
        if token is not None:
            if how == "bearer":
                bearer = token
            elif how == "query":
                path = f"{path}?token={token}"
            else:
                port = server.url.rsplit(":", 1)[1]
                headers["Cookie"] = f"runtable-token-{port}={token}"
        body = {"run": 1} if method == "POST" else None
        status, resp_headers, content = server.request(method, path, body=body,
                                                       headers=headers, token=bearer)
        assert status == 401, (method, path, how)
        assert "set-cookie" not in resp_headers
        assert resp_headers.get("x-content-type-options") == "nosniff"
        if method != "HEAD":
            assert "token" in json.loads(content)["detail"]
    assert server.notified == []  # nothing reached the hook


@pytest.mark.parametrize("token", [None, "wrong-token-0123456789"])
def test_every_websocket_is_refused_before_it_is_accepted(
    server: RunningServer, token: str | None
) -> None:
    for path in ws_targets(server.app.routes):
        for headers in ({} if token is None else {"Authorization": f"Bearer {token}"},
                        {} if token is None else {"Cookie": f"runtable-token-x={token}"}):
            url = ws_url(server, path) + ("" if token is None else f"?token={token}")
            with pytest.raises(InvalidStatus) as info:
                connect(url, additional_headers=headers, open_timeout=5)
            assert info.value.response.status_code == 401


def test_bearer_query_and_health(server: RunningServer) -> None:
    status, headers, body = server.request("GET", "/api/health")
    assert status == 200
    assert json.loads(body) == {"ok": True, "version": server.app.version}
    assert headers["x-content-type-options"] == "nosniff"
    assert "frame-ancestors 'none'" in headers["content-security-policy"]
    assert headers["referrer-policy"] == "no-referrer"
    assert "access-control-allow-origin" not in headers

    status, _, body = server.request("GET", f"/api/openapi.json?token={server.token}",
                                     token=None)
    assert status == 200
    schema = json.loads(body)
    assert "/api/notify" in schema["paths"] and "/api/health" in schema["paths"]


def test_cookie_flow(server: RunningServer) -> None:
    # The first visit with ?token= sets the cookie...
    status, headers, _ = server.request("GET", f"/api/health?token={server.token}",
                                        token=None)
    assert status == 200
    cookie = headers["set-cookie"]
    port = server.url.rsplit(":", 1)[1]
    name, _, rest = cookie.partition("=")
    assert name == f"runtable-token-{port}"
    value, *attrs = [part.strip() for part in rest.split(";")]
    assert value == server.token
    assert "HttpOnly" in attrs and "SameSite=Strict" in attrs and "Path=/" in attrs

    # ... later requests carry only the cookie.
    status, headers, _ = server.request("GET", "/api/health", token=None,
                                        headers={"Cookie": f"{name}={value}"})
    assert status == 200
    assert "set-cookie" not in headers  # only set from ?token=
    # The cookie of another server (another port) is not ours.
    status, _, _ = server.request("GET", "/api/health", token=None,
                                  headers={"Cookie": f"runtable-token-1={value}"})
    assert status == 401

    # The page's WebSocket: the cookie works from the page's own origin only.
    with connect(ws_url(server), open_timeout=5, additional_headers={
            "Cookie": f"{name}={value}", "Origin": server.url}) as ws:
        assert json.loads(ws.recv(timeout=5))["kind"] == "hello"
    with pytest.raises(InvalidStatus) as info:
        connect(ws_url(server), open_timeout=5, additional_headers={
            "Cookie": f"{name}={value}", "Origin": "http://evil.example"})
    assert info.value.response.status_code == 401


def test_cookie_name_is_per_port() -> None:
    assert cookie_name({"server": ("127.0.0.1", 8780)}) == "runtable-token-8780"


def test_websocket_with_token_is_accepted(server: RunningServer) -> None:
    with connect(ws_url(server), open_timeout=5,
                 additional_headers={"Authorization": f"Bearer {server.token}"}) as ws:
        hello = json.loads(ws.recv(timeout=5))
    assert hello["kind"] == "hello" and hello["bus"] == server.bus.id
    with connect(ws_url(server) + f"?token={server.token}", open_timeout=5) as ws:
        assert json.loads(ws.recv(timeout=5))["kind"] == "hello"


@pytest.mark.parametrize("bad", ["", "short", "has space in it", "semi;colon=1234", None])
def test_unusable_tokens_are_refused(bad: str | None, tmp_path) -> None:
    with pytest.raises(ValueError, match="token"):
        check_token(bad)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="token"):
        create_app(tmp_path, bad)  # type: ignore[arg-type]
