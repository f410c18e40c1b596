"""The event bus and /api/events: order, seq, threads, and clients that fall behind."""

from __future__ import annotations

import asyncio
import base64
import json
import math
import os
import socket
import threading
import time
from collections.abc import Callable, Coroutine, Iterator
from contextlib import contextmanager
from typing import Any

import numpy as np
import pytest
from websockets.sync.client import ClientConnection, connect

from runtable.events import (
    EVENT_TYPES,
    CommentSet,
    ContextSaved,
    ContextStatus,
    EventBus,
    JobProgress,
    JobStateChanged,
    JobStuck,
    RunAdded,
    SubscriberTooSlow,
    TimeCommentChanged,
    UserValueSet,
    ValuesMerged,
    VariablesChanged,
    encode_event,
)
from runtable.server.app import CLOSE_TOO_SLOW

from .helpers import RunningServer, wait_for

#: Small, so that the slow-client test overflows a queue quickly.
BUS_MAX_QUEUE = 1000


@contextmanager
def open_stream(server: RunningServer) -> Iterator[tuple[ClientConnection, dict]]:
    """A client of /api/events, and the hello message it got first."""
    with connect(server.url.replace("http://", "ws://") + "/api/events", open_timeout=5,
                 additional_headers={"Authorization": f"Bearer {server.token}"}) as ws:
        hello = json.loads(ws.recv(timeout=5))
        assert hello["kind"] == "hello"
        yield ws, hello


def run_in_new_loop(main: Callable[[], Coroutine[Any, Any, None]]) -> None:
    """``asyncio.run(main())`` in a thread of its own.

    The test process's main thread may already run an event loop (Playwright's sync API
    in the browser tests leaves one), where asyncio.run refuses to start.
    """
    errors: list[BaseException] = []

    def target() -> None:
        try:
            asyncio.run(main())
        except BaseException as exc:
            errors.append(exc)

    thread = threading.Thread(target=target)
    thread.start()
    thread.join(timeout=60)
    assert not thread.is_alive(), "the test's event loop did not finish"
    if errors:
        raise errors[0]


# -- the bus alone -----------------------------------------------------------------------
def test_typed_events_encode_to_their_wire_form() -> None:
    assert set(EVENT_TYPES) == {"run_added", "values_merged", "variables_changed",
                                "job_state", "job_progress", "job_stuck", "comment_set",
                                "user_value_set", "context_status", "context_saved",
                                "time_comment"}
    cases = {
        RunAdded(1234, 5): {"kind": "run_added", "proposal": 1234, "run": 5},
        ValuesMerged(1234, 5, ("a", "b")): {"kind": "values_merged", "proposal": 1234,
                                            "run": 5, "names": ["a", "b"]},
        VariablesChanged(("a",)): {"kind": "variables_changed", "names": ["a"]},
        JobStateChanged("j1", 1234, 5, "failed", "MemoryError"): {
            "kind": "job_state", "job_id": "j1", "proposal": 1234, "run": 5,
            "state": "failed", "message": "MemoryError"},
        JobProgress("j1", 1234, 5, "agipd", 2, 14, 1200, None, 41.5): {
            "kind": "job_progress", "job_id": "j1", "proposal": 1234, "run": 5,
            "variable": "agipd", "done": 2, "total": 14, "step": 1200, "steps": None,
            "variable_s": 41.5},
        JobStuck("j1", 1234, 5, True, 1764900000.5): {
            "kind": "job_stuck", "job_id": "j1", "proposal": 1234, "run": 5, "stuck": True,
            "last_activity": 1764900000.5},
        CommentSet(1234, 5, "<b>not html</b>"): {"kind": "comment_set", "proposal": 1234,
                                                 "run": 5, "text": "<b>not html</b>"},
        UserValueSet(1234, 5, "ok", np.float32(0.5)): {
            "kind": "user_value_set", "proposal": 1234, "run": 5, "name": "ok",
            "value": 0.5},
        ContextStatus(False, ("line 3: SyntaxError",)): {
            "kind": "context_status", "ok": False, "problems": ["line 3: SyntaxError"]},
        ContextSaved("abc-1", "20261201T1200Z"): {
            "kind": "context_saved", "version": "abc-1", "history_id": "20261201T1200Z"},
        TimeCommentChanged("deleted", 7): {"kind": "time_comment", "action": "deleted",
                                           "id": 7, "timestamp": None, "text": None},
    }
    for event, wire in cases.items():
        assert json.loads(encode_event(event)) == wire
    assert json.loads(encode_event({"kind": "custom", "x": 1})) == {"kind": "custom", "x": 1}


