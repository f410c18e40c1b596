"""The context-file editor against the real server AND the real service on a mock
proposal: a save is checked in a child process, written, noticed by the service's
monitor, and its new variable becomes a column of the table, which reprocessing
from the GUI fills."""

from __future__ import annotations

import os
import re
import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Page, expect

from runtable.store import create_folder
from runtable.testing import MockProposal

from .gui_page import cell, header_texts
from .gui_service import ServedService, served_service

TOKEN = "editor-test-token-123"
PROPOSAL = 1234  # the shared mock proposal's (tests/conftest.py)
SETTINGS = {"ready_quiet_s": 0.5}
#: The service notices a saved file, reloads it in a child process and the page reloads
#: the table: seconds normally, more on a loaded machine.
SLOW = 90_000

CONTEXT = textwrap.dedent('''\
    from runtable.context import Variable


    @Variable(title="Answer")
    def answer(run):
        return 42
''')


@pytest.fixture
def running(tmp_path: Path, data_root: MockProposal) -> Iterator[ServedService]:
    """A database folder for the mock proposal, its service and the web app on one bus."""
    db_dir = tmp_path / "db"
    create_folder(db_dir, PROPOSAL, context_text=CONTEXT).close()
    with served_service(db_dir, data_root.path, TOKEN, SETTINGS) as served:
        yield served


def open_editor(page: Page, running: ServedService) -> None:
    page.goto(running.url)
    expect(page.locator("#connection")).to_have_attribute("data-state", "live")
    expect(page.locator("#status")).to_contain_text("variable")
    page.get_by_role("button", name="Context file", exact=True).click()
    expect(page.locator(".ed-tab .cm-content")).to_contain_text("def answer(run):")
    expect(page.locator(".ed-status")).to_have_text("Saved")
    # The file as opened is checked at once (or the service, starting, says it loads).
    expect(page.locator(".ed-service")).to_have_text(
        re.compile(r"^(On disk: loads, 1 variable|Service: file loads)$"))


def append_text(page: Page, text: str) -> None:
    """Type `text` at the end of the file (inserted as typed text, without the
    editor's auto-indent and bracket closing getting in the way)."""
    page.locator(".ed-tab .cm-content").click()
    page.keyboard.press("Control+End")
    page.keyboard.insert_text(text)


def test_broken_edit_is_refused_then_fixed_save_adds_a_column(
        page: Page, running: ServedService, save_screenshot) -> None:
    # The runs on disk are processed with the file as it is now (the catch-up), so the
    # new variable below has no values until they are reprocessed.
    running.service.wait_idle(120)
    open_editor(page, running)
    expect(page.locator(".tab[data-tab='context-editor']")).to_be_visible()
    save_screenshot(page, "editor")

    added = ('\n\n@Variable(title="Doubled answer")\ndef doubled(run, a: "var#answer"):'
             '\n    return 2 * a\n\n\nscale = 1 / 0\n')
    append_text(page, added)
    expect(page.locator(".ed-status")).to_have_text("Unsaved changes")
    expect(page.locator(".tab[data-tab='context-editor'] .tab-label")).to_have_text(
        "Context file •")

    # Check: the error is listed with its line, marked in the gutter, nothing saved.
    page.get_by_role("button", name="Check", exact=True).click()
    problem = page.locator(".ed-problem.ed-error")
    expect(problem).to_contain_text("ZeroDivisionError: division by zero", timeout=SLOW)
    expect(problem.locator(".ed-where")).to_have_text(re.compile(r"line \d+"))
    expect(problem.locator("summary")).to_have_text("Traceback")
    expect(page.locator(".ed-tab .cm-lint-marker-error")).to_have_count(1)
    # No false alarm for the var# annotation.
    expect(page.locator(".ed-problem.ed-warning")).to_have_count(0)
    save_screenshot(page, "editor-error")
    page.locator("#theme-toggle").click()
    save_screenshot(page, "editor-error-dark")
    page.locator("#theme-toggle").click()

    # Save is refused for the same reason.
    page.get_by_role("button", name="Save", exact=True).click()
    expect(page.locator(".ed-status")).to_have_text("Not saved: 1 error", timeout=SLOW)
    assert running.context.read_text() == CONTEXT

    # The problem list jumps to the line; fix it there and save with Ctrl-S.
    problem.locator(".ed-problem-row").click()
    expect(page.locator(".ed-tab .cm-activeLine")).to_have_text("scale = 1 / 0")
    # ... which is the line the list named.
    where = problem.locator(".ed-where").text_content() or ""
    assert page.locator(".ed-tab .cm-lineNumbers .cm-activeLineGutter").text_content() == \
        where.removeprefix("line ")
    page.keyboard.press("Shift+End")
    page.keyboard.insert_text("scale = 1 / 2")
    page.keyboard.press("Control+s")
    expect(page.locator("#toast")).to_contain_text("Context file saved", timeout=SLOW)
    expect(page.locator(".ed-status")).to_have_text("Saved")
    expect(page.locator(".tab[data-tab='context-editor'] .tab-label")).to_have_text(
        "Context file")
    saved = running.context.read_text()
    assert "scale = 1 / 2" in saved and "def doubled(run" in saved

    # The service reloads the file and the table gets the new column by itself.
    page.locator("#tab-table").click()
    page.wait_for_function(
        "() => window.runtable.grid.displayedColumns().some(c => c.header === 'Doubled answer')",
        timeout=SLOW)
    assert "Doubled answer" in header_texts(page)

    # The runs processed before the save have no value for it yet: reprocess them all.
    running.service.wait_idle(120)
    expect(cell(page, 3, "var:answer")).to_have_text("42", timeout=SLOW)
    expect(cell(page, 3, "var:doubled")).to_have_text("")
    page.get_by_role("button", name="Reprocess…", exact=True).click()
    page.locator("#proc-runs").fill("all")
    page.locator("#proc-submit").click()
    expect(page.locator("#proc-dialog .proc-result")).to_contain_text("Queued")
    page.keyboard.press("Escape")
    for run in (1, 2, 3):
        expect(cell(page, run, "var:doubled")).to_have_text("84", timeout=SLOW)
    save_screenshot(page, "editor-new-column-filled")


