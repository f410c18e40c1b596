"""A cell's history in the GUI, against the real server WITH the real service on the mock
proposal: the stale mark after a context change, the History tab with the context
versions and their diff, a reprocess adding the second version, comments' edits."""

from __future__ import annotations

import json
import re
import textwrap
import urllib.request
from collections.abc import Iterator

import pytest
from playwright.sync_api import Page, expect

from runtable.context.codehash import text_sha256
from runtable.store import create_folder, open_db
from runtable.testing import MockProposal

from .gui_page import cell, edit_cell, has_class
from .gui_service import ServedService, served_service

TOKEN = "gui-history-token"
TIMEOUT_MS = 90_000

CONTEXT_V1 = textwrap.dedent('''
    from runtable.context import Variable

    @Variable(title="Trains")
    def n_trains(run):
        return len(run.train_ids)

    @Variable(title="Doubled")
    def doubled(run, n: "var#n_trains"):
        return n * 2
''')
CONTEXT_V2 = CONTEXT_V1.replace("return n * 2", "return n * 2 + 1")


@pytest.fixture(scope="module")
def served(mock_proposal: MockProposal, tmp_path_factory: pytest.TempPathFactory
           ) -> Iterator[ServedService]:
    """The app and the service on the mock proposal's runs 1-3, all processed."""
    db_dir = tmp_path_factory.mktemp("history") / "db"
    create_folder(db_dir, mock_proposal.proposal, context_text=CONTEXT_V1).close()
    with served_service(db_dir, mock_proposal.path, TOKEN) as served:
        served.service.wait_idle(120)
        with open_db(db_dir, readonly=True) as db:
            assert db.get_value(mock_proposal.proposal, 3, "doubled") == 128
        yield served


def api(served: ServedService, method: str, path: str, body: object = None) -> object:
    request = urllib.request.Request(
        f"{served.base}/{path}", method=method,
        data=None if body is None else json.dumps(body).encode(),
        headers={"Authorization": f"Bearer {TOKEN}", "Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=120) as response:
        return json.loads(response.read() or b"null")


def open_page(page: Page, served: ServedService) -> None:
    page.goto(served.url)
    expect(page.locator("#connection")).to_have_attribute("data-state", "live")
    expect(cell(page, 3, "var:doubled")).to_have_text("128")


def history_of(page: Page, run: int, col: str):
    cell(page, run, col).click(button="right")
    page.locator(".cell-menu button", has_text="History…").click()
    pane = page.locator(".hist-pane").last
    expect(pane).to_be_visible()
    return pane


def test_a_context_change_marks_stale_values_and_a_reprocess_adds_the_new_version(
        page: Page, served: ServedService, save_screenshot) -> None:
    open_page(page, served)
    expect(cell(page, 1, "var:doubled")).not_to_have_class(has_class("rt-stale"))
    sha1, sha2 = text_sha256(CONTEXT_V1), text_sha256(CONTEXT_V2)

    # Saved from the editor (the server's route): the values of `doubled` are now stale,
    # those of `n_trains` (whose code did not change) are not.
    current = api(served, "GET", "api/context")
    api(served, "PUT", "api/context", {"text": CONTEXT_V2, "base_version": current["version"]})
    for run in (1, 2, 3):
        expect(cell(page, run, "var:doubled")).to_have_class(has_class("rt-stale"),
                                                             timeout=TIMEOUT_MS)
    expect(cell(page, 1, "var:n_trains")).not_to_have_class(has_class("rt-stale"))
    save_screenshot(page, "history-stale-marks")
    marked = cell(page, 1, "var:doubled")
    marked.hover()
    expect(marked).to_have_attribute("title", re.compile("Stale: the code of this variable"))

    pane = history_of(page, 1, "var:doubled")
    expect(pane.locator(".hist-stale")).to_be_visible()
    expect(pane.locator(".hist-stale")).to_contain_text("Reprocess run 1")
    rows = pane.locator(".hist-entries tbody tr")
    expect(rows).to_have_count(1)
    expect(rows.first).to_contain_text("128")
    expect(rows.first).to_contain_text(sha1[:12])
    expect(rows.first).to_contain_text("code changed since")
    expect(rows.first).to_contain_text("context file")
    # The diff between the version that computed the value and the file now.
    expect(pane.locator(".hist-from")).to_have_value(sha1)
    expect(pane.locator(".hist-to")).to_have_value("current")
    expect(pane.locator(".hist-diff .hist-del")).to_have_text("-    return n * 2")
    expect(pane.locator(".hist-diff .hist-add")).to_have_text("+    return n * 2 + 1")

    # Reprocessing run 1: the open tab follows, with both versions and their texts.
    served.service.reprocess([1])
    expect(rows).to_have_count(2, timeout=TIMEOUT_MS)
    expect(rows.nth(0)).to_contain_text("129")
    expect(rows.nth(0)).to_contain_text(sha2[:12])
    expect(rows.nth(0)).to_contain_text("now")
    expect(rows.nth(0)).not_to_contain_text("code changed since")
    expect(rows.nth(1)).to_contain_text("128")
    expect(rows.nth(1)).to_contain_text(sha1[:12])
    expect(pane.locator(".hist-stale")).to_be_hidden()
    expect(pane.locator(".hist-from")).to_have_value(sha1)
    expect(pane.locator(".hist-to")).to_have_value(sha2)
    expect(pane.locator(".hist-diff .hist-add")).to_have_text("+    return n * 2 + 1")
    save_screenshot(page, "history-tab")

    page.locator("#tab-table").click()
    expect(cell(page, 1, "var:doubled")).to_have_text("129", timeout=TIMEOUT_MS)
    expect(cell(page, 1, "var:doubled")).not_to_have_class(has_class("rt-stale"),
                                                           timeout=TIMEOUT_MS)
    expect(cell(page, 2, "var:doubled")).to_have_class(has_class("rt-stale"))


def test_a_comments_edits_are_its_history(page: Page, served: ServedService) -> None:
    open_page(page, served)
    edit_cell(page, 2, "comment", "first look")
    expect(cell(page, 2, "comment")).to_have_text("first look")
    edit_cell(page, 2, "comment", "bad beam")
    expect(cell(page, 2, "comment")).to_have_text("bad beam")
    pane = history_of(page, 2, "comment")
    rows = pane.locator(".hist-entries tbody tr")
    expect(rows).to_have_count(2)
    expect(rows.nth(0)).to_contain_text("bad beam")
    expect(rows.nth(0)).to_contain_text("typed")
    expect(rows.nth(1)).to_contain_text("first look")