@pytest.mark.parametrize("bad", [{"x": 1}, {"kind": ""}, {"kind": "a", "seq": 3},
                                 {"kind": "a", "v": math.nan}, {"kind": "a", "v": object()}])
def test_bad_payloads_fail_in_the_publisher(bad: dict) -> None:
    bus = EventBus()
    with pytest.raises((ValueError, TypeError)):
        bus.publish(bad)
    assert bus.last_seq == 0  # no seq was used up: clients see no gap


def test_threads_publish_concurrently_in_one_order() -> None:
    async def main() -> None:
        bus = EventBus()
        subs = [bus.subscribe(), bus.subscribe()]
        n_threads, per_thread = 8, 500

        def publish(i: int) -> None:
            for k in range(per_thread):
                bus.publish(RunAdded(i, k))

        threads = [threading.Thread(target=publish, args=(i,)) for i in range(n_threads)]
        for t in threads:
            t.start()
        seen: list[list[dict]] = [[], []]
        for sub, out in zip(subs, seen):
            while len(out) < n_threads * per_thread:
                out.extend(json.loads(text) for text in await sub.next_batch())
        for t in threads:
            t.join()
        # Both subscribers: seq 1..N without gaps, in the same order, and each thread's
        # own events in the order it published them.
        assert [e["seq"] for e in seen[0]] == list(range(1, n_threads * per_thread + 1))
        assert seen[0] == seen[1]
        for i in range(n_threads):
            assert [e["run"] for e in seen[0] if e["proposal"] == i] == list(range(per_thread))
        for sub in subs:
            sub.close()
        assert bus.subscriber_count() == 0

    run_in_new_loop(main)


def test_a_subscriber_that_does_not_read_is_dropped_not_waited_for() -> None:
    async def main() -> None:
        bus = EventBus(max_queue=100)
        idle, busy = bus.subscribe(), bus.subscribe()
        start = time.perf_counter()
        for k in range(1000):
            bus.publish(RunAdded(1, k))
            if k % 50 == 0:
                assert len(await busy.next_batch()) > 0
        assert time.perf_counter() - start < 5
        assert idle.overflowed and idle.pending() == 0  # its memory is freed at once
        with pytest.raises(SubscriberTooSlow):
            await idle.next_batch()
        await asyncio.wait_for(idle.wait_overflow(), 1)
        idle.close()
        assert bus.subscriber_count() == 1
        assert json.loads((await busy.next_batch())[-1])["seq"] == 1000

    run_in_new_loop(main)


def test_a_closed_loop_removes_its_subscription() -> None:
    bus = EventBus()

    async def subscribe() -> None:
        bus.subscribe()

    run_in_new_loop(subscribe)  # the loop is closed afterwards, without unsubscribing
    bus.publish(RunAdded(1, 1))
    assert bus.subscriber_count() == 0


# -- over the WebSocket ------------------------------------------------------------------
def test_events_from_another_thread_arrive_in_order(server: RunningServer) -> None:
    with open_stream(server) as (ws, hello):
        assert hello["bus"] == server.bus.id and hello["seq"] == server.bus.last_seq

        def publisher() -> None:
            server.bus.publish(RunAdded(1234, 7))
            server.bus.publish(ValuesMerged(1234, 7, ("n_trains", "xgm")))
            server.bus.publish(JobStateChanged("j7", 1234, 7, "done"))

        t = threading.Thread(target=publisher)
        t.start()
        events = [json.loads(ws.recv(timeout=5)) for _ in range(3)]
        t.join()
    assert [e["seq"] for e in events] == [hello["seq"] + 1, hello["seq"] + 2,
                                          hello["seq"] + 3]
    assert [e["kind"] for e in events] == ["run_added", "values_merged", "job_state"]
    assert events[1]["names"] == ["n_trains", "xgm"]
    wait_for(lambda: server.bus.subscriber_count() == 0)  # closing unsubscribes


