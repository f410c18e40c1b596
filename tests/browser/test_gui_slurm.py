"""The Jobs tab with the real service on the real single-node Slurm: the runs of one
job array show their own states (waiting in the array, running on a task, done)."""

from __future__ import annotations

import textwrap
from collections.abc import Iterator

import pytest
from playwright.sync_api import Page, expect

from runtable.selection import Selection
from runtable.store import create_folder
from runtable.testing import MockProposal

from .gui_page import cell
from .gui_service import ServedService, served_service

TOKEN = "gui-slurm-token"
TIMEOUT_MS = 90_000

# `slow` waits while the file `hold` exists, so the test decides when the runs end.
CONTEXT = '''
import time
from pathlib import Path
from runtable.context import Variable

@Variable(title="Slow")
def slow(run):
    deadline = time.time() + 80
    while Path("hold").exists() and time.time() < deadline:
        time.sleep(0.2)
    return 1
'''


@pytest.fixture(scope="module")
def served(mock_proposal: MockProposal, slurm_ready, tmp_path_factory: pytest.TempPathFactory
           ) -> Iterator[ServedService]:
    """The app and a service with executor = slurm (one worker per array) on the mock
    proposal's runs 1-3, all processed once."""
    if slurm_ready is not None:
        pytest.skip(f"Slurm cannot run here: {slurm_ready}")
    db_dir = tmp_path_factory.mktemp("slurm") / "db"
    create_folder(db_dir, mock_proposal.proposal,
                  context_text=textwrap.dedent(CONTEXT)).close()
    settings = {"executor": "slurm", "slurm_time": "00:05:00", "concurrent_jobs": 1}
    with served_service(db_dir, mock_proposal.path, TOKEN, settings) as served:
        served.service.wait_idle(120)
        yield served


def test_the_jobs_tab_shows_each_run_of_a_slurm_array(page: Page, served: ServedService,
                                                      save_screenshot) -> None:
    hold = served.db_dir / "hold"
    hold.touch()
    try:
        page.goto(served.url)
        expect(page.locator("#connection")).to_have_attribute("data-state", "live")
        expect(cell(page, 3, "var:slow")).to_have_text("1")
        jobs = served.service.reprocess([1, 2, 3], Selection("raw"))
        page.locator("#proc-jobs-button").click()
        rows = {job.run: page.locator(f'.proc-jobs tr[data-job-id="{job.id}"]')
                for job in jobs}
        # One worker: one run goes on it, the two others wait in the same array.
        running = page.locator('.proc-jobs tr[data-state="running"]')
        expect(running).to_have_count(1, timeout=TIMEOUT_MS)
        expect(running.locator("td.message")).to_contain_text("Slurm job ")
        waiting = page.locator('.proc-jobs tr[data-state="queued"]')
        expect(waiting).to_have_count(2)
        expect(waiting.first.locator("td.message")).to_contain_text(
            "(3 runs, 1 worker), waiting for a worker")
        array = (waiting.first.locator("td.message").text_content() or "").split()[3]
        expect(running.locator("td.message")).to_contain_text(f"Slurm job {array}_0 on ")
        save_screenshot(page, "processing-jobs-slurm")
        hold.unlink()
        for row in rows.values():
            expect(row).to_have_attribute("data-state", "done", timeout=TIMEOUT_MS)
            expect(row.locator("td.message")).to_contain_text(f"Slurm job {array}_0")
    finally:
        hold.unlink(missing_ok=True)
    served.service.wait_idle(120)
