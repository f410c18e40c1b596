"""Time of the read API's ``Database(path).table()`` on 20,000 runs x 500 variables
(``--runs 5000 --variables 300`` for the smaller case), against the reference's.

Builds a synthetic database folder (DAMNIT format v4, made with the store's
``create_folder``; rows inserted directly with ``executemany``): floats, ints,
strings, a few PNG thumbnails, trendlines, arrays, a complex column, ~0.5% errors,
late-added variables (missing cells) and a comment on every 10th run; then its
columnar copy, as the writer keeps it (``runtable.store.tablecopy.build``, timed).
Prints the median of ``--repeat`` calls, with the ratio to the targets:

* ``table()`` cold: a new ``Database``, nothing in memory or the user's cache: the
  copy plus the runs changed since (target: under 1 s at 20,000 x 500); the same
  read of SQLite alone (a folder without a copy); and the reference's
  ``Damnit(path).table()`` (``damnit==0.4.0``, installed into ``.venv-damnit/`` as
  ``tests/api/test_api_damnit_compat.py`` does) on the same file, in the same run
  (target: runtable 50 x faster at 5,000 x 300);
* ``table()`` of a ``Database`` held open, unchanged and right after one run changed;
* the store's ``TableColumns.refresh()`` after one run changed (what the web server
  pays per merged run; target 0.15 s);
* what keeping the copy costs the writer per merge (the hook after each commit of
  ``--merges`` new runs of every variable, which hands the update to a background
  thread; target under 20 ms, mean and worst), the whole merge transactions, and the
  background thread's passes that rewrote blocks.

Every figure comes with the CPU time of this process next to the wall time, and the
load average is printed before and after: on a loaded machine the wall times are
several times what an idle one gives.

    ./dev bench api_table [--runs N] [--variables N] [--repeat N] [--keep DIR]
        [--reference-repeat N] [--merges N] [--only cold,sqlite,reference,held,refresh,upkeep]
"""

from __future__ import annotations

import argparse
import io
import json
import statistics
import struct
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np

TARGET_S = 1.0
PROPOSAL = 1234
# A valid 1x1 PNG: enough for readers that sniff the signature.
TINY_PNG = bytes.fromhex(
    "89504e470d0a1a0a0000000d4948445200000001000000010806000000"
    "1f15c4890000000d4944415478da63f8cfc0f01f0005000201e2261f5d0000000049454e44ae426082"
)


def _npy(array: np.ndarray) -> bytes:
    buf = io.BytesIO()
    np.save(buf, array, allow_pickle=False)
    return buf.getvalue()


def variable_kinds(n_variables: int) -> list[tuple[str, str]]:
    """(name, kind) of each synthetic variable: mostly floats, ints and strings,
    plus a few of each blob kind."""
    special = {9: "png", 19: "png", 29: "png", 39: "trendline", 49: "numpy", 59: "complex"}
    kinds = []
    for i in range(n_variables):
        if i in special:
            kind = special[i]
        elif i % 10 < 6 or i % 10 == 9:
            kind = "float"
        elif i % 10 < 8:
            kind = "int"
        else:
            kind = "str"
        kinds.append((f"var_{i:03d}", kind))
    return kinds


