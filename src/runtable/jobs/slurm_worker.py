"""``python -m runtable.jobs.slurm_worker BATCH_DIR``: one task of a Slurm job array.

Each task of a batch's array (see :mod:`runtable.jobs.batch`) pulls runs from the
batch until none is left: it claims the next unclaimed item, has it executed, reports
``started`` and ``finished`` in its events file, and claims the next. Tasks that start
late find less to do; one that starts when everything is taken exits at once, before
importing anything heavy.

Runs are executed one at a time by a warm parent (:mod:`runtable.jobs.warm`) that the
task starts once: the imports are paid once per task, and each run is still a fresh
forked process, so a run that crashes, runs out of memory or time, or is cancelled
ends alone and the task goes on with the next. Limits per run: the task's memory
(``--mem``), and ``run_time_s`` but never beyond the task's own end: the task stops
taking runs shortly before Slurm would end it, and a run it has to stop for that
reason (not its first: that one had the whole task) is *released*, so the service
queues it again rather than marking it failed.

Cancelling: the service creates ``cancel/<job id>``; the task checks for its running
job's file every :data:`POLL_S`.
"""

from __future__ import annotations

import contextlib
import os
import queue
import socket
import sys
import time
from pathlib import Path

from .batch import BatchFolder
from .model import Job
from .warm_client import EOF, WarmProcess, run_request

#: How often the running job's cancel request is looked for.
POLL_S = 0.25
#: A task takes no new run when less than this (or twice its longest run so far) is
#: left of its time.
MIN_LEFT_S = 5.0
#: Times the warm parent may die before the task gives up (its runs go to others).
MAX_WARM_STARTS = 3


def time_margin(task_time_s: float) -> float:
    """Seconds before Slurm's end of a task at which its worker stops its own runs
    (5 % of the task's time, between 5 s and a minute)."""
    return min(60.0, max(5.0, 0.05 * task_time_s))


