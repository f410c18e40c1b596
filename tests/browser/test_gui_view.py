"""Column management, filters, sort, jump and export in a real browser against the real
server: what a person arranges stays so after a reload."""

from __future__ import annotations

import csv
import io
import re
import zipfile

import openpyxl
from playwright.sync_api import Page, expect

from .gui_folder import GuiServer
from .gui_page import cell, displayed_runs, header_texts, open_filter, open_table


def test_sort_and_filter_by_range_category_and_state(page: Page, table_server: GuiServer) -> None:
    open_table(page, table_server)
    # Sort: clicking a header sorts by it; again reverses.
    page.locator('.ag-header-cell[col-id="var:n_trains"] .ag-header-cell-label').click()
    page.locator('.ag-header-cell[col-id="var:n_trains"] .ag-header-cell-label').click()
    assert displayed_runs(page)[:3] == [12, 11, 10]

    # Numeric range.
    open_filter(page, "var:n_trains")
    page.locator(".rt-filter input[name=min]").fill("700")
    page.locator(".rt-filter input[name=max]").fill("900")
    expect(page.locator("#status")).to_have_text(re.compile(r"^6 of 12 runs"))
    assert displayed_runs(page) == [8, 7, 6, 5, 4, 3]
    page.keyboard.press("Escape")
    chips = page.locator("#filter-chips .chip")
    expect(chips).to_have_count(1)
    expect(chips.first).to_contain_text("Trains: ≥ 700, ≤ 900")

    # Categorical choices on a text column.
    open_filter(page, "var:sample")
    page.locator(".rt-filter-choices label", has_text="YAG").locator("input").uncheck()
    page.keyboard.press("Escape")
    assert displayed_runs(page) == [8, 7, 5, 4]
    expect(chips).to_have_count(2)

    # Clear one, then all.
    chips.filter(has_text="Trains").click()
    expect(chips).to_have_count(1)
    page.locator("#clear-filters").click()
    expect(page.locator("#filter-bar")).to_be_hidden()
    assert len(displayed_runs(page)) == 12

    # "Error or skipped" finds the failing cells.
    open_filter(page, "var:ratio")
    page.locator(".rt-filter select[name=presence]").select_option("error")
    page.keyboard.press("Escape")
    assert sorted(displayed_runs(page)) == [3, 6, 9, 12]
    page.locator("#clear-filters").click()


def test_hide_reorder_resize_survive_reload(page: Page, table_server: GuiServer) -> None:
    open_table(page, table_server)
    # Hide "Status" from the searchable list.
    page.locator("#columns-button").click()
    page.locator("#column-search").fill("stat")
    boxes = page.locator("#column-list input[type=checkbox]")
    expect(boxes).to_have_count(1)
    boxes.first.uncheck()
    assert "Status" not in header_texts(page)
    page.locator("#columns-button").click()  # close the panel: the grid gets wider

    # Move "Sample" to the left of "Trains" by dragging its header.
    source = page.locator('.ag-header-cell[col-id="var:sample"] .ag-header-cell-label')
    target = page.locator('.ag-header-cell[col-id="var:n_trains"]')
    drag(page, source, target)
    order = header_texts(page)
    assert order.index("Sample") < order.index("Trains"), order

    # Resize "Comment" by its edge.
    before = column_width(page, "comment")
    handle = page.locator('.ag-header-cell[col-id="comment"] .ag-header-cell-resize')
    box = handle.bounding_box()
    assert box is not None
    page.mouse.move(box["x"] + box["width"] / 2, box["y"] + box["height"] / 2)
    page.mouse.down()
    page.mouse.move(box["x"] + 80, box["y"] + box["height"] / 2, steps=8)
    page.mouse.up()
    after = column_width(page, "comment")
    assert after > before + 40

    page.reload()
    open_table(page, table_server, rows=len(displayed_runs(page)) or 12)
    order = header_texts(page)
    assert "Status" not in order
    assert order.index("Sample") < order.index("Trains"), order
    assert abs(column_width(page, "comment") - after) <= 2

    # Show it again (and leave the view as it was for other tests).
    page.locator("#columns-button").click()
    page.locator("#column-search").fill("stat")
    page.locator("#column-list input[type=checkbox]").first.check()
    assert "Status" in header_texts(page)


def test_tag_filter_and_flat_headers(page: Page, table_server: GuiServer) -> None:
    open_table(page, table_server)
    page.locator("#columns-button").click()
    page.locator("#tag-filter label", has_text="xgm").locator("input").check()
    variables = [h for h in header_texts(page) if h not in ("Run", "Timestamp", "Comment")]
    assert variables == ["XGM/Pulse energy", "XGM/Photon flux"]
    page.locator("#tag-filter label", has_text="xgm").locator("input").uncheck()
    assert "Trains" in header_texts(page)

    # Flat headers: the full title in one header row.
    energy_header = page.locator('.ag-header-cell[col-id="var:xgm_energy"] .ag-header-cell-text')
    page.locator("#hierarchical").uncheck()
    expect(energy_header).to_have_text("XGM/Pulse energy")
    expect(page.locator(".ag-header-group-text", has_text="XGM")).to_have_count(0)
    page.reload()
    expect(energy_header).to_have_text("XGM/Pulse energy")
    page.locator("#columns-button").click()
    page.locator("#hierarchical").check()
    expect(page.locator(".ag-header-group-text", has_text="XGM")).to_have_count(1)