def build_synthetic(path: Path, n_runs: int = 20_000, n_variables: int = 500,
                    seed: int = 0) -> Path:
    """Create a database folder at *path* with *n_runs* x *n_variables* cells."""
    from runtable.store import create_folder

    rng = np.random.default_rng(seed)
    kinds = variable_kinds(n_variables)
    # The last 4% of variables were "added late": absent from the first 3/4 of runs.
    late_from = int(n_variables * 0.96)
    first_run_with_late = int(n_runs * 0.75) + 1
    trend = _npy(np.vstack([np.arange(150.0), rng.normal(size=150)]))
    array = _npy(np.arange(10.0))
    cplx = struct.pack("<dd", 1.5, -2.0)
    error_attrs = json.dumps({"error": "division by zero", "error_cls": "ZeroDivisionError"})
    units_attrs = json.dumps({"units": "mJ"})
    now = time.time()

    def rows() -> Iterator[tuple]:
        floats = rng.normal(size=(n_runs, n_variables))
        ints = rng.integers(0, 1000, size=(n_runs, n_variables))
        errors = rng.random(size=(n_runs, n_variables)) < 0.005
        for r in range(n_runs):
            run = r + 1
            frow, irow, erow = floats[r].tolist(), ints[r].tolist(), errors[r].tolist()
            for i, (name, kind) in enumerate(kinds):
                if i >= late_from and run < first_run_with_late:
                    continue
                if erow[i]:
                    yield (PROPOSAL, run, name, None, now, None, "context.py", None, None,
                           error_attrs)
                    continue
                summary_type = attrs = None
                if kind == "float":
                    value = frow[i]
                    attrs = units_attrs if i % 50 == 0 else None
                elif kind == "int":
                    value = irow[i]
                elif kind == "str":
                    value = f"sample {irow[i] % 37}"
                elif kind == "png":
                    value = TINY_PNG
                elif kind == "trendline":
                    value, summary_type = trend, "trendline"
                elif kind == "numpy":
                    value, summary_type = array, "numpy"
                else:
                    value, summary_type = cplx, "complex"
                yield (PROPOSAL, run, name, value, now, None, "context.py", summary_type,
                       None, attrs)
            if run % 10 == 0:
                yield (PROPOSAL, run, "comment", f"comment on run {run}", now, None, "",
                       None, None, None)

    db = create_folder(path, PROPOSAL)
    try:
        with db.transaction() as conn:
            conn.executemany(
                "INSERT INTO run_info(proposal, run, start_time, added_at) VALUES (?, ?, ?, ?)",
                [(PROPOSAL, r + 1, 1.7e9 + 300 * r, 1.7e9 + 300 * r) for r in range(n_runs)])
            conn.executemany(
                "INSERT INTO variables(name, type, title, description, attributes) "
                "VALUES (?, NULL, ?, NULL, NULL)",
                [(name, f"Title of {name}") for name, _ in kinds])
            conn.executemany(
                "INSERT INTO run_variables(proposal, run, name, version, value, timestamp, "
                "max_diff, provenance, summary_type, summary_method, attributes) "
                "VALUES (?, ?, ?, 1, ?, ?, ?, ?, ?, ?, ?)", rows())
    finally:
        db.close()
    return path


def synthetic_folder(path: Path, n_runs: int, n_variables: int) -> None:
    """Build the synthetic folder at ``path``, or reuse the one there (``--keep``)."""
    if (path / "runs.sqlite").exists():
        print(f"Reusing {path}")
        return
    t0 = time.perf_counter()
    build_synthetic(path, n_runs, n_variables)
    print(f"Built {n_runs} runs x {n_variables} variables in "
          f"{time.perf_counter() - t0:.1f} s "
          f"({(path / 'runs.sqlite').stat().st_size / 2**20:.0f} MiB)")


ROOT = Path(__file__).resolve().parents[1]
REFERENCE_PYTHON = ROOT / ".venv-damnit" / "bin" / "python"
REFERENCE_TIMER = """
import json, statistics, sys, time
from damnit import Damnit
times, cpus = [], []
for _ in range(int(sys.argv[2])):
    t0, c0 = time.perf_counter(), time.process_time()
    df = Damnit(sys.argv[1]).table()
    times.append(time.perf_counter() - t0)
    cpus.append(time.process_time() - c0)
print(json.dumps({"median": statistics.median(times), "cpu": statistics.median(cpus),
                  "shape": list(df.shape)}))
"""


