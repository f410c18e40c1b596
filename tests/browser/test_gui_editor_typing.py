"""Typing in the context-file editor as a person does (real key presses, so the
editor's auto-indent, bracket closing and completion act): a new variable typed at the
end of the file lands at module level, Tab and Shift+Tab indent inside the editor, the
file's own indent unit is used, triple quotes close once, `var#` names complete, a
nested `@Variable` is warned about, and the "On disk" line follows a save."""

from __future__ import annotations

import re
import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Page, expect

from .gui_folder import GuiServer, gui_server, make_folder
from .gui_page import open_table

#: Checking runs the text in a child process: seconds on a loaded machine.
SLOW = 60_000

CONTEXT = textwrap.dedent('''\
    from runtable.context import Variable


    @Variable(title="Answer")
    def answer(run):
        return 42
''')


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[GuiServer]:
    db_dir = make_folder(tmp_path_factory.mktemp("typing") / "db", range(1, 4))
    with gui_server(db_dir) as served:
        yield served


@pytest.fixture
def context(server: GuiServer) -> Path:
    """The context file, reset for each test."""
    path = server.db_dir / "context.py"
    path.write_text(CONTEXT)
    return path


def open_editor(page: Page, server: GuiServer) -> None:
    open_table(page, server, rows=3)
    page.get_by_role("button", name="Context file", exact=True).click()
    expect(page.locator(".ed-tab .cm-content")).to_contain_text("def answer(run):")
    expect(page.locator(".ed-service")).to_have_text("On disk: loads, 1 variable",
                                                     timeout=SLOW)


def editor_text(page: Page) -> str:
    """The editor's text (its lines as drawn: the files here fit on the screen)."""
    return page.evaluate("() => [...document.querySelectorAll('.ed-tab .cm-content .cm-line')]"
                         ".map(l => l.textContent).join('\\n')")


def focus_end(page: Page) -> None:
    page.locator(".ed-tab .cm-content").click()
    page.keyboard.press("Control+End")


def test_a_variable_typed_after_the_last_function_lands_at_module_level(
        page: Page, server: GuiServer, context: Path, save_screenshot) -> None:
    open_editor(page, server)
    focus_end(page)
    # At the end of the last function's "return 42": a blank line, then a new
    # variable, typed key by key.
    page.keyboard.press("ArrowUp")
    page.keyboard.press("End")
    page.keyboard.press("Enter")
    page.keyboard.press("Enter")
    page.keyboard.type('@Variable(title="Doubled")')
    page.keyboard.press("Enter")
    page.keyboard.type('def doubled(run, a: "var#answer"):')
    page.keyboard.press("Enter")
    page.keyboard.type("return 2 * a")
    assert editor_text(page).endswith(
        '    return 42\n\n@Variable(title="Doubled")\n'
        'def doubled(run, a: "var#answer"):\n    return 2 * a\n')
    page.get_by_role("button", name="Check", exact=True).click()
    expect(page.locator(".ed-status")).to_have_text("Check passed: 2 variables", timeout=SLOW)
    save_screenshot(page, "editor-typed-variable")


def test_tab_and_shift_tab_indent_in_the_editor_and_escape_tab_leaves_it(
        page: Page, server: GuiServer, context: Path) -> None:
    context.write_text(CONTEXT + "\nvalue = 1\n")
    open_editor(page, server)
    focus_end(page)
    page.keyboard.press("ArrowUp")  # on "value = 1"
    page.keyboard.press("Home")
    page.keyboard.press("Tab")
    assert "\n    value = 1\n" in editor_text(page)
    # Focus stays in the editor: the next key types there, not on a toolbar button.
    assert page.evaluate("() => document.activeElement.closest('.cm-editor') !== null")
    page.keyboard.press("Shift+Tab")
    assert "\nvalue = 1\n" in editor_text(page)
    assert page.evaluate("() => document.activeElement.closest('.cm-editor') !== null")
    # The keyboard way out: Escape, then Tab.
    page.keyboard.press("Escape")
    page.keyboard.press("Tab")
    assert page.evaluate("() => document.activeElement.closest('.cm-editor') === null")
    assert "\nvalue = 1\n" in editor_text(page)


