"""Cell previews in a real browser against the real server: a 1D line with train IDs
(zooming in fetches full resolution), a 2D image (colour range, aspect, as lines), a
plotly figure, slices of a 3D array, a Dataset's arrays, errors and text; opened by
double-click and by the cell menu."""

from __future__ import annotations

import math
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from playwright.sync_api import Page, expect

from runtable.context import Cell, Results
from runtable.store import create_folder

from .gui_folder import PROPOSAL, GuiServer, gui_server, write_run
from .gui_page import cell, open_table

N_TRACE = 20_000
TRAIN0 = 500_000
VARIABLES = {
    "trace": {"title": "Diode/Trace", "description": "Per-train diode signal"},
    "frame": {"title": "Camera/Frame", "description": "A camera image"},
    "stack": {"title": "Camera/Stack", "description": "Frames of a scan"},
    "scan": {"title": "Scan", "description": "A Dataset"},
    "fig": {"title": "Fit", "description": "A plotly figure"},
    "label": {"title": "Label", "description": "Text"},
    "boom": {"title": "Broken", "description": "Fails"},
    "big": {"title": "Camera/Big", "description": "More pixels than a screen"},
    "coordimg": {"title": "Spectra", "description": "An image with coordinates"},
    "timeline": {"title": "Slow/Temperature", "description": "A line over time"},
    "timeimg": {"title": "Slow/Map", "description": "An image over time"},
}
T0 = np.datetime64("2026-03-04T05:00:00", "ns")
PANEL = ".tab-panel:not([hidden]) .preview"
PLOT = f"{PANEL} .preview-plot"


def frame_values() -> np.ndarray:
    yy, xx = np.mgrid[0:256, 0:512]
    r = np.hypot(xx - 300, yy - 120)
    img = np.cos(r / 9) * np.exp(-r / 150) + yy / 400
    img[200, 40] = 1000.0  # one hot pixel: the 1-99 % colour range ignores it
    return img


def big_values() -> np.ndarray:
    return np.add.outer(np.arange(1100) * 1000.0, np.arange(1100, dtype=float))


def coordimg_values() -> np.ndarray:
    return np.add.outer(np.arange(800) * 1000.0, np.arange(1000, dtype=float))


def energies() -> np.ndarray:
    return 8000 + 0.5 * np.arange(800)


def delays() -> np.ndarray:
    return 5 - 0.01 * np.arange(1000)


def timeimg_values() -> np.ndarray:
    """400 rows x 3000 minutes: more pixels than a screen, so it is downsampled."""
    return np.add.outer(np.arange(400) * 10_000.0, np.arange(3000.0))


def ms(t: np.datetime64 | np.ndarray) -> Any:
    """Epoch milliseconds, what a plotly date axis holds."""
    return np.asarray(t).astype("datetime64[ms]").astype(np.int64)


def stack_values() -> np.ndarray:
    return np.arange(5)[:, None, None] * 100 + np.add.outer(np.arange(40), np.arange(60)) / 10


def results(run: int) -> Results:
    import plotly.graph_objects as go
    import xarray as xr

    rng = np.random.default_rng(run)
    y = np.cumsum(rng.normal(size=N_TRACE)) / 20
    y[12_345] += 30.0
    trace = xr.DataArray(y, dims=["trainId"], coords={"trainId": TRAIN0 + np.arange(N_TRACE)},
                         attrs={"units": "V"})
    scan = xr.Dataset({
        "energy": (("trainId",), np.linspace(9.0, 9.5, 100)),
        "frame": (("y", "x"), frame_values()[::4, ::4]),
    }, coords={"trainId": TRAIN0 + np.arange(100)})
    coordimg = xr.DataArray(coordimg_values(), dims=["energy", "delay"], coords={
        "energy": ("energy", energies(), {"units": "eV"}),
        "delay": ("delay", delays(), {"units": "ps"})})
    timeline = xr.DataArray(np.sin(np.arange(5000) / 300), dims=["time"],
                            coords={"time": T0 + np.arange(5000) * np.timedelta64(1, "s")})
    timeimg = xr.DataArray(timeimg_values(), dims=["pos", "time"], coords={
        "time": T0 + np.arange(3000) * np.timedelta64(1, "m"),
        "pos": np.roll(np.arange(400.0), 7)})
    fig = go.Figure(go.Scatter(x=[1, 2, 3, 4], y=[3, 1, 4, 1], mode="lines+markers",
                               name="fit"))
    fig.update_layout(title=f"Fit of run {run}")
    cells = {
        "start_time": Cell(1.79e9 + run * 600),
        "trace": Cell(trace), "frame": Cell(frame_values()), "stack": Cell(stack_values()),
        "scan": Cell(scan), "fig": Cell(fig), "label": Cell("<b>not bold</b>"),
        "big": Cell(big_values()),
        "coordimg": Cell(coordimg), "timeline": Cell(timeline), "timeimg": Cell(timeimg),
    }
    return Results(cells, {"boom": ValueError("the detector was off")})


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[GuiServer]:
    from .conftest import static_dir

    if not (static_dir() / "index.html").is_file():
        pytest.fail("the web GUI is not built")
    path: Path = tmp_path_factory.mktemp("preview") / "db"
    with create_folder(path, PROPOSAL) as db:
        db.update_computed_variables(VARIABLES)
        for run in (1, 2):
            write_run(db, run, results(run))
    with gui_server(path) as srv:
        yield srv


