"""Fixtures of the service tests: a fresh mock proposal per test (tests add runs to it),
its database folder at the default place, and services with a recording event bus.

Settings are sized for a loaded 2-CPU machine: one CPU and 2 GB per job, two jobs
at once, a short quiet period and fast polling.
"""

from __future__ import annotations

import os
import textwrap
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from runtable.events import Event, EventBus
from runtable.service import Service
from runtable.store import create_folder, open_db
from runtable.testing import MockProposal, make_proposal

PROPOSAL = 1234
#: Long enough for every job here on a loaded machine; a hang still ends the test.
TIMEOUT = 90.0

SETTINGS = {"noncluster_cpus": 1, "noncluster_mem": "2G", "concurrent_jobs": 2,
            "ready_quiet_s": 1.0}

CONTEXT = '''
from runtable.context import Variable

@Variable(title="Trains")
def n_trains(run):
    return len(run.train_ids)

@Variable(title="Answer")
def answer(run):
    return 42

@Variable(title="Detector frames", data="proc")
def frames(run):
    return 7
'''
RAW_NAMES = ("answer", "n_trains")
PROC_NAMES = ("frames",)


class RecordingBus(EventBus):
    """A real event bus that also keeps every event with its arrival time."""

    def __init__(self) -> None:
        super().__init__()
        self.events: list[tuple[float, int, Event]] = []
        self._cond = threading.Condition()

    def publish(self, event: Any) -> int:
        with self._cond:  # so that the recorded order is the seq order
            seq = super().publish(event)
            self.events.append((time.monotonic(), seq, event))
            self._cond.notify_all()
        return seq

    def of(self, cls: type[Event], **fields: Any) -> list[Event]:
        """Recorded events of type ``cls`` whose fields equal ``fields``."""
        with self._cond:
            return [e for _, _, e in self.events if isinstance(e, cls)
                    and all(getattr(e, k) == v for k, v in fields.items())]

    def wait(self, cls: type[Event], count: int = 1, timeout: float = TIMEOUT,
             **fields: Any) -> Event:
        """Wait until ``count`` matching events were published; return the last."""
        with self._cond:
            ok = self._cond.wait_for(lambda: len(self.of(cls, **fields)) >= count, timeout)
            if not ok:
                seen = [e for _, _, e in self.events]
                pytest.fail(f"no {cls.__name__}({fields}) x{count} within {timeout} s; "
                            f"saw {seen}")
            return self.of(cls, **fields)[count - 1]

    def time_of(self, event: Event) -> float:
        with self._cond:
            return next(t for t, _, e in self.events if e is event)


def age_runs(prop: MockProposal, seconds: float = 3600) -> None:
    """Make every run folder look written ``seconds`` ago (long complete), so that a
    service starting now treats them as settled rather than still being written."""
    when = time.time() - seconds
    for data_dir in (prop.path / "raw", prop.path / "proc"):
        if not data_dir.is_dir():
            continue
        for run_dir in data_dir.iterdir():
            for f in run_dir.iterdir():
                os.utime(f, (when, when))
            os.utime(run_dir, (when, when))


def write_context(folder: Path, text: str) -> None:
    """Replace the folder's context file (mtime bumped so the change is seen at once)."""
    path = folder / "context.py"
    tmp = path.with_suffix(".tmp")
    tmp.write_text(textwrap.dedent(text))
    os.replace(tmp, path)
    st = path.stat()
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns + 1_000_000))


@pytest.fixture
def proposal(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> MockProposal:
    """An empty mock proposal of this test's own; add runs with add_raw_run()."""
    prop = make_proposal(tmp_path / "data", PROPOSAL, runs=[])
    monkeypatch.setenv("EXTRA_DATA_DATA_ROOT", str(prop.root))
    return prop


@pytest.fixture
def folder(proposal: MockProposal) -> Path:
    """The proposal's database folder at its default place, with CONTEXT."""
    path = proposal.path / "usr" / "Shared" / "amore"
    create_folder(path, PROPOSAL, context_text=textwrap.dedent(CONTEXT)).close()
    return path


StartService = Callable[..., tuple[Service, RecordingBus]]


@pytest.fixture
def start_service(folder: Path) -> Iterator[StartService]:
    """``start_service(**settings)``: a started Service on ``folder`` with a
    RecordingBus; stopped at teardown (if the test did not)."""
    services: list[Service] = []

    def start(poll_interval_s: float = 0.2, use_inotify: bool = True,
              **settings: Any) -> tuple[Service, RecordingBus]:
        # A setting given as None is not overridden: the folder's own value applies.
        merged = {k: v for k, v in {**SETTINGS, **settings}.items() if v is not None}
        service = Service(folder, settings=merged, poll_interval_s=poll_interval_s,
                          use_inotify=use_inotify, context_poll_s=0.1)
        services.append(service)
        bus = RecordingBus()
        service.start(bus)
        return service, bus

    yield start
    for service in services:
        service.stop()


def values(folder: Path, run: int) -> dict[str, Any]:
    """``{name: value, or ('error', error_cls)}`` of one run, from the database."""
    out: dict[str, Any] = {}
    with open_db(folder, readonly=True) as db:
        for (name,) in db.conn.execute(
                "SELECT name FROM run_variables WHERE proposal = ? AND run = ?",
                (PROPOSAL, run)):
            attrs = db.get_attributes(PROPOSAL, run, name) or {}
            out[name] = (("error", attrs["error_cls"]) if "error_cls" in attrs
                         else db.get_value(PROPOSAL, run, name))
    return out


def wait_for(predicate: Callable[[], object], timeout: float = TIMEOUT, what: str = "") -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            pytest.fail(f"timed out waiting for {what or predicate}")
        time.sleep(0.05)
