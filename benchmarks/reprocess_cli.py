"""Per-run wall time of the cold command ``runtable reprocess``, end to end.

Each measurement is one real ``runtable reprocess all`` process: interpreter start-up,
imports, loading the context, one child process per run, opening the runs, executing,
writing and merging every fragment. The context is the 5-variable one of
``execute_one_run.py`` (the one the reference system was measured with), on mock SPB
runs of 64 trains with a 256x256 camera. Prints the median per-run time for N runs
(one per core at a time, the default, and one at a time), for a single run, and the
ratio to the reference's CLI (a median 7.76 s per run, ``reprocess --direct`` +
``combiner now``, on the same kind of machine).

    ./dev bench reprocess_cli [--runs N] [--repeat N]
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from execute_one_run import CONTEXT

#: The reference system's CLI, seconds per run (docs/performance.md).
REFERENCE_S = 7.76


def runtable_command() -> list[str]:
    """The installed ``runtable`` script beside this interpreter, as a user runs it."""
    script = Path(sys.executable).with_name("runtable")
    return [str(script)] if script.is_file() else [sys.executable, "-m", "runtable.cli"]


def time_command(db_dir: Path, runs: str, n_runs: int, jobs: int | None,
                 env: dict[str, str]) -> tuple[float, float]:
    """Wall and CPU seconds (of every process it started) for one ``runtable
    reprocess`` of ``runs``; fails loudly on any error."""
    cmd = [*runtable_command(), "reprocess", runs, "--in", str(db_dir)]
    if jobs is not None:
        cmd += ["-j", str(jobs)]
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.perf_counter()
    result = subprocess.run(cmd, capture_output=True, text=True, env=env)
    elapsed = time.perf_counter() - t0
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    expected = f"{n_runs} run{'s' if n_runs != 1 else ''} processed: {n_runs} ok, 0 failed."
    if result.returncode != 0 or expected not in result.stdout:
        sys.exit(f"runtable reprocess did not process every run cleanly:\n"
                 f"{result.stdout}\n{result.stderr}")
    return elapsed, cpu


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=8, help="mock runs (default 8)")
    parser.add_argument("--repeat", type=int, default=3,
                        help="measurements per case; the median is shown (default 3)")
    args = parser.parse_args()

    from runtable.store import create_folder
    from runtable.testing import make_proposal

    with tempfile.TemporaryDirectory() as tmp:
        prop = make_proposal(Path(tmp, "data"), 1234, runs=range(1, args.runs + 1),
                             proc=False, camera_shape=(256, 256))
        db_dir = Path(tmp, "db")
        create_folder(db_dir, 1234, CONTEXT).close()
        env = dict(os.environ, EXTRA_DATA_DATA_ROOT=str(prop.root), RUNTABLE_CACHE_DIR="off")
        cores = os.cpu_count() or 1
        cases = [
            (f"{args.runs} runs, {min(cores, args.runs)} at a time (default)", "all",
             args.runs, None),
            (f"{args.runs} runs, one at a time (-j 1)", "all", args.runs, 1),
            ("1 run", "1", 1, None),
        ]
        time_command(db_dir, "1", 1, None, env)  # warm the file system cache
        load = os.getloadavg()[0]
        figures = []
        for label, runs, n, jobs in cases:
            times = [time_command(db_dir, runs, n, jobs, env) for _ in range(args.repeat)]
            figures.append((label, statistics.median(t[0] for t in times) / n,
                            statistics.median(t[1] for t in times) / n))

    print(f"runtable reprocess, cold command end to end, 5-variable context, mock SPB runs "
          f"(64 trains, 256x256 camera), {cores} cores, median of {args.repeat}")
    print(f"  (load average before: {load:.1f}; CPU time is that of every process the "
          "command started, and does not grow when other work shares the cores)")
    for label, per_run, cpu in figures:
        print(f"  {label:34s} {per_run:6.2f} s per run ({cpu:4.2f} s CPU)   reference "
              f"{REFERENCE_S:.2f} s   {REFERENCE_S / per_run:5.1f}x faster")


if __name__ == "__main__":
    main()