def drawn(page: Page, kind: str) -> None:
    # The first preview of a page loads plotly (megabytes): slow on a busy machine.
    expect(page.locator(PANEL)).to_have_attribute("data-state", "drawn", timeout=30_000)
    expect(page.locator(PANEL)).to_have_attribute("data-kind", kind)


def plot_data(page: Page) -> list[dict[str, Any]]:
    return page.evaluate("""(sel) => {
        const div = document.querySelector(sel);
        const list = (a) => (a == null ? null : Array.from(a));
        return div.data.map((t) => ({
            type: t.type, x: list(t.x), y: list(t.y), zmin: t.zmin ?? null,
            zmax: t.zmax ?? null,
            z: t.z ? Array.from(t.z, (row) => Array.from(row)) : null,
        }));
    }""", PLOT)


def menu(page: Page, run: int, col: str, label: str) -> None:
    cell(page, run, col).click(button="right")
    page.locator(".cell-menu button", has_text=label).click()


def test_line_with_train_ids_zooms_to_full_resolution(page: Page, server: GuiServer,
                                                      save_screenshot: Any) -> None:
    open_table(page, server, rows=2)
    cell(page, 1, "var:trace").dblclick()
    expect(page.locator(".tab[aria-selected=true]")).to_contain_text("Diode/Trace")
    drawn(page, "line")
    info = page.locator(f"{PANEL} .preview-info")
    expect(info).to_contain_text("min/max")
    expect(info).to_contain_text("dims: trainId")
    data = plot_data(page)[0]
    assert len(data["y"]) == 4000 and TRAIN0 <= data["x"][0] < TRAIN0 + 10
    # Extremes survive downsampling exactly (min/max per bucket).
    full = results(1).cells["trace"].data.values
    assert max(data["y"]) == full.max() and min(data["y"]) == full.min()
    save_screenshot(page, "preview-1d")
    # Zoom in on 300 trains: fetched again, at full resolution.
    zoom(page, {"xaxis.range[0]": TRAIN0 + 1000, "xaxis.range[1]": TRAIN0 + 1300})
    expect(info).to_contain_text("full resolution")
    drawn(page, "line")
    zoomed = plot_data(page)[0]
    assert zoomed["x"][0] <= TRAIN0 + 1000 and zoomed["x"][-1] >= TRAIN0 + 1300
    assert np.all(np.diff(zoomed["x"]) == 1)  # every train
    # Double-clicking again shows the same tab, not a second one.
    page.locator("#tab-table").click()
    cell(page, 1, "var:trace").dblclick()
    expect(page.locator(".tab", has_text="Diode/Trace")).to_have_count(1)


def zoom(page: Page, ranges: dict[str, float]) -> None:
    """What a drag-zoom does: plotly relayouts the plot and emits `plotly_relayout`."""
    page.evaluate("""([sel, ranges]) => {
        const div = document.querySelector(sel);
        div.emit("plotly_relayout", ranges);
    }""", [PLOT, ranges])


