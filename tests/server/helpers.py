"""Helpers of the server tests: a real uvicorn server in a thread, requests, the CLI."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from fastapi import FastAPI

from runtable.events import EventBus

TOKEN = "test-token-0123456789abcdef"


def _lower(items: Any) -> dict[str, str]:
    return {k.lower(): v for k, v in items}


@dataclass
class RunningServer:
    """A server of the test process: its URL, token, bus, folder and notify calls."""

    url: str
    token: str
    app: FastAPI
    bus: EventBus
    db_dir: Path
    notified: list[tuple[int, str]] = field(default_factory=list)
    notify_error: Exception | None = None

    def request(self, method: str, path: str, *, body: Any = None,
                headers: dict[str, str] | None = None,
                token: str | None = "<default>") -> tuple[int, dict[str, str], bytes]:
        """(status, headers with lower-case names, body) of a request; ``token`` is sent
        as Bearer (None: no token)."""
        hdrs = dict(headers or {})
        if token == "<default>":
            token = self.token
        if token is not None:
            hdrs["Authorization"] = f"Bearer {token}"
        data = None
        if body is not None:
            data = body if isinstance(body, bytes) else json.dumps(body).encode()
            hdrs.setdefault("Content-Type", "application/json")
        req = urllib.request.Request(self.url + path, data=data, method=method, headers=hdrs)
        try:
            with urllib.request.urlopen(req, timeout=10) as resp:
                return resp.status, _lower(resp.headers.items()), resp.read()
        except urllib.error.HTTPError as exc:
            return exc.code, _lower(exc.headers.items()), exc.read()


def get_ready(server: RunningServer, path: str, timeout: float = 60.0,
              **headers: str) -> tuple[int, dict[str, str], bytes]:
    """GET ``path``, asking again (as the page does) while the server answers 503
    because it reads the table for the first time."""
    deadline = time.monotonic() + timeout
    while True:
        status, hdrs, body = server.request("GET", path, headers=headers)
        if status != 503 or b'"progress"' not in body or time.monotonic() > deadline:
            return status, hdrs, body
        time.sleep(0.1)


def wait_for(predicate: Callable[[], bool], timeout: float = 10.0) -> None:
    """Poll ``predicate`` until true; fail the test after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {timeout} s waiting for {predicate}")
        time.sleep(0.01)


def runtable_cmd(*args: str) -> list[str]:
    """The command line running ``runtable ARGS`` with this interpreter."""
    return [sys.executable, "-m", "runtable.cli", *args]


def cli_env(**extra: str) -> dict[str, str]:
    """The environment for CLI subprocesses (no token from the developer's shell)."""
    env = {k: v for k, v in os.environ.items() if k != "RUNTABLE_TOKEN"}
    env.update(extra)
    return env


def run_cli(*args: str, timeout: float = 20, **env: str) -> subprocess.CompletedProcess[str]:
    """Run ``runtable ARGS`` to completion, capturing its output."""
    return subprocess.run(runtable_cmd(*args), capture_output=True, text=True,
                          timeout=timeout, env=cli_env(**env))
