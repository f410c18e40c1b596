"""Plots in real browsers against the real server: summary plots that follow new runs
live, a click on a point showing its run in the table, the table's Plot column leaving
runs out (kept across a reload), histograms with adjustable bins, per-train plots of
selected runs aligned on train IDs, Save PNG and the dark theme."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import xarray as xr
from playwright.sync_api import Page, expect

from runtable.context import Cell, Results
from runtable.store import DatabaseFolder, create_folder

from .gui_folder import PROPOSAL, VARIABLES, GuiServer, gui_server, run_results, write_run
from .gui_page import cell, new_plot, open_table

# The graph of the plot tab on show; `data` is plotly's (one entry per trace).
GRAPH = ".tab-panel:not([hidden]) .rt-plot-graph"
TRACES_JS = """(selector) => {
    const graph = document.querySelector(selector);
    if (!graph || !Array.isArray(graph.data)) return null;
    const list = (a) => (a == null ? null : Array.from(a));
    return graph.data.map((t) => ({
        name: t.name ?? null, x: list(t.x), y: list(t.y), customdata: list(t.customdata),
    }));
}"""


def row_count(server: GuiServer) -> int:
    with DatabaseFolder(server.db_dir, readonly=True) as db:
        return len(db.runs())


def traces(page: Page) -> Traces:
    """The traces of the plot on show (waits until it is drawn)."""
    return wait_for_traces(page, lambda _: True)


Traces = list[dict[str, Any]]
Screenshot = Callable[[Page, str], Path]


def wait_for_traces(page: Page, check: Callable[[Traces], bool]) -> Traces:
    """Poll the plot's traces until `check` holds (live updates take a moment)."""
    seen: Traces = []

    def ready() -> bool:
        nonlocal seen
        seen = page.evaluate(TRACES_JS, GRAPH) or []
        return bool(seen) and check(seen)

    for _ in range(200):
        if ready():
            return seen
        page.wait_for_timeout(50)
    raise AssertionError(f"the plot never got there; last traces: {seen}")


def point_position(page: Page, x: float, y: float) -> tuple[float, float]:
    """Page coordinates of the data point (x, y) in the plot on show."""
    return page.evaluate(
        """([selector, x, y]) => {
            const graph = document.querySelector(selector);
            const layout = graph._fullLayout;
            const box = graph.getBoundingClientRect();
            return [box.left + layout._size.l + layout.xaxis.l2p(x),
                    box.top + layout._size.t + layout.yaxis.l2p(y)];
        }""",
        [GRAPH, x, y],
    )


def test_summary_plot_follows_new_runs(
    page: Page, table_server: GuiServer, save_screenshot
) -> None:
    open_table(page, table_server, rows=row_count(table_server))
    new_plot(page, "summary", "Run", "trains")  # a name is accepted as well as a title
    expect(page.locator(".tab[aria-selected=true]")).to_contain_text("Trains vs Run")
    (trace,) = traces(page)
    assert 13 not in trace["x"]
    for run in range(1, 13):
        index = trace["customdata"].index(run)
        assert (trace["x"][index], trace["y"][index]) == (run, 600 + 37 * run)
    expect(page.locator(".tab-panel:not([hidden]) .rt-plot-note")).to_contain_text("runs plotted")

    # The person zooms in (drags a box over runs 2 to 6)...
    left = point_position(page, 2, 600 + 37 * 2)
    right = point_position(page, 6, 600 + 37 * 6)
    page.mouse.move(left[0] - 5, right[1] - 10)
    page.mouse.down()
    page.mouse.move((left[0] + right[0]) / 2, left[1], steps=5)
    page.mouse.move(right[0] + 5, left[1] + 10, steps=5)
    page.mouse.up()
    zoom_js = f"() => document.querySelector({GRAPH!r})._fullLayout.xaxis.range"
    page.wait_for_function(f"() => ({zoom_js})()[1] < 7")
    zoomed = page.evaluate(zoom_js)

    # ...a new run arrives: its point is added and the zoom stays.
    table_server.add_run(13)
    (trace,) = wait_for_traces(page, lambda t: 13 in t[0]["customdata"])
    index = trace["customdata"].index(13)
    assert (trace["x"][index], trace["y"][index]) == (13, 600 + 37 * 13)
    assert page.evaluate(zoom_js) == zoomed
    page.locator(".modebar-btn[data-title='Reset axes']").click()
    page.wait_for_function(f"() => ({zoom_js})()[1] > 13")
    save_screenshot(page, "plot-summary")

    # A text value is not a point; the run's point goes and comes back with a number.
    table_server.merge(13, Results({"n_trains": Cell("not counted")}, {}))
    wait_for_traces(page, lambda t: 13 not in t[0]["customdata"])
    expect(page.locator(".tab-panel:not([hidden]) .rt-plot-note")).to_contain_text(
        "without a number"
    )
    table_server.merge(13, Results({"n_trains": Cell(4242)}, {}))
    (trace,) = wait_for_traces(page, lambda t: 13 in t[0]["customdata"])
    assert trace["y"][trace["customdata"].index(13)] == 4242


