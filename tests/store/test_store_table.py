"""The columnar read of the run table (runtable.store.table): values and kinds of
every summary type, and incremental refreshes that end exactly where a fresh
read of the same database does."""

from __future__ import annotations

import math
import shutil
import sqlite3
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from runtable.context.cell import Cell
from runtable.execute import write_fragment
from runtable.store import DatabaseFolder, create_folder, open_db
from runtable.store.table import (
    KIND_ARRAY,
    KIND_COMPLEX,
    KIND_ERROR,
    KIND_IMAGE,
    KIND_MISSING,
    KIND_NONE,
    KIND_TRENDLINE,
    KIND_VALUE,
    TableColumns,
    read_table,
)

PROPOSAL = 1234
START = 1_700_000_000.0


@dataclass
class Results:
    cells: dict[str, Any]
    errors: dict[str, BaseException] = field(default_factory=dict)
    provenance: str = "context.py"


def merge(db: DatabaseFolder, run: int, cells: dict[str, Any],
          errors: dict[str, BaseException] | None = None, proposal: int = PROPOSAL) -> None:
    """Write a fragment as a processing job does and merge it."""
    path = write_fragment(Results(cells, errors or {}), db.extracted_dir, proposal, run)
    db.merge_fragment(path)


def run_cells(run: int) -> dict[str, Any]:
    return {
        "start_time": Cell(START + run),
        "flux": Cell(np.arange(5.0) * run, summary="mean", units="mJ"),
        "count": Cell(run * 10),
        "label": Cell(f"run {run}"),
        "image": Cell(np.random.default_rng(run).random((8, 9))),
        "trend": Cell(np.linspace(0, run, 20)),
        "cube": Cell(np.zeros((2, 2, 2))),
        "z": Cell(np.complex128(run + 1j)),
    }


@pytest.fixture
def db(tmp_path: Path) -> Iterator[DatabaseFolder]:
    with create_folder(tmp_path / "amore", PROPOSAL) as db:
        db.update_computed_variables({
            "flux": {"title": "XGM/Flux", "description": "pulse energy", "tags": ("xgm",),
                     "attributes": {"units": "mJ"}},
            "never": {"title": "Never", "description": None, "tags": (), "attributes": None},
        })
        for run in (1, 2, 3):
            merge(db, run, run_cells(run), {"broken": ZeroDivisionError("division by zero")})
        db.set_comment(PROPOSAL, 2, "beam lost")
        db.add_user_variable("quality", "number", title="Quality")
        db.set_user_value(PROPOSAL, 1, "quality", 0.5)
        db.ensure_run(PROPOSAL, 4)  # known, no start time yet
        yield db


def assert_same(a: TableColumns, b: TableColumns) -> None:
    """Two tables hold the same rows, columns, cells and metadata."""
    for attr in ("proposal", "run", "start_time", "added_at"):
        np.testing.assert_array_equal(getattr(a, attr), getattr(b, attr), err_msg=attr)
    assert list(a.columns) == list(b.columns)
    assert a.variables == b.variables
    assert (a.seq, a.db_id) == (b.seq, b.db_id)
    for name, col in a.columns.items():
        other = b.columns[name]
        np.testing.assert_array_equal(col.kind, other.kind, err_msg=name)
        assert col.values.dtype == other.values.dtype, name
        shown = np.isin(col.kind, (KIND_VALUE, KIND_COMPLEX))
        assert col.values[shown].tolist() == other.values[shown].tolist(), name
        if col.max_diff is None or other.max_diff is None:
            assert col.max_diff is other.max_diff, name
        else:
            np.testing.assert_array_equal(col.max_diff, other.max_diff, err_msg=name)
        assert col.attributes == other.attributes, name
        assert col.provenance == other.provenance, name


