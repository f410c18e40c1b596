"""Per-run overhead: submit to fragment written, warm local executor vs a cold subprocess.

A trivial context (two variables, no real computation) on one mock run, so what is
measured is the overhead around the user's code: process start, imports, loading
the context, opening the run, writing the fragment. Three ways:

- cold: ``runtable.testing.subprocess_run.run_in_subprocess`` (a new interpreter per run);
- warm executor: :class:`runtable.jobs.LocalExecutor` (a child forked from a warm
  parent), from ``submit`` to the ``done`` report (the fragment is written by then);
- warm queue: the same through :class:`runtable.jobs.JobQueue` (persisted job row,
  context check, dispatch, background thread), from ``submit`` to the ``done`` event.

    ./dev bench local_executor [--repeat N]
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import threading
import time
from pathlib import Path

CONTEXT = '''
from runtable.context import Variable

@Variable(title="Trains")
def n_trains(run):
    return len(run.train_ids)

@Variable(title="Answer")
def answer(run):
    return 42
'''


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=10)
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        from runtable.jobs import Job, JobQueue, JobState, Limits, LocalExecutor
        from runtable.store import create_folder
        from runtable.testing import make_proposal
        from runtable.testing.subprocess_run import run_in_subprocess

        prop = make_proposal(Path(tmp, "data"), 1234, runs=[1], proc=False)
        os.environ["EXTRA_DATA_DATA_ROOT"] = str(prop.root)
        db_dir = Path(tmp, "db")
        create_folder(db_dir, 1234, context_text=CONTEXT).close()

        def fragments() -> int:
            return len(list((db_dir / "extracted_data").glob("*.ready.h5")))

        cold = []
        for _ in range(args.repeat):
            before = fragments()
            start = time.perf_counter()
            outcome = run_in_subprocess(db_dir, 1234, 1)
            cold.append(time.perf_counter() - start)
            assert outcome.succeeded and fragments() == before + 1, outcome.failure

        executor = LocalExecutor()
        start = time.perf_counter()
        executor.start(wait=60)
        startup = time.perf_counter() - start
        limits = Limits(cpus=1, mem="4G", time_s=600)
        warm = []
        for i in range(args.repeat + 1):  # the first one warms the OS file cache
            before = fragments()
            start = time.perf_counter()
            executor.submit(Job(id=i, proposal=1234, run=1), limits, {"db_dir": db_dir})
            done = None
            while done is None:
                for update in executor.poll():
                    if update.state.final:
                        done = update
                time.sleep(0.0005)
            if i:
                warm.append(time.perf_counter() - start)
            assert done.state is JobState.DONE and fragments() == before + 1, done.message
        executor.shutdown()

        finished = threading.Event()
        queue = JobQueue(db_dir, settings={"noncluster_cpus": 1, "noncluster_mem": "4G"},
                         on_event=lambda e: e.state.final and finished.set())
        queue.start()
        via_queue = []
        for i in range(args.repeat + 1):
            finished.clear()
            start = time.perf_counter()
            queue.submit(1234, 1)
            finished.wait(60)
            if i:
                via_queue.append(time.perf_counter() - start)
        queue.close()

    cold_m, warm_m, queue_m = (statistics.median(x) for x in (cold, warm, via_queue))
    print(f"trivial context, 1 mock run, median of {args.repeat}:")
    print(f"  cold subprocess (run_in_subprocess): {cold_m * 1000:8.1f} ms")
    print(f"  warm local executor (fork per job):  {warm_m * 1000:8.1f} ms  "
          f"({cold_m / warm_m:.0f}x faster; warm parent starts once in {startup:.2f} s)")
    print(f"  warm, through JobQueue:              {queue_m * 1000:8.1f} ms")


if __name__ == "__main__":
    main()
