"""Time of the filter language on 20,000 runs x 500 variables: what a filter costs the
web page (one ``GET /api/table/runs?where=`` per change, ADR 009) and ``db.table(where=)``.

Builds the synthetic folder of ``api_table.py`` (imported, not copied) and prints, for
expressions of several kinds (a number range, text equality, ``contains``, an error
state, an ``or`` across columns, a tag-free ``not``):

* the evaluation alone (``rows_where`` on the table in memory),
* the round trip of the page's question to the real app served by uvicorn (the table
  already in the server's memory: what a slider drag costs),
* ``Database.table(where=...)`` of a held ``Database``, beside its ``table()``.

Target: the page's round trip well under 100 ms at 20,000 runs, so a dragged slider
stays live.

    ./dev bench where_filter [--runs N] [--variables N] [--repeat N] [--keep DIR]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path
from urllib.parse import quote

sys.path.insert(0, str(Path(__file__).resolve().parent))

from api_table import synthetic_folder
from server_table import TOKEN, fetch

EXPRESSIONS = [
    "var_000 in -0.5..0.5",
    'var_008 = "sample 3"',
    "var_008 contains 'le 1'",
    "var_001 has error",
    "var_000 > 1 or var_006 < 100",
    "not (var_002 > 0 and var_003 > 0) and run in 1000..",
]


def median_s(action, repeat: int) -> float:
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        action()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=20_000)
    parser.add_argument("--variables", type=int, default=500)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--keep", type=Path, help="build into (or reuse) this folder")
    args = parser.parse_args()

    from runtable.api import Database
    from runtable.server.app import close_app, create_app
    from runtable.store.table import read_table
    from runtable.store.where import rows_where
    from runtable.testing.server_thread import serve_in_thread

    with tempfile.TemporaryDirectory() as tmp:
        path = args.keep or Path(tmp, "db")
        synthetic_folder(path, args.runs, args.variables)
        print(f"load average {os.getloadavg()[0]:.2f}")
        table = read_table(path, details=False)
        app = create_app(path, TOKEN)
        db = Database(path)
        db.table()
        try:
            with serve_in_thread(app) as url:
                fetch(f"{url}/api/table/runs?where=run%20%3E%200")  # the first read
                print(f"{'expression':<52} {'runs':>6} {'eval ms':>8} {'page ms':>8} "
                      f"{'table(where) ms':>16} {'table() ms':>12}")
                for expression in EXPRESSIONS:
                    kept = int(rows_where(table, expression).sum())
                    evaluate = median_s(lambda e=expression: rows_where(table, e),
                                        args.repeat)
                    page = median_s(lambda e=expression: fetch(
                        f"{url}/api/table/runs?where={quote(e)}"), args.repeat)
                    where = median_s(lambda e=expression: db.table(where=e), args.repeat)
                    whole = median_s(db.table, args.repeat)
                    print(f"{expression:<52} {kept:>6} {evaluate * 1e3:>8.1f} "
                          f"{page * 1e3:>8.1f} {where * 1e3:>16.0f} {whole * 1e3:>12.0f}")
        finally:
            db.close()
            close_app(app)
        print(f"load average {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
