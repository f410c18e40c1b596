"""Cell previews in headless Chromium: double-click -> the data drawn.

A folder with one run holding a 2048 x 2048 float64 image and a line of 1,000,000
points (written the real way: fragment -> merge). Against the real server
(``create_app``, uvicorn in this process) and the built GUI, it measures:

* double-click on the cell -> the preview drawn (``Plotly.react`` done, which
  ``frontend/src/preview/preview.ts`` marks with ``data-drawn-at``), measured by the page's own
  clock from the ``dblclick`` event. The first trial loads plotly.js; the median is of
  ``--trials`` later ones (tab closed in between, so each draws from scratch);
* the request as the page saw it (``fetchMs``, bytes);
* the server side alone: ``read_cell`` + the binary encoding, in this process.

    ./dev bench gui_preview [--trials N] [--keep DIR]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))


PROPOSAL = 2024
RUN = 1
TOKEN = "gui-preview-benchmark"
VARIABLES = {"image": {"title": "Detector image"}, "trace": {"title": "Diode trace"}}


def build(db_dir: Path) -> None:
    """The folder: one run with the big image and the long line."""
    from runtable.context import Cell, Results
    from runtable.store import create_folder

    if (db_dir / "runs.sqlite").is_file():
        return
    rng = np.random.default_rng(0)
    yy, xx = np.mgrid[0:2048, 0:2048]
    image = np.cos(np.hypot(xx - 1100, yy - 900) / 40) + rng.normal(0, 0.1, (2048, 2048))
    trace = np.cumsum(rng.normal(size=1_000_000))
    with create_folder(db_dir, PROPOSAL) as db:
        db.update_computed_variables(VARIABLES)
        db.ensure_run(PROPOSAL, RUN)
        results = Results({"image": Cell(image), "trace": Cell(trace)}, {})
        db.merge_fragment(results.save(db.extracted_dir, PROPOSAL, RUN))


def server_side(db_dir: Path, name: str, trials: int) -> tuple[float, int]:
    """Median seconds of reading and encoding the default view; its size in bytes."""
    from runtable.server.celldata import encode_binary
    from runtable.store import open_db, read_cell

    times, size = [], 0
    with open_db(db_dir, readonly=True) as db:
        for _ in range(trials):
            t0 = time.perf_counter()
            size = len(encode_binary(read_cell(db, PROPOSAL, RUN, name)))
            times.append(time.perf_counter() - t0)
    return statistics.median(times), size


def open_preview(page, name: str) -> dict:
    """Double-click the cell; the page's timings of the preview (ms, bytes)."""
    selector = f'.ag-row[row-id="{RUN}"] [col-id="var:{name}"]'
    page.locator("#tab-table").click()
    page.evaluate("""() => document.addEventListener('dblclick',
        () => { window.__dblclickAt = performance.now(); }, {capture: true, once: true})""")
    page.locator(selector).dblclick()
    panel = page.locator(".tab-panel:not([hidden]) .preview[data-state=drawn]")
    panel.wait_for(timeout=120_000)
    took = page.evaluate("""() => {
        const p = document.querySelector('.tab-panel:not([hidden]) .preview');
        return {ms: Number(p.dataset.drawnAt) - window.__dblclickAt,
                fetch_ms: Number(p.dataset.fetchMs), bytes: Number(p.dataset.bytes),
                render_ms: Number(p.dataset.renderMs)};
    }""")
    page.locator(".tab[aria-selected=true] .tab-close").click()
    return took


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=7)
    parser.add_argument("--keep", type=Path, help="build into (or reuse) this folder")
    args = parser.parse_args()

    from runtable.server.app import create_app
    from runtable.testing.browser import BrowserUnavailable, browser_page

    with tempfile.TemporaryDirectory() as tmp:
        db_dir = args.keep or Path(tmp, "db")
        build(db_dir)
        figures: dict[str, tuple[dict, list[dict]]] = {}
        try:
            with browser_page(create_app(db_dir, TOKEN)) as (base, page):
                page.goto(f"{base}/?token={TOKEN}")
                page.wait_for_selector(f'.ag-row[row-id="{RUN}"]', timeout=60_000)
                for name in ("image", "trace"):
                    first = open_preview(page, name)
                    figures[name] = (first,
                                     [open_preview(page, name) for _ in range(args.trials)])
        except BrowserUnavailable as exc:
            sys.exit(str(exc))
        server = {name: server_side(db_dir, name, args.trials) for name in figures}
    labels = {"image": "2048 x 2048 float64 image", "trace": "1,000,000-point line"}
    print("Cell preview, double-click -> drawn (headless Chromium):")
    for name, (first, rest) in figures.items():
        ms = statistics.median(t["ms"] for t in rest)
        fetch = statistics.median(t["fetch_ms"] for t in rest)
        took, size = server[name]
        print(f"  {labels[name]}:")
        print(f"    first (loads plotly.js):     {first['ms']:7.0f} ms")
        every = ", ".join(f"{t['ms']:.0f}" for t in rest)
        print(f"    median of {len(rest)}:                {ms:7.0f} ms   (all: {every} ms)")
        render = statistics.median(t["render_ms"] for t in rest)
        print(f"    drawing (Plotly.react):      {render:7.0f} ms")
        print(f"    request as the page saw it:  {fetch:7.0f} ms   "
              f"{rest[-1]['bytes'] / 2**20:.2f} MiB")
        print(f"    server: read + encode:       {took * 1000:7.0f} ms   "
              f"{size / 2**20:.2f} MiB")


if __name__ == "__main__":
    main()
