"""What a plotly figure's PNG thumbnail costs (kaleido 0.2.1's own browser, offline).

1. In a fresh interpreter: the first thumbnail (starts the renderer's browser) and the
   next ones (the browser is kept for the process).
2. In a warm worker, end to end: the per-run time of ``runtable reprocess`` for a
   context returning 1 or 3 plotly figures, against the same figures with a
   ``summary_value`` (no thumbnail drawn). Each job is a fresh fork, so it pays for
   starting the browser once.

    ./dev bench plotly_thumbnail [--repeat N]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

from reprocess_cli import time_command

IN_PROCESS = """
import json, time
t0 = time.perf_counter()
import plotly.graph_objects as go
from runtable.execute.thumbnails import plotly_thumbnail
fig = go.Figure(go.Scatter(y=list(range(1000))))
t1 = time.perf_counter()
times = []
for _ in range(5):
    s = time.perf_counter()
    assert plotly_thumbnail(fig) is not None, "no thumbnail"
    times.append(time.perf_counter() - s)
print(json.dumps({"import": t1 - t0, "first": times[0], "next": sorted(times[1:])[2]}))
"""

CONTEXT = '''
from damnit_ctx import Cell, Variable
import plotly.graph_objects as go

@Variable(title="Trains")
def n_trains(run):
    return len(run.train_ids)
''' + "".join(f'''
@Variable(title="Figure {i}")
def figure_{i}(run):
    fig = go.Figure(go.Scatter(y=run["SA1_XTD2_XGM/DOOCS/MAIN",
                                     "pulseEnergy.photonFlux"].ndarray()))
    return {{cell}}
''' for i in range(3))


def context(n_figures: int, thumbnail: bool) -> str:
    cell = "fig" if thumbnail else 'Cell(fig, summary_value="figure")'
    head, *parts = CONTEXT.split("\n@Variable(title=\"Figure")
    return head + "".join("\n@Variable(title=\"Figure" + p for p in parts[:n_figures]
                          ).replace("{cell}", cell)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3,
                        help="measurements per case; the median is shown (default 3)")
    args = parser.parse_args()
    from runtable.store import create_folder
    from runtable.testing import make_proposal

    load = os.getloadavg()[0]
    runs = [json.loads(subprocess.run([sys.executable, "-c", IN_PROCESS], check=True,
                                      capture_output=True, text=True).stdout)
            for _ in range(args.repeat)]
    print(f"plotly thumbnails (kaleido 0.2.1, offline), load average before: {load:.1f}, "
          f"median of {args.repeat}")
    for key, label in (("first", "first thumbnail in a process"),
                       ("next", "each further thumbnail")):
        print(f"  {label:38s} {statistics.median(r[key] for r in runs):6.3f} s")

    with tempfile.TemporaryDirectory() as tmp:
        prop = make_proposal(Path(tmp, "data"), 1234, runs=[1], proc=False)
        env = dict(os.environ, EXTRA_DATA_DATA_ROOT=str(prop.root), RUNTABLE_CACHE_DIR="off")
        figures = {}
        for n in (1, 3):
            for thumbnail in (False, True):
                db_dir = Path(tmp, f"db-{n}-{thumbnail}")
                create_folder(db_dir, 1234, context(n, thumbnail)).close()
                time_command(db_dir, "1", 1, 1, env)  # warm the file system cache
                times = [time_command(db_dir, "1", 1, 1, env)[0] for _ in range(args.repeat)]
                figures[n, thumbnail] = statistics.median(times)
    print("  runtable reprocess of one run (warm worker, one fresh fork per job):")
    for n in (1, 3):
        plain, drawn = figures[n, False], figures[n, True]
        print(f"    {n} figure{'s' if n > 1 else ' '}: {plain:5.2f} s without thumbnails, "
              f"{drawn:5.2f} s with: +{drawn - plain:4.2f} s per run")


if __name__ == "__main__":
    main()
