"""What keeping every value's history costs the writer and the disk, at 500 variables.

Two folders with the same runs (default 100) of 500 scalar variables, merged once,
then every run merged again with new values (a reprocess). In folder "history" the
history is kept as runtable keeps it; in folder "off" its triggers are dropped, so
the merge records no previous values. Merges of the two folders alternate, so both
see the same load. Prints, per merge of one run:

- the store's SQLite transaction alone (the 500 upserts, with the triggers that copy
  each replaced row and the merge's own record, against the same upserts without);
- the whole ``merge_fragment`` (HDF5 file and columnar copy included);
- the stale cells' computation when every variable's code changed (the worst case);
- the bytes the history adds to ``runtable.sqlite`` (both folders vacuumed), and the
  bytes of the merge records (``runtable_merges``) and previous values alone.

    ./dev bench history_cost [--runs N] [--variables V]
"""

from __future__ import annotations

import argparse
import sqlite3
import statistics
import tempfile
import time
from pathlib import Path

PROPOSAL = 1234
HISTORY_TRIGGERS = ("runtable_history_rv_update", "runtable_history_rv_delete")


def write_fragments(db, runs: int, names: list[str], sha: str, offset: float) -> list[Path]:
    from runtable.context.cell import Cell
    from runtable.execute.fragment import FragmentWriter

    paths = []
    for run in range(1, runs + 1):
        writer = FragmentWriter(db.extracted_dir, PROPOSAL, run, journal=False,
                                context_sha256=sha)
        writer.add("start_time", Cell(1.7e9 + run))
        for i, name in enumerate(names):
            writer.add(name, Cell(float(run * 1000 + i) + offset))
        paths.append(writer.finish())
    return paths


def make_folder(path: Path, names: list[str], history: bool):
    from runtable.store import create_folder

    db = create_folder(path, PROPOSAL)
    db.update_computed_variables({n: {"title": n.upper(), "description": None, "tags": (),
                                      "attributes": None} for n in names})
    if not history:
        with db.transaction() as conn:
            for trigger in HISTORY_TRIGGERS:
                conn.execute(f"DROP TRIGGER {trigger}")
    return db


def vacuumed_size(db_path: Path) -> int:
    conn = sqlite3.connect(db_path)
    conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    conn.execute("VACUUM")
    conn.close()
    return db_path.stat().st_size


def table_bytes(db_path: Path, tables: tuple[str, ...]) -> int | None:
    """Bytes of ``tables`` and their indexes (SQLite's dbstat, where it is built in)."""
    conn = sqlite3.connect(db_path)
    try:
        marks = ",".join("?" * len(tables))
        names = [r[0] for r in conn.execute(
            f"SELECT name FROM sqlite_master WHERE tbl_name IN ({marks})", tables)]
        marks = ",".join("?" * len(names))
        return conn.execute(f"SELECT sum(pgsize) FROM dbstat WHERE name IN ({marks})",
                            names).fetchone()[0]
    except sqlite3.OperationalError:
        return None
    finally:
        conn.close()


