"""The filter language in the page, and views sent as links, in a real browser against
the real server: a typed expression keeps the runs `db.table(where=...)` keeps, the
column filters' chips are expressions that do the same, a copied link opened in a
fresh browser (no local storage) shows the same filtered, sorted view with its plot,
and Back steps through views."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Page, expect

from runtable.api import Database
from runtable.context.cell import Cell

from .gui_folder import GuiServer, gui_server, make_folder, run_results
from .gui_page import displayed_runs, header_texts, new_plot, open_filter, open_table

#: Expressions on the standard folder (gui_folder.py: 12 runs).
EXPRESSIONS = [
    "n_trains > 800",
    "Trains in 700..900 and sample != YAG",
    'sample in ["Au foil", "water jet"] or ratio has error',
    "not ratio has value",
    "tag:xgm >= 1000",
    "run in [1, 5..7, 11..]",
    'status = check or (phase contains "-0.9" and run < 9)',
    "comment is missing and xgm_flux < 2e-6",
]


def type_where(page: Page, expression: str, ok: bool = True) -> None:
    """Type an expression in the filter box and press Enter (the box lets go of the
    focus once the server has read it and the filters are set)."""
    box = page.locator("#where-input")
    box.fill(expression)
    box.press("Enter")
    if ok:
        expect(box).not_to_be_focused()


def where_rows(server: GuiServer, expression: str) -> list[int]:
    with Database(server.db_dir) as db:
        return db.table(where=expression)["run"].tolist()


def test_where_gives_the_same_rows_as_the_gui_filter(page: Page, table_server: GuiServer) -> None:
    open_table(page, table_server)
    for expression in EXPRESSIONS:
        type_where(page, expression)
        expect(page.locator("#filter-bar")).to_be_visible()
        shown = sorted(displayed_runs(page))
        assert shown == where_rows(table_server, expression), expression
        assert 0 < len(shown) < 12, expression  # each case keeps some runs, not all
    page.locator("#clear-filters").click()
    assert len(displayed_runs(page)) == 12


def test_column_filters_are_chips_in_the_language_and_where_agrees(
        page: Page, table_server: GuiServer, save_screenshot: Callable[[Page, str], Path]
) -> None:
    open_table(page, table_server)
    # A range typed in the language becomes the column's numeric filter...
    type_where(page, "n_trains in 700..900")
    chips = page.locator("#filter-chips .chip")
    expect(chips).to_have_count(1)
    expect(chips.first).to_have_attribute("data-col-id", "var:n_trains")
    open_filter(page, "var:n_trains")
    expect(page.locator(".rt-filter input[name=min]")).to_have_value("700")
    expect(page.locator(".rt-filter input[name=max]")).to_have_value("900")
    page.keyboard.press("Escape")
    # ... and the column filters' forms write expressions.
    open_filter(page, "var:sample")
    page.locator(".rt-filter-choices label", has_text="YAG").locator("input").uncheck()
    page.keyboard.press("Escape")
    open_filter(page, "var:ratio")
    page.locator(".rt-filter select[name=presence]").select_option("value")
    page.keyboard.press("Escape")
    expect(chips).to_have_count(3)
    texts = [t.removesuffix(" ✕") for t in chips.all_inner_texts()]
    assert texts[0] == "n_trains in 700..900"
    assert texts[2] == "ratio has value"
    assert re.fullmatch(r'sample in \[.*\]', texts[1]), texts
    expression = page.locator("#where-input").input_value()
    assert expression == " and ".join(texts)
    save_screenshot(page, "filter-language")
    shown = sorted(displayed_runs(page))
    assert shown == where_rows(table_server, expression)
    assert shown == [r for r in range(4, 9) if r % 3 != 0 and r % 6 not in (0, 3)]
    # Each chip's expression alone is that column filter alone.
    for index, text in enumerate(texts):
        assert set(shown) <= set(where_rows(table_server, text)), (index, text)
    page.locator("#clear-filters").click()


def test_a_bad_expression_is_refused_and_the_text_kept(page: Page, table_server: GuiServer) -> None:
    open_table(page, table_server)
    type_where(page, "n_trainz > 3", ok=False)
    expect(page.locator("#toast")).to_contain_text("did you mean 'n_trains'")
    box = page.locator("#where-input")
    expect(box).to_have_attribute("aria-invalid", "true")
    expect(box).to_have_value("n_trainz > 3")
    assert len(displayed_runs(page)) == 12


def test_a_copied_link_gives_a_colleague_the_same_view(
        browser: Browser, page: Page, table_server: GuiServer) -> None:
    page.context.grant_permissions(["clipboard-read", "clipboard-write"])
    open_table(page, table_server)
    type_where(page, "n_trains >= 700 and ratio has no error")
    header = page.locator('.ag-header-cell[col-id="var:xgm_flux"] .ag-header-cell-label')
    page.evaluate("() => window.runtable.grid.api.ensureColumnVisible('var:xgm_flux')")
    header.click()
    header.click()  # descending
    page.evaluate("() => window.runtable.grid.setHidden(['var:status'], true)")
    new_plot(page, "summary", "Run", "Trains")
    expect(page.locator(".tab[data-tab^='plot']")).to_have_count(1)
    runs = displayed_runs(page)
    assert runs == sorted(runs, reverse=True)  # xgm_flux grows with the run
    page.locator("#copy-link").click()
    expect(page.locator("#toast")).to_contain_text("Link to this view copied")
    link = page.evaluate("() => navigator.clipboard.readText()")
    assert "token" not in link
    assert "where=" in link and "xgm_flux:desc" in link

    # A colleague: another browser, nothing stored, their own token.
    other = browser.new_context(viewport={"width": 1280, "height": 720})
    try:
        theirs = other.new_page()
        theirs.goto(table_server.url + "#" + link.split("#", 1)[1])
        expect(theirs.locator("#connection")).to_have_attribute("data-state", "live")
        expect(theirs.locator("#where-input")).to_have_value(
            "n_trains >= 700 and ratio has no error")
        assert displayed_runs(theirs) == runs
        expect(theirs.locator(".tab[data-tab^='plot']")).to_have_count(1)
        expect(theirs.locator(".tab-panel[data-tab^='plot'] .js-plotly-plot")).to_be_visible()
        theirs.locator("#tab-table").click()
        assert "Status" not in header_texts(theirs)
        assert "Sample" in header_texts(theirs)
        sort = theirs.evaluate(
            "() => window.runtable.grid.api.getColumnState().filter(c => c.sort)"
            ".map(c => [c.colId, c.sort])")
        assert sort == [["var:xgm_flux", "desc"]]
    finally:
        other.close()
    page.locator("#clear-filters").click()


def settled(page: Page) -> None:
    """Wait until the page counts the view as one that stayed (not a step in progress)."""
    page.wait_for_function("() => !window.runtable.urlSync.inChange")


def test_back_steps_through_views(page: Page, table_server: GuiServer) -> None:
    open_table(page, table_server)
    type_where(page, "run <= 6")
    settled(page)  # a view that stays a moment is a step of its own
    type_where(page, "run <= 3")
    assert displayed_runs(page) == [1, 2, 3]
    settled(page)
    page.go_back()
    expect(page.locator("#where-input")).to_have_value("run <= 6")
    assert displayed_runs(page) == [1, 2, 3, 4, 5, 6]
    page.go_back()
    expect(page.locator("#where-input")).to_have_value("")
    assert len(displayed_runs(page)) == 12
    page.go_forward()
    expect(page.locator("#where-input")).to_have_value("run <= 6")
    assert displayed_runs(page) == [1, 2, 3, 4, 5, 6]


@pytest.fixture(scope="module")
def live_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[GuiServer]:
    """A folder of runs 1-6 of its own: this module's live test adds runs."""
    db_dir = make_folder(tmp_path_factory.mktemp("where_live") / "db", range(1, 7))
    with gui_server(db_dir) as served:
        yield served


def test_new_runs_are_filtered_as_they_arrive(page: Page, live_server: GuiServer) -> None:
    open_table(page, live_server, rows=6)
    type_where(page, "n_trains > 800 and ratio has value")
    assert displayed_runs(page) == []  # run 6 has more trains but its ratio failed
    live_server.add_run(7)  # 859 trains, a ratio: kept
    results = run_results(8)
    results.cells["n_trains"] = Cell(700)
    live_server.add_run(8, results)  # too few trains: left out
    page.wait_for_function(
        "() => window.runtable.grid.displayedRows().map(r => r.run).join() === '7'")
    expect(page.locator("#status")).to_contain_text("1 of 8 runs")
