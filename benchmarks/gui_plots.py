"""Plots in the web GUI (headless Chromium) on a synthetic folder of many runs.

Measures, against the real server and the built GUI:

* "Plot" submitted -> summary plot of two variables drawn (one point per run), the
  first time (plotly is fetched then) and again (plotly loaded);
* value merged -> the point moved in the open plot: a fragment with a new value is
  merged, ``values_merged`` published as the service does, and the page records when
  the plot's data holds the value (same machine clock). Median of ``--updates``;
* a histogram of one variable across all runs with 100,000 bins: submitted -> drawn.

    ./dev bench gui_plots [--runs N] [--variables N] [--updates N] [--keep DIR]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from api_table import PROPOSAL, synthetic_folder
from gui_table import TOKEN

GRAPH = ".tab-panel:not([hidden]) .rt-plot-graph"


def open_plot(page, kind: str, x: str, y: str | None = None, bins: int | None = None) -> float:
    """Seconds from submitting the form to the plot drawn with data."""
    page.locator("#plot-button").click()
    page.locator("#plot-kind").select_option(kind)
    page.locator("#plot-x").fill(x)
    if y is not None:
        page.locator("#plot-y").fill(y)
    if bins is not None:
        page.locator("#plot-bins").fill(str(bins))
    t0 = time.perf_counter()
    page.locator("#plot-submit").click()
    page.wait_for_function(
        f"() => {{ const g = document.querySelector({GRAPH!r});"
        " return g && Array.isArray(g.data) && g.data.length > 0 && g._fullLayout; }",
        timeout=120_000, polling="raf")
    return time.perf_counter() - t0


def measure_update(page, db_dir: Path, bus, run: int, name: str, value: float) -> float:
    """Seconds from a merged value (its event published) to the value in the plot."""
    from runtable.context import Cell, Results
    from runtable.events import ValuesMerged
    from runtable.store import DatabaseFolder

    page.evaluate(
        """([selector, run, value]) => {
            window.__plotted = null;
            const graph = document.querySelector(selector);
            const check = () => {
                const trace = graph.data[0];
                const i = Array.from(trace.customdata).indexOf(run);
                if (i >= 0 && trace.y[i] === value) {
                    window.__plotted = Date.now();
                    graph.removeListener('plotly_afterplot', check);
                }
            };
            graph.on('plotly_afterplot', check);
        }""",
        [GRAPH, run, value])
    with DatabaseFolder(db_dir) as db:
        path = Results({name: Cell(value)}, {}).save(db.extracted_dir, PROPOSAL, run)
        db.merge_fragment(path)
    merged = time.time() * 1000
    bus.publish(ValuesMerged(PROPOSAL, run, (name,)))
    page.wait_for_function("() => window.__plotted !== null", timeout=30_000, polling=10)
    return (page.evaluate("() => window.__plotted") - merged) / 1000


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=20_000)
    parser.add_argument("--variables", type=int, default=50)
    parser.add_argument("--updates", type=int, default=5)
    parser.add_argument("--keep", type=Path, help="build into (or reuse) this folder")
    args = parser.parse_args()

    from runtable.events import EventBus
    from runtable.server.app import create_app
    from runtable.testing.browser import BrowserUnavailable, browser_page

    with tempfile.TemporaryDirectory() as tmp:
        db_dir = args.keep or Path(tmp, "db")
        synthetic_folder(db_dir, args.runs, args.variables)
        bus = EventBus()
        try:
            with browser_page(create_app(db_dir, TOKEN, bus=bus)) as (base, page):
                page.goto(f"{base}/?token={TOKEN}")
                page.wait_for_function(
                    "n => window.runtable !== undefined && window.runtable.store.rows.length"
                    " === n && window.runtable.timings.complete_at !== undefined",
                    arg=args.runs, timeout=120_000, polling=50)
                first = open_plot(page, "summary", "var_001", "var_002")
                again = open_plot(page, "summary", "var_003", "var_001")
                updates = [
                    measure_update(page, db_dir, bus, run=args.runs // 2 + i, name="var_001",
                                   value=1000.0 + i + 0.125)
                    for i in range(args.updates)
                ]
                hist = open_plot(page, "hist-summary", "var_004", bins=100_000)
        except BrowserUnavailable as exc:
            sys.exit(str(exc))
    print(f"Plots on {args.runs} runs x {args.variables} variables (headless Chromium):")
    print(f"  summary plot drawn, first (loads plotly): {first * 1000:7.0f} ms")
    print(f"  summary plot drawn, plotly loaded:        {again * 1000:7.0f} ms")
    print(f"  value merged -> point in the plot, median of {args.updates}: "
          f"{statistics.median(updates) * 1000:5.0f} ms "
          f"(all: {', '.join(f'{u * 1000:.0f}' for u in updates)} ms)")
    print(f"  histogram, 100,000 bins, drawn:           {hist * 1000:7.0f} ms")


if __name__ == "__main__":
    main()