def test_the_indent_unit_is_the_files_own(page: Page, server: GuiServer,
                                          context: Path) -> None:
    two = CONTEXT.replace("    return 42", "  return 42")
    context.write_text(two + "\n\ndef helper(x):\n  if x:\n    pass\n")
    open_editor(page, server)
    focus_end(page)
    for _ in range(2):
        page.keyboard.press("ArrowUp")
    page.keyboard.press("End")  # after "  if x:"
    page.keyboard.press("Enter")
    page.keyboard.type("x += 1")
    assert editor_text(page).endswith("  if x:\n    x += 1\n    pass\n")


def test_a_file_with_four_space_indents_gets_four(page: Page, server: GuiServer,
                                                  context: Path) -> None:
    context.write_text(CONTEXT + "\n\ndef helper(x):\n    pass\n")
    open_editor(page, server)
    focus_end(page)
    for _ in range(2):
        page.keyboard.press("ArrowUp")
    page.keyboard.press("End")  # after "def helper(x):"
    page.keyboard.press("Enter")
    page.keyboard.type("x += 1")
    assert editor_text(page).endswith("def helper(x):\n    x += 1\n    pass\n")


def test_typing_a_docstring_closes_its_triple_quotes_once(
        page: Page, server: GuiServer, context: Path) -> None:
    open_editor(page, server)
    focus_end(page)
    page.keyboard.press("Enter")
    page.keyboard.type("def more(run):")
    page.keyboard.press("Enter")
    page.keyboard.type('"""First line.')
    page.keyboard.press("Enter")
    page.keyboard.type('Second line."""')
    page.keyboard.press("Enter")
    page.keyboard.type("return 1")
    assert editor_text(page).endswith(
        '\n\ndef more(run):\n    """First line.\n    Second line."""\n    return 1')


def test_var_annotations_complete_the_contexts_variable_names(
        page: Page, server: GuiServer, context: Path) -> None:
    open_editor(page, server)
    focus_end(page)
    page.keyboard.press("Enter")
    page.keyboard.type('def more(run, a: "var#ans')
    option = page.locator(".cm-tooltip-autocomplete li", has_text="answer")
    expect(option).to_be_visible()
    option.click()
    assert 'def more(run, a: "var#answer")' in editor_text(page)


def test_check_warns_about_a_variable_inside_a_function_and_unreachable_code(
        page: Page, server: GuiServer, context: Path, save_screenshot) -> None:
    open_editor(page, server)
    focus_end(page)
    # What auto-indent used to produce: the new variable inside the last function.
    page.keyboard.insert_text(
        '\n    @Variable(title="Lost")\n    def lost(run):\n        return 1\n')
    page.get_by_role("button", name="Check", exact=True).click()
    warnings = page.locator(".ed-problem.ed-warning")
    expect(warnings.first).to_be_visible(timeout=SLOW)
    texts = warnings.all_text_contents()
    assert any(re.search(r"lost.*inside the function 'answer'.*not a column", t)
               for t in texts), texts
    assert any("unreachable" in t.lower() for t in texts), texts
    save_screenshot(page, "editor-nested-variable-warning")


def test_after_a_save_the_on_disk_line_counts_the_new_variables(
        page: Page, server: GuiServer, context: Path) -> None:
    open_editor(page, server)
    focus_end(page)
    page.keyboard.insert_text('\n\n@Variable(title="Two")\ndef two(run):\n    return 2\n')
    page.keyboard.press("Control+s")
    expect(page.locator("#toast")).to_contain_text("Context file saved", timeout=SLOW)
    expect(page.locator(".ed-service")).to_have_text("On disk: loads, 2 variables")


def test_the_comparisons_folded_lines_bar_uses_no_missing_glyphs(
        page: Page, server: GuiServer, context: Path, save_screenshot) -> None:
    context.write_text(CONTEXT + "".join(f"\nvalue_{i} = {i}" for i in range(20)) + "\n")
    open_editor(page, server)
    focus_end(page)
    page.keyboard.insert_text("last = 1\n")
    page.keyboard.press("Control+s")
    expect(page.locator("#toast")).to_contain_text("Context file saved", timeout=SLOW)
    page.get_by_role("button", name="History", exact=True).click()
    # Newest first: this save, then the text on disk before it (20 lines alike).
    page.locator(".ed-history-row").nth(1).click()
    folded = page.locator("dialog.ed-version .cm-collapsedLines").first
    expect(folded).to_contain_text("unchanged lines")
    for side in ("::before", "::after"):
        content = folded.evaluate(f"e => getComputedStyle(e, '{side}').content")
        # "⦚" is in few fonts: it showed as an empty box.
        assert "⦚" not in content, content
    save_screenshot(page, "editor-history-folded")
