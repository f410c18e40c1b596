"""The tab bar with many tabs: tabs shrink, then scroll; the status, "Follow new runs"
and every tab's ✕ stay usable; a tab's menu closes the others. Open previews, plots,
the editor and logs come back after a reload."""

from __future__ import annotations

from playwright.sync_api import Page, expect

from .gui_folder import GuiServer
from .gui_page import cell, new_plot, open_table

COLUMNS = ["var:n_trains", "var:xgm_energy", "var:xgm_flux", "var:sample", "var:det_image",
           "var:det_trend", "var:status", "var:ratio", "var:phase"]


def open_previews(page: Page, count: int) -> None:
    """Double-click cells: each opens its data in a tab of its own."""
    opened = 0
    for run in (1, 2):
        for col in COLUMNS:
            if opened == count:
                return
            cell(page, run, col).dblclick()
            opened += 1
            expect(page.locator(".tab[data-tab]")).to_have_count(opened)
            page.locator("#tab-table").click()


def test_many_tabs_never_cover_the_status_or_each_other(
        wide_page: Page, table_server: GuiServer, save_screenshot) -> None:
    open_table(wide_page, table_server)
    open_previews(wide_page, 12)
    save_screenshot(wide_page, "tabs-many")
    status = wide_page.locator("#status")
    expect(status).to_contain_text("12 runs")
    # The status is whole (not cut with an ellipsis), and no tab lies over it.
    assert status.evaluate("e => e.scrollWidth <= e.clientWidth")
    end = wide_page.locator("#tab-end").bounding_box()
    tabs = wide_page.locator("#tab-list")
    shown = tabs.bounding_box()
    assert end is not None and shown is not None
    # The tabs are drawn only inside their own strip (it scrolls), left of the status.
    assert tabs.evaluate("e => getComputedStyle(e).overflowX") in ("auto", "scroll", "hidden")
    assert shown["x"] + shown["width"] <= end["x"] + 1
    assert tabs.evaluate("e => e.scrollWidth > e.clientWidth"), "12 tabs should scroll"
    # The Table tab keeps its whole name.
    table = wide_page.locator("#tab-table")
    assert table.evaluate("e => e.scrollWidth <= e.clientWidth")
    expect(table).to_have_text("Table")
    # "Follow new runs" takes its own clicks.
    follow = wide_page.locator("#follow")
    follow.uncheck()
    expect(follow).not_to_be_checked()
    follow.check()
    # The last tab's ✕ can be clicked (it is scrolled to, and nothing lies over it).
    last = wide_page.locator(".tab[data-tab]").last
    last.locator(".tab-close").click()
    expect(wide_page.locator(".tab[data-tab]")).to_have_count(11)


def test_close_all_other_tabs_from_a_tabs_menu(page: Page, table_server: GuiServer) -> None:
    open_table(page, table_server)
    open_previews(page, 4)
    keep = page.locator(".tab[data-tab]").nth(1)
    name = keep.get_attribute("data-tab")
    keep.click(button="right")
    page.get_by_role("menuitem", name="Close all others").click()
    expect(page.locator(".tab[data-tab]")).to_have_count(1)
    expect(page.locator(".tab[data-tab]")).to_have_attribute("data-tab", name or "")


def test_open_tabs_come_back_after_a_reload(page: Page, table_server: GuiServer,
                                            save_screenshot) -> None:
    open_table(page, table_server)
    cell(page, 3, "var:det_image").dblclick()
    new_plot(page, "summary", "Trains", "XGM/Pulse energy")
    page.get_by_role("button", name="Context file", exact=True).click()
    expect(page.locator(".ed-tab .cm-content")).to_be_visible()
    # The plot is the one on show when the page reloads.
    page.locator(".tab[data-tab^='plot:'] .tab-label").click()
    titles = page.locator(".tab[data-tab] .tab-label").all_inner_texts()
    assert len(titles) == 3

    page.reload()
    open_table(page, table_server)
    expect(page.locator(".tab[data-tab] .tab-label")).to_have_text(titles)
    expect(page.locator(".tab[data-tab^='plot:']")).to_have_attribute("aria-selected", "true")
    expect(page.locator(".tab-panel:not([hidden]) .rt-plot-graph .main-svg").first).to_be_visible()
    page.locator(".tab[data-tab^='preview:']").click()
    expect(page.locator(".tab-panel:not([hidden])")).to_contain_text("Detector/Image")
    save_screenshot(page, "tabs-restored")

    # Closed tabs stay closed.
    page.locator(".tab[data-tab^='preview:'] .tab-close").click()
    page.reload()
    open_table(page, table_server)
    expect(page.locator(".tab[data-tab]")).to_have_count(2)