def test_jump_to_run(page: Page, table_server: GuiServer) -> None:
    page.set_viewport_size({"width": 1280, "height": 360})
    open_table(page, table_server)
    page.locator("#follow").uncheck()
    page.evaluate("() => window.runtable.grid.api.ensureIndexVisible(0, 'top')")
    page.locator("#jump-run").fill("11")
    page.locator("#jump-run").press("Enter")
    row = page.locator('.ag-row[row-id="11"]')
    expect(row).to_be_in_viewport()
    expect(row).to_have_class(re.compile("ag-row-selected"))
    page.locator("#jump-run").fill("999")
    page.locator("#jump-run").press("Enter")
    expect(page.locator("#toast")).to_have_text("There is no run 999 in this table")
    page.locator("#follow").check()


def test_export_csv_xlsx_markdown_of_the_visible_table(page: Page, table_server: GuiServer) -> None:
    open_table(page, table_server)
    open_filter(page, "var:n_trains")
    page.locator(".rt-filter input[name=max]").fill("750")
    page.keyboard.press("Escape")
    runs = displayed_runs(page)
    assert runs == [1, 2, 3, 4]

    page.locator("#export-button").click()
    with page.expect_download() as info:
        page.locator('[data-export="csv"]').click()
    download = info.value
    assert download.suggested_filename.endswith(".csv")
    rows = list(csv.reader(io.StringIO(download.path().read_text(encoding="utf-8"))))
    header = rows[0]
    assert header[:4] == ["Run", "Timestamp", "Comment", "Trains"]
    assert [int(r[0]) for r in rows[1:]] == runs
    assert rows[1][header.index("XGM/Pulse energy")] == "1234.5678000000003"
    assert rows[1][header.index("Detector/Image")] == "<thumbnail>"
    assert rows[2][header.index("XGM/Photon flux")] != ""

    page.locator("#export-button").click()
    with page.expect_download() as info:
        page.locator('[data-export="xlsx"]').click()
    assert info.value.suggested_filename.endswith(".xlsx")
    with zipfile.ZipFile(info.value.path()) as book:
        assert book.testzip() is None
    # Read back by a real spreadsheet reader: numbers stay numbers.
    sheet = openpyxl.load_workbook(io.BytesIO(info.value.path().read_bytes())).active
    values = list(sheet.iter_rows(values_only=True))
    assert len(values) == 1 + len(runs)
    header = list(values[0])
    assert header[:4] == ["Run", "Timestamp", "Comment", "Trains"]
    assert [r[0] for r in values[1:]] == runs
    assert values[1][header.index("Trains")] == 637
    assert values[1][header.index("Detector/Image")] == "<thumbnail>"

    page.locator("#export-button").click()
    with page.expect_download() as info:
        page.locator('[data-export="md"]').click()
    markdown = info.value.path().read_text(encoding="utf-8").splitlines()
    assert markdown[0].startswith("| Run | Timestamp | Comment | Trains |")
    assert len(markdown) == 2 + len(runs)
    assert "| 1234.5678 µJ |" in markdown[2]  # the text as shown, units too
    page.locator("#clear-filters").click()


def test_copy_selected_rows_as_markdown(page: Page, table_server: GuiServer) -> None:
    page.context.grant_permissions(["clipboard-read", "clipboard-write"])
    open_table(page, table_server)
    cell(page, 2, "run").click()
    cell(page, 4, "run").click(modifiers=["Control"])
    page.locator("#export-button").click()
    page.locator('[data-export="copy"]').click()
    expect(page.locator("#toast")).to_have_text("Copied 2 rows as Markdown")
    text = page.evaluate("() => navigator.clipboard.readText()")
    lines = text.splitlines()
    assert len(lines) == 4
    assert lines[2].startswith("| 2 |") and lines[3].startswith("| 4 |")


def drag(page: Page, source, target) -> None:
    """Drag with intermediate mouse moves (AG Grid starts a drag after a few pixels)."""
    a = source.bounding_box()
    b = target.bounding_box()
    assert a is not None and b is not None
    page.mouse.move(a["x"] + a["width"] / 2, a["y"] + a["height"] / 2)
    page.mouse.down()
    page.mouse.move(a["x"] + a["width"] / 2 - 10, a["y"] + a["height"] / 2, steps=5)
    page.mouse.move(b["x"] + 10, b["y"] + b["height"] / 2, steps=20)
    page.wait_for_timeout(300)  # AG Grid moves columns after hovering a moment
    page.mouse.move(b["x"] + 5, b["y"] + b["height"] / 2, steps=5)
    page.mouse.up()


def column_width(page: Page, col_id: str) -> float:
    return page.evaluate("id => window.runtable.grid.api.getColumn(id).getActualWidth()", col_id)
