"""Throughput of the service on Slurm against local processing, and Slurm's traffic.

A headless :class:`runtable.service.Service` on a mock proposal of N runs (default
100) with a context whose own compute is 0.1 s per run (two variables), each job with
one CPU and 1 GB, in the same run for each executor:

- ``local``: the warm local pool, ``concurrent_jobs`` = number of CPUs;
- ``slurm/J``: ``executor = slurm`` with ``concurrent_jobs`` = J (default 2 and 15).

For each, the service starts on a fresh database folder and catches up on every run
(timed too), then every run is reprocessed through the service
(:meth:`Service.reprocess`, as the web page's "reprocess all" does), timed from the
call to the last ``values_merged``. Printed: runs per minute, the ratio to local, and
the Slurm client calls (``sbatch``, ``squeue``, ``scontrol``, ``scancel``, ``sacct``)
made for it, per 100 runs. Targets: slurm >= 600 runs/min and >= 45 % of local, at
most 5 ``sbatch`` per 100 runs.

Runs after the first are hard links of the first one's files (so 2,000 runs cost no
time and little disk): ``--runs 2000 --executors slurm`` counts the scheduler traffic
of a large reprocess. Needs a running Slurm (``scripts/slurm-up.sh``).

    ./dev bench slurm_throughput [--runs N] [--executors local,slurm] [--slurm-jobs 2,15]
"""

from __future__ import annotations

import argparse
import os
import re
import statistics
import tempfile
import time
from pathlib import Path

from reprocess_throughput import MergeClock, context

COMPUTE_S = 0.1
CONTEXT = context(COMPUTE_S)
TARGET_PER_MIN = 600
TARGET_RATIO = 0.45
TARGET_SBATCH_PER_100 = 5


def make_runs(root: Path, runs: int):
    """A mock proposal with ``runs`` raw runs (hard links of the first one's files)."""
    from runtable.testing import add_raw_run, make_proposal

    prop = make_proposal(root, 1234, runs=[])
    first = add_raw_run(prop, 1)
    for run in range(2, runs + 1):
        run_dir = prop.raw_dir(run)
        run_dir.mkdir(parents=True)
        for f in first.iterdir():
            os.link(f, run_dir / f.name.replace("-R0001-", f"-R{run:04d}-"))
    return prop


def age_runs(prop) -> None:
    """Make every run look long complete, so a service starting now catches up on it
    (opening a run may leave extra_data's cache file in its folder, which counts as a
    change)."""
    old = time.time() - 3600
    for run_dir in (prop.path / "raw").iterdir():
        for f in run_dir.iterdir():
            os.utime(f, (old, old))
        os.utime(run_dir, (old, old))


def measure(prop, name: str, settings: dict, runs: int) -> tuple[float, float, dict]:
    """Catch-up and reprocess-all times (s) and the Slurm calls of the reprocess."""
    from runtable.jobs import slurm
    from runtable.selection import Selection
    from runtable.service import Service
    from runtable.store import create_folder

    db_dir = prop.path / "usr" / "Shared" / name
    create_folder(db_dir, 1234, context_text=CONTEXT).close()
    age_runs(prop)
    bus = MergeClock()
    service = Service(db_dir, settings={"ready_quiet_s": 3600, **settings})
    start = time.perf_counter()
    service.start(bus)
    try:
        catch_up = bus.wait(runs, 3600) - start
        service.wait_idle(600)
        before = len(bus.merged)
        calls = dict(slurm.CALLS)
        start = time.perf_counter()
        service.reprocess(range(1, runs + 1), Selection("raw"))
        reprocess = bus.wait(before + runs, 3600) - start
        service.wait_idle(600)
        traffic = {k: v - calls.get(k, 0) for k, v in slurm.CALLS.items()}
    finally:
        service.stop()
    return catch_up, reprocess, traffic, _execute_s(db_dir)


def _execute_s(db_dir: Path) -> float:
    """Mean time of the last execution of each run, as its log says."""
    times = []
    for log in (db_dir / "process_logs").glob("r*.out"):
        found = re.findall(r"----- Finished r\d+ \(p\d+\) in ([\d.]+) s", log.read_text())
        if found:
            times.append(float(found[-1]))
    return statistics.mean(times) if times else float("nan")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=100)
    parser.add_argument("--executors", default="local,slurm")
    parser.add_argument("--slurm-jobs", default="2,15",
                        help="concurrent_jobs values to measure Slurm with")
    args = parser.parse_args()
    from runtable.jobs import slurm_available

    cpus = len(os.sched_getaffinity(0))
    executors = args.executors.split(",")
    if "slurm" in executors and slurm_available(cached=False) is not None:
        raise SystemExit(f"Slurm is not answering ({slurm_available()}): run "
                         "scripts/slurm-up.sh")
    common = {"noncluster_cpus": 1, "noncluster_mem": "1G", "slurm_time": "01:00:00"}
    configs = []
    if "local" in executors:
        configs.append(("local", {"executor": "local", "concurrent_jobs": cpus}))
    if "slurm" in executors:
        configs += [(f"slurm/{j}", {"executor": "slurm", "concurrent_jobs": int(j)})
                    for j in args.slurm_jobs.split(",")]
    with tempfile.TemporaryDirectory() as tmp:
        print(f"Making {args.runs} mock runs ...", flush=True)
        prop = make_runs(Path(tmp), args.runs)
        os.environ["EXTRA_DATA_DATA_ROOT"] = str(prop.root)
        local_rate = None
        for name, settings in configs:
            load = Path("/proc/loadavg").read_text().split()[0]
            catch_up, reprocess, traffic, execute_s = measure(
                prop, name.replace("/", "-"), {**common, **settings}, args.runs)
            rate = args.runs / reprocess * 60
            if name == "local":
                local_rate = rate
            ratio = f"; {rate / local_rate:.0%} of local" if local_rate else ""
            print(f"{name:>9}: reprocess all {args.runs} runs in {reprocess:.1f} s = "
                  f"{rate:.0f} runs/min{ratio} (catch-up on start: "
                  f"{args.runs / catch_up * 60:.0f} runs/min; {execute_s:.3f} s per "
                  f"run in execute_run); load average {load} at start", flush=True)
            if name != "local":
                per100 = ", ".join(f"{k} {v * 100 / args.runs:.1f}"
                                   for k, v in sorted(traffic.items()) if v)
                print(f"{'':>9}  Slurm calls for the reprocess: {traffic} "
                      f"(per 100 runs: {per100})", flush=True)
        print(f"Targets: slurm >= {TARGET_PER_MIN} runs/min and >= {TARGET_RATIO:.0%} of "
              f"local, <= {TARGET_SBATCH_PER_100} sbatch per 100 runs; compute "
              f"{COMPUTE_S:g} s per run, one CPU and 1 GB per job, {cpus} CPUs here")


if __name__ == "__main__":
    main()
