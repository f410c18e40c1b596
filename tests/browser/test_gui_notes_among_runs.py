"""Standalone notes shown among the runs by time (the "Notes among runs" switch at the
top), as the reference shows its time-stamped comments: between the run before and the
run after, in either order by run or by time; hidden when sorted by something else;
never counted, selected, copied or exported as runs, and passing every column filter."""

from __future__ import annotations

import json
import urllib.request
from collections.abc import Iterator

import pytest
from playwright.sync_api import Page, expect

from .gui_folder import T0, TOKEN, GuiServer, gui_server, make_folder, run_results
from .gui_page import open_filter, open_table

RUNS = range(1, 7)


def started(run: int) -> float:
    """The start time of a run of the standard folder (gui_folder.run_results)."""
    return T0 + 420 * run


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[GuiServer]:
    from runtable.store import DatabaseFolder

    db_dir = make_folder(tmp_path_factory.mktemp("notes_among") / "db", RUNS)
    with DatabaseFolder(db_dir) as db:
        db.add_time_comment("changed the sample", started(2) + 60)
        db.add_time_comment("beam lost\nfor ten minutes", started(4) + 60)
    with gui_server(db_dir) as served:
        yield served


def order(page: Page) -> list[str]:
    """The rows as displayed: run numbers, and notes by their first words."""
    return page.evaluate("""() => {
        const out = [];
        window.runtable.grid.api.forEachNodeAfterFilterAndSort(n => out.push(
            n.data.note ? 'note: ' + n.data.note.text.split('\\n')[0] : String(n.data.run)));
        return out; }""")


def sort_by(page: Page, col_id: str | None, direction: str = "asc") -> None:
    state = [] if col_id is None else [{"colId": col_id, "sort": direction}]
    page.evaluate("""state => window.runtable.grid.api.applyColumnState(
        {state, defaultState: {sort: null}})""", state)


def post_note(server: GuiServer, text: str, timestamp: float) -> None:
    request = urllib.request.Request(
        f"{server.base}/api/time-comments", method="POST",
        data=json.dumps({"text": text, "timestamp": timestamp}).encode(),
        headers={"Authorization": f"Bearer {TOKEN}", "Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=10) as response:
        assert response.status == 201


def test_notes_appear_among_the_runs_by_time_and_follow_the_order(
        wide_page: Page, server: GuiServer, save_screenshot) -> None:
    open_table(wide_page, server, rows=len(RUNS))
    toggle = wide_page.locator("#notes-among")
    # Off until switched on (and then remembered in this browser).
    expect(toggle).not_to_be_checked()
    assert order(wide_page) == [str(r) for r in RUNS]
    toggle.check()
    expected = ["1", "2", "note: changed the sample", "3", "4", "note: beam lost", "5", "6"]
    expect(wide_page.locator(".rt-note-row")).to_have_count(2)
    assert order(wide_page) == expected
    # A band across the table, its text as text, its time in the folder's zone.
    band = wide_page.locator(".rt-note-row").first
    expect(band).to_contain_text("changed the sample")
    expect(wide_page.locator(".rt-note-row").nth(1)).to_contain_text("beam lost · for ten minutes")
    # Not runs: the count stays the number of runs.
    expect(wide_page.locator("#status")).to_contain_text(f"{len(RUNS)} runs")
    save_screenshot(wide_page, "notes-among-runs")
    # Double-clicked, a note opens in the Notes panel's editor.
    band.dblclick()
    editor = wide_page.locator("#notes-panel textarea.note-edit")
    expect(editor).to_have_value("changed the sample")
    editor.press("Escape")
    wide_page.locator("#notes-button").click()
    expect(wide_page.locator("#notes-panel")).to_be_hidden()
    # Newest first: the notes stay between the same runs.
    sort_by(wide_page, "run", "desc")
    assert order(wide_page) == expected[::-1]
    sort_by(wide_page, "timestamp", "asc")
    assert order(wide_page) == expected
    # Sorted by another column, a note has no place: hidden until the order is by time.
    sort_by(wide_page, "var:n_trains", "desc")
    assert order(wide_page) == [str(r) for r in reversed(RUNS)]
    expect(wide_page.locator(".rt-note-row")).to_have_count(0)
    sort_by(wide_page, None)
    assert order(wide_page) == expected
    # Remembered after a reload.
    wide_page.reload()
    expect(wide_page.locator(".rt-note-row")).to_have_count(2)
    toggle = wide_page.locator("#notes-among")
    expect(toggle).to_be_checked()
    toggle.uncheck()
    expect(wide_page.locator(".rt-note-row")).to_have_count(0)


def test_notes_among_runs_are_not_runs_for_selection_filters_and_exports(
        wide_page: Page, server: GuiServer) -> None:
    wide_page.add_init_script("localStorage.setItem('runtable.notes-among-runs', '1')")
    open_table(wide_page, server, rows=len(RUNS))
    expect(wide_page.locator(".rt-note-row")).to_have_count(2)
    # Select everything: only runs are selected, and only runs are exported.
    wide_page.evaluate("() => window.runtable.grid.api.selectAll()")
    assert wide_page.evaluate(
        "() => window.runtable.grid.selectedRows().map(r => r.run)") == list(RUNS)
    assert wide_page.evaluate(
        "() => window.runtable.grid.displayedRows().map(r => r.run)") == list(RUNS)
    # A filter on the runs keeps the notes in their place by time.
    open_filter(wide_page, "var:n_trains")
    wide_page.locator(".rt-filter input[name=min]").fill(str(600 + 37 * 3))
    expect(wide_page.locator("#status")).to_contain_text(f"4 of {len(RUNS)} runs")
    assert order(wide_page) == ["note: changed the sample", "3", "4", "note: beam lost", "5",
                                "6"]
    wide_page.keyboard.press("Escape")
    wide_page.evaluate("() => window.runtable.grid.clearFilter(null)")
    # A note added meanwhile (by anyone) takes its place at once.
    post_note(server, "new detector gain", started(5) + 30)
    expect(wide_page.locator(".rt-note-row")).to_have_count(3)
    assert order(wide_page)[-3:] == ["5", "note: new detector gain", "6"]
    # A new run arrives after the notes, and is counted; the notes keep their places.
    server.add_run(7, run_results(7))
    expect(wide_page.locator("#status")).to_contain_text("7 runs")
    assert order(wide_page)[-4:] == ["5", "note: new detector gain", "6", "7"]
