"""Progress of a running job: which variable it computes and how far it is.

A job installs a :class:`ProgressReporter` (:func:`reporting`) around the execution of
its variables; :class:`~runtable.context.execution.Execution` tells it as each variable
starts, and a context file may report finer progress from inside a variable::

    from runtable.context import Variable, progress   # or: from damnit_ctx import ...

    @Variable(title="AGIPD mean")
    def agipd_mean(run):
        total = 0.0
        for tid, data in progress(run.trains(), total=len(run.train_ids)):
            total += data[...].mean()
        return total

Outside a job (a notebook's ``Pipeline.execute``) no reporter is installed and both
calls cost next to nothing. Inside a job the calls only store numbers: a thread of the
reporter sends a snapshot at most every :data:`INTERVAL_S` seconds, and only when
something changed, so a loop over 10,000 trains sends a few events per second, not
10,000.

Standard library only: the warm job process imports it before the context file.
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from typing import Any, TypeVar

#: Seconds between two snapshots of one job, at most; also the longest a change waits.
INTERVAL_S = 0.5

T = TypeVar("T")
Sink = Callable[[dict[str, Any]], None]


class ProgressReporter:
    """The progress state of one job and the thread that sends it to ``sink``.

    ``sink`` receives dicts ``{"variable", "done", "total", "step", "steps",
    "variable_s"}``: the variable being computed (``""`` before the first), how many
    of ``total`` variables have finished, the finer progress reported from inside the
    variable (``step`` of ``steps``; ``steps`` is None when unknown or not reported) and
    the seconds spent in the variable so far. A sink that raises is not called again.
    """

    def __init__(self, sink: Sink, total: int, interval: float = INTERVAL_S) -> None:
        self.sink: Sink | None = sink
        self.interval = interval
        self.total = total
        self.variable = ""
        self.done = 0
        self.step = 0
        self.steps: int | None = None
        self.started = time.monotonic()
        # Bumped by every change; the thread sends when it differs from what it sent.
        self._version = 0
        self._sent = -1
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="runtable-progress",
                                        daemon=True)

    def start(self) -> None:
        """Send the first snapshot now and the next ones from a thread."""
        self._send()
        self._thread.start()

    def stop(self) -> None:
        """Send what changed since the last snapshot and stop the thread."""
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join()
        self._send()

    def variable_started(self, name: str, done: int) -> None:
        """``name`` starts; ``done`` variables have finished before it."""
        self.variable, self.done = name, done
        self.step, self.steps = 0, None
        self.started = time.monotonic()
        self._version += 1

    def set_step(self, step: int, steps: int | None) -> None:
        """Finer progress inside the current variable."""
        self.step, self.steps = step, steps
        self._version += 1

    def snapshot(self) -> dict[str, Any]:
        """The state as the sink receives it."""
        return {"variable": self.variable, "done": self.done, "total": self.total,
                "step": self.step, "steps": self.steps,
                "variable_s": round(time.monotonic() - self.started, 3)}

    def _loop(self) -> None:
        while not self._stop.wait(self.interval):
            self._send()

    def _send(self) -> None:
        version = self._version
        if version == self._sent or self.sink is None:
            return
        self._sent = version
        try:
            self.sink(self.snapshot())
        except Exception:  # a closed pipe: progress is not worth failing the job for
            self.sink = None


_current: ProgressReporter | None = None


@contextlib.contextmanager
def reporting(sink: Sink | None, total: int,
              interval: float = INTERVAL_S) -> Iterator[ProgressReporter | None]:
    """Install a reporter sending to ``sink`` for the duration (None: none at all)."""
    global _current
    if sink is None:
        yield None
        return
    reporter = ProgressReporter(sink, total, interval)
    previous, _current = _current, reporter
    reporter.start()
    try:
        yield reporter
    finally:
        _current = previous
        reporter.stop()


def variable_started(name: str, done: int) -> None:
    """Called by the execution as each variable starts (no-op outside a job)."""
    reporter = _current
    if reporter is not None:
        reporter.variable_started(name, done)


def set_progress(step: int, steps: int | None = None) -> None:
    """Report that the current variable has done ``step`` of ``steps`` (e.g. trains).

    For loops that are not a single iterable; :func:`progress` is the shorter form.
    Does nothing outside a job.
    """
    reporter = _current
    if reporter is not None:
        reporter.set_step(step, steps)


def progress(iterable: Iterable[T], total: int | None = None) -> Iterator[T]:
    """Iterate over ``iterable``, reporting how many items are done (like ``tqdm``).

    ``total`` defaults to ``len(iterable)`` where it has one. The job's table cell
    and the Jobs tab show it as a bar; outside a job the items pass through unchanged.
    """
    reporter = _current
    if reporter is None:
        yield from iterable
        return
    if total is None:
        with contextlib.suppress(TypeError):
            total = len(iterable)  # type: ignore[arg-type]
    reporter.set_step(0, total)
    for done, item in enumerate(iterable, 1):
        yield item
        # set_step(done, total) spelled out: this runs once per item of the user's loop
        reporter.step = done
        reporter._version += 1


__all__ = ["INTERVAL_S", "ProgressReporter", "progress", "reporting", "set_progress",
           "variable_started"]
