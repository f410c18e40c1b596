"""`runtable serve` as a subprocess, and the discovery file it leaves while it runs."""

from __future__ import annotations

import json
import os
import re
import signal
import stat
import subprocess
import sys
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from runtable.server import discovery
from runtable.server.serve import bind_socket, public_url
from runtable.store import create_folder

from .helpers import cli_env, run_cli, runtable_cmd, wait_for

URL_RE = re.compile(r"(http://127\.0\.0\.1:(\d+))/\?token=(\S+)")


def _get(url: str, token: str | None = None) -> int:
    req = urllib.request.Request(url)
    if token:
        req.add_header("Authorization", f"Bearer {token}")
    try:
        with urllib.request.urlopen(req, timeout=10) as resp:
            return resp.status
    except urllib.error.HTTPError as exc:
        return exc.code


def _start(db_dir: Path, *args: str, **env: str) -> tuple[subprocess.Popen[str], re.Match]:
    proc = subprocess.Popen(runtable_cmd("serve", str(db_dir), "--port", "0", *args),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env=cli_env(**env))
    assert proc.stdout is not None
    for line in proc.stdout:  # the URL is printed once the port is bound
        if match := URL_RE.search(line):
            return proc, match
    proc.kill()
    pytest.fail(f"no URL printed; stderr: {proc.communicate()[1]}")


def test_serve_prints_the_url_and_advertises_itself(tmp_path: Path) -> None:
    create_folder(tmp_path, 1234).close()
    proc, match = _start(tmp_path)
    try:
        base, token = match[1], match[3]
        info_file = tmp_path / discovery.SERVER_FILE
        # Written once the service runs (the port answers before: a first start on a
        # folder the reference made upgrades it meanwhile).
        wait_for(info_file.exists, timeout=30)
        assert stat.S_IMODE(info_file.stat().st_mode) == 0o600
        info = json.loads(info_file.read_text())
        assert info == {"url": base, "token": token, "pid": proc.pid,
                        "host": info["host"]}

        assert _get(f"{base}/api/health") == 401
        assert _get(f"{base}/api/health", token) == 200
        # The printed URL itself opens (the GUI, or 503 "not built" in a bare checkout).
        assert _get(match[0]) in (200, 503)

        result = run_cli("notify", "3", "--in", str(tmp_path))
        assert result.returncode == 0, result.stderr
        events = subprocess.Popen(runtable_cmd("events", "--in", str(tmp_path)),
                                  stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                  text=True, env=cli_env())
        assert events.stderr is not None
        # Once connected, it should see the server go away.
        assert events.stderr.readline().startswith("Connected to the service at ")
    finally:
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=15)
    assert proc.returncode == 0, err
    out, events_err = events.communicate(timeout=15)
    assert events.returncode == 0, events_err
    # Run 3's job may start (or not) before the server stops: whatever was printed is
    # events, one JSON object a line.
    assert all(json.loads(line)["kind"] for line in out.splitlines()), out
    assert "The service stopped." in events_err
    # The service logs the notification it was given (and does not lose it silently).
    assert "run 3 (raw)" in err
    assert token not in err  # no access log with ?token= URLs
    assert not info_file.exists()


def test_serve_takes_the_token_from_the_environment(tmp_path: Path) -> None:
    create_folder(tmp_path, 1234).close()
    proc, match = _start(tmp_path, RUNTABLE_TOKEN="from-the-environment")
    try:
        assert match[3] == "from-the-environment"
    finally:
        proc.send_signal(signal.SIGINT)
        proc.communicate(timeout=15)
    assert not (tmp_path / discovery.SERVER_FILE).exists()


def test_serve_refuses_a_bad_token_or_folder(tmp_path: Path) -> None:
    result = run_cli("serve", str(tmp_path), "--port", "0")
    assert result.returncode == 1 and "not a database folder" in result.stderr
    create_folder(tmp_path, 1234).close()
    result = run_cli("serve", str(tmp_path), "--port", "0", "--token", "a b")
    assert result.returncode == 1 and "token" in result.stderr


