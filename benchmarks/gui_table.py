"""The web GUI in headless Chromium on a synthetic folder of 20,000 runs x 500 variables.

Measures, against the real server (``create_app``, served by uvicorn in this process)
and the built GUI:

* navigation -> a filled, scrollable table: from ``page.goto`` until the grid shows
  rows and its store holds every run (the first columns' data, see ``FIRST_COLUMNS``
  in ``frontend/src/table.ts``); then until the data of every column is in (fetched by
  name, ``frontend/src/columnloader.ts``); then a
  jump to the middle of the table until that row is drawn. Once on a fresh server (its
  table cache cold) and as the median of ``--repeat`` loads with the cache warm (as
  for a running service).
* value merged -> cell updated on screen: a fragment with a new value for a visible
  cell is merged into the folder (the store's real merge), ``values_merged`` is
  published on the app's bus as the service does, and the page records the moment the
  cell's text changes (``MutationObserver``, same machine clock). Median of
  ``--updates``.

Targets: 2 s and 300 ms. The folder is built with ``api_table.build_synthetic``.

    ./dev bench gui_table [--runs N] [--variables N] [--repeat N] [--updates N] [--keep DIR]
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

LOAD_TARGET_S = 2.0
UPDATE_TARGET_S = 0.3
TOKEN = "gui-benchmark-token"


def load_table(page, url: str, n_runs: int) -> tuple[float, float, float, dict]:
    """Seconds from navigation to a filled table, to every column's data, for a jump to
    the middle row, and where the page spent the load (download, parse, store, grid; ms)."""
    t0 = time.perf_counter()
    page.goto(url)
    page.wait_for_function(
        """n => window.runtable !== undefined
                && window.runtable.store.rows.length === n
                && document.querySelector('.ag-row[row-id]') !== null""",
        arg=n_runs, timeout=120_000, polling="raf")
    loaded = time.perf_counter() - t0
    page.wait_for_function("() => window.runtable.timings.complete_at !== undefined",
                           timeout=120_000, polling=20)
    complete = time.perf_counter() - t0
    middle = n_runs // 2
    t1 = time.perf_counter()
    page.evaluate("run => window.runtable.grid.jumpTo(run, false)", middle)
    page.wait_for_selector(f'.ag-row[row-id="{middle}"]', timeout=30_000)
    return (loaded, complete, time.perf_counter() - t1,
            page.evaluate("() => window.runtable.timings"))


def measure_update(page, db_dir: Path, bus, run: int, name: str,
                   value: float) -> tuple[float, dict]:
    """Seconds from a merged value (its event published) to the new text on screen, and
    the page's partial fetch and apply times (ms)."""
    from runtable.context import Cell, Results
    from runtable.events import ValuesMerged
    from runtable.store import DatabaseFolder

    page.evaluate("([run, name]) => { const g = window.runtable.grid;"
                  " g.jumpTo(run, false); g.api.ensureColumnVisible('var:' + name); }",
                  [run, name])
    selector = f'.ag-row[row-id="{run}"] [col-id="var:{name}"]'
    page.wait_for_selector(selector)
    page.evaluate(
        """([selector, expected]) => {
            window.__updated = null;
            const find = () => document.querySelector(selector);
            // The column's number style decides the decimals: compare the number.
            const shows = (text) => Math.abs(parseFloat(text) - expected)
                <= 1e-3 * Math.max(1, Math.abs(expected));
            const observer = new MutationObserver(() => {
                const cell = find();
                if (cell && shows(cell.textContent.trim())) {
                    window.__updated = Date.now();
                    observer.disconnect();
                }
            });
            observer.observe(document.querySelector('.ag-root'),
                             {subtree: true, childList: true, characterData: true});
        }""",
        [selector, value])
    with DatabaseFolder(db_dir) as db:
        path = Results({name: Cell(value)}, {}).save(db.extracted_dir, PROPOSAL, run)
        db.merge_fragment(path)
    merged = time.time() * 1000
    bus.publish(ValuesMerged(PROPOSAL, run, (name,)))
    page.wait_for_function("() => window.__updated !== null", timeout=30_000, polling=10)
    took = (page.evaluate("() => window.__updated") - merged) / 1000
    return took, page.evaluate("() => window.runtable.updateTimings")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=20_000)
    parser.add_argument("--variables", type=int, default=500)
    parser.add_argument("--repeat", type=int, default=3)
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
                url = f"{base}/?token={TOKEN}"
                cold, _, _, _ = load_table(page, url, args.runs)
                loads, completes, jumps, phases = [], [], [], []
                for _ in range(args.repeat):
                    loaded, complete, jump, timings = load_table(page, url, args.runs)
                    loads.append(loaded)
                    completes.append(complete)
                    jumps.append(jump)
                    phases.append(timings)
                results = [
                    measure_update(page, db_dir, bus, run=args.runs // 2 + i,
                                   name="var_001", value=1000.0 + i + 0.125)
                    for i in range(args.updates)
                ]
                updates = [took for took, _ in results]
        except BrowserUnavailable as exc:
            sys.exit(str(exc))
    warm = statistics.median(loads)
    update = statistics.median(updates)
    print(f"GUI on {args.runs} runs x {args.variables} variables (headless Chromium):")
    print(f"  navigation -> filled table, server cache cold: {cold:7.3f} s   "
          f"{cold / LOAD_TARGET_S:.2f} x the {LOAD_TARGET_S:.0f} s target")
    print(f"  navigation -> filled table, median of {args.repeat}:    {warm:7.3f} s   "
          f"{warm / LOAD_TARGET_S:.2f} x the {LOAD_TARGET_S:.0f} s target")
    print(f"  navigation -> every column's data, median:     "
          f"{statistics.median(completes):7.3f} s")
    print(f"  jump to the middle row drawn, median:          "
          f"{statistics.median(jumps) * 1000:7.0f} ms")
    print(f"  value merged -> cell on screen, median of {args.updates}: "
          f"{update * 1000:5.0f} ms   {update / UPDATE_TARGET_S:.2f} x the "
          f"{UPDATE_TARGET_S * 1000:.0f} ms target (all: "
          f"{', '.join(f'{u * 1000:.0f}' for u in updates)} ms)")
    last = phases[-1]
    print(f"  last load in the page, its first part: download {last['download_ms']:.0f} ms "
          f"({last['bytes'] / 2**20:.0f} MiB), decode {last['parse_ms']:.0f} ms, "
          f"store {last['store_ms']:.0f} ms, grid {last['grid_ms']:.0f} ms (the other "
          "columns then come by name, see gui_serve)")
    fetch = statistics.median(t["fetch_ms"] for _, t in results)
    apply = statistics.median(t["apply_ms"] for _, t in results)
    print(f"  update in the page (median): fetch of the changed cells {fetch:.0f} ms, "
          f"applying them {apply:.1f} ms")


if __name__ == "__main__":
    main()
