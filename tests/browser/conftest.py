"""Browser-test harness: one headless Chromium per test module, a fresh page per test,
the GUI served over HTTP on a free local port, screenshots saved as artifacts.

Chromium is the system's own (`chromium` on PATH, or `RUNTABLE_CHROMIUM`); Playwright's
browser download is not used. Tests using `browser`/`page` are skipped when there is none.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager
from pathlib import Path

import pytest
from fastapi import FastAPI
from playwright.sync_api import Browser, BrowserContext, Page, Playwright, sync_playwright

from runtable.server.frontend import mount_frontend, static_dir
from runtable.testing.browser import CHROMIUM_ARGS, find_chromium
from runtable.testing.server_thread import serve_in_thread

ROOT = Path(__file__).resolve().parents[2]
SCREENSHOTS = Path(os.environ.get("RUNTABLE_ARTIFACTS", ROOT / "artifacts")) / "screenshots"

VIEWPORT = {"width": 1280, "height": 720}
WIDE_VIEWPORT = {"width": 1600, "height": 900}


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]):
    """Remember each phase's report on the test item, so `page` can tell a failure."""
    report = yield
    setattr(item, f"report_{report.when}", report)
    return report


@pytest.fixture(scope="session")
def playwright() -> Iterator[Playwright]:
    if find_chromium() is None:
        pytest.skip("chromium is not installed (./dev setup installs it; or set RUNTABLE_CHROMIUM)")
    with sync_playwright() as pw:
        yield pw


@pytest.fixture(scope="module")
def browser(playwright: Playwright) -> Iterator[Browser]:
    """One headless Chromium for all tests of a module."""
    chromium = playwright.chromium.launch(
        executable_path=find_chromium(), headless=True, args=CHROMIUM_ARGS
    )
    yield chromium
    chromium.close()


def _page(browser: Browser, request: pytest.FixtureRequest, **options) -> Iterator[Page]:
    context = browser.new_context(color_scheme="light", **options)
    context.set_default_timeout(10_000)
    page = context.new_page()
    yield page
    report = getattr(request.node, "report_call", None)
    if report is not None and report.failed:
        save_screenshot(page, f"FAILED-{request.node.name}")
    context.close()


@pytest.fixture
def page(browser: Browser, request: pytest.FixtureRequest) -> Iterator[Page]:
    """A page in a fresh browser context (own storage, cookies); screenshot on failure."""
    yield from _page(browser, request, viewport=VIEWPORT)


@pytest.fixture
def wide_page(browser: Browser, request: pytest.FixtureRequest) -> Iterator[Page]:
    """The same at 1600 x 900, a common screen in the hall."""
    yield from _page(browser, request, viewport=WIDE_VIEWPORT)


@pytest.fixture
def far_page(browser: Browser, request: pytest.FixtureRequest) -> Iterator[Page]:
    """A wide page in a browser six hours behind the facility (a remote collaborator)."""
    yield from _page(browser, request, viewport=WIDE_VIEWPORT, timezone_id="America/New_York")


@pytest.fixture
def second_page(browser: Browser) -> Iterator[Page]:
    """Another person's browser: its own context (cookies, storage)."""
    context: BrowserContext = browser.new_context(viewport=VIEWPORT)
    context.set_default_timeout(10_000)
    yield context.new_page()
    context.close()


def save_screenshot(page: Page, name: str) -> Path:
    """Save a screenshot of `page` as artifacts/screenshots/NAME.png; return its path."""
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    path = SCREENSHOTS / f"{re.sub(r'[^A-Za-z0-9_.-]+', '_', name)}.png"
    page.screenshot(path=path)
    return path


@pytest.fixture(name="save_screenshot")
def save_screenshot_fixture() -> Callable[[Page, str], Path]:
    """`save_screenshot(page, name)` for tests: artifacts/screenshots/NAME.png."""
    return save_screenshot


@pytest.fixture(scope="session")
def serve_app() -> Callable[[FastAPI], AbstractContextManager[str]]:
    """`with serve_app(app) as url:` serves an app of a test's own (see `serve`)."""
    return serve


def serve(app: FastAPI) -> AbstractContextManager[str]:
    """Serve `app` with uvicorn on a free 127.0.0.1 port in a thread; yields its base URL."""
    return serve_in_thread(app)


def gui_app() -> FastAPI:
    """Only the GUI's static files (no API): how the page behaves without a server
    behind it. Tests of the table use `table_server` (the real app)."""
    app = FastAPI()
    mount_frontend(app)
    return app


@pytest.fixture(scope="module")
def gui_url() -> Iterator[str]:
    """Base URL of a server with the GUI (fails when the GUI was never built)."""
    if not (static_dir() / "index.html").is_file():
        pytest.fail("the web GUI is not built: run ./dev setup")
    with serve(gui_app()) as url:
        yield url


@pytest.fixture(scope="module")
def table_server(tmp_path_factory: pytest.TempPathFactory):
    """The real app on a real database folder of 12 runs (see gui_folder.py), per module."""
    from .gui_folder import gui_server, make_folder

    if not (static_dir() / "index.html").is_file():
        pytest.fail("the web GUI is not built: run ./dev setup")
    db_dir = make_folder(tmp_path_factory.mktemp("gui") / "db", range(1, 13))
    with gui_server(db_dir) as server:
        yield server
