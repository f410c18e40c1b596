"""Time of the web server's ``GET /api/table`` on 20,000 runs x 500 variables.

Builds the synthetic folder of ``api_table.py`` (imported, not copied), starts the real
app with uvicorn in a thread and asks it over HTTP, gzip accepted as browsers do:

* the first snapshot (the server reads and encodes the whole table),
* the same snapshot again (nothing changed: served from the server's memory),
* the snapshot after one run's 500 values were rewritten (as a merge does),
* the same in the binary form the grid loads (``?format=binary``), unchanged and after
  one run changed,
* the cells an event names (``?runs=R&names=...``), as the grid fetches them: every
  column of one run, and one cell right after its run was rewritten,
* one comment edit (``PUT /api/runs/R/comment``).

Prints the median of ``--repeat`` requests with the body sizes, wall and CPU time, and
the load average at the start and the end.

    ./dev bench server_table [--runs N] [--variables N] [--repeat N] [--keep DIR]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from api_table import PROPOSAL, synthetic_folder

TOKEN = "benchmark-token-0123456789"


def fetch(url: str, method: str = "GET", body: bytes | None = None
          ) -> tuple[float, int, float]:
    """(seconds, bytes on the wire, CPU seconds of this process: the server's thread
    and the client) of one request."""
    headers = {"Authorization": f"Bearer {TOKEN}", "Accept-Encoding": "gzip"}
    if body is not None:
        headers["Content-Type"] = "application/json"
    req = urllib.request.Request(url, data=body, method=method, headers=headers)
    t0, c0 = time.perf_counter(), time.process_time()
    while True:
        try:
            with urllib.request.urlopen(req, timeout=600) as resp:
                size = len(resp.read())
            return time.perf_counter() - t0, size, time.process_time() - c0
        except urllib.error.HTTPError as exc:
            if exc.code != 503:  # 503: the first read is still running; ask again
                raise
            time.sleep(0.2)


def timed(url: str, method: str = "GET", body: bytes | None = None) -> tuple[float, float]:
    """(seconds, CPU seconds) of one request."""
    wall, _, cpu = fetch(url, method, body)
    return wall, cpu


def line(label: str, samples: list[tuple[float, float]]) -> None:
    """The medians of *samples*."""
    wall = statistics.median(w for w, _ in samples)
    cpu = statistics.median(c for _, c in samples)
    print(f"  {label + ':':<52}{wall:7.3f} s   (CPU {cpu:.3f} s)", flush=True)


def load_average() -> str:
    return " ".join(Path("/proc/loadavg").read_text().split()[:3])


def rewrite_run(path: Path, run: int) -> None:
    """Replace every value of ``run``, as merging a reprocessed run's fragment does."""
    from runtable.store import open_db

    with open_db(path) as db, db.transaction() as conn:
        conn.execute("UPDATE run_variables SET value = value * 2, timestamp = ? "
                     "WHERE proposal = ? AND run = ? AND typeof(value) IN ('real', 'integer')",
                     (time.time(), PROPOSAL, run))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=20_000)
    parser.add_argument("--variables", type=int, default=500)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--keep", type=Path, help="build into (or reuse) this folder")
    args = parser.parse_args()

    from runtable.server.app import close_app, create_app
    from runtable.testing.server_thread import serve_in_thread

    with tempfile.TemporaryDirectory() as tmp:
        path = args.keep or Path(tmp, "db")
        synthetic_folder(path, args.runs, args.variables)
        app = create_app(path, TOKEN)
        with serve_in_thread(app) as base:
            table = base + "/api/table"
            print(f"(load average at the start {load_average()}; CPU: this process, the "
                  "server's threads and the client)")
            first, size, first_cpu = fetch(table)
            print(f"GET /api/table, {args.runs} x {args.variables}, {size / 2**20:.1f} MiB "
                  "gzipped:")
            line("first request (read + encode everything)", [(first, first_cpu)])
            line("unchanged (from memory)", [timed(table) for _ in range(args.repeat)])
            changed = []
            for i in range(args.repeat):
                rewrite_run(path, args.runs // 2 + i)
                changed.append(timed(table))
            line("after one run's values changed", changed)
            binary = [timed(table + "?format=binary") for _ in range(args.repeat)]
            bsize = fetch(table + "?format=binary")[1]
            line(f"binary (?format=binary, {bsize / 2**20:.1f} MiB), unchanged", binary)
            changed = []
            for i in range(args.repeat):
                rewrite_run(path, args.runs // 2 + args.repeat + i)
                changed.append(timed(table + "?format=binary"))
            line("binary after one run's values changed", changed)
            names = ",".join(f"var_{i:03d}" for i in range(args.variables))
            line("one run, every column (?runs=&names=)",
                 [timed(f"{table}?runs={args.runs // 3}&names={names}")
                  for _ in range(args.repeat)])
            one = []
            for i in range(args.repeat):
                run = args.runs // 4 + i
                rewrite_run(path, run)
                one.append(timed(f"{table}?runs={run}&names=var_001"))
            line("one cell just rewritten (values_merged)", one)
            line("PUT a comment", [timed(f"{base}/api/runs/{i + 1}/comment", "PUT",
                                         f'{{"text": "edited {i}"}}'.encode())
                                   for i in range(args.repeat)])
            print(f"(load average at the end {load_average()})")
        close_app(app)


if __name__ == "__main__":
    main()
