"""Processing control in the GUI, against the real server WITH the real service on the
mock proposal: reprocess from the dialog, the jobs panel, a running job's progress,
following a log, cancelling, deleting a variable, empty rows with a comment typed
ahead."""

from __future__ import annotations

import re
import textwrap
import time
from collections.abc import Iterator

import h5py
import pytest
from playwright.sync_api import Page, expect

from runtable.selection import Selection
from runtable.store import create_folder, open_db
from runtable.testing import MockProposal

from .gui_page import cell, edit_cell, has_class, header_texts
from .gui_service import ServedService, served_service

TOKEN = "gui-processing-token"
TIMEOUT_MS = 90_000

# `times` counts its own executions per run (a file in the database folder, the jobs'
# working directory); `slow` prints while the file `hold` exists, so a test decides how
# long its job runs and can watch its log grow (and its progress, a step per line);
# while the file `quiet` exists it is silent (a job that looks stuck).
CONTEXT = '''
import time
from pathlib import Path
from runtable.context import Variable, set_progress

@Variable(title="Answer")
def answer(run):
    return 42

@Variable(title="Times computed")
def times(run, run_no: "meta#run_number"):
    counter = Path(f"times-{run_no}")
    n = int(counter.read_text()) + 1 if counter.exists() else 1
    counter.write_text(str(n))
    return n

@Variable(title="Extra")
def extra(run):
    return 7

@Variable(title="Slow")
def slow(run):
    deadline = time.time() + 80
    i = 0
    while Path("hold").exists() and time.time() < deadline:
        i += 1
        if not Path("quiet").exists():
            set_progress(i, 1000)
            print(f"still waiting {i}", flush=True)
        time.sleep(0.3)
    return 1
'''


@pytest.fixture(scope="module")
def served(mock_proposal: MockProposal, tmp_path_factory: pytest.TempPathFactory
           ) -> Iterator[ServedService]:
    """The app and the service on the mock proposal's runs 1-3, all processed."""
    db_dir = tmp_path_factory.mktemp("proc") / "db"
    create_folder(db_dir, mock_proposal.proposal,
                  context_text=textwrap.dedent(CONTEXT)).close()
    # A job silent for 2 s is flagged (only `slow`, kept quiet on purpose, ever is).
    with served_service(db_dir, mock_proposal.path, TOKEN,
                        settings={"stuck_after_s": 2}) as served:
        # The mock proposal's runs are long complete: the catch-up processes them.
        served.service.wait_idle(120)
        with open_db(db_dir, readonly=True) as db:
            assert db.get_value(mock_proposal.proposal, 3, "times") == 1
        yield served


def open_page(page: Page, served: ServedService) -> None:
    page.goto(served.url)
    expect(page.locator("#connection")).to_have_attribute("data-state", "live")
    expect(cell(page, 3, "var:answer")).to_have_text("42")


def menu(page: Page, run: int, col: str, item: str | re.Pattern[str]) -> None:
    """Right-click the cell and choose `item` from its menu."""
    cell(page, run, col).click(button="right")
    page.locator(".cell-menu button", has_text=item).click()


def job_row(page: Page, job_id: str):
    return page.locator(f'.proc-jobs tr[data-job-id="{job_id}"]')


