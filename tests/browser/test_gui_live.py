"""Live updates and editing in real browsers against the real server: runs appear as
they are merged, cells update, processing marks follow job events, and two pages
editing at once see each other's comments and values."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from playwright.sync_api import Page, expect

from runtable.context import Cell, Results
from runtable.events import JobStateChanged
from runtable.store import DatabaseFolder

from .gui_folder import PROPOSAL, GuiServer, gui_server, make_folder, write_run
from .gui_page import cell, displayed_runs, edit_cell, has_class, open_table


def test_new_runs_appear_live_and_are_followed(page: Page, table_server: GuiServer) -> None:
    page.set_viewport_size({"width": 1280, "height": 400})  # run 13+ starts off screen
    open_table(page, table_server)
    expect(page.locator("#follow")).to_be_checked()
    for run in (13, 14):
        table_server.add_run(run)
        expect(cell(page, run, "var:n_trains")).to_have_text(str(600 + 37 * run))
    expect(page.locator("#status")).to_contain_text("14 runs")
    assert displayed_runs(page)[-2:] == [13, 14]
    # Followed: the newest row is on screen without anyone scrolling.
    expect(page.locator('.ag-row[row-id="14"]')).to_be_in_viewport()


def test_merged_values_update_the_cell(page: Page, table_server: GuiServer) -> None:
    open_table(page, table_server, rows=table_server_rows(table_server))
    expect(cell(page, 2, "var:n_trains")).to_have_text("674")
    table_server.merge(2, Results({"n_trains": Cell(4242), "xgm_flux": Cell(np.float64(2.5))}, {}))
    expect(cell(page, 2, "var:n_trains")).to_have_text("4242")
    # In the column's style: its other values are tiny, so scientific notation.
    expect(cell(page, 2, "var:xgm_flux")).to_have_text("2.5000e+0")
    # The other cells of the row keep their values.
    expect(cell(page, 2, "var:sample")).to_have_text("water jet")


def test_text_merged_into_a_numeric_column(page: Page, table_server: GuiServer) -> None:
    """Numeric columns arrive as float64 blocks; a text value still fits in afterwards."""
    open_table(page, table_server, rows=table_server_rows(table_server))
    expect(cell(page, 8, "var:n_trains")).to_have_text(str(600 + 37 * 8))
    table_server.merge(8, Results({"n_trains": Cell("not counted")}, {}))
    expect(cell(page, 8, "var:n_trains")).to_have_text("not counted")
    expect(cell(page, 7, "var:n_trains")).to_have_text(str(600 + 37 * 7))


def test_processing_marks_follow_job_events(page: Page, table_server: GuiServer) -> None:
    open_table(page, table_server, rows=table_server_rows(table_server))
    run_cell = cell(page, 5, "run")
    table_server.bus.publish(JobStateChanged("j1", PROPOSAL, 5, "queued"))
    expect(run_cell).to_have_class(has_class("rt-job-queued"))
    table_server.bus.publish(JobStateChanged("j1", PROPOSAL, 5, "running"))
    expect(run_cell).to_have_class(has_class("rt-job-running"))
    expect(page.locator("#status")).to_contain_text("processing 1")
    table_server.bus.publish(JobStateChanged("j1", PROPOSAL, 5, "done"))
    expect(run_cell).not_to_have_class(has_class("rt-job-running"))
    expect(run_cell).not_to_have_class(has_class("rt-job-queued"))


def test_comment_edited_in_one_page_appears_in_another(
    page: Page, second_page: Page, table_server: GuiServer
) -> None:
    rows = table_server_rows(table_server)
    open_table(page, table_server, rows)
    open_table(second_page, table_server, rows)
    edit_cell(page, 3, "comment", "beam lost at 14:05")
    expect(cell(second_page, 3, "comment")).to_have_text("beam lost at 14:05")
    # Both edit at once (different runs): nothing is lost.
    edit_cell(page, 4, "comment", "from page one")
    edit_cell(second_page, 5, "comment", "from page two")
    for p in (page, second_page):
        expect(cell(p, 4, "comment")).to_have_text("from page one")
        expect(cell(p, 5, "comment")).to_have_text("from page two")
    with DatabaseFolder(table_server.db_dir, readonly=True) as db:
        assert db.get_value(PROPOSAL, 3, "comment") == "beam lost at 14:05"
        assert db.get_value(PROPOSAL, 5, "comment") == "from page two"
    # And after a reload the comment is read back from the database.
    second_page.reload()
    expect(cell(second_page, 3, "comment")).to_have_text("beam lost at 14:05")


def test_user_variable_created_and_edited_with_validation(
    page: Page, second_page: Page, table_server: GuiServer
) -> None:
    rows = table_server_rows(table_server)
    open_table(page, table_server, rows)
    open_table(second_page, table_server, rows)
    page.locator("#add-variable").click()
    dialog = page.locator("#variable-dialog")
    expect(dialog).to_be_visible()
    page.locator("#var-title").fill("Sample/Position")
    expect(page.locator("#var-name")).to_have_attribute("placeholder", "sample_position")
    page.locator("#var-type").select_option("number")
    page.locator("#var-after").select_option("n_trains")
    page.locator("#var-description").fill("Stage x in mm")
    page.locator("#variable-dialog button[type=submit]").click()
    expect(dialog).to_be_hidden()
    col = "var:sample_position"
    for p in (page, second_page):
        expect(p.locator(f'.ag-header-cell[col-id="{col}"]')).to_have_count(1)
    shown = page.evaluate("() => window.runtable.grid.displayedColumns().map(c => c.colId)")
    assert shown[3:5] == ["var:n_trains", col]

    # A wrong value: the server's sentence is shown and the cell keeps its old value.
    edit_cell(page, 1, col, "left of centre")
    expect(page.locator("#toast")).to_contain_text("not a number")
    expect(cell(page, 1, col)).to_have_text("")
    edit_cell(page, 1, col, "3.25")
    expect(cell(page, 1, col)).to_have_text("3.2500")
    expect(cell(second_page, 1, col)).to_have_text("3.2500")
    with DatabaseFolder(table_server.db_dir, readonly=True) as db:
        assert db.get_value(PROPOSAL, 1, "sample_position") == 3.25

    # A name that is taken: the dialog says so and keeps what was typed.
    page.locator("#add-variable").click()
    page.locator("#var-title").fill("Trains again")
    page.locator("#var-name").fill("n_trains")
    page.locator("#variable-dialog button[type=submit]").click()
    expect(page.locator("#var-error")).to_contain_text("n_trains")
    expect(page.locator("#var-title")).to_have_value("Trains again")
    page.locator("#var-cancel").click()


def test_time_stamped_notes(page: Page, second_page: Page, table_server: GuiServer) -> None:
    rows = table_server_rows(table_server)
    open_table(page, table_server, rows)
    open_table(second_page, table_server, rows)
    second_page.locator("#notes-button").click()
    page.locator("#notes-button").click()
    page.locator("#note-text").fill("Changed sample to <b>Au</b>")
    page.locator("#note-form button[type=submit]").click()
    for p in (page, second_page):
        note = p.locator("#note-list li p").first
        expect(note).to_have_text("Changed sample to <b>Au</b>")
    assert page.locator("#note-list b").count() == 0
    with DatabaseFolder(table_server.db_dir, readonly=True) as db:
        assert [c.comment for c in db.time_comments()][-1] == "Changed sample to <b>Au</b>"


def test_editing_a_note_shows_in_other_pages(page: Page, second_page: Page,
                                             table_server: GuiServer) -> None:
    rows = table_server_rows(table_server)
    open_table(page, table_server, rows)
    open_table(second_page, table_server, rows)
    page.locator("#notes-button").click()
    page.locator("#note-text").fill("Sample Au, 2 mm")
    page.locator("#note-text").press("Control+Enter")
    note = page.locator("#note-list li").filter(has_text="Sample Au, 2 mm")
    expect(note).to_have_count(1)
    note_id = note.get_attribute("data-id")
    second_page.locator("#notes-button").click()
    other = second_page.locator(f'#note-list li[data-id="{note_id}"]')
    expect(other.locator("p")).to_have_text("Sample Au, 2 mm")

    # Escape goes back to the saved text and saves nothing.
    note.locator(".note-edit-button").click()
    editor = page.locator(f'#note-list li[data-id="{note_id}"] textarea.note-edit')
    expect(editor).to_be_focused()
    editor.fill("never saved")
    editor.press("Escape")
    expect(editor).to_have_count(0)
    expect(page.locator(f'#note-list li[data-id="{note_id}"] p')).to_have_text("Sample Au, 2 mm")

    # A refused save keeps the typed text open and shows the server's reason.
    page.locator(f'#note-list li[data-id="{note_id}"] p').dblclick()
    editor.fill("   ")
    editor.press("Enter")
    error = page.locator(f'#note-list li[data-id="{note_id}"] .note-error')
    expect(error).to_contain_text("needs some text")
    expect(editor).to_have_value("   ")

    # Another page's change arrives while this one types: the typing survives.
    with DatabaseFolder(table_server.db_dir, readonly=True) as db:
        assert [c.comment for c in db.time_comments()].count("Sample Au, 2 mm") == 1
    second_page.locator("#note-text").fill("Beam dump at 14:10")
    second_page.locator("#note-form button[type=submit]").click()
    expect(page.locator("#note-list li p").filter(has_text="Beam dump")).to_have_count(1)
    expect(editor).to_have_value("   ")

    editor.fill("Sample Au, 3 mm\n(re-measured)")
    editor.press("Enter")
    expect(editor).to_have_count(0)
    for p in (page, second_page):
        expect(p.locator(f'#note-list li[data-id="{note_id}"] p')).to_have_text(
            "Sample Au, 3 mm\n(re-measured)")
    with DatabaseFolder(table_server.db_dir, readonly=True) as db:
        texts = [c.comment for c in db.time_comments()]
    assert "Sample Au, 3 mm\n(re-measured)" in texts
    assert "Sample Au, 2 mm" not in texts


def table_server_rows(server: GuiServer) -> int:
    with DatabaseFolder(server.db_dir, readonly=True) as db:
        return len(db.runs())




def test_a_dropped_event_stream_reloads_the_table(page: Page, tmp_path: Path) -> None:
    """A browser that falls behind is disconnected (close code 4000); it reconnects and
    re-reads the table, so changes it never got an event for still appear."""
    db_dir = make_folder(tmp_path / "db", range(1, 4))
    with gui_server(db_dir, max_queue=3) as server:
        open_table(page, server, rows=3)
        with DatabaseFolder(db_dir) as db:
            for run in (4, 5):
                write_run(db, run)  # merged, but no event announces them
        # A burst far larger than the queue, faster than any browser reads it: the
        # server drops this browser.
        for i in range(5000):
            server.bus.publish(JobStateChanged(f"burst{i}", PROPOSAL, 999, "queued"))
        expect(page.locator("#status")).to_contain_text("5 runs", timeout=15_000)
        expect(page.locator("#connection")).to_have_attribute("data-state", "live")
        expect(cell(page, 5, "var:n_trains")).to_have_text(str(600 + 37 * 5))


def test_typing_survives_updates_to_the_same_run(page: Page, table_server: GuiServer) -> None:
    open_table(page, table_server, rows=table_server_rows(table_server))
    trains = cell(page, 6, "var:n_trains")  # scrolled into view before editing starts
    cell(page, 6, "comment").dblclick()
    editor = page.locator(".ag-popup-editor textarea")
    expect(editor).to_be_visible()
    editor.fill("half a thought")
    # New values for this run arrive while the person is typing.
    table_server.merge(6, Results({"n_trains": Cell(1)}, {}))
    expect(trains).to_have_text("1")
    expect(editor).to_have_value("half a thought")
    editor.press("End")
    editor.type(", finished")
    # The cell shows the text at once; the database has it when the PUT is answered.
    with page.expect_response(lambda r: r.url.endswith("/api/runs/6/comment")
                              and r.request.method == "PUT"):
        editor.press("Enter")
    expect(cell(page, 6, "comment")).to_have_text("half a thought, finished")
    with DatabaseFolder(table_server.db_dir, readonly=True) as db:
        assert db.get_value(PROPOSAL, 6, "comment") == "half a thought, finished"