def time_table(path: Path, repeat: int, *, copy: bool = True) -> tuple[float, float,
                                                                      tuple[int, int]]:
    """Median wall and CPU seconds of a cold ``Database(path).table()`` (nothing kept
    in memory or the user's cache), through the folder's copy or SQLite alone."""
    from runtable.api import Database
    from runtable.store.tablecopy import copy_dir

    walls, cpus = [], []
    shape = (0, 0)
    directory = copy_dir(path)
    hidden = directory.with_name(directory.name + ".hidden")
    if not copy:
        directory.rename(hidden)
    try:
        for _ in range(repeat):
            t0, c0 = time.perf_counter(), time.process_time()
            df = Database(path, cache=False).table()
            walls.append(time.perf_counter() - t0)
            cpus.append(time.process_time() - c0)
            shape = df.shape
    finally:
        if not copy:
            hidden.rename(directory)
    return statistics.median(walls), statistics.median(cpus), shape


def time_reference(path: Path, repeat: int) -> tuple[float, float] | None:
    """Median (wall, CPU) seconds of the reference's ``Damnit(path).table()``; None
    without it."""
    import subprocess

    if not REFERENCE_PYTHON.exists():
        return None
    proc = subprocess.run([REFERENCE_PYTHON, "-c", REFERENCE_TIMER, str(path), str(repeat)],
                          capture_output=True, text=True, timeout=3600)
    if proc.returncode != 0:
        print(f"(the reference failed: {proc.stderr.strip()[-300:]})")
        return None
    found = json.loads(proc.stdout)
    return found["median"], found["cpu"]


def change_one_run(path: Path, run: int) -> None:
    """What merging a reprocessed run does to the database: every value of one
    run rewritten in one transaction."""
    from runtable.store import open_db

    with open_db(path) as db, db.transaction() as conn:
        conn.execute("UPDATE run_variables SET value = value * 2, timestamp = ? "
                     "WHERE proposal = ? AND run = ? AND typeof(value) = 'real'",
                     (time.time(), PROPOSAL, run))


def timed(call: object) -> tuple[float, float]:
    """(wall, CPU) seconds of ``call()``."""
    t0, c0 = time.perf_counter(), time.process_time()
    call()  # type: ignore[operator]
    return time.perf_counter() - t0, time.process_time() - c0


def medians(samples: list[tuple[float, float]]) -> tuple[float, float]:
    return (statistics.median(s[0] for s in samples),
            statistics.median(s[1] for s in samples))


def time_held(path: Path, repeat: int) -> tuple[tuple[float, float], tuple[float, float]]:
    """Median (wall, CPU) seconds of ``table()`` of a Database held open: unchanged,
    and right after one run changed."""
    from runtable.api import Database

    unchanged, changed = [], []
    with Database(path) as db:
        db.table()
        for i in range(repeat):
            unchanged.append(timed(db.table))
            change_one_run(path, 1 + i)
            changed.append(timed(db.table))
    return medians(unchanged), medians(changed)


def time_refresh(path: Path, repeat: int) -> tuple[float, float]:
    """Median (wall, CPU) seconds of the store's ``TableColumns.refresh`` after one run
    changed."""
    from runtable.store.table import read_table

    table = read_table(path)
    refreshes = []
    for i in range(repeat):
        change_one_run(path, 100 + i)
        refreshes.append(timed(lambda: table.refresh(path)))
    return medians(refreshes)


def thread_timed(call: object) -> tuple[float, float]:
    """(wall, CPU of this thread) seconds of ``call()``."""
    t0, c0 = time.perf_counter(), time.thread_time()
    call()  # type: ignore[operator]
    return time.perf_counter() - t0, time.thread_time() - c0


Samples = list[tuple[float, float]]