def test_file_changed_on_disk_while_editing_offers_a_diff(
        page: Page, running: ServedService, save_screenshot) -> None:
    open_editor(page, running)
    append_text(page, "\nMINE = 1\n")
    expect(page.locator(".ed-status")).to_have_text("Unsaved changes")

    # Someone edits the file on the server (here: a new variable, so the service
    # announces it and the editor notices at once).
    outside = CONTEXT + '\n\n@Variable(title="From vim")\ndef from_vim(run):\n    return 1\n'
    tmp = running.context.with_suffix(".tmp")
    tmp.write_text(outside)
    os.replace(tmp, running.context)
    expect(page.locator(".ed-banner")).to_contain_text("changed on disk", timeout=SLOW)

    # Saving now is a conflict: a comparison of both texts, nothing overwritten.
    page.get_by_role("button", name="Save", exact=True).click()
    dialog = page.locator("dialog.ed-conflict")
    expect(dialog).to_be_visible(timeout=SLOW)
    expect(dialog.locator(".cm-mergeView")).to_contain_text("MINE = 1")
    expect(dialog.locator(".cm-mergeView")).to_contain_text("def from_vim(run):")
    save_screenshot(page, "editor-conflict")
    assert running.context.read_text() == outside

    # Cancel keeps my edits and the disk's text.
    dialog.get_by_role("button", name="Cancel", exact=True).click()
    expect(dialog).to_have_count(0)
    assert running.context.read_text() == outside
    expect(page.locator(".ed-tab .cm-content")).to_contain_text("MINE = 1")

    # Closing the tab with unsaved edits asks first; dismissing keeps the tab.
    page.once("dialog", lambda d: d.dismiss())
    page.locator(".tab[data-tab='context-editor'] .tab-close").click()
    expect(page.locator(".tab[data-tab='context-editor']")).to_be_visible()

    # Overwrite: my text wins, against the version seen in the comparison.
    page.get_by_role("button", name="Save", exact=True).click()
    expect(dialog).to_be_visible(timeout=SLOW)
    dialog.get_by_role("button", name="Overwrite", exact=True).click()
    expect(page.locator("#toast")).to_contain_text("Context file saved", timeout=SLOW)
    mine = running.context.read_text()
    assert mine.startswith(CONTEXT.rstrip()) and mine.rstrip().endswith("MINE = 1")
    assert "from_vim" not in mine


def test_reload_from_disk_and_history_restore(page: Page, running: ServedService,
                                              save_screenshot) -> None:
    open_editor(page, running)
    append_text(page, "\nFIRST = 1\n")
    page.keyboard.press("Control+s")
    expect(page.locator("#toast")).to_contain_text("Context file saved", timeout=SLOW)

    # Without unsaved edits, an outside change is simply taken.
    running.context.write_text(CONTEXT + "\nFIRST = 2\n")
    page.get_by_role("button", name="Reload", exact=True).click()
    expect(page.locator(".ed-tab .cm-content")).to_contain_text("FIRST = 2")
    expect(page.locator(".ed-status")).to_have_text("Reloaded from disk")

    # History: the original text and the saved one.
    page.get_by_role("button", name="History", exact=True).click()
    rows = page.locator(".ed-history-row")
    expect(rows).to_have_count(2)
    expect(rows.nth(0)).to_contain_text("saved")
    expect(rows.nth(1)).to_contain_text("on disk before a save")
    save_screenshot(page, "editor-history")
    rows.nth(1).click()
    version = page.locator("dialog.ed-version")
    expect(version.locator(".cm-mergeView")).to_contain_text("FIRST = 2")
    save_screenshot(page, "editor-history-version")
    version.get_by_role("button", name="Restore this version", exact=True).click()
    expect(page.locator(".ed-tab .cm-content")).not_to_contain_text("FIRST")
    expect(page.locator(".ed-status")).to_contain_text("Save to make it current")
    # Restoring only loads the text; saving it makes it current (and keeps history).
    assert "FIRST = 2" in running.context.read_text()
    page.get_by_role("button", name="Save", exact=True).click()
    expect(page.locator("#toast")).to_contain_text("Context file saved", timeout=SLOW)
    assert running.context.read_text() == CONTEXT
    # The open history shows the new entries: the outside edit and the restored text.
    expect(rows).to_have_count(4)
    expect(rows.nth(0)).to_contain_text("saved")
    expect(rows.nth(1)).to_contain_text("on disk before a save")