def test_image_from_the_menu(page: Page, server: GuiServer, save_screenshot: Any) -> None:
    open_table(page, server, rows=2)
    menu(page, 2, "var:frame", "Show data")
    drawn(page, "image")
    trace = plot_data(page)[0]
    assert trace["type"] == "heatmap"
    img = frame_values()
    p1, p99 = np.percentile(img, [1, 99])
    assert trace["zmin"] == pytest.approx(p1, rel=1e-4)
    assert trace["zmax"] == pytest.approx(p99, rel=1e-4) and trace["zmax"] < 1000
    assert len(trace["z"]) == 256 and len(trace["z"][0]) == 512
    aspect = page.locator(f"{PANEL} button", has_text="Aspect")
    expect(aspect).to_have_text("Aspect: equal")
    save_screenshot(page, "preview-2d")
    aspect.click()
    expect(page.locator(f"{PANEL} button", has_text="Aspect")).to_have_text("Aspect: free")
    page.locator(f"{PANEL} button", has_text="As lines").click()
    expect(page.locator(f"{PANEL} button", has_text="As image")).to_be_visible()
    lines = plot_data(page)
    assert all(t["type"] == "scatter" for t in lines) and len(lines) == 64
    assert lines[0]["y"] == pytest.approx(img[0], rel=1e-5)
    expect(page.locator(f"{PANEL} button", has_text="Save PNG")).to_be_visible()


def test_plotly_figure(page: Page, server: GuiServer, save_screenshot: Any) -> None:
    open_table(page, server, rows=2)
    cell(page, 2, "var:fig").dblclick()
    drawn(page, "plotly")
    data = plot_data(page)
    assert data[0]["y"] == [3, 1, 4, 1]
    expect(page.locator(f"{PLOT} .gtitle")).to_have_text("Fit of run 2")
    save_screenshot(page, "preview-plotly")
    with page.expect_download() as download:
        page.locator(f"{PANEL} button", has_text="Save PNG").click()
    assert download.value.suggested_filename == "fig-r2.png"


def test_slice_a_3d_array(page: Page, server: GuiServer) -> None:
    open_table(page, server, rows=2)
    cell(page, 1, "var:stack").dblclick()
    drawn(page, "image")
    slice_text = page.locator(f"{PANEL} .preview-slice-text")
    expect(slice_text).to_have_value("0,:,:")
    assert plot_data(page)[0]["z"][0][0] == 0
    index = page.locator(f"{PANEL} .preview-slice-index")
    index.fill("3")
    index.press("Enter")
    expect(slice_text).to_have_value("3,:,:")
    drawn(page, "image")
    z = plot_data(page)[0]["z"]
    assert z[0][0] == 300 and z[2][5] == pytest.approx(300.7)
    # A slice typed by hand: a line through the stack.
    slice_text.fill("4,10,:")
    slice_text.press("Enter")
    drawn(page, "line")
    assert plot_data(page)[0]["y"] == pytest.approx(stack_values()[4, 10])
    # A bad one says why.
    page.locator(f"{PANEL} .preview-slice-text").fill("9,:,:")
    page.locator(f"{PANEL} .preview-slice-text").press("Enter")
    expect(page.locator(f"{PANEL} .preview-error")).to_contain_text("outside axis 0")


def test_browse_a_dataset(page: Page, server: GuiServer, save_screenshot: Any) -> None:
    open_table(page, server, rows=2)
    cell(page, 1, "var:scan").dblclick()
    members = page.locator(f"{PANEL} .preview-member")
    expect(members).to_have_count(2)
    expect(page.locator(f"{PANEL} .preview-hint")).to_contain_text("pick one")
    members.filter(has_text="energy").click()
    drawn(page, "line")
    data = plot_data(page)[0]
    assert data["x"][0] == TRAIN0 and data["y"][-1] == pytest.approx(9.5)
    members.filter(has_text="frame").click()
    drawn(page, "image")
    expect(members.filter(has_text="frame")).to_have_attribute("aria-pressed", "true")
    save_screenshot(page, "preview-dataset")


