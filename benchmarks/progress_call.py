"""What reporting progress from inside a variable costs: a tight loop of N items
(default 2,000,000) plain, through ``progress()`` outside a job (no reporter), through
``progress()`` and ``set_progress()`` inside a job (a reporter installed), and how
many snapshots the job sent meanwhile (they are coalesced to a few a second).

    ./dev bench progress_call [--items N]
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--items", type=int, default=2_000_000)
    args = parser.parse_args()
    n = args.items

    from runtable.context import progress, set_progress
    from runtable.context.tracking import reporting

    def plain() -> None:
        for _ in range(n):
            pass

    def wrapped() -> None:
        for _ in progress(range(n)):
            pass

    def stepped() -> None:
        for i in range(n):
            set_progress(i, n)

    print(f"load average: {Path('/proc/loadavg').read_text().split()[0]}")
    base = None
    for label, loop, in_job in (("plain loop", plain, False),
                                ("progress(), outside a job", wrapped, False),
                                ("progress(), in a job", wrapped, True),
                                ("set_progress(i, n), in a job", stepped, True)):
        sent: list[dict] = []
        t0 = time.perf_counter()
        if in_job:
            with reporting(sent.append, total=1):
                loop()
        else:
            loop()
        took = time.perf_counter() - t0
        per = took / n * 1e9
        base = base if base is not None else per
        extra = f", {len(sent)} snapshots sent in {took:.2f} s" if in_job else ""
        print(f"{label:32s} {per:7.1f} ns per item ({per - base:+6.1f} ns){extra}")


if __name__ == "__main__":
    main()