def test_reprocess_selected_runs_from_the_dialog(page: Page, served: ServedService,
                                                 save_screenshot) -> None:
    open_page(page, served)
    expect(cell(page, 1, "var:times")).to_have_text("1")
    page.evaluate("""() => {
        const api = window.runtable.grid.api;
        for (const run of ["1", "2"]) api.getRowNode(run).setSelected(true);
    }""")
    menu(page, 1, "var:answer", "Reprocess 2 runs…")
    dialog = page.locator("#proc-dialog")
    expect(dialog).to_be_visible()
    expect(page.locator("#proc-runs")).to_have_value("1-2")
    # Only "Times computed": none, then search for it and tick it.
    page.locator("#proc-none").click()
    page.locator("#proc-search").fill("times")
    expect(dialog.locator(".proc-vars li:visible")).to_have_count(1)
    dialog.locator('.proc-vars input[value="times"]').check()
    expect(dialog.locator(".proc-note")).to_contain_text("1 of 4 variables")
    dialog.locator('input[name="proc-data"][value="raw"]').check()
    page.locator("#proc-submit").click()
    queued = dialog.locator(".proc-queued li")
    expect(queued).to_have_count(2)
    expect(dialog.locator(".proc-result")).to_contain_text("Queued 2 jobs for runs 1-2")
    save_screenshot(page, "processing-dialog")
    job_ids = [queued.nth(i).get_attribute("data-job-id") for i in range(2)]

    page.locator("#proc-show-jobs").click()
    for job_id in job_ids:
        expect(job_row(page, job_id)).to_have_attribute("data-state", "done",
                                                        timeout=TIMEOUT_MS)
        expect(job_row(page, job_id).locator("td.vars")).to_have_text("times")
    expect(page.locator(".tab-panel:visible .proc-note")).to_contain_text("0 active")

    page.locator("#tab-table").click()
    expect(cell(page, 1, "var:times")).to_have_text("2", timeout=TIMEOUT_MS)
    expect(cell(page, 2, "var:times")).to_have_text("2")
    expect(cell(page, 3, "var:times")).to_have_text("1")  # not selected: not redone


def test_follow_a_log_live_and_cancel_the_running_job(page: Page, served: ServedService,
                                                      save_screenshot) -> None:
    hold = served.db_dir / "hold"
    hold.touch()
    try:
        open_page(page, served)
        menu(page, 3, "var:slow", "Reprocess run 3…")
        page.locator("#proc-none").click()
        page.locator('#proc-dialog .proc-vars input[value="slow"]').check()
        page.locator("#proc-submit").click()
        queued = page.locator("#proc-dialog .proc-queued li")
        expect(queued).to_have_count(1)
        job_id = queued.first.get_attribute("data-job-id")
        page.keyboard.press("Escape")
        expect(page.locator("#proc-dialog")).to_be_hidden()

        menu(page, 3, "var:answer", "Show processing log of run 3")
        log = page.locator('pre.proc-log[data-run="3"]')
        expect(log).to_contain_text("still waiting 3", timeout=TIMEOUT_MS)
        # New lines keep coming while the tab is open, and stay in view.
        count = len(re.findall(r"still waiting", log.text_content() or ""))
        expect(log).to_contain_text(f"still waiting {count + 3}", timeout=TIMEOUT_MS)
        at_end = log.evaluate("e => e.scrollHeight - e.scrollTop - e.clientHeight < 30")
        assert at_end
        expect(page.locator(".proc-log-pane .proc-note")).to_contain_text(
            "process_logs/r3-p1234.out")
        save_screenshot(page, "processing-log")

        page.locator("#proc-jobs-button").click()
        expect(job_row(page, job_id)).to_have_attribute("data-state", "running")
        expect(job_row(page, job_id).locator("button.proc-cancel")).to_be_visible()
        save_screenshot(page, "processing-jobs")

        page.locator("#tab-table").click()
        menu(page, 3, "var:answer", "Cancel processing")
        page.locator("#proc-jobs-button").click()
        expect(job_row(page, job_id)).to_have_attribute("data-state", "cancelled",
                                                        timeout=TIMEOUT_MS)
        expect(job_row(page, job_id).locator("button.proc-cancel")).to_have_count(0)
        # The cell keeps its earlier value and says why it was not computed again.
        page.locator("#tab-table").click()
        slow = cell(page, 3, "var:slow")
        expect(slow).to_have_class(has_class("rt-failed"), timeout=TIMEOUT_MS)
        slow.hover()
        expect(slow).to_have_attribute("title", re.compile("Cancelled"))
    finally:
        hold.unlink()
    served.service.wait_idle(120)