def test_errors_and_text(page: Page, server: GuiServer) -> None:
    open_table(page, server, rows=2)
    cell(page, 1, "var:boom").dblclick()
    error = page.locator(f"{PANEL} .preview-error")
    expect(error).to_contain_text("the detector was off")
    expect(error).to_contain_text("ValueError")
    page.locator("#tab-table").click()
    cell(page, 1, "var:label").dblclick()
    drawn(page, "text")
    expect(page.locator(f"{PANEL} .preview-text")).to_have_text("<b>not bold</b>")
    expect(page.locator(f"{PANEL} .preview-text b")).to_have_count(0)
    # The run, comment and timestamp columns have nothing to preview.
    tabs = page.locator(".tab").count()
    page.locator("#tab-table").click()
    cell(page, 1, "run").dblclick()
    page.wait_for_timeout(300)
    expect(page.locator(".tab")).to_have_count(tabs)


def test_zooming_into_a_big_image_fetches_full_resolution(page: Page, server: GuiServer,
                                                           save_screenshot: Any) -> None:
    open_table(page, server, rows=2)
    page.locator("#theme-toggle").click()
    expect(page.locator("html")).to_have_attribute("data-theme", "dark")
    cell(page, 1, "var:big").dblclick()
    drawn(page, "image")
    info = page.locator(f"{PANEL} .preview-info")
    expect(info).to_contain_text("mean of every 2\N{MULTIPLICATION SIGN}2 pixels")
    z = plot_data(page)[0]["z"]
    assert len(z) == 550 and z[0][0] == pytest.approx(big_values()[:2, :2].mean())
    save_screenshot(page, "preview-2d-dark")
    zoom(page, {"xaxis.range[0]": 100.2, "xaxis.range[1]": 160.7,
                "yaxis.range[0]": 300.5, "yaxis.range[1]": 250.1})
    expect(info).to_contain_text("full resolution")
    drawn(page, "image")
    z = plot_data(page)[0]["z"]
    # Every pixel the zoomed box touches (rows 250-301, columns 100-161).
    assert len(z) == 52 and len(z[0]) == 62
    assert z[0][0] == big_values()[250, 100]
    # Zooming out again (plotly's double-click: autorange) goes back to the whole image.
    zoom(page, {"xaxis.autorange": True, "yaxis.autorange": True})
    expect(info).to_contain_text("mean of every 2\N{MULTIPLICATION SIGN}2 pixels")


def axes(page: Page) -> dict[str, Any]:
    """The plot's axes as plotly laid them out: type, range, title, tick texts."""
    return page.evaluate("""(sel) => {
        const div = document.querySelector(sel);
        const axis = (name, cls) => ({
            type: div._fullLayout[name].type,
            range: div._fullLayout[name].range,
            title: div._fullLayout[name].title.text,
            ticks: Array.from(div.querySelectorAll(`.${cls}tick text`), (t) => t.textContent),
        });
        return {x: axis("xaxis", "x"), y: axis("yaxis", "y")};
    }""", PLOT)


def test_image_drawn_against_its_coordinates(page: Page, server: GuiServer,
                                             save_screenshot: Any) -> None:
    open_table(page, server, rows=2)
    cell(page, 1, "var:coordimg").dblclick()
    drawn(page, "image")
    trace = plot_data(page)[0]
    nx, ny = len(trace["x"]), len(trace["y"])
    assert len(trace["z"]) == ny and len(trace["z"][0]) == nx
    f = math.ceil(1000 / nx)
    assert f > 1  # more pixels than the plot: block means, and their coordinates' means
    assert trace["x"][0] == pytest.approx(delays()[:f].mean())
    assert trace["y"][1] == pytest.approx(energies()[f:2 * f].mean())
    ax = axes(page)
    assert ax["x"]["title"] == "delay (ps)" and ax["y"]["title"] == "energy (eV)"
    # Energy grows upwards like a graph's; eV against ps: no "equal aspect".
    assert ax["y"]["range"][0] < ax["y"]["range"][1]
    expect(page.locator(f"{PANEL} button", has_text="Aspect")).to_be_hidden()
    save_screenshot(page, "preview-2d-coords")
    # Zoom by coordinates (plotly reports them): the request is in index space, at
    # indices 100.2-160.7 (columns) and 250.1-300.5 (rows).
    zoom(page, {"xaxis.range[0]": 5 - 0.01 * 160.7, "xaxis.range[1]": 5 - 0.01 * 100.2,
                "yaxis.range[0]": 8000 + 0.5 * 250.1, "yaxis.range[1]": 8000 + 0.5 * 300.5})
    info = page.locator(f"{PANEL} .preview-info")
    expect(info).to_contain_text("full resolution")
    drawn(page, "image")
    trace = plot_data(page)[0]
    assert len(trace["z"]) == 52 and len(trace["z"][0]) == 62
    assert trace["z"][0][0] == coordimg_values()[250, 100]
    assert trace["x"] == pytest.approx(delays()[100:162].tolist())
    assert trace["y"] == pytest.approx(energies()[250:302].tolist())
    # As lines: each row against the delays, named by its energy.
    page.locator(f"{PANEL} button", has_text="As lines").click()
    expect(page.locator(f"{PANEL} button", has_text="As image")).to_be_visible()
    lines = page.evaluate("(sel) => document.querySelector(sel).data.map((t) => t.name)", PLOT)
    assert lines[0] == "energy 8125"
    assert plot_data(page)[0]["x"] == pytest.approx(delays()[100:162].tolist())


