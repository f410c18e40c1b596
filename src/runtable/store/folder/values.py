"""Runs (``run_info``) and the values stored for them (``run_variables``)."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from ...execute.fragment import PNG_SIGNATURE
from ..fragments import VALUE_TYPE_ATTR
from ..schema import insert_run
from ..summaries import decode_summary, image_sql
from ..tableread import json_object
from .core import FolderCore


class FolderValues(FolderCore):
    """Runs and their stored values, read one by one (the whole table is
    :mod:`runtable.store.table`'s)."""

    def ensure_run(self, proposal: int, run: int, added_at: float | None = None) -> None:
        """Add a ``run_info`` row if the run is not known yet."""
        with self.transaction() as conn:
            insert_run(conn, proposal, run, added_at)

    def started_runs(self) -> list[tuple[int, int]]:
        """(proposal, run) of the runs with a start time (taken by the DAQ), in order."""
        return [tuple(r) for r in self.conn.execute(
            "SELECT proposal, run FROM run_info WHERE start_time IS NOT NULL "
            "ORDER BY proposal, run")]

    def run_started(self, proposal: int, run: int) -> bool:
        """Whether the run is known and has a start time."""
        return self.conn.execute(
            "SELECT 1 FROM run_info WHERE proposal = ? AND run = ? AND start_time IS NOT "
            "NULL", (proposal, run)).fetchone() is not None

    def runs(self) -> list[tuple[int, int]]:
        """All (proposal, run) pairs in ``run_info``."""
        return [tuple(r) for r in self.conn.execute(
            "SELECT proposal, run FROM run_info ORDER BY proposal, run")]

    def get_value(self, proposal: int, run: int, name: str, *,
                  as_written: bool = False) -> Any:
        """Decoded summary value of one cell (None if missing or an error).
        ``as_written``: bools come back as bools (SQLite stores 0/1) and the ``.npy``
        blobs of older writers without a ``summary_type`` as arrays, as the read API
        gives them."""
        row = self.conn.execute(
            "SELECT value, summary_type, attributes FROM run_variables WHERE proposal = ? "
            "AND run = ? AND name = ? ORDER BY version DESC LIMIT 1",
            (proposal, run, name)).fetchone()
        if row is None:
            return None
        if as_written and isinstance(row[0], int) and isinstance(row[2], str) and \
                json_object(row[2]).get(VALUE_TYPE_ATTR) == "bool":
            return bool(row[0])
        return decode_summary(row[0], row[1], untyped_npy=as_written)

    def has_values(self, name: str) -> bool:
        """Whether any run has a row (a value or an error) for variable ``name``."""
        return self.conn.execute("SELECT 1 FROM run_variables WHERE name = ? LIMIT 1",
                                 (name,)).fetchone() is not None

    def names_with_values(self, proposal: int, run: int, names: Sequence[str]) -> set[str]:
        """Those of ``names`` that hold a value (not an error) for the run."""
        marks = ",".join("?" * len(names))
        return {name for (name,) in self.conn.execute(
            f"SELECT DISTINCT name FROM run_variables WHERE proposal = ? AND run = ? "
            f"AND value IS NOT NULL AND name IN ({marks})", (proposal, run, *names))}

    def runs_with_values(self, proposal: int, names: Sequence[str]) -> set[int]:
        """The runs of ``proposal`` with a row (a value or an error) for any of ``names``."""
        marks = ",".join("?" * len(names))
        return {run for (run,) in self.conn.execute(
            f"SELECT DISTINCT run FROM run_variables WHERE proposal = ? AND name IN ({marks})",
            (proposal, *names))}

    def get_attributes(self, proposal: int, run: int, name: str) -> dict[str, Any] | None:
        row = self.conn.execute(
            "SELECT attributes FROM run_variables WHERE proposal = ? AND run = ? "
            "AND name = ? ORDER BY version DESC LIMIT 1", (proposal, run, name)).fetchone()
        return json.loads(row[0]) if row and row[0] else None

    def run_proposals(self, run: int) -> list[int]:
        """The proposals that have a run numbered ``run`` in ``run_info``."""
        return [r[0] for r in self.conn.execute(
            "SELECT proposal FROM run_info WHERE run = ?", (run,))]

    def thumbnail(self, proposal: int, run: int, name: str) -> bytes | None:
        """The PNG thumbnail stored as a cell's summary, or None when it holds none."""
        row = self.conn.execute(
            "SELECT value FROM run_variables WHERE proposal = ? AND run = ? AND name = ? "
            f"AND typeof(value) = 'blob' AND {image_sql('summary_type')} "
            "ORDER BY version DESC LIMIT 1", (proposal, run, name)).fetchone()
        if row is None or bytes(row[0][:8]) != PNG_SIGNATURE:
            return None
        return bytes(row[0])

    def change_seq(self) -> int | None:
        """The position of the change log (``runtable_run_changes``): the last change's
        number, None before the first."""
        return self.conn.execute("SELECT max(seq) FROM runtable_run_changes").fetchone()[0]

    def runs_changed_since(self, seq: int) -> set[int]:
        """Run numbers changed after change-log position ``seq``."""
        return {r for (r,) in self.conn.execute(
            "SELECT run FROM runtable_run_changes WHERE seq > ?", (seq,))}