# -- reading ---------------------------------------------------------------------
def test_rows_and_columns(db: DatabaseFolder) -> None:
    table = read_table(db)
    assert table.run.tolist() == [1, 2, 3, 4]
    assert table.proposal.tolist() == [PROPOSAL] * 4
    assert table.start_time[:3].tolist() == [START + 1, START + 2, START + 3]
    assert math.isnan(table.start_time[3])
    assert not np.isnan(table.added_at).any()
    # The variables table's order (the context file's), then the other names sorted.
    assert list(table.columns) == ["flux", "never", "quality", "broken", "comment", "count",
                                   "cube", "image", "label", "trend", "z"]
    assert len(table) == 4 and table.row_of(PROPOSAL, 3) == 2 and table.row_of(1, 1) is None
    assert table.seq is not None and table.db_id == db.db_id


def test_values_and_kinds(db: DatabaseFolder) -> None:
    cols = read_table(db).columns
    flux = cols["flux"]
    assert flux.values.dtype == np.float64
    assert flux.values[:3].tolist() == [2.0, 4.0, 6.0]
    assert flux.kind.tolist() == [KIND_VALUE] * 3 + [KIND_MISSING]
    assert flux.max_diff[:3].tolist() == [4.0, 8.0, 12.0]
    assert cols["label"].max_diff is None
    assert flux.attributes[0] == {"units": "mJ"}
    assert cols["count"].values.dtype == np.int64
    assert cols["count"].values[:3].tolist() == [10, 20, 30]
    assert cols["label"].values[:3].tolist() == ["run 1", "run 2", "run 3"]
    assert cols["image"].kind[:3].tolist() == [KIND_IMAGE] * 3
    assert cols["trend"].kind[0] == KIND_TRENDLINE
    assert cols["cube"].kind[0] == KIND_VALUE  # a 3D array's summary is its text
    assert cols["cube"].values[0] == "float64: (2, 2, 2)"
    assert cols["z"].kind[0] == KIND_COMPLEX and cols["z"].values[1] == 2 + 1j
    broken = cols["broken"]
    assert broken.kind[:3].tolist() == [KIND_ERROR] * 3
    assert broken.attributes[0]["error_cls"] == "ZeroDivisionError"
    assert not cols["never"].present().any()
    quality = cols["quality"]
    assert quality.kind.tolist() == [KIND_VALUE, KIND_MISSING, KIND_MISSING, KIND_MISSING]
    assert quality.provenance == {0: ""}  # typed by a person
    assert read_table(db).comment.tolist() == [None, "beam lost", None, None]


def test_array_summaries(db: DatabaseFolder) -> None:
    merge(db, 5, {"start_time": Cell(START + 5), "arr": Cell(np.arange(4.0), summary=None)})
    with db.transaction() as conn:
        conn.execute("INSERT INTO run_variables(proposal, run, name, version, value, "
                     "summary_type) VALUES (?, 5, 'npy', 1, ?, 'numpy')",
                     (PROPOSAL, b"\x93NUMPY fake"))
    cols = read_table(db).columns
    assert cols["npy"].kind[4] == KIND_ARRAY


def test_variables_metadata(db: DatabaseFolder) -> None:
    meta = read_table(db).variables
    assert meta["flux"].title == "XGM/Flux" and meta["flux"].units == "mJ"
    assert meta["flux"].tags == ("xgm",) and not meta["flux"].user_editable
    assert meta["quality"].user_editable and meta["quality"].type == "number"


def test_value_types(db: DatabaseFolder) -> None:
    """Numbers that a double can't hold exactly, mixed columns, NULL values."""
    big = 2**62 + 1
    with db.transaction() as conn:
        conn.executemany(
            "INSERT INTO run_variables(proposal, run, name, version, value) "
            "VALUES (?, ?, ?, 1, ?)",
            [(PROPOSAL, 1, "big", big), (PROPOSAL, 2, "big", -big), (PROPOSAL, 3, "big", 7),
             (PROPOSAL, 1, "mixed", 1), (PROPOSAL, 2, "mixed", 2.5),
             (PROPOSAL, 3, "mixed", "three"), (PROPOSAL, 1, "nothing", None)])
    whole = read_table(db)
    part = read_table(db, runs=whole.run.tolist())
    assert_same(part, whole)
    for cols in (whole.columns, part.columns):
        assert cols["big"].values.dtype == np.int64
        assert cols["big"].values[:3].tolist() == [big, -big, 7]
        mixed = cols["mixed"].values
        assert mixed.dtype == object and mixed[:3].tolist() == [1, 2.5, "three"]
        assert type(mixed[0]) is int and type(mixed[1]) is float
        assert cols["nothing"].kind[0] == KIND_NONE