def test_line_over_time_has_a_date_axis(page: Page, server: GuiServer,
                                        save_screenshot: Any) -> None:
    open_table(page, server, rows=2)
    cell(page, 1, "var:timeline").dblclick()
    drawn(page, "line")
    data = plot_data(page)[0]
    expect(page.locator(f"{PANEL} .preview-info")).to_contain_text("min/max")
    assert len(data["y"]) < 5000
    assert data["x"][0] == ms(T0)
    ax = axes(page)
    assert ax["x"]["type"] == "date"
    assert any("2026" in t for t in ax["x"]["ticks"]), ax["x"]["ticks"]
    save_screenshot(page, "preview-1d-dates")
    # Plotly reports a date axis's zoom as text: five minutes, every second of them.
    zoom(page, {"xaxis.range[0]": "2026-03-04 05:10:00", "xaxis.range[1]": "2026-03-04 05:15:00.5"})
    expect(page.locator(f"{PANEL} .preview-info")).to_contain_text("full resolution")
    drawn(page, "line")
    zoomed = plot_data(page)[0]
    start = ms(np.datetime64("2026-03-04T05:10:00"))
    assert zoomed["x"][0] <= start and zoomed["x"][-1] >= start + 300_000
    assert np.all(np.diff(zoomed["x"]) == 1000)
    assert len(zoomed["x"]) < 400


def test_image_over_time_and_a_coordinate_it_cannot_use(page: Page, server: GuiServer,
                                                         save_screenshot: Any) -> None:
    open_table(page, server, rows=2)
    cell(page, 2, "var:timeimg").dblclick()
    drawn(page, "image")
    expect(page.locator(f"{PANEL} .preview-info")).to_contain_text(
        "coordinate 'pos' is not monotonic: shown in index units")
    trace = plot_data(page)[0]
    f = math.ceil(3000 / len(trace["x"]))
    assert f > 1
    # Block means: each pixel at its block's mean time; rows at their index centres.
    assert trace["x"][0] == pytest.approx(ms(T0) + 60_000 * (f - 1) / 2)
    assert trace["y"][:2] == [(f - 1) / 2, f + (f - 1) / 2]
    ax = axes(page)
    assert ax["x"]["type"] == "date" and ax["y"]["title"] == "pos (index)"
    assert ax["y"]["range"][0] > ax["y"]["range"][1]  # row 0 on top: index units
    save_screenshot(page, "preview-2d-dates")
    # A zoom on the date axis (as text) maps back to columns 600.5-640.5, rows 0-20.5.
    zoom(page, {"xaxis.range[0]": "2026-03-04 15:00:30", "xaxis.range[1]": "2026-03-04 15:40:30",
                "yaxis.range[0]": 20.5, "yaxis.range[1]": -0.5})
    expect(page.locator(f"{PANEL} .preview-info")).to_contain_text("full resolution")
    drawn(page, "image")
    trace = plot_data(page)[0]
    assert len(trace["z"]) == 22 and len(trace["z"][0]) == 42
    assert trace["x"][0] == ms(T0) + 600 * 60_000
    assert trace["z"][0][0] == timeimg_values()[0, 600]