def test_a_running_jobs_progress_shows_in_its_run_cell_and_the_jobs_tab(
        page: Page, served: ServedService, save_screenshot) -> None:
    hold = served.db_dir / "hold"
    hold.touch()
    try:
        open_page(page, served)
        (job,) = served.service.reprocess([3], Selection("all", ("slow",)))
        # The run cell: a bar along its foot that grows, the words in its tooltip.
        page.wait_for_function("() => (window.runtable.store.progress.get(3)?.step ?? 0) >= 2",
                               timeout=TIMEOUT_MS)
        run_cell = cell(page, 3, "run")
        expect(run_cell).to_have_class(has_class("rt-job-running"))
        first = float(run_cell.evaluate("e => e.style.getPropertyValue('--rt-progress')"))
        assert first > 0
        page.wait_for_function(
            """(first) => {
                const node = document.querySelector('.ag-row[row-id="3"] [col-id="run"]');
                return Number(node?.style.getPropertyValue('--rt-progress')) > first;
            }""", arg=first, timeout=TIMEOUT_MS)
        run_cell.hover()
        expect(run_cell).to_have_attribute("title", re.compile(r"running — slow, 1 of 1, \d+ s "
                                                               r"\(\d+ of 1000\)"))
        # The Jobs tab: the same words and a bar, for this job.
        page.locator("#proc-jobs-button").click()
        progress = job_row(page, str(job.id)).locator(".proc-progress")
        expect(progress).to_contain_text(re.compile(r"slow, 1 of 1, \d+ s \(\d+ of 1000\)"),
                                         timeout=TIMEOUT_MS)
        bar = f'.proc-jobs tr[data-job-id="{job.id}"] .proc-progress progress'
        before = page.locator(bar).evaluate("e => e.value")
        page.wait_for_function("([sel, before]) => document.querySelector(sel)?.value > before",
                               arg=[bar, before], timeout=TIMEOUT_MS)
        save_screenshot(page, "processing-progress")
        hold.unlink()
        expect(job_row(page, str(job.id))).to_have_attribute("data-state", "done",
                                                             timeout=TIMEOUT_MS)
        expect(job_row(page, str(job.id)).locator(".proc-progress")).to_have_count(0)
        page.wait_for_function("() => !window.runtable.store.progress.has(3)",
                               timeout=TIMEOUT_MS)
    finally:
        hold.unlink(missing_ok=True)
    served.service.wait_idle(120)


def test_a_silent_job_is_flagged_possibly_stuck_with_its_log_one_click_away(
        page: Page, served: ServedService, save_screenshot) -> None:
    hold, quiet = served.db_dir / "hold", served.db_dir / "quiet"
    hold.touch()
    quiet.touch()
    try:
        open_page(page, served)
        page.locator("#proc-jobs-button").click()
        (job,) = served.service.reprocess([3], Selection("all", ("slow",)))
        row = job_row(page, str(job.id))
        stuck = row.locator("button.proc-stuck")
        expect(stuck).to_contain_text("possibly stuck", timeout=TIMEOUT_MS)
        save_screenshot(page, "processing-stuck")
        stuck.click()
        expect(page.locator('pre.proc-log[data-run="3"]')).to_contain_text("Processing r3")
        page.locator("#tab-table").click()
        run_cell = cell(page, 3, "run")
        expect(run_cell).to_have_class(has_class("rt-job-stuck"))
        run_cell.hover()
        expect(run_cell).to_have_attribute("title", re.compile("Possibly stuck"))
        quiet.unlink()  # it prints again: no longer flagged
        expect(run_cell).not_to_have_class(has_class("rt-job-stuck"), timeout=TIMEOUT_MS)
        page.locator("#proc-jobs-button").click()
        expect(stuck).to_have_count(0)
    finally:
        quiet.unlink(missing_ok=True)
        hold.unlink(missing_ok=True)
    served.service.wait_idle(120)


def test_a_job_flagged_stuck_before_the_page_lists_it_shows_the_flag(
        page: Page, served: ServedService) -> None:
    # The job list the page asks for when it first hears of a job can be read before
    # the job is flagged and arrive after the flag's event: the event must not be lost.
    hold, quiet = served.db_dir / "hold", served.db_dir / "quiet"
    hold.touch()
    quiet.touch()
    held: list[bool] = []

    def stale_list(route) -> None:
        answer = route.fetch()  # read now: the job is not flagged yet
        held.append(True)
        deadline = time.monotonic() + TIMEOUT_MS / 1000
        while time.monotonic() < deadline and not any(
                served.service.job_stuck(j.id) for j in served.service.jobs()):
            time.sleep(0.1)
        time.sleep(1.0)  # the flag's event reaches the page before this answer
        route.fulfill(response=answer)

    try:
        open_page(page, served)
        page.locator("#proc-jobs-button").click()
        # The first list is in (rows of earlier jobs): only later ones are held back.
        expect(page.locator(".proc-jobs tr[data-job-id]").first).to_be_visible()
        page.route(re.compile(r"/api/jobs$"), stale_list)
        (job,) = served.service.reprocess([3], Selection("all", ("slow",)))
        stuck = job_row(page, str(job.id)).locator("button.proc-stuck")
        expect(stuck).to_contain_text("possibly stuck", timeout=TIMEOUT_MS)
        assert held
    finally:
        page.unroute(re.compile(r"/api/jobs$"))
        quiet.unlink(missing_ok=True)
        hold.unlink(missing_ok=True)
    served.service.wait_idle(120)


