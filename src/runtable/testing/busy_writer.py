"""A reader beside a busy writer: the situation of a notebook open on a database folder
while the service (or ``runtable reprocess``) merges runs.

:func:`run_writer` (``python -m runtable.testing.busy_writer FOLDER SECONDS PROGRESS``)
merges one fragment after another into a folder made by :func:`make_folder`, each through
a :class:`~runtable.store.DatabaseFolder` opened for it and closed after it, as one
``runtable reprocess`` after another does; closing the last writable connection makes
SQLite checkpoint the WAL and delete it, and every few merges it also checkpoints with
``TRUNCATE``. After each commit it appends ``"<merge> <run>"`` to the progress file.

Merge ``i`` writes run ``i % RUNS + 1`` with every variable equal to ``i``, so a reader
can tell a torn row (variables from different merges) and a stale one (an older merge
than one already committed) apart. :func:`check_reader` is that reader: one
:class:`~runtable.api.Database` held across all its reads, as a notebook holds it.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

PROPOSAL = 1234
#: Runs the writer cycles through (the first pass adds them, later passes rewrite them).
RUNS = 40
#: Variables written by every merge.
NAMES = tuple(f"v{i}" for i in range(8))
START = 1_700_000_000.0


def make_folder(path: Path) -> Path:
    """A new database folder whose ``variables`` table lists :data:`NAMES`."""
    from runtable.store import create_folder

    with create_folder(path, PROPOSAL) as db:
        db.update_computed_variables(
            {name: {"title": name.upper(), "description": None, "tags": (),
                    "attributes": None} for name in NAMES})
    return path


def run_writer(folder: Path, seconds: float, progress: Path) -> int:
    """Merge fragments for ``seconds``; returns the number of merges."""
    from runtable.context import Cell, Results
    from runtable.store import open_db

    end = time.monotonic() + seconds
    i = 0
    with open(progress, "a", encoding="utf-8") as log:
        while time.monotonic() < end:
            run = i % RUNS + 1
            cells = {"start_time": Cell(START + run)}
            cells.update((name, Cell(float(i))) for name in NAMES)
            with open_db(folder) as db:
                db.merge_fragment(Results(cells, {}).save(db.extracted_dir, PROPOSAL, run))
                if i % 5 == 4:
                    db.conn.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchall()
            log.write(f"{i} {run}\n")
            log.flush()
            i += 1
    return i


def start_writer(folder: Path, seconds: float, progress: Path) -> subprocess.Popen:
    """:func:`run_writer` in a process of its own."""
    return subprocess.Popen([sys.executable, "-m", "runtable.testing.busy_writer",
                             str(folder), str(seconds), str(progress)])


def committed(progress: Path) -> dict[int, int]:
    """run -> the last merge committed for it, from the writer's progress file."""
    last: dict[int, int] = {}
    try:
        text = progress.read_text(encoding="utf-8")
    except FileNotFoundError:
        return last
    for line in text.splitlines():
        parts = line.split()
        if len(parts) == 2:  # (a line being written has no end yet)
            last[int(parts[1])] = int(parts[0])
    return last


@dataclass
class ReaderReport:
    """What :func:`check_reader` saw."""

    reads: int = 0
    #: Exceptions raised by a read, as text.
    errors: list[str] = field(default_factory=list)
    #: Reads that missed a committed merge, or showed a torn row.
    stale: list[str] = field(default_factory=list)


def check_reader(folder: Path, progress: Path, seconds: float,
                 writer: subprocess.Popen | None = None) -> ReaderReport:
    """Read ``folder`` through one :class:`~runtable.api.Database` for ``seconds`` (or
    until ``writer`` ends), checking each read against what was committed before it."""
    import pandas as pd

    from runtable.api import Database

    report = ReaderReport()
    end = time.monotonic() + seconds
    with Database(folder) as db:
        while time.monotonic() < end and (writer is None or writer.poll() is None):
            before = committed(progress)
            report.reads += 1
            try:
                runs = db.runs()
                df = db.table()
                some = max(before, key=lambda run: before[run]) if before else None
                value = db[some, NAMES[0]].summary() if some is not None else None
            except Exception as exc:  # every failure is the finding
                report.errors.append(f"read {report.reads}: {type(exc).__name__}: {exc}")
                continue
            missing = sorted(set(before) - set(runs))
            if missing:
                report.stale.append(f"read {report.reads}: runs() lacks committed runs "
                                    f"{missing[:5]}")
            rows = {int(r): row for r, row in zip(df["run"], df[list(NAMES)].to_numpy(),
                                                  strict=True)}
            for run, merge in before.items():
                row = rows.get(run)
                if row is None or any(pd.isna(v) for v in row):
                    report.stale.append(f"read {report.reads}: table() lacks run {run}")
                    break
                if len(set(row.tolist())) != 1:
                    report.stale.append(f"read {report.reads}: run {run} is torn: "
                                        f"{row.tolist()}")
                    break
                if row[0] < merge:
                    report.stale.append(f"read {report.reads}: run {run} shows merge "
                                        f"{row[0]:.0f}, {merge} was committed")
                    break
            if some is not None and (value is None or value < before[some]):
                report.stale.append(f"read {report.reads}: run {some}'s summary {value} "
                                    f"is older than merge {before[some]}")
    return report


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("folder", type=Path)
    parser.add_argument("seconds", type=float)
    parser.add_argument("progress", type=Path)
    args = parser.parse_args()
    run_writer(args.folder, args.seconds, args.progress)


if __name__ == "__main__":
    main()
