"""More of the run table in a real browser against the real server: the dependency
chain of a skipped cell, provenance marks, the "contains" filter, user variables of each
type, following new runs (on and off), and complex-number columns."""

from __future__ import annotations

import io
import math
import re
import time
from collections.abc import Callable, Iterator

import pytest
from PIL import Image
from playwright.sync_api import Page, expect

from runtable.context import Cell, DependencyError, Results, Skip
from runtable.store import DatabaseFolder

from .gui_folder import PROPOSAL, VARIABLES, GuiServer, gui_server, make_folder, write_run
from .gui_page import cell, css, displayed_runs, edit_cell, has_class, open_filter

RUNS = range(1, 13)


def dependent_results(run: int) -> Results:
    """`ratio_sq` needs `ratio`: skipped with the chain where `ratio` failed (see
    run_results: errors on runs 6 and 12, skips on 3 and 9)."""
    if run % 6 == 0:
        error: BaseException = DependencyError({"ratio": ZeroDivisionError("division by zero")})
        return Results({}, {"ratio_sq": error})
    if run % 6 == 3:
        # What the executor records when the only failed dependency was skipped.
        from runtable.context.execution import dependency_skip

        skip = dependency_skip(DependencyError({"ratio": Skip("no beam in this run")}))
        return Results({}, {"ratio_sq": skip})
    return Results({"ratio_sq": Cell((run / 7) ** 2)}, {})


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[GuiServer]:
    """The standard folder plus: a dependent variable, a value from outside the context
    file (run 2's trains), and a user-editable column with a typed value (run 1)."""
    db_dir = make_folder(tmp_path_factory.mktemp("gui-more") / "db", RUNS)
    with DatabaseFolder(db_dir) as db:
        db.update_computed_variables({
            **VARIABLES,
            "ratio_sq": {"title": "Ratio squared", "description": "Needs ratio", "tags": []},
        })
        for run in RUNS:
            write_run(db, run, dependent_results(run))
        # A value sent by a script of the user's own (like the reference's submit()).
        external = Results({"n_trains": Cell(999)}, {}, provenance="manual_upload.py")
        db.merge_fragment(external.save(db.extracted_dir, PROPOSAL, 2))
        db.add_user_variable("operator", "string", title="Operator")
        db.set_user_value(PROPOSAL, 1, "operator", "Ada")
    with gui_server(db_dir) as running:
        yield running


def open_page(page: Page, server: GuiServer) -> None:
    """Open the GUI and wait for every run of the folder and the live connection."""
    with DatabaseFolder(server.db_dir, readonly=True) as db:
        rows = len(db.runs())
    page.goto(server.url)
    expect(page.locator("#status")).to_contain_text(f"{rows} runs")
    expect(page.locator("#connection")).to_have_attribute("data-state", "live")


def tooltip(page: Page, run: int, col: str) -> str:
    """What a person sees when hovering a cell: its title (browser tooltips)."""
    target = cell(page, run, col)
    target.hover()
    expect(target).to_have_attribute("title", re.compile("."))
    return target.get_attribute("title") or ""


def test_dependency_chain_on_hover(page: Page, server: GuiServer) -> None:
    open_page(page, server)
    failed = cell(page, 6, "var:ratio_sq")
    expect(failed).to_have_class(has_class("rt-error"))
    expect(failed).to_have_text("DependencyError")
    text = tooltip(page, 6, "var:ratio_sq")
    assert "(ratio) failed: ZeroDivisionError: division by zero" in text, text

    skipped = cell(page, 3, "var:ratio_sq")
    expect(skipped).to_have_class(has_class("rt-skip"))
    text = tooltip(page, 3, "var:ratio_sq")
    assert "(ratio) skipped: no beam in this run" in text, text
    # Said once, not "Skipped: Skipped due to …".
    assert text.count("Skipped") == 1, text
    expect(cell(page, 2, "var:ratio_sq")).to_have_text(f"{(2 / 7) ** 2:.4f}")