def test_latest_version_wins(db: DatabaseFolder) -> None:
    with db.transaction() as conn:
        conn.execute("INSERT INTO run_variables(proposal, run, name, version, value) "
                     "VALUES (?, 1, 'label', 2, 'newer')", (PROPOSAL,))
    table = read_table(db)
    assert table.columns["label"].values[:3].tolist() == ["newer", "run 2", "run 3"]


def test_several_proposals_and_orphans(db: DatabaseFolder) -> None:
    with db.transaction() as conn:
        conn.execute("INSERT INTO run_info(proposal, run, start_time) VALUES (999, 1, ?)",
                     (START,))
        conn.executemany(
            "INSERT INTO run_variables(proposal, run, name, version, value) "
            "VALUES (?, ?, ?, 1, ?)",
            [(999, 1, "label", "other"), (999, 2, "label", "no run_info"),
             (PROPOSAL, 9, "orphan_only", 1.0)])
    table = read_table(db)
    assert list(zip(table.proposal.tolist(), table.run.tolist(), strict=True))[:2] == [
        (999, 1), (PROPOSAL, 1)]
    assert table.columns["label"].values[:2].tolist() == ["other", "run 1"]
    assert "orphan_only" not in table.columns


def test_filters(db: DatabaseFolder) -> None:
    table = read_table(db, runs=[2, 3], names=["flux", "comment", "never"])
    assert table.run.tolist() == [2, 3]
    assert list(table.columns) == ["flux", "never", "comment"]
    assert table.columns["flux"].values.tolist() == [4.0, 6.0]
    merge(db, 2, {"flux": Cell(np.arange(3.0), summary="mean"), "count": Cell(1)})
    merge(db, 1, {"flux": Cell(np.arange(9.0), summary="mean")})
    table.refresh(db)
    assert table.run.tolist() == [2, 3]
    assert table.columns["flux"].values.tolist() == [1.0, 6.0]
    assert_same(table, read_table(db, runs=[2, 3], names=["flux", "comment", "never"]))


def test_accepts_path_and_connection(db: DatabaseFolder) -> None:
    expected = read_table(db)
    assert_same(read_table(db.path), expected)
    assert_same(read_table(db.db_path), expected)
    assert_same(read_table(db.conn), expected)
    with pytest.raises(ValueError, match="in memory"):
        read_table(sqlite3.connect(":memory:"))
    with pytest.raises(FileNotFoundError):
        read_table(db.path / "nope")


def test_empty_database(tmp_path: Path) -> None:
    with create_folder(tmp_path / "empty", PROPOSAL) as db:
        table = read_table(db)
        assert len(table) == 0 and table.columns == {}
        merge(db, 1, {"start_time": Cell(START), "x": Cell(1.5)})
        changes = table.refresh(db)
        assert changes.runs == [(PROPOSAL, 1)] and "x" in changes.names
        assert_same(table, read_table(db))


