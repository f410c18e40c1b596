"""The numeric filter: a histogram of the column's values with a two-handled range
slider, exact bounds, a checklist of the values when there are few, and a choice
about runs without a number (empty, NaN)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from playwright.sync_api import Page, expect

from runtable.context import Results

from .gui_folder import GuiServer, gui_server, make_folder, run_results
from .gui_page import displayed_runs, open_filter, open_table

#: Trains per run in the standard folder: 600 + 37 * run.
TRAINS = {run: 600 + 37 * run for run in range(1, 13)}


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[GuiServer]:
    db_dir = make_folder(tmp_path_factory.mktemp("filters") / "db", range(1, 13))
    with gui_server(db_dir) as served:
        # Run 13 has no train count (empty).
        cells = dict(run_results(13).cells)
        del cells["n_trains"]
        served.add_run(13, Results(cells, {}))
        yield served


def test_a_range_slider_over_the_distribution_filters_numbers(
        wide_page: Page, server: GuiServer, save_screenshot) -> None:
    open_table(wide_page, server, rows=13)
    open_filter(wide_page, "var:n_trains")
    bars = wide_page.locator(".rt-filter-hist rect")
    expect(bars.first).to_be_attached()
    assert bars.count() >= 10
    # The lower handle to 800 trains: runs 6 (822) and up stay.
    wide_page.locator(".rt-filter input[name=min-slider]").fill("800")
    assert displayed_runs(wide_page) == [r for r, n in TRAINS.items() if n >= 800]
    expect(wide_page.locator(".rt-filter input[name=min]")).to_have_value("800")
    # Bars below the range are dimmed.
    assert wide_page.locator(".rt-filter-hist rect.out").count() > 0
    save_screenshot(wide_page, "filter-numeric")
    # The exact bound typed in moves the handle too.
    wide_page.locator(".rt-filter input[name=max]").fill("900")
    assert displayed_runs(wide_page) == [r for r, n in TRAINS.items() if 800 <= n <= 900]
    expect(wide_page.locator(".rt-filter input[name=max-slider]")).to_have_value("900")
    expect(wide_page.locator("#filter-chips")).to_contain_text("n_trains in 800..900")


def test_a_checklist_of_values_and_runs_without_a_number(
        wide_page: Page, server: GuiServer) -> None:
    open_table(wide_page, server, rows=13)
    open_filter(wide_page, "var:n_trains")
    choices = wide_page.locator(".rt-filter-choices label")
    expect(choices).to_have_count(12)
    expect(choices.first).to_contain_text("637 (1)")
    choices.filter(has_text="674").locator("input").uncheck()
    assert 2 not in displayed_runs(wide_page)
    assert 13 not in displayed_runs(wide_page)  # no number: left out by default
    wide_page.locator(".rt-filter input[name=keepEmpty]").check()
    assert 13 in displayed_runs(wide_page) and 2 not in displayed_runs(wide_page)
    expect(wide_page.locator("#filter-chips")).to_contain_text("or n_trains is missing")


def test_the_timestamp_checklist_shows_times_not_seconds(
        wide_page: Page, server: GuiServer) -> None:
    open_table(wide_page, server, rows=13)
    open_filter(wide_page, "timestamp")
    first = wide_page.locator(".rt-filter-choices label").first
    expect(first).to_contain_text("2026-")
