"""Loading a wide table: the first columns' data first, the rest right after (the
binary form of `GET /api/table`, docs/dev/table-protocol.md), in real Chromium."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from playwright.sync_api import Page, expect

from runtable.context import Cell, Results
from runtable.store import DatabaseFolder, create_folder

from .gui_folder import PROPOSAL, gui_server, write_run
from .gui_page import cell, displayed_runs, open_table

#: More columns than the first part of a load carries (FIRST_COLUMNS in table.ts).
N_VARIABLES = 70


def value(run: int, i: int) -> float:
    return run * 1000 + i + 0.25


def wide_folder(path: Path, runs: range) -> Path:
    db = create_folder(path, PROPOSAL)
    try:
        db.update_computed_variables({f"v{i:02d}": {"title": f"V {i}"}
                                      for i in range(N_VARIABLES)})
        for run in runs:
            cells = {f"v{i:02d}": Cell(np.float64(value(run, i))) for i in range(N_VARIABLES)}
            cells["v65"] = Cell(f"text {run}")  # a column that stays JSON, in the rest
            cells["v66"] = Cell(np.float64(-run))  # sorting by it reverses the runs
            write_run(db, run, Results(cells, {}))
    finally:
        db.close()
    return path


def test_columns_after_the_first_part_are_filled(page: Page, tmp_path: Path) -> None:
    db_dir = wide_folder(tmp_path / "db", range(1, 6))
    with gui_server(db_dir) as server:
        open_table(page, server, rows=5)
        page.wait_for_function("() => window.runtable.timings.complete_at !== undefined")
        expect(cell(page, 2, "var:v01")).to_have_text(f"{value(2, 1):.4f}")
        expect(cell(page, 4, "var:v68")).to_have_text(f"{value(4, 68):.4f}")
        expect(cell(page, 3, "var:v65")).to_have_text("text 3")
        # Live updates reach a column of the second part, and new runs get every column.
        server.merge(4, Results({"v68": Cell(np.float64(-1.5))}, {}))
        expect(cell(page, 4, "var:v68")).to_have_text("-1.5000")
        server.add_run(6, Results({"v69": Cell(np.float64(2.25)),
                                   "v00": Cell(np.float64(3.25))}, {}))
        expect(cell(page, 6, "var:v69")).to_have_text("2.2500")
        expect(cell(page, 6, "var:v00")).to_have_text("3.2500")
        with DatabaseFolder(db_dir, readonly=True) as db:
            assert len(db.runs()) == 6


def test_saved_sort_on_a_late_column_applies_after_reload(page: Page, tmp_path: Path) -> None:
    db_dir = wide_folder(tmp_path / "db", range(1, 6))
    with gui_server(db_dir) as server:
        open_table(page, server, rows=5)
        page.wait_for_function("() => window.runtable.timings.complete_at !== undefined")
        header = page.locator('.ag-header-cell[col-id="var:v66"] .ag-header-cell-label')
        cell(page, 1, "var:v66")  # scrolls the column into view
        header.click()
        assert displayed_runs(page) == [5, 4, 3, 2, 1]
        page.reload()
        open_table(page, server, rows=5)
        page.wait_for_function("() => window.runtable.timings.complete_at !== undefined")
        # The sort was saved; it is applied again once the column's data is in.
        page.wait_for_function("() => window.runtable.grid.displayedRows()[0].run === 5")
        assert displayed_runs(page) == [5, 4, 3, 2, 1]
