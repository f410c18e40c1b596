"""Headless Chromium on a served app: for the browser tests and the GUI benchmarks.

Chromium is the system's own (``chromium`` on PATH, or ``$RUNTABLE_CHROMIUM``);
Playwright's browser download is not used (it needs the internet).

>>> with browser_page(create_app(db_dir, token)) as (base, page):  # doctest: +SKIP
...     page.goto(f"{base}/?token={token}")
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

from .server_thread import serve_in_thread

if TYPE_CHECKING:
    from playwright.sync_api import Page

#: Flags for a closed network and for running as root: no sandbox (root), no GPU, and
#: no background traffic (updates, sync, QUIC probes) that could stall start-up.
#: Playwright adds --headless and a fresh temporary --user-data-dir itself.
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


def find_chromium() -> str | None:
    """The Chromium executable: ``$RUNTABLE_CHROMIUM``, else ``chromium`` on PATH."""
    configured = os.environ.get("RUNTABLE_CHROMIUM")
    if configured:
        return configured
    return shutil.which("chromium") or shutil.which("chromium-browser")


class BrowserUnavailable(RuntimeError):
    """No headless browser session is possible here (the reason is the message)."""


@contextmanager
def browser_page(app: Any, width: int = 1600, height: int = 900) -> Iterator[tuple[str, Page]]:
    """Serve ``app`` on a free local port and open one page of a headless Chromium;
    yields the server's base URL and the page. :class:`BrowserUnavailable` when the GUI
    is not built or there is no Chromium."""
    with chromium_page(width, height) as page, serve_in_thread(app) as base:
        yield base, page


@contextmanager
def chromium_page(width: int = 1600, height: int = 900) -> Iterator[Page]:
    """One page of a headless Chromium (for a server started elsewhere, e.g. a real
    ``runtable serve`` process). :class:`BrowserUnavailable` as for :func:`browser_page`."""
    from playwright.sync_api import sync_playwright

    from runtable.server.frontend import static_dir

    if not (static_dir() / "index.html").is_file():
        raise BrowserUnavailable("the web GUI is not built: run ./dev setup")
    chromium = find_chromium()
    if chromium is None:
        raise BrowserUnavailable("chromium is not installed (./dev setup installs it; or set "
                           "RUNTABLE_CHROMIUM)")
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=chromium, headless=True,
                                     args=CHROMIUM_ARGS)
        try:
            yield browser.new_context(viewport={"width": width, "height": height}).new_page()
        finally:
            browser.close()
