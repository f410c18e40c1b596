"""Columns come in the context file's order, each "/" group stays together, and a new
variable appears beside its group: against the real service and server."""

from __future__ import annotations

import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Page, expect

from runtable.store import create_folder
from runtable.testing import MockProposal

from .gui_page import header_texts
from .gui_service import ServedService, served_service

TOKEN = "column-order-token-123"
PROPOSAL = 1234
#: The service notices a changed file, loads it in a child process, the page reloads.
SLOW = 90_000

# Flux needs n_trains, defined last: computed after it, but shown where it is written.
CONTEXT = textwrap.dedent('''\
    from damnit_ctx import Variable

    @Variable(title="XGM/Flux")
    def flux(run, n: "var#n_trains"):
        return 2.0 * n

    @Variable(title="Camera/Mean")
    def camera_mean(run):
        return 1.0

    @Variable(title="XGM/Energy")
    def energy(run):
        return 3.0

    @Variable(title="Trains")
    def n_trains(run):
        return len(run.train_ids)
''')

NEW_VARIABLE = textwrap.dedent('''

    @Variable(title="XGM/Gain")
    def gain(run):
        return 4.0
''')


@pytest.fixture
def running(tmp_path: Path, data_root: MockProposal) -> Iterator[ServedService]:
    db_dir = tmp_path / "db"
    create_folder(db_dir, PROPOSAL, context_text=CONTEXT).close()
    with served_service(db_dir, data_root.path, TOKEN, {"ready_quiet_s": 0.5}) as served:
        yield served


def variable_headers(page: Page) -> list[str]:
    return [h for h in header_texts(page) if h.endswith(("Flux", "Mean", "Energy", "Trains",
                                                           "Gain"))]


def wait_for_headers(page: Page, wanted: list[str]) -> None:
    """Wait until the variable columns are ``wanted``, left to right."""
    seen: list[str] = []
    for _ in range(SLOW // 250):
        seen = variable_headers(page)
        if seen == wanted:
            return
        page.wait_for_timeout(250)
    assert seen == wanted


def group_headers(page: Page) -> list[str]:
    return page.locator(".ag-header-group-cell.rt-group .ag-header-group-text").all_inner_texts()


def test_columns_follow_the_file_with_groups_together_and_new_ones_beside_their_group(
        page: Page, running: ServedService) -> None:
    page.goto(running.url)
    expect(page.locator("#connection")).to_have_attribute("data-state", "live")
    wait_for_headers(page, ["XGM/Flux", "XGM/Energy", "Camera/Mean", "Trains"])
    assert [g for g in group_headers(page) if g in ("XGM", "Camera")] == ["XGM", "Camera"]

    with running.context.open("a") as f:
        f.write(NEW_VARIABLE)
    wait_for_headers(page, ["XGM/Flux", "XGM/Energy", "XGM/Gain", "Camera/Mean",
                            "Trains"])
    assert [g for g in group_headers(page) if g in ("XGM", "Camera")] == ["XGM", "Camera"]
