"""Throughput of the service: reprocessing 200 runs through its job queue.

A headless :class:`runtable.service.Service` on a mock proposal of N runs (default
200) with a context whose own compute is 0.05 s per run (two variables). Two phases:

- catch-up: the service starts on a folder where no run was ever processed, finds
  every run on disk and processes it;
- reprocess: once idle, every run is submitted again (as a "reprocess all" through
  the service would), timed from the first submission to the last ``values_merged``.

Jobs run ``concurrent_jobs`` = number of CPUs at a time, one CPU each. Printed: runs per
minute, and the ratio to the ideal of CPUs x 1/compute-time (every CPU busy with the
user's own code only).

    ./dev bench reprocess_throughput [--runs N]
"""

from __future__ import annotations

import argparse
import os
import tempfile
import threading
import time
from pathlib import Path

from runtable.events import EventBus, ValuesMerged
from runtable.selection import Selection

COMPUTE_S = 0.05


def context(compute_s: float) -> str:
    """A context file of two variables whose own compute is ``compute_s`` in all."""
    return f'''
import time
from runtable.context import Variable

@Variable(title="Trains")
def n_trains(run):
    time.sleep({compute_s / 2})
    return len(run.train_ids)

@Variable(title="Flux", units="uJ", summary="mean")
def flux(run):
    time.sleep({compute_s / 2})
    return run["SA1_XTD2_XGM/DOOCS/MAIN", "pulseEnergy.photonFlux"].ndarray()
'''


CONTEXT = context(COMPUTE_S)


class MergeClock(EventBus):
    """An event bus that notes when each ``values_merged`` event is published."""

    def __init__(self) -> None:
        super().__init__()
        self.merged: list[float] = []
        self._cond = threading.Condition()

    def publish(self, event):  # type: ignore[override]
        if isinstance(event, ValuesMerged):
            with self._cond:
                self.merged.append(time.perf_counter())
                self._cond.notify_all()
        return super().publish(event)

    def wait(self, count: int, timeout: float = 1800) -> float:
        """When the ``count``-th ``values_merged`` event came (waiting for it)."""
        with self._cond:
            if not self._cond.wait_for(lambda: len(self.merged) >= count, timeout):
                raise TimeoutError(f"only {len(self.merged)} of {count} runs merged")
            return self.merged[count - 1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=200)
    args = parser.parse_args()
    from runtable.service import Service
    from runtable.store import create_folder
    from runtable.testing import add_raw_run, make_proposal

    cpus = len(os.sched_getaffinity(0))
    ideal = cpus / COMPUTE_S * 60
    with tempfile.TemporaryDirectory() as tmp:
        print(f"Making {args.runs} mock runs ...", flush=True)
        prop = make_proposal(Path(tmp), 1234, runs=[])
        for run in range(1, args.runs + 1):
            add_raw_run(prop, run)
        # Long complete, so the service's catch-up (not its watcher) takes them.
        old = time.time() - 3600
        for run_dir in (prop.path / "raw").iterdir():
            for f in run_dir.iterdir():
                os.utime(f, (old, old))
            os.utime(run_dir, (old, old))
        os.environ["EXTRA_DATA_DATA_ROOT"] = str(prop.root)
        db_dir = prop.path / "usr" / "Shared" / "amore"
        create_folder(db_dir, 1234, context_text=CONTEXT).close()

        bus = MergeClock()
        settings = {"ready_quiet_s": 3600, "concurrent_jobs": cpus, "noncluster_cpus": 1,
                    "noncluster_mem": "4G"}
        service = Service(db_dir, settings=settings)
        start = time.perf_counter()
        service.start(bus)
        try:
            end = bus.wait(args.runs)
            report("catch-up on start", args.runs, end - start, ideal, cpus)
            service.wait_idle(600)
            assert service.queue is not None
            before = len(bus.merged)
            start = time.perf_counter()
            for run in range(1, args.runs + 1):
                service.queue.submit(1234, run, Selection("raw"))
            end = bus.wait(before + args.runs)
            report("reprocess all", args.runs, end - start, ideal, cpus)
        finally:
            service.stop()


def report(what: str, runs: int, seconds: float, ideal: float, cpus: int) -> None:
    per_minute = runs / seconds * 60
    print(f"{what:>18}: {runs} runs in {seconds:.1f} s = {per_minute:.0f} runs/min; "
          f"ideal {cpus} CPUs x 1/{COMPUTE_S:g} s = {ideal:.0f} runs/min; "
          f"ratio {per_minute / ideal:.2f}; {seconds / runs * cpus * 1000:.0f} ms of a CPU "
          "per run", flush=True)


if __name__ == "__main__":
    main()
