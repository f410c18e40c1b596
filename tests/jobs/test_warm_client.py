"""WarmProcess: the client side of the warm parent protocol, on a real warm parent."""

from __future__ import annotations

import queue
import sys
from pathlib import Path

import pytest

from runtable.jobs.warm_client import WarmProcess


class Events:
    """Collects what a WarmProcess delivers, as its ``on_event``."""

    def __init__(self) -> None:
        self.queue: queue.SimpleQueue[tuple[WarmProcess, dict]] = queue.SimpleQueue()

    def __call__(self, proc: WarmProcess, event: dict) -> None:
        self.queue.put((proc, event))

    def next(self, proc: WarmProcess) -> dict:
        source, event = self.queue.get(timeout=120)
        assert source is proc
        return event


def test_events_then_eof_on_close() -> None:
    events = Events()
    proc = WarmProcess(sys.executable, events, capture_stderr=True)
    try:
        ready = events.next(proc)
        assert ready["event"] == "ready" and ready["pid"] == proc.pid
        # A cancel of an unknown job is answered by nothing: the next event is the end.
        proc.send({"op": "cancel", "id": 99})
    finally:
        proc.close()
    assert events.next(proc) == {"event": "eof", "returncode": 0}
    assert proc.poll() == 0
    with pytest.raises(OSError):
        proc.send({"op": "cancel", "id": 1})
    proc.close()  # twice is fine


def test_crash_is_reported_with_its_stderr() -> None:
    events = Events()
    proc = WarmProcess(sys.executable, events, capture_stderr=True)
    try:
        assert events.next(proc)["event"] == "ready"
        proc.send({})  # no "op": the warm parent dies of a KeyError
        assert events.next(proc) == {"event": "eof", "returncode": 1}
        assert "KeyError: 'op'" in proc.stderr_tail()
        with pytest.raises(OSError):
            proc.send({"op": "cancel", "id": 1})
    finally:
        proc.close()


def test_stderr_file_is_appended_and_tail_is_this_process_only(tmp_path: Path) -> None:
    log = tmp_path / "logs" / "warm.log"
    log.parent.mkdir()
    log.write_text("an earlier warm parent's words\n")
    events = Events()
    proc = WarmProcess(sys.executable, events, stderr=log)
    try:
        assert events.next(proc)["event"] == "ready"
        proc.send({})
        assert events.next(proc)["event"] == "eof"
        tail = proc.stderr_tail(lines=50)
    finally:
        proc.close()
    assert "KeyError: 'op'" in tail
    assert "earlier" not in tail
    text = log.read_text()
    assert text.startswith("an earlier warm parent's words\n") and "KeyError" in text


def test_stderr_file_and_capture_exclude_each_other(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="not both"):
        WarmProcess(sys.executable, Events(), stderr=tmp_path / "x.log", capture_stderr=True)