def test_clicking_a_point_shows_its_run(page: Page, table_server: GuiServer) -> None:
    open_table(page, table_server, rows=row_count(table_server))
    new_plot(page, "summary", "XGM/Photon flux", "Trains")
    (trace,) = traces(page)
    index = trace["customdata"].index(9)
    x, y = point_position(page, trace["x"][index], trace["y"][index])
    page.mouse.move(x, y)
    expect(page.locator(".hoverlayer")).to_contain_text("Run 9")
    page.mouse.click(x, y)
    # The table is back in view with run 9 selected.
    expect(page.locator("#run-table")).to_be_visible()
    expect(page.locator('.ag-row[row-id="9"]')).to_have_class(re.compile("ag-row-selected"))
    assert page.evaluate("() => window.runtable.grid.selectedRows().map(r => r.run)") == [9]


def test_excluded_runs_leave_the_plots_and_stay_out(
    page: Page, table_server: GuiServer, save_screenshot: Screenshot
) -> None:
    rows = row_count(table_server)
    open_table(page, table_server, rows=rows)
    box = cell(page, 5, "plot").locator("input")
    expect(box).to_be_checked()
    new_plot(page, "summary", "Timestamp", "Trains")
    (trace,) = traces(page)
    assert 5 in trace["customdata"]
    # Timestamps are on a date axis, in the table's local format.
    assert isinstance(trace["x"][0], str) and trace["x"][0][:2] == "20"

    page.locator("#tab-table").click()
    box.click()
    expect(box).not_to_be_checked()
    save_screenshot(page, "plot-column")
    # Ticking the box does not change which rows are selected.
    assert page.evaluate("() => window.runtable.grid.selectedRows().length") == 0
    page.locator(".tab[data-tab^='plot:'] .tab-label").click()
    (trace,) = wait_for_traces(page, lambda t: 5 not in t[0]["customdata"])
    assert len(trace["customdata"]) == rows - 1
    expect(page.locator(".tab-panel:not([hidden]) .rt-plot-note")).to_contain_text("1 excluded")

    page.reload()
    open_table(page, table_server, rows=rows)
    expect(cell(page, 5, "plot").locator("input")).not_to_be_checked()
    expect(cell(page, 6, "plot").locator("input")).to_be_checked()
    new_plot(page, "summary", "Run", "Trains")
    (trace,) = traces(page)
    assert 5 not in trace["customdata"] and 6 in trace["customdata"]

    # The cell menu includes (and excludes) the selected runs at once.
    page.locator("#tab-table").click()
    cell(page, 5, "run").click(button="right")
    page.get_by_role("menuitem", name="Include run 5 in summary plots").click()
    expect(cell(page, 5, "plot").locator("input")).to_be_checked()
    # The first plot came back with the reload: the new one is the last tab.
    page.locator(".tab[data-tab^='plot:'] .tab-label").last.click()
    wait_for_traces(page, lambda t: 5 in t[0]["customdata"])