def test_provenance_marks(page: Page, server: GuiServer) -> None:
    open_page(page, server)
    external = cell(page, 2, "var:n_trains")
    expect(external).to_have_text("999")
    expect(external).to_have_class(has_class("rt-external"))
    assert "gradient" in css(external, "backgroundImage")
    assert "(not from the context file)" in tooltip(page, 2, "var:n_trains")
    from_context = cell(page, 3, "var:n_trains")
    expect(from_context).not_to_have_class(has_class("rt-external"))
    assert css(from_context, "backgroundImage") == "none"

    typed = cell(page, 1, "var:operator")
    expect(typed).to_have_text("Ada")
    expect(typed).to_have_class(has_class("rt-user-value"))
    assert "gradient" in css(typed, "backgroundImage")
    assert "(typed in)" in tooltip(page, 1, "var:operator")
    assert css(cell(page, 2, "var:operator"), "backgroundImage") == "none"

    # The mark is in the top right corner only: no stray bits at the other edges.
    for marked in (typed, external):
        page.mouse.move(1, 1)  # no hover shading
        shot = Image.open(io.BytesIO(marked.screenshot())).convert("RGB")
        width, height = shot.size
        mark = shot.getpixel((width - 2, 1))
        elsewhere = [shot.getpixel((x, y)) for x in range(width // 2)
                     for y in (0, 1, height - 2, height - 1)]
        elsewhere += [shot.getpixel((x, y)) for x in (0, 1) for y in range(height)]
        assert mark not in elsewhere, f"the corner colour {mark} also at the cell's edges"


def test_empty_cells_of_a_new_variable_say_that_reprocessing_fills_them(
        page: Page, server: GuiServer) -> None:
    with DatabaseFolder(server.db_dir) as db:
        db.update_computed_variables({"added_later": {"title": "Added later"}})
    open_page(page, server)
    empty = cell(page, 3, "var:added_later")
    expect(empty).to_have_class(has_class("rt-not-computed"))
    hint = tooltip(page, 3, "var:added_later")
    assert "Reprocess run 3" in hint and "added after the run was processed" in hint
    # Cells with a value or an error are not marked.
    expect(cell(page, 3, "var:n_trains")).not_to_have_class(has_class("rt-not-computed"))
    expect(cell(page, 6, "var:ratio")).not_to_have_class(has_class("rt-not-computed"))


def test_contains_filter(page: Page, server: GuiServer) -> None:
    open_page(page, server)
    open_filter(page, "var:sample")
    page.locator(".rt-filter input[name=text]").fill("FOIL")  # case does not matter
    page.keyboard.press("Escape")
    # Runs 13 and 14 (the follow test) may be there too: "Au foil" is in run 13.
    expected = [run for run in RUNS if run % 3 == 1 and run != 7]
    assert [r for r in displayed_runs(page) if r in RUNS] == expected
    assert all(r in (13, 14) for r in displayed_runs(page) if r not in RUNS)
    expect(page.locator("#status")).to_contain_text(re.compile(r"^\d of 1[234] runs"))
    chip = page.locator("#filter-chips .chip")
    expect(chip).to_have_text(re.compile('sample contains "FOIL"'))
    for run in expected:
        expect(cell(page, run, "var:sample")).to_have_text("Au foil")
    chip.click()
    expect(page.locator("#filter-bar")).to_be_hidden()
    assert [r for r in displayed_runs(page) if r in RUNS] == list(RUNS)


def create_variable(page: Page, title: str, kind: str) -> str:
    page.locator("#add-variable").click()
    page.locator("#var-title").fill(title)
    page.locator("#var-type").select_option(kind)
    page.locator("#variable-dialog button[type=submit]").click()
    expect(page.locator("#variable-dialog")).to_be_hidden()
    col = f"var:{title.lower().replace(' ', '_')}"
    # New columns come last, possibly off screen (not in the DOM until scrolled to).
    page.wait_for_function("id => window.runtable.grid.api.getColumn(id) !== null", arg=col)
    page.evaluate("id => window.runtable.grid.api.ensureColumnVisible(id)", col)
    expect(page.locator(f'.ag-header-cell[col-id="{col}"]')).to_have_count(1)
    return col


def stored(server: GuiServer, run: int, name: str, until: Callable[[object], bool]) -> object:
    """The stored value once ``until(value)`` holds (the cell shows typed text before
    the server has written it); the last value read after 10 s otherwise."""
    deadline = time.monotonic() + 10
    while True:
        with DatabaseFolder(server.db_dir, readonly=True) as db:
            value = db.get_value(PROPOSAL, run, name)
        if until(value) or time.monotonic() > deadline:
            return value
        time.sleep(0.05)


def test_user_variables_of_each_type(page: Page, server: GuiServer) -> None:
    open_page(page, server)
    # Integer: whole numbers only; the server's sentence and the typed text are shown.
    col = create_variable(page, "Shots", "integer")
    edit_cell(page, 4, col, "12")
    expect(cell(page, 4, col)).to_have_text("12")
    for bad in ("4.5", "abc"):
        edit_cell(page, 4, col, bad)
        toast = page.locator("#toast")
        # The cell named once, the value typed quoted, what the column takes.
        expect(toast).to_have_text(re.compile(
            rf"^Run 4, Shots: '{bad}' is not an integer \(this column takes .+\)$"))
        expect(cell(page, 4, col)).to_have_text("12")
        # The message lies over no row of the table (the newest is at the bottom).
        box = toast.bounding_box()
        assert box is not None
        for row in page.locator(".ag-row").all():
            other = row.bounding_box()
            if other is not None and other["height"] > 0:
                assert (box["y"] + box["height"] <= other["y"]
                        or other["y"] + other["height"] <= box["y"]), (box, other)
    assert stored(server, 4, "shots", lambda v: v == 12) == 12

    # Boolean: chosen from a list.
    col = create_variable(page, "Good run", "boolean")
    cell(page, 4, col).dblclick()
    page.locator(".ag-cell-editor .ag-picker-field-wrapper").click()
    page.locator(".ag-list-item", has_text="✓ yes").click()
    expect(cell(page, 4, col)).to_have_text("✓")
    expect(cell(page, 4, col).locator(".ag-cell-editor")).to_have_count(0)
    assert stored(server, 4, "good_run", lambda v: v in (True, 1)) in (True, 1)
    # Opened again, the editor starts on the cell's value; "no" replaces it.
    cell(page, 4, col).dblclick()
    expect(page.locator(".ag-cell-editing-error")).to_have_count(0)
    page.locator(".ag-cell-editor .ag-picker-field-wrapper").click()
    page.locator(".ag-list-item", has_text="✗ no").click()
    expect(cell(page, 4, col)).to_have_text("✗")
    assert stored(server, 4, "good_run", lambda v: v in (False, 0)) in (False, 0)

    # String: any text, kept as typed.
    col = create_variable(page, "Remark", "string")
    edit_cell(page, 4, col, "beam 4.5 mm off")
    expect(cell(page, 4, col)).to_have_text("beam 4.5 mm off")
    assert stored(server, 4, "remark", lambda v: v == "beam 4.5 mm off") == "beam 4.5 mm off"


def test_follow_new_runs_off_and_on(page: Page, server: GuiServer) -> None:
    page.set_viewport_size({"width": 1280, "height": 400})  # new runs arrive off screen
    open_page(page, server)
    follow = page.locator("#follow")
    follow.uncheck()
    page.evaluate("() => window.runtable.grid.api.ensureIndexVisible(0, 'top')")
    server.add_run(13)
    expect(page.locator("#status")).to_contain_text("13 runs")
    assert displayed_runs(page)[-1] == 13
    page.wait_for_timeout(300)  # give a (wrong) scroll the time to happen
    expect(page.locator('.ag-row[row-id="1"]')).to_be_in_viewport()
    expect(page.locator('.ag-row[row-id="13"]')).not_to_be_in_viewport()

    # On again: it scrolls to the newest at once, and to each new run as it comes
    # (test_gui_follow.py: but never away from older runs someone scrolled up to).
    follow.check()
    expect(page.locator('.ag-row[row-id="13"]')).to_be_in_viewport()
    server.add_run(14)
    expect(page.locator('.ag-row[row-id="14"]')).to_be_in_viewport()
    expect(page.locator('.ag-row[row-id="1"]')).not_to_be_in_viewport()


def phase_text(run: int) -> str:
    """The phase column's text for a run of the standard folder (cos - i sin)."""
    re_, im = math.cos(run), -math.sin(run)
    return f"{re_:.4f}{'-' if im < 0 else '+'}{abs(im):.4f}j"


def test_complex_column_sorts_and_filters(page: Page, server: GuiServer) -> None:
    open_page(page, server)
    runs = [r for r in displayed_runs(page) if r in RUNS]
    header = page.locator('.ag-header-cell[col-id="var:phase"] .ag-header-cell-label')
    page.evaluate("() => window.runtable.grid.api.ensureColumnVisible('var:phase')")
    header.click()
    # By real part, then imaginary part (numpy's order), not as text.
    by_value = sorted(runs, key=lambda r: (math.cos(r), -math.sin(r)))
    assert [r for r in displayed_runs(page) if r in RUNS] == by_value
    header.click()
    assert [r for r in displayed_runs(page) if r in RUNS] == by_value[::-1]

    # "Contains" matches the text shown in the cells.
    open_filter(page, "var:phase")
    page.locator(".rt-filter input[name=text]").fill("-0.9")
    expected = [r for r in by_value[::-1] if "-0.9" in phase_text(r)]
    assert expected, "the folder has no phase with -0.9 in it"
    # (The follow test may have added runs 13 and 14 to this module's folder.)
    assert [r for r in displayed_runs(page) if r in RUNS] == expected
    page.locator(".rt-filter button", has_text="Clear filter").click()

    # The list of choices offers the values as shown, and filters by them.
    labels = page.locator(".rt-filter-choices label").all_inner_texts()
    assert f"{phase_text(1)} (1)" in labels, labels
    page.locator(".rt-filter-choices label", has_text=phase_text(1)).locator("input").uncheck()
    page.keyboard.press("Escape")
    assert 1 not in displayed_runs(page)
    assert len([r for r in displayed_runs(page) if r in RUNS]) == len(runs) - 1
    page.locator("#clear-filters").click()

