"""The run table in a real browser against the real server and a real database folder:
columns, headers, cell formatting, pictures, errors, themes (screenshots)."""

from __future__ import annotations

import math
import urllib.error
import urllib.request
from collections.abc import Callable
from pathlib import Path

from playwright.sync_api import Page, expect

from runtable.events import JobStateChanged

from .gui_folder import HOSTILE, PROPOSAL, TOKEN, GuiServer
from .gui_page import cell, css, has_class, open_table

Screenshot = Callable[[Page, str], Path]


def test_opens_with_token_and_strips_it(page: Page, table_server: GuiServer) -> None:
    open_table(page, table_server)
    expect(page.locator(".ag-row")).to_have_count(12)
    assert "token" not in page.url
    expect(page.locator("#status")).to_have_text("12 runs · 9 variables")


def test_wrong_or_missing_token_is_rejected(page: Page, table_server: GuiServer) -> None:
    response = page.goto(f"{table_server.base}/?token=not-the-token")
    assert response is not None and response.status == 401
    assert page.locator(".ag-row").count() == 0
    for path in ("/", "/api/table"):
        try:
            urllib.request.urlopen(table_server.base + path, timeout=10)
            raise AssertionError(f"{path} answered without a token")
        except urllib.error.HTTPError as error:
            assert error.code == 401


def test_headers_are_grouped_by_slash_with_descriptions(
    page: Page, table_server: GuiServer
) -> None:
    open_table(page, table_server)
    groups = page.locator(".ag-header-group-cell .ag-header-group-text").all_inner_texts()
    assert "XGM" in groups and "Detector" in groups
    texts = page.locator(".ag-header-cell .ag-header-cell-text").all_inner_texts()
    assert texts[:7] == [
        "Run", "Plot", "Timestamp (Europe/Berlin)", "Comment", "Trains", "Pulse energy",
        "Photon flux"]
    header = page.locator('.ag-header-cell[col-id="var:n_trains"]')
    assert "Number of trains in the run" in (header.get_attribute("title") or "")


def test_number_formats_units_and_emphasis(page: Page, table_server: GuiServer) -> None:
    open_table(page, table_server)
    expect(cell(page, 1, "var:n_trains")).to_have_text("637")
    expect(cell(page, 1, "var:xgm_energy")).to_have_text("1234.5678 µJ")
    expect(cell(page, 3, "var:xgm_energy")).to_have_text("411.5226 µJ")
    expect(cell(page, 1, "var:xgm_flux")).to_have_text("3.5000e-7")
    # Cell(bold=True) and a value that varied within the run (max_diff) are bold.
    expect(cell(page, 2, "var:xgm_flux")).to_have_class(has_class("rt-bold"))
    expect(cell(page, 4, "var:xgm_energy")).to_have_class(has_class("rt-bold"))
    expect(cell(page, 3, "var:xgm_energy")).not_to_have_class(has_class("rt-bold"))
    expect(cell(page, 1, "var:phase")).to_have_text("0.5403-0.8415j")
    # Background colours keep the text readable: dark text on yellow, light on navy.
    yellow = cell(page, 5, "var:status")
    assert css(yellow, "backgroundColor") == "rgb(255, 221, 0)"
    assert css(yellow, "color") == "rgb(0, 0, 0)"
    navy = cell(page, 1, "var:status")
    assert css(navy, "backgroundColor") == "rgb(20, 40, 120)"
    assert css(navy, "color") == "rgb(255, 255, 255)"


def test_errors_and_skips_show_their_message(page: Page, table_server: GuiServer) -> None:
    open_table(page, table_server)
    error = cell(page, 6, "var:ratio")
    expect(error).to_have_class(has_class("rt-error"))
    expect(error).to_have_text("ZeroDivisionError")
    error.hover()
    expect(error).to_have_attribute("title", "ZeroDivisionError: division by zero")
    skip = cell(page, 3, "var:ratio")
    expect(skip).to_have_class(has_class("rt-skip"))
    skip.hover()
    expect(skip).to_have_attribute("title", "Skipped: no beam in this run")
    expect(cell(page, 1, "var:ratio")).to_have_text("0.1429")


