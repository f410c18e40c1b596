"""A notebook reading a folder while another process merges runs into it: every read
is complete and consistent, none raises (``runtable.testing.busy_writer``; the
five-minute version is ``benchmarks/reader_beside_writer.py``)."""

from __future__ import annotations

import os
import sys
from pathlib import Path

from runtable.testing.busy_writer import check_reader, make_folder, start_writer

SECONDS = float(os.environ.get("RUNTABLE_STRESS_SECONDS", "15"))


def test_a_database_held_open_beside_a_busy_writer_sees_every_commit(tmp_path: Path) -> None:
    """SQLite's locks belong to the process: anything in the reader's process that
    opened and closed the database file another way (a second SQLite library, a plain
    open() to hash it) dropped them, and the writer's checkpoints then pulled the WAL
    from under the reader: stale reads and 'database disk image is malformed'."""
    folder = make_folder(tmp_path / "amore")
    progress = tmp_path / "progress"
    writer = start_writer(folder, SECONDS, progress)
    try:
        report = check_reader(folder, progress, SECONDS, writer)
    finally:
        writer.wait(timeout=60)
    assert writer.returncode == 0
    assert report.errors == []
    assert report.stale == []
    merges = len(progress.read_text().splitlines())
    print(f"{report.reads} reads beside {merges} merges", file=sys.stderr)
    assert report.reads > 10 and merges > 10
