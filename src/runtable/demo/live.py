"""``runtable demo``: the service on a mock proposal, with new runs arriving.

The demo builds its folder (see :mod:`runtable.demo.run`), starts the service and the
web server on it, and then plays the facility: every ``every_s`` seconds the raw data
of a new run appears, and its calibrated (proc) data follows a little later. After
writing each, it sends the same "data complete" signal that ``runtable notify``
sends, so the run is processed at once rather than after the quiet period.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from pathlib import Path
from typing import TextIO

from ..testing.mock_proposal import MockProposal

log = logging.getLogger(__name__)

#: Seconds between a run's raw data and its proc data, as a fraction of the interval.
PROC_DELAY_FRACTION = 0.4


class RunFeeder:
    """A thread that writes a new mock run every ``every_s`` seconds.

    ``signal(run, data)`` is called after each write (the service's ``notify``);
    ``say`` prints one line per event. Stops after ``last_run`` or :meth:`stop`.
    """

    def __init__(self, prop: MockProposal, first_run: int, last_run: int, every_s: float,
                 signal: Callable[[int, str], None], say: Callable[[str], None]) -> None:
        self.prop = prop
        self.first_run = first_run
        self.last_run = last_run
        self.every_s = every_s
        self.signal = signal
        self.say = say
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="runtable-demo-feeder",
                                        daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=30)

    def _loop(self) -> None:
        from ..testing.mock_proposal import add_proc_run, add_raw_run

        for run in range(self.first_run, self.last_run + 1):
            if self._stop.wait(self.every_s * (1 - PROC_DELAY_FRACTION)):
                return
            if not self._write(run, "raw", add_raw_run):
                return
            if self._stop.wait(self.every_s * PROC_DELAY_FRACTION):
                return
            if not self._write(run, "proc", add_proc_run):
                return
        self.say(f"Demo: all {self.last_run} runs written; the table stays served "
                 "until Ctrl-C.")

    def _write(self, run: int, data: str, write: Callable[..., Path]) -> bool:
        try:
            write(self.prop, run)
        except OSError as exc:  # a full disk must not leave the server half-alive
            self.say(f"Demo: could not write run {run} ({data}): {exc}; no more runs.")
            return False
        self.say(f"Demo: run {run} {data} data written.")
        try:
            self.signal(run, data)
        except (RuntimeError, ValueError) as exc:
            log.warning("could not signal run %d (%s): %s", run, data, exc)
        return True


def run_live_demo(directory: str | Path = "demo", *, n_runs: int = 3, every_s: float = 10.0,
                  max_runs: int = 30, keep: bool = False, host: str = "127.0.0.1",
                  port: int = 8780, token: str | None = None,
                  out: TextIO | None = None) -> int:
    """Build the demo in ``directory``, serve it, and add runs up to ``max_runs``;
    returns the exit status when interrupted (Ctrl-C)."""
    import sys

    from ..server.serve import serve
    from ..service import Service
    from .run import DemoError, build_demo

    out = out or sys.stdout

    def say(line: str) -> None:
        print(line, file=out, flush=True)

    try:
        demo = build_demo(directory, n_runs=n_runs, keep=keep, say=say)
    except DemoError as exc:
        print(f"Error: {exc}", file=sys.stderr)
        return 1
    existing = max(demo.runs_on_disk(), default=0)
    service = Service(demo.folder)
    feeder = RunFeeder(demo.prop, existing + 1, max_runs, every_s, service.notify, say)
    if existing < max_runs:
        say(f"A new run arrives every {every_s:g} s (up to run {max_runs}); its proc data "
            f"follows {every_s * PROC_DELAY_FRACTION:g} s later.")
    feeder.start()
    try:
        return serve(demo.folder, host=host, port=port, token=token, service=service,
                     out=out)
    finally:
        feeder.stop()
