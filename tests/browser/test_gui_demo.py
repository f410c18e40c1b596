"""The GUI on `runtable demo`: the real service, the real server, runs arriving."""

from __future__ import annotations

import re
from pathlib import Path

from playwright.sync_api import Page, expect

from runtable.testing.demo_process import running_demo

from .gui_page import cell


def test_runs_appear_live_while_the_demo_adds_them(page: Page, tmp_path: Path,
                                                   save_screenshot) -> None:
    with running_demo(tmp_path / "demo", "--runs", "1", "--every", "3",
                      "--max-runs", "3") as demo:
        page.goto(f"{demo.url}/?token={demo.token}")
        expect(page.locator("#connection")).to_have_attribute("data-state", "live",
                                                              timeout=60_000)
        # Runs 2 and 3 are written after the page opened: they can only come live.
        expect(page.locator("#status")).to_contain_text("3 runs", timeout=180_000)
        # ... and fill in, up to the proc variable that comes with their proc data.
        expect(cell(page, 3, "var:agipd_mean")).to_have_text(re.compile(r"\d"), timeout=180_000)
        # The raw and proc jobs of a run may end in either order on a busy machine.
        expect(cell(page, 3, "var:n_trains")).to_have_text("64", timeout=180_000)
        # Units declared in the context file, on cells that arrived live.
        expect(cell(page, 3, "var:agipd_mean")).to_contain_text("keV")
        save_screenshot(page, "demo-live")
        demo.check_alive()
    assert demo.proc.returncode == 0, demo.output
