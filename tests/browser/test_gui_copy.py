"""Copying from the table: Ctrl+C puts the selected rows on the clipboard
tab-separated (a spreadsheet takes them as cells), or the focused cell alone; the cell
menu copies as text for a spreadsheet or as Markdown with the units the table shows,
in its own section, and the destructive "Delete variable…" sits apart."""

from __future__ import annotations

import pytest
from playwright.sync_api import Page, expect

from .gui_folder import GuiServer
from .gui_page import cell, open_table


@pytest.fixture
def clip(page: Page) -> Page:
    page.context.grant_permissions(["clipboard-read", "clipboard-write"])
    return page


def clipboard(page: Page) -> str:
    return page.evaluate("() => navigator.clipboard.readText()")


def test_ctrl_c_copies_the_selected_rows_tab_separated(
        clip: Page, table_server: GuiServer) -> None:
    open_table(clip, table_server)
    cell(clip, 2, "var:n_trains").click()
    cell(clip, 4, "var:n_trains").click(modifiers=["Shift"])
    clip.keyboard.press("Control+c")
    expect(clip.locator("#toast")).to_have_text("Copied 3 rows (tab-separated)")
    lines = clipboard(clip).splitlines()
    header = lines[0].split("\t")
    assert header[:4] == ["Run", "Timestamp", "Comment", "Trains"]
    rows = [line.split("\t") for line in lines[1:]]
    assert [r[0] for r in rows] == ["2", "3", "4"]
    assert rows[0][header.index("Trains")] == "674"
    # Numbers in full for the spreadsheet, pictures by name.
    assert float(rows[0][header.index("XGM/Pulse energy")]) == pytest.approx(1234.5678 / 2,
                                                                             rel=1e-15)
    assert rows[0][header.index("Detector/Image")] == "<thumbnail>"


def test_ctrl_c_on_one_cell_copies_that_cell(clip: Page, table_server: GuiServer) -> None:
    open_table(clip, table_server)
    cell(clip, 3, "var:sample").click()
    clip.keyboard.press("Control+c")
    expect(clip.locator("#toast")).to_have_text("Copied the cell")
    assert clipboard(clip) == "YAG"


def test_the_cell_menu_copies_as_markdown_with_units(
        clip: Page, table_server: GuiServer, save_screenshot) -> None:
    open_table(clip, table_server)
    cell(clip, 1, "run").click()
    cell(clip, 3, "run").click(modifiers=["Shift"])
    cell(clip, 2, "var:xgm_energy").click(button="right")
    menu = clip.locator(".cell-menu")
    expect(menu).to_be_visible()
    save_screenshot(clip, "cell-menu-sections")
    menu.get_by_role("menuitem", name="Copy 3 rows as Markdown").click()
    expect(clip.locator("#toast")).to_have_text("Copied 3 rows as Markdown")
    text = clipboard(clip)
    assert "| 617.2839 µJ |" in text, text
    assert text.splitlines()[2].startswith("| 1 |")


def test_delete_variable_is_set_apart_in_the_cell_menu(
        page: Page, table_server: GuiServer) -> None:
    open_table(page, table_server)
    cell(page, 2, "var:xgm_energy").click(button="right")
    expect(page.locator(".cell-menu")).to_be_visible()
    items = page.evaluate(
        "() => [...document.querySelectorAll('.cell-menu > *')]"
        ".map(e => e.tagName === 'HR' ? '---' : e.textContent)")
    assert "---" in items
    delete = next(i for i, t in enumerate(items) if t.startswith("Delete variable"))
    assert items[delete - 1] == "---", items
    assert delete == len(items) - 1