def time_upkeep(path: Path, merges: int, background: bool = True
                ) -> tuple[Samples, Samples, Samples]:
    """What keeping the copy costs the writer over *merges* new runs with a value for
    every variable (as merging each run's fragment): (wall, CPU) seconds of each
    commit's hook on the writer's thread (handing the update to the background
    keeper), of each whole merge transaction (insert, commit, hook: the keeper's work
    competes with it), and of each pass of the keeper that rewrote blocks. CPU: of
    the writer's thread. Without *background*, the update is done in the hook, as it
    was before the keeper."""
    from runtable.store import open_db, tablecopy
    from runtable.store.folder import DatabaseFolder

    rng = np.random.default_rng(1)
    hooks: list[tuple[float, float]] = []
    merges_timed = []
    hook = DatabaseFolder._update_table_copy

    def timed_hook(self: DatabaseFolder) -> None:
        hooks.append(thread_timed(lambda: hook(self)))

    directory = tablecopy.copy_dir(path)
    keeper = tablecopy.keeper(path / "runs.sqlite", directory)
    keeper.passes.clear()
    DatabaseFolder._update_table_copy = timed_hook
    tablecopy.BACKGROUND = background
    try:
        with open_db(path) as db:
            names = [n for (n,) in db.conn.execute("SELECT name FROM variables")]
            first = db.conn.execute("SELECT max(run) FROM run_info").fetchone()[0] + 1
            for run in range(first, first + merges):
                rows = [(PROPOSAL, run, n, float(v))
                        for n, v in zip(names, rng.normal(size=len(names)), strict=True)]

                def merge(run: int = run, rows: list = rows) -> None:
                    with db.transaction() as conn:
                        conn.execute("INSERT INTO run_info(proposal, run, start_time, "
                                     "added_at) VALUES (?, ?, ?, ?)",
                                     (PROPOSAL, run, 1.8e9, 1.8e9))
                        conn.executemany(
                            "INSERT INTO run_variables(proposal, run, name, version, value, "
                            "timestamp, provenance) VALUES (?, ?, ?, 1, ?, 0, 'context.py')",
                            rows)

                merges_timed.append(thread_timed(merge))
            tablecopy.settle(directory)
            passes = list(keeper.passes)
            DatabaseFolder._update_table_copy = hook
            with db.transaction() as conn:  # back as it was (the copy follows)
                conn.execute("DELETE FROM run_variables WHERE run >= ?", (first,))
                conn.execute("DELETE FROM run_info WHERE run >= ?", (first,))
            tablecopy.settle(directory)
    finally:
        DatabaseFolder._update_table_copy = hook
        tablecopy.BACKGROUND = True
    return hooks[:merges], merges_timed, passes


def ensure_copy(path: Path) -> None:
    """The folder's columnar copy, as the writer keeps it (built if missing)."""
    from runtable.store import tablecopy
    from runtable.store.tableread import Reader

    directory = tablecopy.copy_dir(path)
    manifest = tablecopy.read_manifest(directory)
    with Reader(path) as reader:
        if manifest is not None and manifest.serves(reader.db_id(), reader.seq()) and len(
                [1 for p, r, s in reader.changes(manifest.since())
                 if s > manifest.threshold(p, r)]) <= tablecopy.PENDING_RUNS:
            # (Not one the writer's keeper left behind, stopped at its process's exit.)
            return
    t0 = time.perf_counter()
    tablecopy.build(path / "runs.sqlite", directory)
    print(f"Built its columnar copy in {time.perf_counter() - t0:.1f} s "
          f"({sum(f.stat().st_size for f in directory.iterdir()) / 2**20:.0f} MiB)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=20_000,
                        help="runs in the synthetic folder (the smaller case: 5000)")
    parser.add_argument("--variables", type=int, default=500,
                        help="variables in the synthetic folder (the smaller case: 300)")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--reference-repeat", type=int, default=1,
                        help="calls of the reference's table() (0: skip it)")
    parser.add_argument("--merges", type=int, default=24)
    parser.add_argument("--keep", type=Path, help="build into (or reuse) this folder")
    parser.add_argument("--only", default=",".join(PARTS),
                        help=f"parts to measure, comma-separated (default: {','.join(PARTS)})")
    args = parser.parse_args()
    parts = set(args.only.split(","))

    with tempfile.TemporaryDirectory() as tmp:
        path = args.keep or Path(tmp, "db")
        synthetic_folder(path, args.runs, args.variables)
        ensure_copy(path)
        print(f"Database(path).table() of {args.runs} x {args.variables}, medians of "
              f"{args.repeat} (CPU: of this process; load average at the start "
              f"{load_average()}):")
        measure(path, args, parts)
        print(f"(load average at the end {load_average()})")
    sys.exit(0)


