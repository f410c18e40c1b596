"""Following new runs without fighting the reader: the newest row is wholly visible
(not under the horizontal scrollbar), and a new run moves the view only when it is
sorted by run and already at the end, with no cell being edited."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from playwright.sync_api import Page, expect

from .conftest import save_screenshot
from .gui_folder import GuiServer, gui_server, make_folder
from .gui_page import cell, open_table

RUNS = 40


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[GuiServer]:
    db_dir = make_folder(tmp_path_factory.mktemp("follow") / "db", range(1, RUNS + 1))
    with gui_server(db_dir) as served:
        yield served


@pytest.fixture(scope="module")
def next_run() -> Iterator[list[int]]:
    yield [RUNS]


def add_run(server: GuiServer, page: Page, next_run: list[int]) -> int:
    next_run[0] += 1
    run = next_run[0]
    server.add_run(run)
    page.wait_for_function(
        "run => { const n = window.runtable.grid.api.getRowNode(String(run));"
        " return n !== undefined && n.displayed; }", arg=run)
    page.wait_for_timeout(300)  # any scrolling it causes happens now
    return run


def wholly_visible(page: Page, run: int) -> bool:
    """Is the row of `run` on screen, its top and bottom edges not covered by anything
    (the header, the horizontal scrollbar)?"""
    return page.evaluate("""run => {
        // The row's parts: the pinned Run column and the scrolling columns.
        const parts = [...document.querySelectorAll(`.ag-row[row-id="${run}"]`)];
        if (parts.length === 0) return false;
        return parts.every(part => {
            const box = part.getBoundingClientRect();
            const x = box.left + 40;
            return [box.top + 2, box.bottom - 2].every(y => {
                const hit = document.elementFromPoint(x, y);
                return hit !== null && part.contains(hit);
            });
        });
    }""", run)


def scroll_top(page: Page) -> float:
    return page.evaluate("() => window.runtable.grid.api.getVerticalPixelRange().top")


def test_the_newest_row_is_not_under_the_horizontal_scrollbar(
        wide_page: Page, server: GuiServer, next_run: list[int]) -> None:
    # Narrow enough for the standard folder's columns to scroll sideways.
    wide_page.set_viewport_size({"width": 1000, "height": 900})
    open_table(wide_page, server, rows=next_run[0])
    assert wide_page.evaluate(
        "() => { const v = document.querySelector('.ag-body-horizontal-scroll-viewport');"
        " return v.scrollWidth > v.clientWidth; }"), "the table should scroll sideways"
    expect(cell(wide_page, next_run[0], "run")).to_be_visible()
    wide_page.locator(f'.ag-row[row-id="{next_run[0]}"]').first.wait_for()
    wide_page.evaluate("() => window.runtable.grid.scrollToLast()")
    wide_page.wait_for_timeout(200)
    assert wholly_visible(wide_page, next_run[0])
    run = add_run(server, wide_page, next_run)
    assert wholly_visible(wide_page, run)
    save_screenshot(wide_page, "follow-newest-row")


def test_a_new_run_does_not_move_a_view_sorted_by_another_column(
        wide_page: Page, server: GuiServer, next_run: list[int]) -> None:
    open_table(wide_page, server, rows=next_run[0])
    # Sort by Trains, descending: each new run (more trains) lands at the top.
    header = wide_page.locator('.ag-header-cell[col-id="var:n_trains"] .ag-header-cell-label')
    header.click()
    header.click()
    wide_page.evaluate("() => window.runtable.grid.api.ensureIndexVisible(20, 'top')")
    wide_page.wait_for_timeout(200)
    reading = wide_page.evaluate(
        "() => window.runtable.grid.api.getDisplayedRowAtIndex(22).data.run")
    assert wholly_visible(wide_page, reading)
    before = row_top(wide_page, reading)
    run = add_run(server, wide_page, next_run)
    wide_page.wait_for_function(
        "run => window.runtable.grid.displayedRows()[0].run === run", arg=run)
    wide_page.wait_for_timeout(300)
    # The row being read has not moved on the screen, not even by the new row's height.
    assert row_top(wide_page, reading) == pytest.approx(before, abs=1)


def row_top(page: Page, run: int) -> float:
    return page.evaluate(
        "run => document.querySelector(`.ag-row[row-id='${run}']`).getBoundingClientRect().top",
        run)


def test_a_new_run_does_not_move_a_view_scrolled_up_to_older_runs(
        wide_page: Page, server: GuiServer, next_run: list[int]) -> None:
    open_table(wide_page, server, rows=next_run[0])
    wide_page.evaluate("() => window.runtable.grid.api.ensureIndexVisible(0, 'top')")
    wide_page.wait_for_timeout(200)
    add_run(server, wide_page, next_run)
    assert scroll_top(wide_page) == 0
    assert wholly_visible(wide_page, 1)


def test_a_new_run_does_not_scroll_away_an_open_comment_editor(
        wide_page: Page, server: GuiServer, next_run: list[int]) -> None:
    open_table(wide_page, server, rows=next_run[0])
    wide_page.evaluate("() => window.runtable.grid.scrollToLast()")
    editing = next_run[0] - 5
    cell(wide_page, editing, "comment").dblclick()
    editor = wide_page.locator(".ag-popup-editor textarea")
    expect(editor).to_be_visible()
    before = scroll_top(wide_page)
    add_run(server, wide_page, next_run)
    assert scroll_top(wide_page) == before
    expect(editor).to_be_visible()
    editor.press("Escape")


def test_at_the_end_sorted_by_run_the_view_follows(
        wide_page: Page, server: GuiServer, next_run: list[int]) -> None:
    open_table(wide_page, server, rows=next_run[0])
    wide_page.evaluate("() => window.runtable.grid.scrollToLast()")
    wide_page.wait_for_timeout(200)
    run = add_run(server, wide_page, next_run)
    assert wholly_visible(wide_page, run)
