"""Helpers for driving the run table in a page (locators that survive AG Grid's
row and column virtualisation)."""

from __future__ import annotations

import re

from playwright.sync_api import Locator, Page, expect

from .gui_folder import GuiServer


def cell(page: Page, run: int, col: str) -> Locator:
    """The cell of `run` in column `col` (scrolled into view: off-screen columns and
    rows are not in the DOM)."""
    page.evaluate(
        """([run, col]) => {
            const api = window.runtable.grid.api;
            api.ensureColumnVisible(col);
            const node = api.getRowNode(String(run));
            if (node && node.displayed) api.ensureNodeVisible(node);
        }""",
        [run, col],
    )
    return page.locator(f'.ag-row[row-id="{run}"] [col-id="{col}"]')


def open_table(page: Page, server: GuiServer, rows: int = 12) -> None:
    """Open the GUI with the token and wait for the rows and the live connection."""
    page.goto(server.url)
    expect(page.locator("#status")).to_contain_text(f"{rows} run")
    expect(page.locator("#connection")).to_have_attribute("data-state", "live")


def has_class(name: str) -> re.Pattern[str]:
    return re.compile(rf"(^|\s){re.escape(name)}(\s|$)")


def css(locator: Locator, prop: str) -> str:
    return locator.evaluate(f"e => getComputedStyle(e).{prop}")


def header_texts(page: Page) -> list[str]:
    """Leaf header texts of the rendered columns, left to right."""
    return page.evaluate(
        "() => window.runtable.grid.displayedColumns().map(c => c.header)")


def displayed_runs(page: Page) -> list[int]:
    """The runs shown, in order, once the server has said which runs the filters keep."""
    page.wait_for_function(
        "() => window.runtable.grid.runFilter.shown === window.runtable.grid.whereExpression()")
    return page.evaluate("() => window.runtable.grid.displayedRows().map(r => r.run)")


def edit_cell(page: Page, run: int, col: str, text: str) -> None:
    """Double-click a cell, replace its text, press Enter."""
    target = cell(page, run, col)
    target.dblclick()
    editor = page.locator(".ag-popup-editor textarea, .ag-cell-inline-editing input").first
    expect(editor).to_be_visible()
    editor.fill(text)
    editor.press("Enter")


def open_filter(page: Page, col_id: str) -> None:
    """Open the filter of a column from its header."""
    page.evaluate("id => window.runtable.grid.api.ensureColumnVisible(id)", col_id)
    header = page.locator(f'.ag-header-cell[col-id="{col_id}"]')
    header.hover()
    header.locator(".ag-header-cell-filter-button, .ag-header-icon").first.click()
    expect(page.locator(".rt-filter")).to_be_visible()


def new_plot(page: Page, kind: str, x: str, y: str | None = None, bins: int | None = None) -> None:
    """Make a plot with the Plot form (kind: summary, trains, hist-summary, hist-trains)."""
    page.locator("#plot-button").click()
    expect(page.locator("#plot-dialog")).to_be_visible()
    page.locator("#plot-kind").select_option(kind)
    page.locator("#plot-x").fill(x)
    if y is not None:
        page.locator("#plot-y").fill(y)
    if bins is not None:
        page.locator("#plot-bins").fill(str(bins))
    page.locator("#plot-submit").click()
    expect(page.locator("#plot-dialog")).to_be_hidden()
