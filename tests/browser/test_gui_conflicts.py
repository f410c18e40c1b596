"""Two people on one cell, in two real browsers: the edit made on an older value is
not lost silently; its page shows both values and the person chooses. And a value kept
while a later job died shows that failure on its cell."""

from __future__ import annotations

import re
from collections.abc import Iterator

import pytest
from playwright.sync_api import Page, expect

from runtable.jobs.errors import make_error, write_error_fragment
from runtable.store import DatabaseFolder

from .gui_folder import PROPOSAL, GuiServer, gui_server, make_folder
from .gui_page import cell, edit_cell, has_class, open_table

RUNS = range(1, 13)


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[GuiServer]:
    db_dir = make_folder(tmp_path_factory.mktemp("gui-conflicts") / "db", RUNS)
    with DatabaseFolder(db_dir) as db:
        db.add_user_variable("operator", "string", title="Operator")
        # Run 5 was processed again, and that job ran out of memory before n_trains.
        fragment = write_error_fragment(db_dir, PROPOSAL, 5, ["n_trains"], make_error(
            "MemoryLimitExceeded", "Processing used 3G of memory, more than the limit"))
        db.merge_fragment(fragment)
    with gui_server(db_dir) as running:
        yield running


def stored(server: GuiServer, run: int, name: str) -> object:
    with DatabaseFolder(server.db_dir, readonly=True) as db:
        return db.get_value(PROPOSAL, run, name)


def start_editing(page: Page, run: int, col: str, text: str) -> None:
    """Open a cell's editor and type, without committing yet."""
    cell(page, run, col).dblclick()
    editor = page.locator(".ag-popup-editor textarea, .ag-cell-inline-editing input").first
    expect(editor).to_be_visible()
    editor.fill(text)


def commit(page: Page) -> None:
    page.locator(".ag-popup-editor textarea, .ag-cell-inline-editing input").first.press("Enter")


@pytest.mark.parametrize(("col", "name"), [("comment", "comment"),
                                           ("var:operator", "operator")])
def test_an_edit_made_on_an_older_value_asks_which_to_keep(
        page: Page, second_page: Page, server: GuiServer, col: str, name: str) -> None:
    open_table(page, server)
    open_table(second_page, server)

    # Ann starts typing; meanwhile Bob saves the same cell.
    start_editing(page, 3, col, "Ann's words")
    edit_cell(second_page, 3, col, "Bob's words")
    expect(cell(second_page, 3, col)).to_have_text("Bob's words")
    commit(page)
    dialog = page.locator("#edit-conflict")
    expect(dialog).to_be_visible()
    expect(dialog.locator("#conflict-theirs-text")).to_have_text("Bob's words")
    expect(dialog.locator("#conflict-mine-text")).to_have_text("Ann's words")
    assert stored(server, 3, name) == "Bob's words"  # nothing overwritten yet
    dialog.locator("#conflict-mine").click()
    expect(dialog).to_have_count(0)
    for p in (page, second_page):
        expect(cell(p, 3, col)).to_have_text("Ann's words")
    assert stored(server, 3, name) == "Ann's words"

    # Again, and this time Ann keeps Bob's text.
    start_editing(page, 4, col, "Ann again")
    edit_cell(second_page, 4, col, "Bob again")
    expect(cell(second_page, 4, col)).to_have_text("Bob again")
    commit(page)
    expect(dialog).to_be_visible()
    dialog.locator("#conflict-theirs").click()
    expect(dialog).to_have_count(0)
    expect(cell(page, 4, col)).to_have_text("Bob again")
    assert stored(server, 4, name) == "Bob again"


def test_a_value_kept_while_its_job_died_shows_the_failure(page: Page,
                                                           server: GuiServer) -> None:
    open_table(page, server)
    kept = cell(page, 5, "var:n_trains")
    expect(kept).to_have_class(has_class("rt-failed"))
    expect(kept).not_to_have_text("")  # the earlier value is still shown
    kept.hover()
    expect(kept).to_have_attribute("title", re.compile("MemoryLimitExceeded"))
    expect(cell(page, 6, "var:n_trains")).not_to_have_class(has_class("rt-failed"))
