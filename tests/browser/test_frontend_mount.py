"""`mount_frontend`: what the server answers for the GUI's files (no browser needed)."""

from __future__ import annotations

import re
import urllib.error
import urllib.request
from collections.abc import Callable
from contextlib import AbstractContextManager
from pathlib import Path

import pytest
from fastapi import FastAPI

from runtable.server import frontend

Serve = Callable[[FastAPI], AbstractContextManager[str]]


def get(url: str) -> tuple[int, dict[str, str], bytes]:
    try:
        with urllib.request.urlopen(url, timeout=10) as response:
            return response.status, dict(response.headers), response.read()
    except urllib.error.HTTPError as error:
        return error.code, dict(error.headers), error.read()


def test_index_and_assets_are_served(gui_url: str) -> None:
    status, headers, body = get(f"{gui_url}/")
    assert status == 200
    assert headers["content-type"].startswith("text/html")
    assert headers["cache-control"] == "no-cache"
    scripts = re.findall(rb'src="\./(assets/[^"]+\.js)"', body)
    assert scripts, "index.html references no script under assets/"

    status, headers, _ = get(f"{gui_url}/{scripts[0].decode()}")
    assert status == 200
    assert "immutable" in headers["cache-control"]
    assert get(f"{gui_url}/assets/missing.js")[0] == 404


def test_unbuilt_gui_says_how_to_build_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, serve_app: Serve
) -> None:
    monkeypatch.setattr(frontend, "static_dir", lambda: tmp_path / "static")
    app = FastAPI()
    frontend.mount_frontend(app)
    with serve_app(app) as url:
        status, headers, body = get(f"{url}/")
        assert status == 503
        assert headers["content-type"].startswith("text/plain")
        assert body.decode() == "the web GUI is not built: run ./dev setup\n"
        assert get(f"{url}/assets/index.js")[0] == 503