def _raw_websocket_that_never_reads(server: RunningServer) -> socket.socket:
    """A WebSocket handshake over a socket with a tiny receive buffer, then no reading."""
    host, port = server.url.removeprefix("http://").split(":")
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    sock.connect((host, int(port)))
    key = base64.b64encode(os.urandom(16)).decode()
    sock.sendall((
        f"GET /api/events HTTP/1.1\r\nHost: {host}:{port}\r\nUpgrade: websocket\r\n"
        f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\n"
        f"Sec-WebSocket-Version: 13\r\nAuthorization: Bearer {server.token}\r\n\r\n"
    ).encode())
    sock.settimeout(5)
    head = b""
    while b"\r\n\r\n" not in head:
        head += sock.recv(1)  # byte by byte: leave the frames after it unread
    assert head.startswith(b"HTTP/1.1 101"), head
    return sock


def test_a_slow_client_does_not_block_publishers_or_other_clients(
    server: RunningServer,
) -> None:
    subscribers = server.bus.subscriber_count()
    slow = _raw_websocket_that_never_reads(server)
    with open_stream(server) as (fast, hello):
        received = _publish_while_reading(server, fast, subscribers)
    assert received == list(range(hello["seq"] + 1, hello["seq"] + N_EVENTS + 1))
    # The slow client was dropped: its subscription is gone and its connection is
    # closed once the data already in flight has been read.
    wait_for(lambda: server.bus.subscriber_count() == subscribers)
    n_texts, close = _read_frames_until_close(slow)
    slow.close()
    assert n_texts < N_EVENTS  # it never got everything...
    assert close is not None  # ... and is told why
    code, reason = close
    assert code == CLOSE_TOO_SLOW and "re-fetch" in reason


def _read_frames_until_close(sock: socket.socket) -> tuple[int, tuple[int, str] | None]:
    """Read server frames until a close frame or EOF: (text frames, (code, reason))."""
    sock.settimeout(10)
    buf = bytearray()
    n_texts = 0

    def need(n: int) -> bool:
        while len(buf) < n:
            chunk = sock.recv(1 << 20)
            if not chunk:
                return False
            buf.extend(chunk)
        return True

    while need(2):
        opcode, length = buf[0] & 0x0F, buf[1] & 0x7F
        header = 2
        if length == 126:
            if not need(4):
                break
            length, header = int.from_bytes(buf[2:4], "big"), 4
        elif length == 127:
            if not need(10):
                break
            length, header = int.from_bytes(buf[2:10], "big"), 10
        if not need(header + length):
            break
        payload = bytes(buf[header:header + length])
        del buf[:header + length]
        if opcode == 0x8:
            return n_texts, (int.from_bytes(payload[:2], "big"), payload[2:].decode())
        n_texts += opcode == 0x1
    return n_texts, None


N_EVENTS = 3000


def _publish_while_reading(server: RunningServer, fast: ClientConnection,
                           subscribers: int) -> list[int]:
    wait_for(lambda: server.bus.subscriber_count() == subscribers + 2)
    names = tuple(f"variable_{i:04d}" for i in range(400))  # ~6 kB per event
    received: list[int] = []

    def read_fast() -> None:
        while len(received) < N_EVENTS:
            received.append(json.loads(fast.recv(timeout=20))["seq"])

    reader = threading.Thread(target=read_fast)
    reader.start()
    slowest = 0.0
    for k in range(N_EVENTS):
        t0 = time.perf_counter()
        server.bus.publish(ValuesMerged(1234, k, names))
        slowest = max(slowest, time.perf_counter() - t0)
        if k % 50 == 49:
            time.sleep(0.01)  # a busy but plausible rate: the fast client keeps up
    reader.join(timeout=30)
    assert slowest < 0.5, "a publisher waited for a client"
    return received