def test_a_job_list_read_before_the_job_ended_does_not_set_it_back(
        page: Page, served: ServedService) -> None:
    # The list's answer can arrive after the job_state event of a later state.
    hold = served.db_dir / "hold"
    hold.touch()
    try:
        open_page(page, served)
        (job,) = served.service.reprocess([3], Selection("all", ("slow",)))
        page.wait_for_function("() => window.runtable.store.jobs.get(3) === 'running'",
                               timeout=TIMEOUT_MS)
        held: list = []
        page.route("**/api/jobs", lambda route: held.append((route, route.fetch())))
        page.locator("#proc-jobs-button").click()
        while not held:
            page.wait_for_timeout(50)
        hold.unlink()
        # The page hears that the job ended, then gets the list read while it ran.
        page.wait_for_function("() => !window.runtable.store.jobs.has(3)",
                               timeout=TIMEOUT_MS)
        route, answer = held[0]
        assert f'"id":{job.id},' in answer.text().replace(" ", "")
        route.fulfill(response=answer)
        expect(job_row(page, str(job.id))).to_have_attribute("data-state", "done")
    finally:
        hold.unlink(missing_ok=True)
        page.unroute("**/api/jobs")
    served.service.wait_idle(120)


def test_delete_a_variable_after_confirming(page: Page, served: ServedService) -> None:
    open_page(page, served)
    assert "Extra" in header_texts(page)
    menu(page, 2, "var:extra", "Delete variable “Extra”…")
    confirm = page.locator("#proc-confirm")
    expect(confirm).to_contain_text("Delete the variable “Extra”?")
    expect(confirm).to_contain_text("(extra)")
    # Cancel first: nothing happens.
    confirm.get_by_role("button", name="Cancel").click()
    expect(confirm).to_have_count(0)
    assert "Extra" in header_texts(page)

    menu(page, 2, "var:extra", "Delete variable “Extra”…")
    page.locator("#proc-confirm").get_by_role("button", name="Delete variable").click()
    # The context file still defines it: the answer says it comes back.
    expect(page.locator(".toast")).to_contain_text("still defines 'extra'")
    page.wait_for_function(
        "() => !window.runtable.grid.displayedColumns().some(c => c.header === 'Extra')")
    for run in (1, 2, 3):
        with h5py.File(served.db_dir / "extracted_data" / f"p1234_r{run}.h5", "r") as f:
            assert "extra" not in f
            assert "answer" in f


def test_add_empty_rows_and_write_a_comment_ahead(page: Page, served: ServedService) -> None:
    open_page(page, served)
    with open_db(served.db_dir, readonly=True) as db:
        last = max(run for _, run in db.runs())
    page.locator("#proc-rows-button").click()
    dialog = page.locator("#proc-rows-dialog")
    page.locator("#proc-rows-count").fill("2")
    expect(dialog).to_contain_text(f"Creates runs {last + 1}-{last + 2}")
    dialog.get_by_role("button", name="Add rows").click()
    expect(page.locator(".toast")).to_contain_text(f"Added runs {last + 1}-{last + 2}")
    expect(page.locator(f'.ag-row[row-id="{last + 2}"]')).to_have_count(1)

    edit_cell(page, last + 1, "comment", "sample B, 5 K")
    expect(cell(page, last + 1, "comment")).to_have_text("sample B, 5 K")

    # The page shows the text at once; the server stores it when its answer comes.
    def stored() -> str | None:
        with open_db(served.db_dir, readonly=True) as db:
            return db.get_value(1234, last + 1, "comment")

    deadline = time.monotonic() + 30
    while stored() != "sample B, 5 K" and time.monotonic() < deadline:
        time.sleep(0.05)
    assert stored() == "sample B, 5 K"