PARTS = ("cold", "sqlite", "reference", "held", "refresh", "upkeep")


def load_average() -> str:
    return " ".join(Path("/proc/loadavg").read_text().split()[:3])


def measure(path: Path, args: argparse.Namespace, parts: set[str]) -> None:
    """Measure and print *parts* (see PARTS)."""
    def line(label: str, seconds: float, cpu: float, target: float = TARGET_S) -> None:
        print(f"  {label:<52}{seconds:8.3f} s   (CPU {cpu:.3f} s)   "
              f"{seconds / target:.2f} x the {target:g} s target", flush=True)

    cold = None
    if "cold" in parts:
        cold, cold_cpu, shape = time_table(path, args.repeat)
        line(f"cold, through the folder's copy ({shape[0]} x {shape[1]})", cold, cold_cpu)
    if "sqlite" in parts:
        sqlite_only, sqlite_cpu, _ = time_table(path, 1, copy=False)
        print(f"  {'cold, SQLite alone (a folder without a copy)':<52}{sqlite_only:8.3f} s   "
              f"(CPU {sqlite_cpu:.3f} s)", flush=True)
    if "reference" in parts and args.reference_repeat:
        reference = time_reference(path, args.reference_repeat)
        if reference is None:
            print("  (the reference package is not installed in .venv-damnit: not compared)")
        else:
            ratio = f"   runtable {reference[0] / cold:.1f} x faster (target 50 x at " \
                "5,000 x 300)" if cold else ""
            print(f"  {'reference damnit 0.4.0 Damnit(path).table()':<52}"
                  f"{reference[0]:8.3f} s   (CPU {reference[1]:.3f} s){ratio}", flush=True)
    if "held" in parts:
        unchanged, changed = time_held(path, args.repeat)
        line("Database held open, unchanged", *unchanged)
        line("Database held open, right after one run changed", *changed, 0.15)
    if "refresh" in parts:
        line("TableColumns.refresh() after one run changed", *time_refresh(path, args.repeat),
             0.15)
    if "upkeep" in parts:
        before_hooks, before_merges, _ = time_upkeep(path, args.merges, background=False)
        hooks, merges, passes = time_upkeep(path, args.merges)

        def mean_worst(samples: list[tuple[float, float]]) -> str:
            if not samples:
                return "none"
            return (f"{statistics.mean(u[0] for u in samples) * 1000:.1f} / "
                    f"{max(u[0] for u in samples) * 1000:.1f} ms (CPU "
                    f"{statistics.mean(u[1] for u in samples) * 1000:.1f} / "
                    f"{max(u[1] for u in samples) * 1000:.1f} ms)")

        worst = max(u[0] for u in hooks)
        print("  Per merge of a run of every variable (CPU: the writer's thread):")
        print(f"  {'copy upkeep (writer), mean / worst':<52}{mean_worst(hooks)}"
              f"   worst {worst / 0.02:.2f} x the 20 ms target")
        print(f"  {'... done on the writer thread (as before)':<52}"
              f"{mean_worst(before_hooks)}")
        print(f"  {'the whole merge transaction, mean / worst':<52}{mean_worst(merges)}")
        print(f"  {'... with the upkeep on the writer thread':<52}"
              f"{mean_worst(before_merges)}")
        print(f"  {'the keeper in the background, per pass':<52}{mean_worst(passes)}   "
              f"({len(passes)} passes; a block is rewritten once {tablecopy_pending()} runs "
              "changed)", flush=True)


def tablecopy_pending() -> int:
    from runtable.store import tablecopy

    return tablecopy.PENDING_RUNS


if __name__ == "__main__":
    main()