def test_histogram_of_summary_values_with_bins(
    page: Page, table_server: GuiServer, save_screenshot
) -> None:
    open_table(page, table_server, rows=row_count(table_server))
    new_plot(page, "hist-summary", "XGM/Photon flux", bins=10)
    expect(page.locator(".tab[aria-selected=true]")).to_contain_text("Histogram: XGM/Photon flux")
    (trace,) = traces(page)
    # A step line: bins + 1 edges; the counts add up to the runs with a value.
    assert len(trace["x"]) == 11
    total = sum(trace["y"][:-1])
    assert total == len(
        [
            v
            for v in page.evaluate("() => window.runtable.store.columnValues('xgm_flux')")
            if isinstance(v, int | float)
        ]
    )

    bins = page.locator(".tab-panel:not([hidden]) .rt-plot-bins")
    bins.fill("25")
    bins.press("Enter")
    (trace,) = wait_for_traces(page, lambda t: len(t[0]["x"]) == 26)
    assert sum(trace["y"][:-1]) == total
    expect(page.locator(".tab-panel:not([hidden]) .rt-plot-note")).to_contain_text("25 bins")
    save_screenshot(page, "plot-histogram")

    # Out of range: said so, and the plot keeps its bins.
    bins.fill("3")
    bins.press("Enter")
    expect(page.locator(".tab-panel:not([hidden]) .rt-plot-note")).to_contain_text(
        "from 5 to 100,000"
    )
    assert len(traces(page)[0]["x"]) == 26

    # Live: a new run is counted.
    table_server.add_run(21)
    wait_for_traces(page, lambda t: sum(t[0]["y"][:-1]) == total + 1)


def test_the_form_says_what_is_wrong(
    page: Page, table_server: GuiServer, save_screenshot: Screenshot
) -> None:
    open_table(page, table_server, rows=row_count(table_server))
    page.locator("#plot-button").click()
    page.locator("#plot-kind").select_option("summary")
    page.locator("#plot-x").fill("no such thing")
    page.locator("#plot-y").fill("Trains")
    page.locator("#plot-submit").click()
    expect(page.locator("#plot-dialog .form-error")).to_contain_text("No column “no such thing”")
    # Swap puts the known column on X; Y then is the unknown one.
    page.locator("#plot-swap").click()
    expect(page.locator("#plot-x")).to_have_value("Trains")
    expect(page.locator("#plot-y")).to_have_value("no such thing")
    page.locator("#plot-kind").select_option("trains")
    page.locator("#plot-y").fill("XGM/Pulse energy")
    page.locator("#plot-submit").click()
    expect(page.locator("#plot-dialog .form-error")).to_contain_text("Select the runs to plot")
    page.locator("#plot-kind").select_option("hist-summary")
    expect(page.locator("#plot-y")).to_be_hidden()
    save_screenshot(page, "plot-form")
    page.locator("#plot-bins").fill("200000")
    page.locator("#plot-submit").click()
    expect(page.locator("#plot-dialog .form-error")).to_contain_text("from 5 to 100,000")


def test_save_png_and_dark_theme(
    page: Page, table_server: GuiServer, save_screenshot: Screenshot
) -> None:
    open_table(page, table_server, rows=row_count(table_server))
    new_plot(page, "summary", "Run", "XGM/Pulse energy")
    traces(page)
    with page.expect_download() as download:
        page.locator(".tab-panel:not([hidden])").get_by_role("button", name="Save PNG").click()
    assert download.value.suggested_filename.endswith(".png")
    assert "Pulse_energy" in download.value.suggested_filename

    light = page.evaluate(f"() => document.querySelector({GRAPH!r})._fullLayout.paper_bgcolor")
    page.locator("#theme-toggle").click()
    expect(page.locator("html")).to_have_attribute("data-theme", "dark")
    page.wait_for_function(
        f"(light) => document.querySelector({GRAPH!r})._fullLayout.paper_bgcolor !== light",
        arg=light,
    )
    dark = page.evaluate(f"() => document.querySelector({GRAPH!r})._fullLayout.font.color")
    assert dark.replace(" ", "") in {"#e3e7ec", "rgb(227,231,236)"}
    save_screenshot(page, "plot-summary-dark")

    # Side by side: the plot fits its half of the window.
    page.locator("#tab-split").check()
    page.wait_for_function(
        f"() => {{ const g = document.querySelector({GRAPH!r}); "
        "return g._fullLayout.width <= g.getBoundingClientRect().width + 1; }"
    )


# -- per-train plots -------------------------------------------------------------------

TRAIN_VARIABLES = {
    **VARIABLES,
    "intensity": {"title": "Intensity", "description": "Per train, with train IDs"},
    "position": {"title": "Position", "description": "Per train, fewer trains"},
}