# -- refreshing ------------------------------------------------------------------------
def test_refresh_follows_every_kind_of_change(db: DatabaseFolder) -> None:
    """After each change, the refreshed table equals a fresh read, and the
    refresh read only the runs that changed."""
    table = read_table(db)
    initial_seq = table.seq

    def step(expected_runs: list[int], expected_names: set[str] | None = None,
             variables_changed: bool = False) -> None:
        changes = table.refresh(db)
        assert not changes.full
        assert changes.runs == [(PROPOSAL, r) for r in expected_runs]
        if expected_names is not None:
            assert changes.names == expected_names
        assert changes.variables_changed == variables_changed
        assert_same(table, read_table(db))

    # Nothing changed.
    assert not table.refresh(db)
    assert table.seq == initial_seq
    # Reprocessing a run: new values, a new variable, an error fixed.
    merge(db, 2, {"flux": Cell(np.arange(3.0), summary="mean"), "new_var": Cell("x"),
                  "broken": Cell(1.0)})
    step([2], {"flux", "new_var", "broken"})
    # A comment typed, changed, cleared.
    db.set_comment(PROPOSAL, 3, "bad run")
    step([3], {"comment"})
    db.set_comment(PROPOSAL, 2, None)
    step([2], {"comment"})
    # A user value set and cleared (a row deleted).
    db.set_user_value(PROPOSAL, 3, "quality", "0.75")
    step([3], {"quality"})
    db.set_user_value(PROPOSAL, 1, "quality", None)
    step([1], {"quality"})
    # A value replaced by NULL (a summary that became NaN).
    with db.transaction() as conn:
        conn.execute("UPDATE run_variables SET value = NULL WHERE name = 'count' AND run = 1")
    step([1], {"count"})
    # A new run, then its start time.
    db.ensure_run(PROPOSAL, 7)
    step([7], set())
    merge(db, 7, {"start_time": Cell(START + 7), "count": Cell(70)})
    step([7], {"count"})
    # A column of a new type: numbers, then text in the same column.
    merge(db, 1, {"count": Cell("many")})
    step([1], {"count"})
    # Titles and tags (the variables table only).
    db.update_computed_variables({"flux": {"title": "Flux", "description": None,
                                           "tags": ("a", "b"), "attributes": None}})
    step([], set(), variables_changed=True)
    # A user variable renamed: its rows move to the new name.
    db.change_user_variable("quality", new_name="grade")
    step([3], {"quality", "grade"}, variables_changed=True)
    # A variable deleted everywhere.
    db.delete_variable("new_var")
    step([2], {"new_var"}, variables_changed=False)
    db.delete_variable("trend")
    step([1, 2, 3], {"trend"})
    # A run removed by hand.
    with db.transaction() as conn:
        conn.execute("DELETE FROM run_variables WHERE run = 3")
        conn.execute("DELETE FROM run_info WHERE run = 3")
    step([3])
    assert 3 not in table.run.tolist()


def test_refresh_many_runs_reads_everything(db: DatabaseFolder) -> None:
    table = read_table(db)
    for run in range(10, 90):
        db.ensure_run(PROPOSAL, run)
    changes = table.refresh(db)
    assert changes.full and changes.rows.tolist() == list(range(len(table)))
    assert_same(table, read_table(db))


def test_refresh_without_details(db: DatabaseFolder) -> None:
    table = read_table(db, details=False)
    assert table.columns["flux"].attributes == {}
    assert table.columns["flux"].max_diff is None
    merge(db, 1, {"flux": Cell(np.arange(3.0), summary="mean", units="J")})
    table.refresh(db)
    assert_same(table, read_table(db, details=False))


def test_refresh_after_the_database_was_replaced(db: DatabaseFolder, tmp_path: Path) -> None:
    table = read_table(db)
    with create_folder(tmp_path / "other", PROPOSAL) as other:
        merge(other, 1, {"start_time": Cell(START), "only_here": Cell(1)})
    db.close()
    shutil.copy(tmp_path / "other" / "runs.sqlite", db.db_path)
    for suffix in ("-wal", "-shm"):
        Path(f"{db.db_path}{suffix}").unlink(missing_ok=True)
    changes = table.refresh(db.path)
    assert changes.full
    assert list(table.columns) == ["only_here"]
    assert_same(table, read_table(db.path))


def test_database_without_change_log(tmp_path: Path) -> None:
    """A reference-made folder not yet opened for writing has no change log:
    refreshing reads everything again."""
    from .reference_db import make_reference_db

    folder = make_reference_db(tmp_path / "ref", 4)
    table = read_table(folder)
    assert table.seq is None and len(table) == 2
    conn = sqlite3.connect(folder / "runs.sqlite", isolation_level=None)
    conn.execute("UPDATE run_variables SET value = 99 WHERE run = 1 AND typeof(value) = "
                 "'integer'")
    conn.close()
    changes = table.refresh(folder)
    assert changes.full
    assert_same(table, read_table(folder))
    # Opening it for writing adds the change log; from then on refreshes are partial.
    open_db(folder).close()
    table = read_table(folder)
    assert table.seq == 0
    with open_db(folder) as db:
        db.set_comment(1234, 2, "now logged")
    changes = table.refresh(folder)
    assert not changes.full and changes.runs == [(1234, 2)]
    assert_same(table, read_table(folder))