def test_thumbnails_load_and_grow_on_hover_and_sparklines_draw(
    page: Page, table_server: GuiServer
) -> None:
    open_table(page, table_server)
    page.locator('.ag-header-cell[col-id="var:det_image"]').scroll_into_view_if_needed()
    img = cell(page, 1, "var:det_image").locator("img")
    expect(img).to_have_count(1)
    page.wait_for_function("img => img.complete && img.naturalWidth > 0", arg=img.element_handle())
    img.hover()
    preview = page.locator(".rt-preview img")
    expect(preview).to_be_visible()
    assert preview.bounding_box()["width"] > img.bounding_box()["width"]
    page.mouse.move(5, 5)
    expect(page.locator(".rt-preview")).to_have_count(0)
    line = cell(page, 1, "var:det_trend").locator("svg polyline")
    expect(line).to_have_count(1)
    assert len((line.get_attribute("points") or "").split()) == 60


def test_a_sparkline_reads_out_the_value_under_the_pointer(
    page: Page, table_server: GuiServer, save_screenshot
) -> None:
    open_table(page, table_server)
    svg = cell(page, 3, "var:det_trend").locator("svg")
    box = svg.bounding_box()
    assert box is not None
    # The trend of run 3 is sin(linspace(0, 6, 60) + 3): point 21 (index 20) of 60.
    x = box["x"] + box["width"] * 20.3 / 59
    page.mouse.move(x, box["y"] + box["height"] / 2)
    readout = page.locator(".rt-spark-readout")
    expect(readout).to_be_visible()
    value = math.sin(20 * 6 / 59 + 3)
    expect(readout).to_contain_text(f"point 21 of 60: {value:.4f}")
    expect(readout).to_contain_text("60 points, min")
    expect(svg.locator("circle.rt-spark-dot")).to_have_attribute("visibility", "visible")
    save_screenshot(page, "sparkline-readout")
    page.mouse.move(5, 5)
    expect(readout).to_have_count(0)


def test_strings_from_data_are_text_not_html(page: Page, table_server: GuiServer) -> None:
    open_table(page, table_server)
    expect(cell(page, 7, "var:sample")).to_have_text(HOSTILE)
    assert page.locator(".ag-root img[src='x']").count() == 0
    assert page.evaluate("window.__injected") is None


def test_screenshots_in_both_themes(
    page: Page, table_server: GuiServer, save_screenshot: Screenshot
) -> None:
    page.set_viewport_size({"width": 1800, "height": 640})
    open_table(page, table_server)
    # A processing mark and a selected row, so that the pictures show them too.
    table_server.bus.publish(JobStateChanged("shot", PROPOSAL, 12, "running"))
    expect(cell(page, 12, "run")).to_have_class(has_class("rt-job-running"))
    cell(page, 4, "run").click()
    page.evaluate("() => window.runtable.grid.api.ensureIndexVisible(0, 'top')")
    page.wait_for_function(
        "() => [...document.querySelectorAll('.rt-thumb img')].every(i => i.complete)")
    if page.evaluate("document.documentElement.dataset.theme") != "light":
        page.locator("#theme-toggle").click()
    save_screenshot(page, "table-light")
    light = css(page.locator(".ag-root-wrapper"), "backgroundColor")
    page.locator("#theme-toggle").click()
    expect(page.locator("html")).to_have_attribute("data-theme", "dark")
    assert css(page.locator(".ag-root-wrapper"), "backgroundColor") != light
    save_screenshot(page, "table-dark")
    page.locator("#theme-toggle").click()
    table_server.bus.publish(JobStateChanged("shot", PROPOSAL, 12, "done"))


def test_api_rejects_wrong_bearer(table_server: GuiServer) -> None:
    request = urllib.request.Request(f"{table_server.base}/api/table",
                                     headers={"Authorization": "Bearer wrong-token-123"})
    try:
        urllib.request.urlopen(request, timeout=10)
        raise AssertionError("wrong token accepted")
    except urllib.error.HTTPError as error:
        assert error.code == 401
    good = urllib.request.Request(f"{table_server.base}/api/table",
                                  headers={"Authorization": f"Bearer {TOKEN}"})
    with urllib.request.urlopen(good, timeout=10) as response:
        assert response.status == 200
