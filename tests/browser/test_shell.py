"""The GUI's shell in a real browser: the page, the grid's header, the theme toggle."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from fastapi import FastAPI, Request
from playwright.sync_api import Browser, Page, expect

from runtable.server.frontend import mount_frontend

Screenshot = Callable[[Page, str], Path]

HOSTILE = '<img src=x onerror="window.__injected = true">'

SAMPLE_TABLE: dict[str, Any] = {
    "columns": [
        {"name": "n_trains", "title": "Trains", "description": "Number of trains in the run"},
        {"name": "xgm_mean", "title": "XGM/mean energy", "description": "µJ"},
        {"name": "sample", "title": "<b>Sample</b>"},
    ],
    "rows": [
        {
            "run": run,
            "timestamp": 1_790_000_000 + 420 * run,
            "comment": HOSTILE if run == 3 else ("dark run" if run == 5 else ""),
            "n_trains": 600 + 37 * run,
            "xgm_mean": round(1234.5678 / run, 4),
            "sample": ["YAG", "Au foil", "water jet"][run % 3],
        }
        for run in range(1, 13)
    ],
}


def header_texts(page: Page) -> list[str]:
    return page.locator(".ag-header-cell-text").all_inner_texts()


def theme(page: Page) -> str | None:
    return page.evaluate("document.documentElement.dataset.theme")


@dataclass
class SampleServer:
    url: str
    authorization: list[str | None] = field(default_factory=list)


@pytest.fixture(scope="module")
def sample(serve_app: Callable[[FastAPI], AbstractContextManager[str]]) -> Iterator[SampleServer]:
    """A server whose `/api/table` answers with SAMPLE_TABLE (and records auth headers)."""
    app = FastAPI()
    authorization: list[str | None] = []

    @app.get("/api/table")
    def table(request: Request) -> dict[str, Any]:
        authorization.append(request.headers.get("authorization"))
        return SAMPLE_TABLE

    mount_frontend(app)
    with serve_app(app) as url:
        yield SampleServer(url, authorization)


def test_page_shows_empty_grid_without_table_endpoint(
    page: Page, gui_url: str, save_screenshot: Screenshot
) -> None:
    page.goto(gui_url)
    expect(page).to_have_title("runtable")
    expect(page.locator(".ag-header-cell-text")).to_have_text(["Run", "Timestamp", "Comment"])
    expect(page.locator(".ag-overlay-no-rows-center")).to_have_text("no table endpoint yet")
    save_screenshot(page, "shell-no-table-endpoint")


def test_grid_shows_runs_and_variable_columns(page: Page, sample: SampleServer) -> None:
    page.goto(sample.url)
    expect(page.locator(".ag-row")).to_have_count(12)
    assert header_texts(page) == [
        "Run",
        "Timestamp",
        "Comment",
        "Trains",
        "XGM/mean energy",
        "<b>Sample</b>",
    ]
    expect(page.locator("#status")).to_have_text("12 runs · 3 variables")


def test_strings_from_data_are_text_not_html(page: Page, sample: SampleServer) -> None:
    page.goto(sample.url)
    comment = page.locator('.ag-row[row-id="3"] [col-id="comment"]')
    expect(comment).to_have_text(HOSTILE)
    assert page.locator(".ag-root img, .ag-header b").count() == 0
    assert page.evaluate("window.__injected") is None


def test_token_is_sent_and_removed_from_the_address_bar(page: Page, sample: SampleServer) -> None:
    sample.authorization.clear()
    page.goto(f"{sample.url}/?token=s3cret&view=x")
    expect(page.locator(".ag-row")).to_have_count(12)
    assert sample.authorization == ["Bearer s3cret"]
    assert page.url == f"{sample.url}/?view=x"


def test_theme_toggle_switches_and_persists(
    page: Page, sample: SampleServer, save_screenshot: Screenshot
) -> None:
    page.goto(sample.url)
    toggle = page.locator("#theme-toggle")
    expect(page.locator(".ag-row")).to_have_count(12)
    assert theme(page) == "light"
    light_bg = page.locator(".ag-root-wrapper").evaluate("e => getComputedStyle(e).backgroundColor")
    save_screenshot(page, "shell-light")

    toggle.click()
    assert theme(page) == "dark"
    dark_bg = page.locator(".ag-root-wrapper").evaluate("e => getComputedStyle(e).backgroundColor")
    assert dark_bg != light_bg, "the grid did not follow the page into the dark theme"

    page.reload()
    expect(page.locator(".ag-row")).to_have_count(12)
    assert theme(page) == "dark"
    expect(toggle).to_have_attribute("aria-pressed", "true")
    save_screenshot(page, "shell-dark")

    toggle.click()
    page.reload()
    assert theme(page) == "light"


def test_theme_follows_system_preference_until_chosen(browser: Browser, gui_url: str) -> None:
    context = browser.new_context(color_scheme="dark")
    try:
        page = context.new_page()
        page.goto(gui_url)
        expect(page.locator("html")).to_have_attribute("data-theme", "dark")
        page.emulate_media(color_scheme="light")
        expect(page.locator("html")).to_have_attribute("data-theme", "light")
    finally:
        context.close()