def test_one_snapshot_while_another_process_writes(db: DatabaseFolder) -> None:
    """A commit between two queries of one read doesn't tear the table: the
    reader's queries share one read transaction."""
    from runtable.store.tableread import Reader

    writer = sqlite3.connect(db.db_path, isolation_level=None)
    try:
        with Reader(db) as reader:
            before = reader.seq()
            writer.execute("UPDATE run_variables SET value = 'changed' WHERE name = 'label'")
            assert reader.seq() == before
            table = reader.read(None, None, True)
            assert "changed" not in table.columns["label"].values.tolist()
        assert read_table(db).columns["label"].values[0] == "changed"
    finally:
        writer.close()


def test_change_log_is_not_fooled_by_clock(db: DatabaseFolder) -> None:
    """Changes are found by sequence number, not by the timestamp column, so a
    write stamped in the past is still seen."""
    table = read_table(db)
    with db.transaction() as conn:
        conn.execute("UPDATE run_variables SET value = 5, timestamp = 0 "
                     "WHERE name = 'count' AND run = 2")
    changes = table.refresh(db)
    assert changes.runs == [(PROPOSAL, 2)]
    assert table.columns["count"].values[1] == 5


def random_cell(rng: np.random.Generator) -> tuple[Any, str | None, str | None]:
    """(value, summary_type, attributes) of a cell of any kind the table knows."""
    import json
    import struct

    makers = [
        lambda: (float(rng.normal()), None, None),
        lambda: (int(rng.integers(-5, 5)), None, None),
        lambda: (2**60 + int(rng.integers(9)), None, None),
        lambda: (f"s{rng.integers(3)}", None, None),
        lambda: (None, None, None),
        lambda: (None, None, json.dumps({"error": "bad", "error_cls": "ValueError"})),
        lambda: (struct.pack("<dd", 1.0, float(rng.integers(3))), "complex", None),
        lambda: (b"\x89PNG\r\n\x1a\nxx", None, json.dumps({"units": "V"})),
    ]
    return makers[int(rng.integers(len(makers)))]()


def test_refresh_random_changes(db: DatabaseFolder) -> None:
    """Many random writes of every value type, deletions and new runs: after
    each, a refreshed table (kept all along) equals a fresh read."""
    rng = np.random.default_rng(11)
    names = ["a", "b", "c", "d"]
    runs = [1, 2, 3, 4]
    tables = [read_table(db), read_table(db, details=False), read_table(db, runs=[2, 3]),
              read_table(db, names=["a", "c"])]
    for _ in range(80):
        action = rng.integers(10)
        with db.transaction() as conn:
            if action < 7:
                run, name = int(rng.choice(runs)), str(rng.choice(names))
                value, summary_type, attrs = random_cell(rng)
                conn.execute("INSERT INTO run_info(proposal, run, start_time) VALUES (?, ?, ?) "
                             "ON CONFLICT DO NOTHING", (PROPOSAL, run, START + run))
                conn.execute(
                    "INSERT INTO run_variables(proposal, run, name, version, value, "
                    "summary_type, attributes, max_diff) VALUES (?, ?, ?, 1, ?, ?, ?, ?) "
                    "ON CONFLICT DO UPDATE SET value = excluded.value, "
                    "summary_type = excluded.summary_type, attributes = excluded.attributes, "
                    "max_diff = excluded.max_diff",
                    (PROPOSAL, run, name, value, summary_type, attrs,
                     float(rng.random()) if rng.random() < 0.2 else None))
            elif action < 9:
                conn.execute("DELETE FROM run_variables WHERE run = ? AND name = ?",
                             (int(rng.choice(runs)), str(rng.choice(names))))
            else:
                runs.append(max(runs) + 1)
        for table in tables:
            table.refresh(db)
            fresh = read_table(db, runs=table.runs_filter, names=table.names_filter,
                               details=table.details)
            assert_same(table, fresh)
