"""The GUI's shell in a real browser: the page without a table, the theme toggle."""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path

from playwright.sync_api import Browser, Page, expect

from .gui_folder import GuiServer
from .gui_page import css, open_table

Screenshot = Callable[[Page, str], Path]


def theme(page: Page) -> str | None:
    return page.evaluate("document.documentElement.dataset.theme")


def test_page_without_table_route_says_so(
    page: Page, gui_url: str, save_screenshot: Screenshot
) -> None:
    page.goto(gui_url)
    expect(page).to_have_title("runtable")
    # Times in the browser's own zone (no server to name the folder's), and it says so.
    headers = ["Run", "Plot", re.compile(r"^Timestamp \(.+\)$"), "Comment"]
    expect(page.locator(".ag-header-cell-text")).to_have_text(headers)
    expect(page.locator("#status")).to_have_text("this server has no run table")
    # No WebSocket on this server: the page says live updates are off.
    expect(page.locator("#connection")).to_have_attribute("data-state", "offline")
    save_screenshot(page, "shell-no-table-endpoint")


def test_theme_toggle_switches_and_persists(page: Page, table_server: GuiServer) -> None:
    open_table(page, table_server)
    toggle = page.locator("#theme-toggle")
    assert theme(page) == "light"
    light_bg = css(page.locator(".ag-root-wrapper"), "backgroundColor")

    toggle.click()
    assert theme(page) == "dark"
    dark_bg = css(page.locator(".ag-root-wrapper"), "backgroundColor")
    assert dark_bg != light_bg, "the grid did not follow the page into the dark theme"

    page.reload()
    expect(page.locator(".ag-row").first).to_be_visible()
    assert theme(page) == "dark"
    expect(toggle).to_have_attribute("aria-pressed", "true")

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