class Worker:
    """The loop of one task (single-threaded apart from the warm parent's reader)."""

    def __init__(self, batch: BatchFolder, task: int, job: str) -> None:
        self.batch = batch
        self.manifest = batch.manifest()
        self.task = task
        self.job = job
        self.host = socket.gethostname()
        start = time.monotonic()
        self.end = start + self.manifest.task_time_s - time_margin(self.manifest.task_time_s)
        self.cursor = 0
        self.done = 0
        self.longest = 0.0
        self.events: queue.SimpleQueue[tuple[WarmProcess, dict]] = queue.SimpleQueue()
        self.warm: WarmProcess | None = None
        self.warm_starts = 0
        # The run being executed: item, when it started, its time limit.
        self.current: tuple[Job, float, float] | None = None
        self.cancel_sent = False
        self.cpus = len(os.sched_getaffinity(0))

    def emit(self, event: dict) -> None:
        try:
            self.batch.append_event(self.task, event)
        except OSError as exc:  # the batch was removed (the service gave up on it)
            print(f"runtable worker: could not report {event.get('event')}: {exc}",
                  file=sys.stderr)

    def run(self) -> int:
        self.emit({"event": "worker", "job": self.job, "host": self.host,
                   "pid": os.getpid()})
        try:
            while True:
                if self.current is None:
                    index = self._next()
                    if index is None:
                        break
                    self._start(index)
                self._wait()
        finally:
            if self.warm is not None:
                self.warm.close(10)
        self.emit({"event": "exit", "done": self.done})
        return 0

    # -- taking runs -----------------------------------------------------------------------

    def _next(self) -> int | None:
        """The index of the next item this task takes, if any."""
        if self.warm_starts >= MAX_WARM_STARTS and self.warm is None:
            return None
        left = self.end - time.monotonic()
        if self.done and left < max(MIN_LEFT_S, 2 * self.longest):
            return None  # the rest is for tasks with time left (or the next batch)
        items = self.manifest.items
        while self.cursor < len(items):
            index = self.cursor
            self.cursor += 1
            if self.batch.claim(index, str(self.task)):
                return index
        return None

    def _start(self, index: int) -> None:
        item = self.manifest.items[index]
        if self.batch.cancel_requested(item.id):
            self.emit({"event": "finished", "id": item.id, "killed": "Cancelled",
                       "message": "Cancelled before it started", "returncode": None,
                       "outcome": None})
            return
        if self.warm is None:
            self.warm_starts += 1
            # Our environment is already the job's (runtable.jobs.slurm.job_env).
            self.warm = WarmProcess(sys.executable, lambda p, e: self.events.put((p, e)),
                                    name="runtable-worker-reader", env=os.environ,
                                    fork_first=True)
        time_s = max(1.0, min(self.manifest.run_time_s, self.end - time.monotonic()))
        # All CPUs of the task's affinity (Slurm's allocation where it binds tasks);
        # thread pools sized to the CPUs the task asked for.
        request = run_request(item.id, self.manifest.db_dir, item, cpus=self.cpus,
                              mem_bytes=self.manifest.mem_bytes, time_s=time_s,
                              partial=self.manifest.partial(index),
                              threads=self.manifest.cpus, executor="slurm")
        self.current = (item, time.monotonic(), time_s)
        self.cancel_sent = False
        with contextlib.suppress(OSError):  # it died: its end-of-output event says so
            self.warm.send(request)

    def _wait(self) -> None:
        try:
            proc, event = self.events.get(timeout=POLL_S)
        except queue.Empty:
            self._check_cancel()
            return
        if proc is not self.warm:
            return  # news of a warm parent we gave up on
        kind = event.get("event")
        if kind == "started":
            self.emit({**event, "host": self.host})
        elif kind == "progress":
            self.emit(event)  # already coalesced by the job: a few a second at most
        elif kind == "finished":
            self._finished(event)
        elif kind == EOF:
            self.warm = None
            if self.current is not None:
                tail = proc.stderr_tail()
                self._finished({"event": "finished", "id": self.current[0].id,
                                "returncode": event.get("returncode"), "outcome": None,
                                "killed": "ProcessingCrashed",
                                "message": "The worker's process pool stopped unexpectedly"
                                           + (f": {tail}" if tail else "")})
        self._check_cancel()

    def _finished(self, event: dict) -> None:
        assert self.current is not None
        item, started, time_s = self.current
        self.current = None
        took = time.monotonic() - started
        cut = (event.get("killed") == "TimeLimitExceeded"
               and time_s < self.manifest.run_time_s)
        if cut and self.done:
            self.emit({"event": "released", "id": item.id,
                       "message": f"The Slurm job's time ran out after {took:.0f} s of "
                                  "this run"})
            self.end = time.monotonic()  # no time left for anything else either
            return
        if cut:
            event = {**event, "message": "Processing reached the end of the Slurm job's "
                                         f"time limit ({self.manifest.task_time_s:g} s); "
                                         "killed"}
        self.done += 1
        self.longest = max(self.longest, took)
        self.emit(event)

    def _check_cancel(self) -> None:
        if self.current is None or self.cancel_sent or self.warm is None:
            return
        job_id = self.current[0].id
        if self.batch.cancel_requested(job_id):
            self.cancel_sent = True
            with contextlib.suppress(OSError):
                self.warm.send({"op": "cancel", "id": job_id})


def main(argv: list[str] | None = None) -> int:
    """Process runs of the batch in ``argv[0]`` until none is left."""
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 1:
        print("usage: python -m runtable.jobs.slurm_worker BATCH_DIR", file=sys.stderr)
        return 2
    batch = BatchFolder(Path(args[0]))
    try:
        batch.manifest()
    except FileNotFoundError:  # the service gave up on the batch: nothing to do
        print(f"runtable worker: {args[0]} is gone; nothing to do", file=sys.stderr)
        return 0
    task = int(os.environ.get("SLURM_ARRAY_TASK_ID") or 0)
    array = os.environ.get("SLURM_ARRAY_JOB_ID") or os.environ.get("SLURM_JOB_ID") or "?"
    return Worker(batch, task, f"{array}_{task}").run()


if __name__ == "__main__":
    sys.exit(main())