def test_discovery_file_round_trip(tmp_path: Path) -> None:
    assert discovery.read_server_file(tmp_path) is None
    path = discovery.write_server_file(tmp_path, "http://127.0.0.1:1", "tok")
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    info = discovery.read_server_file(tmp_path)
    assert info is not None and (info.url, info.token, info.pid) == (
        "http://127.0.0.1:1", "tok", os.getpid())
    assert discovery.remove_server_file(tmp_path)
    assert not path.exists()


def test_discovery_ignores_stale_and_foreign_files(tmp_path: Path) -> None:
    path = discovery.write_server_file(tmp_path, "http://127.0.0.1:1", "tok")
    data = json.loads(path.read_text())
    # A server that died without cleaning up: its pid is gone.
    dead = subprocess.Popen(["true"])
    dead.wait()
    path.write_text(json.dumps({**data, "pid": dead.pid}))
    assert discovery.read_server_file(tmp_path) is None
    # Another live process's file is not ours to remove.
    path.write_text(json.dumps({**data, "pid": os.getppid()}))
    assert discovery.read_server_file(tmp_path) is not None
    assert not discovery.remove_server_file(tmp_path)
    assert path.exists()
    path.write_text("{not json")
    assert discovery.read_server_file(tmp_path) is None


def test_port_retry_and_urls() -> None:
    first = bind_socket("127.0.0.1", 0)
    try:
        port = first.getsockname()[1]
        second = bind_socket("127.0.0.1", port, retries=20)
        assert second.getsockname()[1] > port
        second.close()
        with pytest.raises(OSError, match="--port"):
            bind_socket("127.0.0.1", port, retries=0)
    finally:
        first.close()
    assert public_url("127.0.0.1", 80) == "http://127.0.0.1:80"
    assert public_url("::1", 80) == "http://[::1]:80"


def test_importing_the_server_package_stays_light() -> None:
    # The parts that publish events import runtable.events; the CLI imports
    # nothing until a command runs. Neither may load the web framework.
    code = ("import sys, runtable.server, runtable.events, runtable.cli; "
            "runtable.cli.build_parser(); "
            "print(sorted(m for m in ('fastapi', 'uvicorn', 'starlette', 'websockets', "
            "'pydantic') if m in sys.modules))")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            check=True)
    assert result.stdout.strip() == "[]"


def test_first_start_on_a_folder_the_reference_made(tmp_path: Path) -> None:
    """The folder is upgraded (WAL, the change log) and its table read once, its
    columnar copy made, and only then the upgrade's slow step done (an index over
    every cell); the service starts in the background, then advertises itself and
    reads as usual. A folder runtable wrote starts the service before its URL."""
    import sqlite3

    from tests.store.reference_db import make_reference_db

    from runtable.store import open_db, schema

    folder = make_reference_db(tmp_path / "ref", 4)
    with sqlite3.connect(folder / "runs.sqlite") as conn:
        assert schema.needs_upgrade(conn)
    proc, match = _start(folder)
    try:
        base, token = match[1], match[3]
        wait_for(lambda: (folder / discovery.SERVER_FILE).exists(), timeout=60)
        wait_for(lambda: _get(f"{base}/api/table?format=binary", token) == 200, timeout=60)
        assert (folder / "table_copy" / "manifest.json").is_file()

        def upgraded() -> bool:
            with open_db(folder, readonly=True) as db:
                return not schema.needs_upgrade(db.conn)

        wait_for(upgraded, timeout=60)
    finally:
        proc.terminate()
        stderr = proc.communicate(timeout=60)[1]
    assert proc.returncode == 0
    # The index over every cell is built after the table's first read, not before it.
    read = stderr.index("for the first time")
    assert stderr.index("Finished upgrading", read) > read
