"""How values read at a glance: one number style per column (decimals line up, no
scientific notation for ordinary large values), numbers right-aligned, bold for
"varied within the run" only where it tells something, columns as wide as their
content (thumbnails fill theirs, an empty Comment column is narrow), so that a
1600-pixel screen shows most of a demo-sized table's 15 variables."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from playwright.sync_api import Page, expect

from runtable.api import Database
from runtable.context import Cell, Results, Skip
from runtable.store import create_folder

from .gui_folder import T0, GuiServer, gui_server, write_run
from .gui_page import cell, displayed_runs, has_class, open_filter, open_table

#: Titles and kinds like the demo's context file (src/runtable/demo/sample_context.py).
VARIABLES = {
    "xgm_flux": "XGM/Photon flux", "xgm_intensity": "XGM/Intensity per train",
    "flux_stability": "XGM/Flux stability", "camera_mean": "Camera/Mean image",
    "camera_profile": "Camera/Spot profile", "n_trains": "Trains",
    "run_number": "Run number", "agipd_mean": "Detector/Mean signal", "sample": "Sample",
    "x_position": "Sample X/Position", "x_moved": "Sample X/Moved",
    "y_position": "Sample Y/Position", "y_moved": "Sample Y/Moved",
    "pulse_energy": "Laser/Pulse energy", "gain": "Detector/Gain mode",
}
RUNS = range(1, 13)


def results(run: int) -> Results:
    rng = np.random.default_rng(run)
    cells = {
        "start_time": Cell(T0 + 600 * run),
        # A per-train value: its mean always varied within the run.
        "xgm_flux": Cell(rng.normal(480, 20, size=64), summary="mean", units="µJ"),
        "xgm_intensity": Cell(rng.normal(size=64)),
        "flux_stability": Cell(float(rng.uniform(1, 3)), units="%"),
        "camera_mean": Cell(rng.normal(size=(64, 64))),
        "camera_profile": Cell(rng.normal(size=(8, 64))),
        "n_trains": Cell(64),
        "run_number": Cell(run),
        "agipd_mean": Cell(10 + run + rng.normal(0, 0.01), units="keV"),
        "sample": Cell(["lysozyme", "thaumatin", "insulin"][run % 3]),
        # Whole and half millimetres in one column.
        "x_position": Cell(0.5 * run, units="mm"),
        "x_moved": Cell(0.5 * run > 1, units="mm"),
        # A motor that should stand still but moved during runs 3 and 7.
        "y_position": Cell(np.full(64, 1.0) + (np.arange(64) * 0.01 if run in (3, 7) else 0),
                           summary="mean", units="mm"),
        "y_moved": Cell(False, units="mm"),
        # Ordinary large values: not scientific notation.
        "pulse_energy": Cell(454_000.25 + 1000 * run, units="µJ"),
        "gain": Cell("adaptive"),
    }
    return Results(cells, {"sample": Skip("no sample")} if run % 4 == 0 else {})


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[GuiServer]:
    db_dir: Path = tmp_path_factory.mktemp("formatting") / "db"
    with create_folder(db_dir, 4321) as db:
        db.update_computed_variables({n: {"title": t} for n, t in VARIABLES.items()})
        for run in RUNS:
            write_run(db, run, results(run))
    with gui_server(db_dir) as served:
        yield served


def texts(page: Page, col: str) -> list[str]:
    return [cell(page, run, col).inner_text() for run in RUNS]


def test_a_column_writes_its_numbers_alike_and_right_aligned(
        wide_page: Page, server: GuiServer) -> None:
    open_table(wide_page, server, rows=len(RUNS))
    # 0.5, 1, 1.5 ... mm: one number of decimals for all, not "1 mm" beside "1.5000 mm".
    positions = texts(wide_page, "var:x_position")
    assert positions[:3] == ["0.5000 mm", "1.0000 mm", "1.5000 mm"]
    # Around 5e5: fixed decimals, never "4.5500e+5".
    energies = texts(wide_page, "var:pulse_energy")
    assert energies[0] == "455000.25 µJ"
    assert all("e+" not in t for t in energies)
    # Whole numbers stay whole.
    assert texts(wide_page, "var:run_number")[:3] == ["1", "2", "3"]
    # Right-aligned: the decimal points of a column line up.
    rights = {round(wide_page.evaluate(
        "e => { const r = document.createRange(); r.selectNodeContents(e);"
        " return r.getBoundingClientRect().right; }", cell(wide_page, run, "var:agipd_mean")
        .element_handle())) for run in RUNS}
    assert len(rights) == 1, rights


def test_bold_for_variation_only_where_it_tells_something(
        wide_page: Page, server: GuiServer, save_screenshot) -> None:
    open_table(wide_page, server, rows=len(RUNS))
    # Every run's flux varied (a per-train mean): no run stands out, so none is bold.
    for run in (1, 2, 5):
        expect(cell(wide_page, run, "var:xgm_flux")).not_to_have_class(has_class("rt-bold"))
    # The motor moved in runs 3 and 7 only: those are bold, and say why on hover.
    expect(cell(wide_page, 3, "var:y_position")).to_have_class(has_class("rt-bold"))
    expect(cell(wide_page, 4, "var:y_position")).not_to_have_class(has_class("rt-bold"))
    assert "varied within the run" in (cell(wide_page, 3, "var:y_position")
                                       .get_attribute("title") or "")
    save_screenshot(wide_page, "formatting-1600")


def test_columns_fit_their_content_and_most_variables_fit_the_screen(
        wide_page: Page, server: GuiServer) -> None:
    open_table(wide_page, server, rows=len(RUNS))
    grid = wide_page.locator("#run-table").bounding_box()
    assert grid is not None
    right = grid["x"] + grid["width"]
    shown = wide_page.evaluate(
        """right => [...document.querySelectorAll('.ag-header-cell[col-id^="var:"]')]
            .filter(h => { const b = h.getBoundingClientRect();
                           return b.width > 0 && b.right <= right; })
            .length""", right)
    assert shown >= 11, f"only {shown} of {len(VARIABLES)} variables fit at 1600 px"
    # An empty Comment column does not take a quarter of the screen.
    comment = wide_page.evaluate(
        "() => window.runtable.grid.api.getColumn('comment').getActualWidth()")
    assert comment <= 130
    # A thumbnail column is as narrow as its header allows, not 150 px around 32.
    image = cell(wide_page, 1, "var:camera_mean")
    picture = image.locator("img")
    expect(picture).to_be_visible()
    column = image.bounding_box()
    drawn = picture.bounding_box()
    assert column is not None and drawn is not None
    assert drawn["height"] >= 28 and column["width"] <= 96, (drawn, column)


def test_booleans_show_as_ticks_without_units_and_sort_and_filter_as_booleans(
        wide_page: Page, server: GuiServer, save_screenshot) -> None:
    open_table(wide_page, server, rows=len(RUNS))
    # Cell(0.5 * run > 1, units="mm"): a yes/no, not "0 mm"/"1 mm".
    moved = texts(wide_page, "var:x_moved")
    assert moved == ["✗" if 0.5 * run <= 1 else "✓" for run in RUNS]
    assert texts(wide_page, "var:y_moved") == ["✗"] * len(RUNS)
    assert "yes" in (cell(wide_page, 3, "var:x_moved").get_attribute("title") or "")
    save_screenshot(wide_page, "formatting-booleans")
    # Copied, a yes/no is True/False, as exports and `runtable export` write it.
    wide_page.context.grant_permissions(["clipboard-read", "clipboard-write"])
    cell(wide_page, 3, "var:x_moved").click()
    wide_page.keyboard.press("Control+c")
    expect(wide_page.locator("#toast")).to_have_text("Copied the cell")
    assert wide_page.evaluate("() => navigator.clipboard.readText()") == "True"
    cell(wide_page, 2, "var:x_moved").click(modifiers=["Shift"])
    wide_page.keyboard.press("Control+c")
    expect(wide_page.locator("#toast")).to_have_text("Copied 2 rows (tab-separated)")
    lines = [line.split("\t") for line in wide_page.evaluate(
        "() => navigator.clipboard.readText()").splitlines()]
    at = lines[0].index("Sample X/Moved")
    assert [line[at] for line in lines[1:]] == ["False", "True"]
    # Sorted: the noes, then the yeses.
    wide_page.evaluate("""() => window.runtable.grid.api.applyColumnState(
        {state: [{colId: 'var:x_moved', sort: 'desc'}], defaultState: {sort: null}})""")
    assert displayed_runs(wide_page)[:10] == [r for r in RUNS if 0.5 * r > 1]
    wide_page.evaluate("() => window.runtable.grid.api.applyColumnState("
                       "{defaultState: {sort: null}})")
    # The filter offers the two values, with their counts.
    open_filter(wide_page, "var:x_moved")
    choices = wide_page.locator(".rt-filter-choices label")
    expect(choices).to_have_count(2)
    expect(choices.filter(has_text="✗")).to_contain_text("(2)")
    choices.filter(has_text="✓").locator("input").uncheck()
    assert displayed_runs(wide_page) == [1, 2]
    # The chip is the filter in the language, where the values are true and false.
    expect(wide_page.locator("#filter-chips")).to_contain_text("x_moved in [false]")
    assert Database(server.db_dir).table(where="x_moved in [false]")["run"].tolist() == [1, 2]
    save_screenshot(wide_page, "formatting-booleans-filter")
