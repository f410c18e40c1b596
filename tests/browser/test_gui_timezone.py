"""One time convention everywhere: the GUI, its exports, `runtable table`/`export` and
`Database.table()` show run times in the folder's `timezone` setting (the facility's,
Europe/Berlin, by default), whatever zone the browser is in, and say which zone."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from playwright.sync_api import Page, expect

from runtable.api import Database
from runtable.store import DatabaseFolder
from runtable.tableview import export_table, print_table

from .conftest import save_screenshot
from .gui_folder import T0, GuiServer, gui_server, make_folder
from .gui_page import cell, open_table


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[GuiServer]:
    db_dir = make_folder(tmp_path_factory.mktemp("zones") / "db", range(1, 4))
    with gui_server(db_dir) as served:
        yield served


@pytest.fixture
def zone_setting(server: GuiServer) -> Iterator[None]:
    yield
    with DatabaseFolder(server.db_dir) as db:
        db.delete_setting("timezone")


def wall_clock(run: int, zone: str) -> str:
    return datetime.fromtimestamp(T0 + 420 * run, ZoneInfo(zone)).strftime("%Y-%m-%d %H:%M:%S")


def test_the_gui_shows_the_facilitys_time_and_names_the_zone(
        far_page: Page, server: GuiServer) -> None:
    open_table(far_page, server, rows=3)
    expect(cell(far_page, 1, "timestamp")).to_have_text(wall_clock(1, "Europe/Berlin"))
    assert wall_clock(1, "Europe/Berlin") != wall_clock(1, "America/New_York")
    header = far_page.locator('.ag-header-cell[col-id="timestamp"]')
    expect(header).to_contain_text("Europe/Berlin")
    save_screenshot(far_page, "timestamp-zone-header")


def test_the_guis_csv_has_the_times_runtable_export_writes(
        far_page: Page, server: GuiServer, tmp_path: Path) -> None:
    open_table(far_page, server, rows=3)
    far_page.locator("#export-button").click()
    with far_page.expect_download() as info:
        far_page.locator('[data-export="csv"]').click()
    gui = list(csv.DictReader(io.StringIO(info.value.path().read_text(encoding="utf-8"))))
    export_table(server.db_dir, tmp_path / "cli.csv", "csv", with_titles=True)
    cli = list(csv.DictReader(io.StringIO((tmp_path / "cli.csv").read_text())))
    assert [r["Timestamp"] for r in gui] == [r["Timestamp"] for r in cli]
    berlin = datetime.fromtimestamp(T0 + 420, ZoneInfo("Europe/Berlin"))
    assert gui[0]["Timestamp"] == berlin.isoformat(sep=" ")  # "... 16:07:00+02:00"


def test_the_timezone_setting_changes_every_view_alike(
        far_page: Page, server: GuiServer, zone_setting: None, capsys) -> None:
    with DatabaseFolder(server.db_dir) as db:
        db.set_setting("timezone", "UTC")
    open_table(far_page, server, rows=3)
    expect(cell(far_page, 2, "timestamp")).to_have_text(wall_clock(2, "UTC"))
    expect(far_page.locator('.ag-header-cell[col-id="timestamp"]')).to_contain_text("UTC")

    with Database(server.db_dir, cache=False) as db:
        table = db.table().set_index("run")
    assert str(table["start_time"].dt.tz) == "UTC"
    assert table.loc[2, "start_time"].strftime("%Y-%m-%d %H:%M:%S") == wall_clock(2, "UTC")

    print_table(server.db_dir, with_titles=True)
    out = capsys.readouterr().out
    assert "times in UTC" in out
    assert wall_clock(2, "UTC") in out
