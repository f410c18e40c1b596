"""Latency of small answers: `GET /api/health` from a real `runtable serve`, on one
kept-alive connection and on a new connection per request. Prints the medians and
their ratio (near 1 once TCP_NODELAY is set; ~25 when Nagle's algorithm meets the
client's delayed ACK, ~40 ms per answer).

    ./dev bench keepalive_latency [--requests N]
"""

from __future__ import annotations

import argparse
import http.client
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

TOKEN = "bench-token-0123456789"


def _timed(conn_factory, requests: int, keep: bool) -> list[float]:
    times = []
    conn = conn_factory() if keep else None
    for _ in range(requests):
        c = conn if keep else conn_factory()
        start = time.perf_counter()
        c.request("GET", "/api/health", headers={"Authorization": f"Bearer {TOKEN}"})
        response = c.getresponse()
        response.read()
        times.append(time.perf_counter() - start)
        if not keep:
            c.close()
    if conn is not None:
        conn.close()
    return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=50)
    args = parser.parse_args()
    from runtable.store import create_folder

    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp) / "db"
        create_folder(folder, 1234).close()
        env = {**os.environ, "RUNTABLE_TOKEN": TOKEN}
        proc = subprocess.Popen([sys.executable, "-m", "runtable.cli", "serve", str(folder),
                                 "--port", "0"], stdout=subprocess.PIPE,
                                stderr=subprocess.DEVNULL, text=True, env=env)
        try:
            assert proc.stdout is not None
            port = None
            for line in proc.stdout:
                if match := re.search(r"127\.0\.0\.1:(\d+)/", line):
                    port = int(match[1])
                    break
            assert port is not None, "the server printed no URL"

            def factory() -> http.client.HTTPConnection:
                return http.client.HTTPConnection("127.0.0.1", port, timeout=10)

            _timed(factory, 5, keep=True)  # warm up
            kept = _timed(factory, args.requests, keep=True)[1:]
            fresh = _timed(factory, args.requests, keep=False)
        finally:
            proc.terminate()
            proc.communicate(timeout=60)
    k, f = statistics.median(kept) * 1000, statistics.median(fresh) * 1000
    print(f"load average: {Path('/proc/loadavg').read_text().split()[0]}")
    print(f"kept-alive connection: median {k:.2f} ms per answer ({len(kept)} requests)")
    print(f"new connection each:   median {f:.2f} ms per answer ({len(fresh)} requests)")
    print(f"ratio kept-alive / new: {k / f:.2f}")


if __name__ == "__main__":
    main()
