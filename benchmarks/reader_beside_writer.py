"""A notebook's reads beside a busy writer, for minutes: errors and stale reads.

One process merges fragments into a folder without a pause, each through a
``DatabaseFolder`` opened and closed for it (so SQLite checkpoints and deletes the WAL
whenever it believes it is alone), checkpointing with ``TRUNCATE`` every few merges;
this process holds one ``Database`` and reads it over and over (``runs()``,
``table()``, a summary), checking every read against what was committed before it
(``runtable.testing.busy_writer``). Target: 0 errors and 0 stale reads over at least
five minutes. ``tests/api/test_api_beside_writer.py`` is the short version.

    ./dev bench reader_beside_writer [--seconds 300]
"""

from __future__ import annotations

import argparse
import resource
import tempfile
import time
from pathlib import Path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=300.0)
    args = parser.parse_args()

    import os

    from runtable.testing.busy_writer import check_reader, make_folder, start_writer

    with tempfile.TemporaryDirectory() as tmp:
        os.environ["RUNTABLE_CACHE_DIR"] = str(Path(tmp, "cache"))
        folder = make_folder(Path(tmp, "amore"))
        progress = Path(tmp, "progress")
        load = " ".join(Path("/proc/loadavg").read_text().split()[:3])
        t0, c0 = time.perf_counter(), time.process_time()
        children = resource.getrusage(resource.RUSAGE_CHILDREN)
        writer = start_writer(folder, args.seconds, progress)
        report = check_reader(folder, progress, args.seconds, writer)
        reader_cpu = time.process_time() - c0
        writer.wait()
        took = time.perf_counter() - t0
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        writer_cpu = (after.ru_utime + after.ru_stime) - (children.ru_utime + children.ru_stime)
        merges = len(progress.read_text().splitlines())
    print(f"{took:.0f} s: {report.reads} reads beside {merges} merges "
          f"(load average {load} at the start, "
          f"{' '.join(Path('/proc/loadavg').read_text().split()[:3])} at the end)")
    print(f"  CPU: the reader {reader_cpu:.1f} s ({reader_cpu / max(report.reads, 1) * 1000:.1f} "
          f"ms per read), the writer {writer_cpu:.1f} s "
          f"({writer_cpu / max(merges, 1) * 1000:.1f} ms per merge)")
    print(f"  errors: {len(report.errors)}   stale or torn reads: {len(report.stale)}   "
          f"writer exit status: {writer.returncode}")
    for line in (report.errors + report.stale)[:10]:
        print(f"    {line}")


if __name__ == "__main__":
    main()