def train_results(run: int) -> Results:
    """The usual cells plus two per-train arrays with trainId coordinates; `position`
    misses the first 5 trains, so only the common trains can be paired."""
    results = run_results(run)
    trains = np.arange(10_000 + 100 * run, 10_000 + 100 * run + 40)
    intensity = xr.DataArray(
        run * 10.0 + np.arange(40.0), dims=["trainId"], coords={"trainId": trains}
    )
    position = xr.DataArray(-np.arange(5.0, 40.0), dims=["trainId"], coords={"trainId": trains[5:]})
    cells = dict(results.cells)
    cells["intensity"] = Cell(intensity, summary="mean", units="V")
    cells["position"] = Cell(position, summary="mean")
    return Results(cells, dict(results.errors))


@pytest.fixture(scope="module")
def train_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[GuiServer]:
    path = tmp_path_factory.mktemp("plots") / "db"
    db = create_folder(path, PROPOSAL)
    try:
        db.update_computed_variables(TRAIN_VARIABLES)
        for run in range(1, 5):
            write_run(db, run, train_results(run))
    finally:
        db.close()
    with gui_server(path) as server:
        yield server


def select_runs(page: Page, runs: list[int]) -> None:
    cell(page, runs[0], "run").click()
    for run in runs[1:]:
        cell(page, run, "run").click(modifiers=["Control"])
    assert page.evaluate("() => window.runtable.grid.selectedRows().map(r => r.run)") == runs


def test_within_run_plot_aligns_trains(
    page: Page, train_server: GuiServer, save_screenshot
) -> None:
    open_table(page, train_server, rows=4)
    select_runs(page, [2, 3])
    new_plot(page, "trains", "Position", "Intensity")
    found = wait_for_traces(page, lambda t: len(t) == 2)
    assert [t["name"] for t in found] == ["Run 2", "Run 3"]
    for trace, run in zip(found, [2, 3], strict=True):
        # Only the 35 trains both arrays have, each X paired with its own train's Y.
        assert trace["customdata"] == list(range(10_005 + 100 * run, 10_040 + 100 * run))
        assert trace["x"] == [-float(k) for k in range(5, 40)]
        assert trace["y"] == [run * 10.0 + k for k in range(5, 40)]
    expect(page.locator(".tab-panel:not([hidden]) .rt-plot-note")).to_contain_text(
        "70 trains from 2 runs"
    )
    save_screenshot(page, "plot-trains")

    # Run 2 reprocessed: its trace is fetched again; run 3's stays.
    trains = np.arange(10_200, 10_240)
    again = xr.DataArray(1000.0 + np.arange(40.0), dims=["trainId"], coords={"trainId": trains})
    train_server.merge(2, Results({"intensity": Cell(again, summary="mean")}, {}))
    found = wait_for_traces(page, lambda t: len(t) == 2 and t[0]["y"][0] == 1005.0)
    assert found[1]["y"][0] == 35.0

    # Against the train ID itself.
    new_plot(page, "trains", "Train ID", "Intensity")
    found = wait_for_traces(page, lambda t: len(t) == 2)
    assert found[0]["x"][:2] == [10_200, 10_201]


def test_within_run_histogram_and_errors(page: Page, train_server: GuiServer) -> None:
    open_table(page, train_server, rows=4)
    select_runs(page, [1, 4])
    new_plot(page, "hist-trains", "Intensity", bins=8)
    found = wait_for_traces(page, lambda t: len(t) == 2)
    assert [t["name"] for t in found] == ["Run 1", "Run 4"]
    # Shared bins over both runs; each run's 40 trains are counted.
    assert found[0]["x"] == found[1]["x"] and len(found[0]["x"]) == 9
    assert [sum(t["y"][:-1]) for t in found] == [40, 40]

    # A variable with one value per run has no trains to plot: the plot says so.
    new_plot(page, "trains", "Intensity", "Trains")
    expect(page.locator(".tab-panel:not([hidden]) .rt-plot-note")).to_contain_text(
        "Trains has no per-train array in run 1"
    )


def test_plots_are_not_loaded_with_the_table(page: Page, tmp_path: Path) -> None:
    """plotly (several MB) is fetched when the first plot opens, not with the table."""
    with gui_server(_tiny_folder(tmp_path)) as server:
        scripts: list[str] = []
        page.on("request", lambda request: scripts.append(request.url))
        open_table(page, server, rows=2)
        assert not any("plotly" in url for url in scripts)
        new_plot(page, "summary", "Run", "Trains")
        traces(page)
        assert any("plotly" in url for url in scripts)