def sql_only(db, run: int, names: list[str], with_history: bool, value: float) -> float:
    """The merge's transaction alone: 500 upserts (and with history, its record)."""
    from runtable.store.merge import _UPSERT

    now = time.time()
    rows = [(PROPOSAL, run, n, value + i, now, None, "context.py", None, None, None)
            for i, n in enumerate(names)]
    t0 = time.perf_counter()
    with db.transaction() as conn:
        conn.executemany(_UPSERT, rows)
        if with_history:
            conn.execute(
                "INSERT INTO runtable_merges(proposal, run, merged_at, fragment, provenance, "
                "context_sha256, source) VALUES (?, ?, ?, ?, ?, ?, ?)",
                (PROPOSAL, run, now, "bench.ready.h5", "context.py", "b" * 64,
                 '{"executor": "local", "host": "bench", "job": 1, "pid": 1, '
                 '"runtable": "0.1.0", "user": "bench", "written_at": 1.0}'))
    return time.perf_counter() - t0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=100)
    parser.add_argument("--variables", type=int, default=500)
    args = parser.parse_args()
    names = [f"v{i:03d}" for i in range(args.variables)]
    sha_a, sha_b = "a" * 64, "b" * 64

    print(f"load average: {Path('/proc/loadavg').read_text().strip()}")
    print(f"{args.runs} runs x {args.variables} variables, each run merged twice")
    with tempfile.TemporaryDirectory() as tmp:
        dbs = {label: make_folder(Path(tmp, label), names, label == "history")
               for label in ("history", "off")}
        first = {label: write_fragments(db, args.runs, names, sha_a, 0.0)
                 for label, db in dbs.items()}
        for label, db in dbs.items():
            for path in first[label]:
                db.merge_fragment(path)
        again = {label: write_fragments(db, args.runs, names, sha_b, 0.5)
                 for label, db in dbs.items()}
        merge_s: dict[str, list[float]] = {"history": [], "off": []}
        for i in range(args.runs):
            for label in ("history", "off") if i % 2 else ("off", "history"):
                t0 = time.perf_counter()
                dbs[label].merge_fragment(again[label][i])
                merge_s[label].append(time.perf_counter() - t0)
        sql_s: dict[str, list[float]] = {"history": [], "off": []}
        for i in range(args.runs):
            for label in ("history", "off") if i % 2 else ("off", "history"):
                sql_s[label].append(sql_only(dbs[label], i + 1, names, label == "history",
                                             float(10 + i)))
        # The GUI's stale marks at their worst: every variable's code changed since.
        from runtable.store.contexts import keep_text
        from runtable.store.history import stale_runs

        keep_text(dbs["history"].path, sha_b, "# bench\n", {n: "1" * 16 for n in names})
        t0 = time.perf_counter()
        stale = stale_runs(dbs["history"], {n: "2" * 16 for n in names}, PROPOSAL)
        stale_s = time.perf_counter() - t0
        assert sum(map(len, stale.values())) == args.runs * args.variables
        t0 = time.perf_counter()
        stale_runs(dbs["history"], {n: "2" * 16 for n in names}, PROPOSAL, [1])
        stale_one_s = time.perf_counter() - t0
        history_rows = dbs["history"].conn.execute(
            "SELECT count(*) FROM runtable_value_history").fetchone()[0]
        merges = dbs["history"].conn.execute(
            "SELECT count(*) FROM runtable_merges").fetchone()[0]
        paths = {label: db.db_path for label, db in dbs.items()}
        for db in dbs.values():
            db.close()
        # Two merges per run kept their previous values (the reprocess, then the
        # SQL-only pass); the first merge of each run only recorded itself.
        replaced = 2 * args.runs
        own = table_bytes(paths["history"], ("runtable_value_history", "runtable_merges"))
        sizes = {label: vacuumed_size(p) for label, p in paths.items()}

    def compare(what: str, times: dict[str, list[float]]) -> None:
        on, off = (statistics.median(times[k]) * 1000 for k in ("history", "off"))
        print(f"{what:34s} history median {on:7.2f} ms, without {off:7.2f} ms, "
              f"difference {on - off:+.2f} ms")

    compare("SQLite transaction of one merge:", sql_s)
    compare("whole merge_fragment of one run:", merge_s)
    print(f"stale cells, every variable's code changed: {args.runs * args.variables:,} "
          f"cells in {stale_s * 1000:.0f} ms; one changed run's again (the server's "
          f"update after a merge) {stale_one_s * 1000:.1f} ms")
    print(f"history rows {history_rows} (previous values), merge records {merges}")
    extra = sizes["history"] - sizes["off"]
    print(f"runtable.sqlite vacuumed: history {sizes['history']:,} B, without "
          f"{sizes['off']:,} B: +{extra / replaced:,.0f} B per merge that replaced "
          f"{args.variables} values")
    if own is not None:
        print(f"history tables and indexes (dbstat): {own:,} B = "
              f"{own / replaced:,.0f} B per merge that replaced {args.variables} values, "
              f"{own / history_rows:,.1f} B per previous value")
    print(f"load average: {Path('/proc/loadavg').read_text().strip()}")


if __name__ == "__main__":
    main()
