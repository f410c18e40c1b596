"""``runtable serve`` on 20,000 runs x 500 variables, from the process's start, in
headless Chromium (1600 x 900).

Three cases, each a real ``runtable serve`` process (the service included):

* **a folder runtable wrote** (with its columnar copy): process start -> the port
  answers, -> the page shows rows with data, -> every column's data is in the page
  (targets: 2 s and 4 s); the process tree's peak memory;
* **over a slow link** (Chromium's network emulation: 100 Mbit/s, 20 ms each way),
  the server already running: navigation -> rows; then a column far to the right
  scrolled into view, another one sorted, a third filtered, each until the page
  shows it done (targets: 2 s, and 1 s each);
* **a folder the reference made** (no change log, no index, no copy; a rollback
  journal), first start: process start -> the port answers, -> the page shows the
  reading's progress, -> rows; against the time the server itself took to read
  the folder (its log), and the process tree's peak memory.

The folder is ``api_table.build_synthetic``'s (built, or reused with ``--keep``); the
reference-made one is a copy of it with runtable's additions taken out.

Wall times come with the server's CPU time (its process tree) and the load average
before and after each case: on a loaded machine the wall times are several times
what an idle one gives.

    ./dev bench gui_serve [--runs N] [--variables N] [--keep DIR] [--skip-reference]
        [--only written,slow,reference]
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import socket
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from api_table import ensure_copy, synthetic_folder

TOKEN = "gui-serve-benchmark-token"
ROWS_TARGET_S, ALL_TARGET_S, COLUMN_TARGET_S = 2.0, 4.0, 1.0


def load_average() -> str:
    return " ".join(Path("/proc/loadavg").read_text().split()[:3])


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class TreeMemory:
    """Peak resident memory of a process and its descendants, sampled every 50 ms."""

    def __init__(self, pid: int) -> None:
        self.pid = pid
        self.peak = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.wait(0.05):
            self.peak = max(self.peak, tree_rss(self.pid))

    def stop(self) -> int:
        self._stop.set()
        self._thread.join()
        return self.peak


def _tree(pid: int) -> list[tuple[str, str]]:
    """(stat, status) of *pid* and every process below it."""
    children: dict[int, list[int]] = {}
    texts: dict[int, tuple[str, str]] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            stat = Path(f"/proc/{entry}/stat").read_text()
            status = Path(f"/proc/{entry}/status").read_text()
        except OSError:
            continue
        ppid = int(stat.rsplit(")", 1)[1].split()[1])
        children.setdefault(ppid, []).append(int(entry))
        texts[int(entry)] = (stat, status)
    found, todo = [], [pid]
    while todo:
        current = todo.pop()
        if current in texts:
            found.append(texts[current])
        todo.extend(children.get(current, []))
    return found


def tree_rss(pid: int) -> int:
    """Bytes resident in *pid* and every process below it."""
    total = 0
    for _, status in _tree(pid):
        found = re.search(r"VmRSS:\s+(\d+) kB", status)
        total += int(found.group(1)) * 1024 if found else 0
    return total


def tree_cpu(pid: int, names: tuple[str, ...] = ()) -> float:
    """CPU seconds used by *pid* and the processes below it still running, and the
    children it waited for; with ``names``, only by processes whose name contains one."""
    ticks = os.sysconf("SC_CLK_TCK")
    total = 0
    for stat, _ in _tree(pid):
        name, fields = stat.split("(", 1)[1].rsplit(")", 1)
        if not names or any(part in name for part in names):
            total += sum(int(f) for f in fields.split()[11:15])  # utime stime cutime cstime
    return total / ticks


def browser_cpu() -> float:
    """CPU seconds used so far by the Chromium processes this script started."""
    return tree_cpu(os.getpid(), ("chrom", "headless"))


class Serve:
    """A ``runtable serve`` process on a folder, its start time and output."""

    def __init__(self, folder: Path, log: Path) -> None:
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.log = log
        env = {**os.environ, "RUNTABLE_TOKEN": TOKEN,
               "RUNTABLE_CACHE_DIR": str(log.parent / "cache")}
        self.started = time.perf_counter()
        self.proc = subprocess.Popen(
            [str(Path(sys.executable).with_name("runtable")), "serve", str(folder),
             "--port", str(self.port)],
            stdout=subprocess.DEVNULL, stderr=open(log, "w"), env=env)  # noqa: SIM115
        self.memory = TreeMemory(self.proc.pid)

    def since_start(self) -> float:
        return time.perf_counter() - self.started

    def wait_for_port(self, timeout: float = 300) -> float:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                with urllib.request.urlopen(f"{self.base}/api/health?token={TOKEN}",
                                            timeout=1) as answer:
                    answer.read()
                return self.since_start()
            except OSError:
                if self.proc.poll() is not None:
                    raise RuntimeError(f"runtable serve ended: {self.log.read_text()}") from None
                time.sleep(0.02)
        raise TimeoutError("the port never answered")

    def stop(self) -> int:
        self.proc.terminate()
        self.proc.wait(timeout=120)
        return self.memory.stop()


def rows_shown(page, n_runs: int, timeout_ms: float = 600_000) -> None:
    """Wait until the grid shows rows whose first variable column has data."""
    page.wait_for_function(
        """n => { const app = window.runtable;
                  if (app === undefined || app.store.rows.length !== n) return false;
                  const cell = document.querySelector('.ag-row[row-id] .ag-cell[col-id^="var:"]');
                  return cell !== null && cell.textContent !== '' && cell.textContent !== '…'; }""",
        arg=n_runs, timeout=timeout_ms, polling="raf")


def all_columns(page, timeout_ms: float = 600_000) -> None:
    page.wait_for_function("() => window.runtable.timings.complete_at !== undefined",
                           timeout=timeout_ms, polling=20)


def written_folder(serve_folder: Path, work: Path, n_runs: int, page) -> dict[str, float]:
    serve = Serve(serve_folder, work / "serve.log")
    try:
        port = serve.wait_for_port()
        page.goto(f"{serve.base}/?token={TOKEN}")
        rows_shown(page, n_runs)
        rows = serve.since_start()
        rows_cpu, rows_browser = tree_cpu(serve.proc.pid), browser_cpu()
        all_columns(page)
        every = serve.since_start()
        every_cpu, every_browser = tree_cpu(serve.proc.pid), browser_cpu()
    finally:
        peak = serve.stop()
    return {"port": port, "rows": rows, "all": every, "peak": peak, "rows_cpu": rows_cpu,
            "all_cpu": every_cpu, "rest_browser": every_browser - rows_browser}


def slow_link(serve_folder: Path, work: Path, n_runs: int, page) -> dict[str, float]:
    serve = Serve(serve_folder, work / "serve-slow.log")
    try:
        serve.wait_for_port()
        # The server's table read once, as for a service already running.
        while True:
            try:
                urllib.request.urlopen(
                    f"{serve.base}/api/table?format=binary&first=0&token={TOKEN}",
                    timeout=300).read()
                break
            except urllib.error.HTTPError as exc:
                if exc.code != 503:
                    raise
                time.sleep(0.2)
        cdp = page.context.new_cdp_session(page)
        cdp.send("Network.enable")
        cdp.send("Network.emulateNetworkConditions", {
            "offline": False, "latency": 20, "downloadThroughput": 100e6 / 8,
            "uploadThroughput": 100e6 / 8})
        t0 = time.perf_counter()
        page.goto(f"{serve.base}/?token={TOKEN}")
        rows_shown(page, n_runs)
        out = {"rows": time.perf_counter() - t0}
        names = page.evaluate("() => window.runtable.store.variables.map(v => v.name)")
        far = [names[i] for i in (-40, -35, -30)]  # (floats, not added late)
        loaded = page.evaluate("names => names.map(n => window.runtable.store.isLoaded(n))", far)
        out["already_loaded"] = float(sum(loaded))
        # Scrolled into view.
        t0 = time.perf_counter()
        page.evaluate("n => window.runtable.grid.api.ensureColumnVisible('var:' + n)", far[0])
        page.wait_for_function(
            """n => window.runtable.store.isLoaded(n) && [...document.querySelectorAll(
                   `.ag-cell[col-id="var:${n}"]`)].some(
                   c => c.textContent !== '' && c.textContent !== '…')""",
            arg=far[0], timeout=60_000, polling=20)
        out["scroll"] = time.perf_counter() - t0
        # Sorted.
        t0 = time.perf_counter()
        page.evaluate("""n => window.runtable.grid.api.applyColumnState(
            {state: [{colId: 'var:' + n, sort: 'asc'}], defaultState: {sort: null}})""", far[1])
        page.wait_for_function(
            """n => { const app = window.runtable; if (!app.store.isLoaded(n)) return false;
                      const v = app.grid.displayedRows().slice(0, 400)
                          .map(r => app.store.value(r, n)).filter(x => typeof x === 'number');
                      return v.length > 10 && v.every((x, i) => i === 0 || v[i - 1] <= x); }""",
            arg=far[1], timeout=60_000, polling=20)
        out["sort"] = time.perf_counter() - t0
        # Filtered.
        t0 = time.perf_counter()
        page.evaluate("""n => window.runtable.grid.api.setColumnFilterModel('var:' + n, {min: 0})
            .then(() => window.runtable.grid.api.onFilterChanged())""", far[2])
        page.wait_for_function(
            """([n, total]) => window.runtable.store.isLoaded(n)
                 && window.runtable.grid.api.getDisplayedRowCount() < total""",
            arg=[far[2], n_runs], timeout=60_000, polling=20)
        out["filter"] = time.perf_counter() - t0
        cdp.send("Network.emulateNetworkConditions", {
            "offline": False, "latency": 0, "downloadThroughput": -1, "uploadThroughput": -1})
        out["cpu"] = tree_cpu(serve.proc.pid)
    finally:
        serve.stop()
    return out


def reference_made(source: Path, folder: Path) -> Path:
    """A copy of *source* as the reference would have written it: no change log, no
    name index, no copy, a rollback journal."""
    conn = sqlite3.connect(source / "runs.sqlite")
    conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    conn.close()
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    shutil.copy(source / "runs.sqlite", folder / "runs.sqlite")
    shutil.copy(source / "context.py", folder / "context.py")
    conn = sqlite3.connect(folder / "runs.sqlite", isolation_level=None)
    conn.execute("PRAGMA journal_mode=DELETE")
    for kind, name in conn.execute("SELECT type, name FROM sqlite_master "
                                   "WHERE name LIKE 'runtable%'").fetchall():
        if kind in ("table", "trigger", "index"):
            conn.execute(f"DROP {kind.upper()} IF EXISTS {name}")
    conn.execute("DELETE FROM metameta WHERE key = 'runtable_schema_version'")
    conn.close()
    return folder


def first_start(folder: Path, work: Path, n_runs: int, page) -> dict[str, float]:
    serve = Serve(folder, work / "serve-reference.log")
    try:
        port = serve.wait_for_port()
        page.goto(f"{serve.base}/?token={TOKEN}")
        page.wait_for_function(
            "() => (document.getElementById('status')?.textContent ?? '')"
            ".includes('Reading the table')", timeout=600_000, polling=50)
        progress = serve.since_start()
        rows_shown(page, n_runs)
        rows = serve.since_start()
        cpu = tree_cpu(serve.proc.pid)
        # (The index over every cell is built after the rows show: let it finish.)
        deadline = time.monotonic() + 600
        while "Finished upgrading" not in serve.log.read_text() and \
                time.monotonic() < deadline:
            time.sleep(0.5)
    finally:
        peak = serve.stop()
    text = serve.log.read_text()
    found = re.search(r"for the first time \(\d+ runs\) in ([\d.]+) s \(CPU ([\d.]+) s",
                      text)
    index = re.search(r"Finished upgrading .* in ([\d.]+) s", text)
    nan = float("nan")
    return {"port": port, "progress": progress, "rows": rows, "peak": peak, "cpu": cpu,
            "read": float(found.group(1)) if found else nan,
            "read_cpu": float(found.group(2)) if found else nan,
            "index": float(index.group(1)) if index else nan}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=20_000)
    parser.add_argument("--variables", type=int, default=500)
    parser.add_argument("--keep", type=Path, help="build into (or reuse) this folder")
    parser.add_argument("--skip-reference", action="store_true",
                        help="leave out the first start on a folder the reference made")
    parser.add_argument("--only", default="written,slow,reference",
                        help="cases to measure, comma-separated (default: all three)")
    args = parser.parse_args()
    cases = set(args.only.split(","))
    if args.skip_reference:
        cases.discard("reference")

    from runtable.testing.browser import BrowserUnavailable, chromium_page

    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        folder = args.keep or work / "db"
        synthetic_folder(folder, args.runs, args.variables)
        ensure_copy(folder)
        with sqlite3.connect(f"file:{folder / 'runs.sqlite'}?mode=ro", uri=True) as conn:
            n_runs = conn.execute("SELECT count(*) FROM run_info").fetchone()[0]
        print(f"runtable serve on {n_runs} runs x {args.variables} variables "
              "(headless Chromium, 1600 x 900):", flush=True)
        try:
            if "written" in cases:
                with chromium_page() as page:
                    before = load_average()
                    written = written_folder(folder, work, n_runs, page)
                    after = load_average()
                report_written(written, before, after)
            if "slow" in cases:
                with chromium_page() as page:
                    before = load_average()
                    slow = slow_link(folder, work, n_runs, page)
                    slow_load = load_average()
                report_slow(slow, f"{before} before, {slow_load} after")
            if "reference" in cases:
                made = reference_made(folder, work / "reference")
                with chromium_page() as page:
                    before = load_average()
                    reference = first_start(made, work, n_runs, page)
                report_reference(reference, f"{before} before, {load_average()} after")
        except BrowserUnavailable as exc:
            sys.exit(str(exc))


def target(seconds: float, goal: float) -> str:
    return f"{seconds:7.2f} s   {seconds / goal:.2f} x the {goal:g} s target"


def report_written(written: dict[str, float], before: str, after: str) -> None:
    print(f"  A folder runtable wrote (load average {before} before, {after} after):")
    print(f"    process start -> port answers         {written['port']:7.2f} s")
    print(f"    process start -> rows with data       {target(written['rows'], ROWS_TARGET_S)}"
          f"   (server CPU {written['rows_cpu']:.2f} s)")
    print(f"    process start -> every column's data  {target(written['all'], ALL_TARGET_S)}"
          f"   (server CPU {written['all_cpu']:.2f} s)")
    rest_cpu = written["all_cpu"] - written["rows_cpu"]
    print(f"    CPU from rows to every column: server {rest_cpu:.2f} s, "
          f"browser {written['rest_browser']:.2f} s")
    print(f"    peak memory of the process tree       {written['peak'] / 2**30:7.2f} GiB",
          flush=True)


def report_slow(slow: dict[str, float], slow_load: str) -> None:
    print(f"  Over 100 Mbit/s and 20 ms, server running (load average {slow_load}):")
    print(f"    navigation -> rows with data          {target(slow['rows'], ROWS_TARGET_S)}")
    print(f"    a column scrolled into view           {target(slow['scroll'], COLUMN_TARGET_S)}")
    print(f"    a column sorted                       {target(slow['sort'], COLUMN_TARGET_S)}")
    print(f"    a column filtered                     {target(slow['filter'], COLUMN_TARGET_S)}")
    print(f"    ({slow['already_loaded']:.0f} of those 3 columns were in already when "
          f"the rows showed; the server used {slow['cpu']:.2f} s of CPU from its start)",
          flush=True)


def report_reference(reference: dict[str, float], reference_load: str) -> None:
    if reference is not None:
        print(f"  A folder the reference made, first start (load average {reference_load}):")
        print(f"    process start -> port answers         {reference['port']:7.2f} s")
        print(f"    process start -> progress shown       {reference['progress']:7.2f} s")
        print(f"    process start -> rows with data       {reference['rows']:7.2f} s   "
              f"(server CPU {reference['cpu']:.2f} s)")
        print(f"    the server's own read of the folder   {reference['read']:7.2f} s   "
              f"(CPU {reference['read_cpu']:.2f} s)   rows "
              f"{reference['rows'] - reference['read']:.2f} s later than the read's length "
              "(target: 2 s)")
        print(f"    then the index over every cell        {reference['index']:7.2f} s")
        print(f"    peak memory of the process tree       {reference['peak'] / 2**30:7.2f} GiB",
              flush=True)


if __name__ == "__main__":
    main()
