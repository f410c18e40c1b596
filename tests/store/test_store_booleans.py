"""A variable that returns a bool is a column of booleans, though SQLite stores 0/1:
the merge records that the value was a bool in the row's attributes, and every read
of the table (SQLite, the columnar copy, an incremental refresh) gives booleans."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from runtable.context.cell import Cell
from runtable.store import create_folder, open_db, tablecopy
from runtable.store.table import KIND_MISSING, KIND_VALUE, read_table
from runtable.store.tablecopy import COPY_DIR

from .test_store_table import PROPOSAL, START, merge


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    path = tmp_path / "db"
    with create_folder(path, PROPOSAL) as db:
        merge(db, 1, {"start_time": Cell(START + 1), "aligned": Cell(True, units="mm"),
                      "mixed": Cell(True), "count": Cell(3)})
        merge(db, 2, {"start_time": Cell(START + 2), "aligned": Cell(np.bool_(False)),
                      "mixed": Cell(7), "count": Cell(4)})
        merge(db, 3, {"start_time": Cell(START + 3), "count": Cell(5)})
    return path


def test_a_bool_is_recorded_as_one_in_its_rows_attributes(folder: Path) -> None:
    with open_db(folder) as db:
        rows = dict(db.conn.execute(
            "SELECT run, attributes FROM run_variables WHERE name = 'aligned'"))
        count = db.conn.execute(
            "SELECT attributes FROM run_variables WHERE name = 'count'").fetchall()
    assert {run: json.loads(attrs).get("value_type") for run, attrs in rows.items()} == {
        1: "bool", 2: "bool"}
    assert count == [(None,)] * 3


@pytest.mark.parametrize("details", [True, False])
@pytest.mark.parametrize("copy", [False, True])
def test_every_read_gives_a_column_of_bools(folder: Path, details: bool, copy: bool) -> None:
    if copy:
        manifest = tablecopy.build(folder / "runs.sqlite", folder / COPY_DIR, processes=1)
        assert manifest is not None and manifest.blocks
    table = read_table(folder, details=details, copy=copy)
    aligned = table.columns["aligned"]
    assert aligned.values.dtype == np.bool_
    assert aligned.kind.tolist() == [KIND_VALUE, KIND_VALUE, KIND_MISSING]
    assert aligned.values[:2].tolist() == [True, False]
    # Integers stay integers; a column of bools and integers keeps each as it was.
    assert table.columns["count"].values.dtype == np.int64
    mixed = table.columns["mixed"].values[:2].tolist()
    assert mixed == [True, 7] and type(mixed[0]) is bool and type(mixed[1]) is int


def test_a_refresh_keeps_a_column_of_bools(folder: Path) -> None:
    tablecopy.build(folder / "runs.sqlite", folder / COPY_DIR, processes=1)
    table = read_table(folder, copy=False)
    with open_db(folder) as db:
        merge(db, 3, {"start_time": Cell(START + 3), "aligned": Cell(True), "count": Cell(5)})
        merge(db, 4, {"start_time": Cell(START + 4), "aligned": Cell(False)})
    changes = table.refresh(folder)
    assert "aligned" in changes.names
    aligned = table.columns["aligned"]
    assert aligned.values.dtype == np.bool_
    assert aligned.values.tolist() == [True, False, True, False]
    fresh = read_table(folder)
    assert fresh.columns["aligned"].values.dtype == np.bool_
    assert fresh.columns["aligned"].values.tolist() == [True, False, True, False]
