"""Time of the read API's ``Database(path).table()`` on 20,000 runs x 500 variables
(issue 3's case: ``--runs 5000 --variables 300``).

Builds a synthetic database folder (DAMNIT format v4, made with the store's
``create_folder``; rows inserted directly with ``executemany``): floats, ints,
strings, a few PNG thumbnails, trendlines, arrays, a complex column, ~0.5% errors,
late-added variables (missing cells) and a comment on every 10th run. Prints the
build time and the median of ``--repeat`` calls of ``table()`` with the ratio to
the design target of one second: cold (no cache, all of SQLite read), for an
unchanged database (the DataFrame comes from the user's cache), and right after
one run's values changed as a merge changes them (the cached columns are brought
up to date by reading that run only); then the same for the store's columnar
reader that the web server uses.

    ./dev bench api_table [--runs N] [--variables N] [--repeat N] [--keep DIR]
"""

from __future__ import annotations

import argparse
import io
import json
import os
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


def time_table(path: Path, repeat: int, cache: bool) -> tuple[float, tuple[int, int]]:
    """Median time of ``Database(path, cache=cache).table()`` over *repeat* calls."""
    from runtable.api import Database

    times = []
    shape = (0, 0)
    for _ in range(repeat):
        t0 = time.perf_counter()
        df = Database(path, cache=cache).table()
        times.append(time.perf_counter() - t0)
        shape = df.shape
    return statistics.median(times), shape


def change_one_run(path: Path, run: int) -> None:
    """What merging a reprocessed run does to the database: every value of one
    run rewritten in one transaction."""
    from runtable.store import open_db

    with open_db(path) as db, db.transaction() as conn:
        conn.execute("UPDATE run_variables SET value = value * 2, timestamp = ? "
                     "WHERE proposal = ? AND run = ? AND typeof(value) = 'real'",
                     (time.time(), PROPOSAL, run))


def time_after_change(path: Path, repeat: int) -> float:
    """Median time of ``table()`` right after one run changed (incremental cache)."""
    from runtable.api import Database

    Database(path).table()  # the cache holds the current state
    times = []
    for i in range(repeat):
        change_one_run(path, 1 + i)
        t0 = time.perf_counter()
        Database(path).table()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def time_columns(path: Path, repeat: int) -> tuple[float, float]:
    """Median times of the store's ``read_table`` (with details, as the web server
    reads it) and of ``TableColumns.refresh`` after one run changed."""
    from runtable.store.table import read_table

    reads, refreshes = [], []
    for i in range(repeat):
        t0 = time.perf_counter()
        table = read_table(path)
        reads.append(time.perf_counter() - t0)
        change_one_run(path, 100 + i)
        t0 = time.perf_counter()
        table.refresh(path)
        refreshes.append(time.perf_counter() - t0)
    return statistics.median(reads), statistics.median(refreshes)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=20_000,
                        help="runs in the synthetic folder (issue 3's case: 5000)")
    parser.add_argument("--variables", type=int, default=500,
                        help="variables in the synthetic folder (issue 3's case: 300)")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--keep", type=Path, help="build into (or reuse) this folder")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        path = args.keep or Path(tmp, "db")
        synthetic_folder(path, args.runs, args.variables)
        # A private cache folder: the first call fills it, the others reuse it.
        os.environ["RUNTABLE_CACHE_DIR"] = str(Path(tmp, "cache"))
        cold, shape = time_table(path, args.repeat, cache=False)
        time_table(path, 1, cache=True)
        warm, _ = time_table(path, args.repeat, cache=True)
        changed = time_after_change(path, args.repeat)
        columns, refresh = time_columns(path, args.repeat)

    def line(label: str, seconds: float) -> str:
        return (f"  {label:<46}{seconds:7.3f} s   "
                f"{seconds / TARGET_S:.2f} x the {TARGET_S:.0f} s target")

    print(f"Database(path).table() -> {shape[0]} x {shape[1]} DataFrame, "
          f"median of {args.repeat}:")
    print(line("cold (no cache: read all of SQLite)", cold))
    print(line("unchanged database (cached DataFrame)", warm))
    print(line("after one run changed (cache + changes)", changed))
    print(f"runtable.store.table (what the web server uses), median of {args.repeat}:")
    print(line("read_table() with details", columns))
    print(line("TableColumns.refresh() after one run changed", refresh))
    sys.exit(0)


if __name__ == "__main__":
    main()