def _tiny_folder(tmp_path: Path) -> Path:
    db = create_folder(tmp_path / "db", PROPOSAL)
    try:
        db.update_computed_variables(VARIABLES)
        for run in (1, 2):
            write_run(db, run)
    finally:
        db.close()
    return tmp_path / "db"


# -- axes, bins, legend, pickers ----------------------------------------------------------

def axis_ticks(page: Page, axis: str) -> list[str]:
    return page.evaluate(
        f"() => [...document.querySelectorAll('.tab-panel:not([hidden]) .{axis}tick text')]"
        ".map(t => t.textContent)")


def test_train_ids_are_whole_numbers_and_axes_carry_units(
    page: Page, train_server: GuiServer, save_screenshot
) -> None:
    open_table(page, train_server, rows=4)
    select_runs(page, [2, 3])
    new_plot(page, "trains", "Train ID", "Intensity")
    wait_for_traces(page, lambda t: len(t) == 2)
    ticks = axis_ticks(page, "x")
    assert ticks and all(re.fullmatch(r"\d{5}", t.replace(",", "")) for t in ticks), ticks
    # Units given by the cells (Cell(units="V")) reach the axis title.
    title = page.locator(".tab-panel:not([hidden]) .ytitle")
    expect(title).to_have_text("Intensity (V)")
    # The legend (two runs) and plotly's toolbar do not overlap.
    page.locator(".tab-panel:not([hidden]) .rt-plot-graph").hover()
    legend = page.locator(".tab-panel:not([hidden]) .legend").bounding_box()
    toolbar = page.locator(".tab-panel:not([hidden]) .modebar").bounding_box()
    assert legend is not None and toolbar is not None
    assert (legend["y"] >= toolbar["y"] + toolbar["height"]
            or legend["x"] >= toolbar["x"] + toolbar["width"]
            or legend["x"] + legend["width"] <= toolbar["x"]), (legend, toolbar)
    save_screenshot(page, "plot-train-ids")


def test_a_histogram_of_whole_numbers_has_whole_bins(
    page: Page, table_server: GuiServer
) -> None:
    open_table(page, table_server, rows=row_count(table_server))
    new_plot(page, "hist-summary", "Trains")
    (trace,) = wait_for_traces(page, lambda t: len(t) == 1)
    # Bins of whole width centred on whole numbers: edges at k + 0.5.
    edges = trace["x"]
    assert all(float(e) % 1 == 0.5 for e in edges), edges[:5]
    assert float(edges[1]) - float(edges[0]) == int(float(edges[1]) - float(edges[0]))
    layout = page.evaluate(f"() => document.querySelector({GRAPH!r}).layout")
    assert layout["xaxis"]["tickformat"] == "d"
    assert all(re.fullmatch(r"\d+", t.replace(",", "")) for t in axis_ticks(page, "x"))
    # Counts on a whole-number axis: no "0.5 runs".
    assert all(re.fullmatch(r"\d+", t) for t in axis_ticks(page, "y")), axis_ticks(page, "y")


def test_the_pickers_offer_numbers_and_take_part_of_a_title(
    page: Page, table_server: GuiServer
) -> None:
    open_table(page, table_server, rows=row_count(table_server))
    page.locator("#plot-button").click()
    options = page.evaluate(
        "() => [...document.querySelectorAll('#plot-y-list option')].map(o => o.value)")
    assert "Trains" in options and "XGM/Pulse energy" in options
    assert "Sample" not in options and "Status" not in options  # text only
    assert "Detector/Image" not in options  # a picture
    page.locator("#plot-kind").select_option("summary")
    page.locator("#plot-x").fill("run")
    page.locator("#plot-y").fill("pulse")
    page.locator("#plot-submit").click()
    expect(page.locator("#plot-dialog")).to_be_hidden()
    expect(page.locator(".tab[data-tab^='plot:'] .tab-label").last).to_contain_text(
        "XGM/Pulse energy")
    # Ambiguous: say which columns it could be.
    page.locator("#plot-button").click()
    page.locator("#plot-y").fill("xgm")
    page.locator("#plot-submit").click()
    expect(page.locator("#plot-dialog .form-error")).to_contain_text(
        "“xgm” matches 2 columns")
