"""`runtable notify` and `runtable events`, as subprocesses against a running server."""

from __future__ import annotations

import json
import subprocess
import threading

from runtable.events import CommentSet, RunAdded, ValuesMerged
from runtable.store import create_folder

from .helpers import RunningServer, cli_env, run_cli, runtable_cmd, wait_for


def test_notify_finds_the_server_of_the_folder(server: RunningServer) -> None:
    result = run_cli("notify", "12", "--data", "proc", "--in", str(server.db_dir))
    assert result.returncode == 0, result.stderr
    assert "run 12 (proc)" in result.stdout
    assert (12, "proc") in server.notified


def test_notify_with_url_and_token(server: RunningServer) -> None:
    result = run_cli("notify", "13", "--url", server.url, RUNTABLE_TOKEN=server.token)
    assert result.returncode == 0, result.stderr
    assert (13, "raw") in server.notified
    result = run_cli("notify", "14", "--url", server.url, "--token", "wrong-token-123456")
    assert result.returncode == 1
    assert "refused the token" in result.stderr


def test_notify_errors_are_readable(server: RunningServer, tmp_path) -> None:
    create_folder(tmp_path, 1234).close()
    result = run_cli("notify", "5", "--in", str(tmp_path))
    assert result.returncode == 1
    assert result.stderr.strip() == (f"Error: no runtable service is running for {tmp_path}; "
                                      f"start it with runtable serve {tmp_path}")
    server.notify_error = ValueError("run 5 is not ready")
    try:
        result = run_cli("notify", "5", "--in", str(server.db_dir))
    finally:
        server.notify_error = None
    assert result.returncode == 1
    assert "run 5 is not ready (HTTP 422)" in result.stderr


def test_events_prints_json_lines_live(server: RunningServer) -> None:
    before = server.bus.subscriber_count()
    proc = subprocess.Popen(
        runtable_cmd("events", "--in", str(server.db_dir), "--kind", "run_added",
                     "--kind", "values_merged", "-n", "3"),
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=cli_env())
    try:
        wait_for(lambda: server.bus.subscriber_count() > before or proc.poll() is not None)
        assert proc.poll() is None, proc.stderr.read() if proc.stderr else ""

        def publish() -> None:
            server.bus.publish(RunAdded(1234, 21))
            server.bus.publish(CommentSet(1234, 21, "filtered out by --kind"))
            server.bus.publish(ValuesMerged(1234, 21, ("a",)))
            server.bus.publish(ValuesMerged(1234, 21, ("b",)))

        threading.Thread(target=publish).start()
        out, err = proc.communicate(timeout=20)
    finally:
        proc.kill()
    assert proc.returncode == 0, err
    events = [json.loads(line) for line in out.splitlines()]
    assert [e["kind"] for e in events] == ["run_added", "values_merged", "values_merged"]
    seqs = [e["seq"] for e in events]
    assert seqs == [seqs[0], seqs[0] + 2, seqs[0] + 3]
    assert events[2]["names"] == ["b"]


def test_events_with_a_wrong_token_fails_clearly(server: RunningServer) -> None:
    result = run_cli("events", "--url", server.url, "--token", "wrong-token-123456")
    assert result.returncode == 1
    assert "refused the token" in result.stderr
