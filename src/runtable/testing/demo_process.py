"""``runtable demo`` as a real process, for tests that drive it from outside.

>>> with running_demo(tmp_path / "demo", "--runs", "1") as demo:  # doctest: +SKIP
...     urllib.request.urlopen(f"{demo.url}/api/health?token={demo.token}")
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

_URL_RE = re.compile(r"(http://\S+)/\?token=(\S+)")


@dataclass
class DemoProcess:
    """A running demo: its process, the URL and token it printed, and its output
    so far (``lines``, filled by a reader thread)."""

    proc: subprocess.Popen[str]
    url: str = ""
    token: str = ""
    lines: list[str] = field(default_factory=list)

    @property
    def output(self) -> str:
        return "".join(self.lines)

    def check_alive(self) -> None:
        """AssertionError with the demo's output if it has exited."""
        assert self.proc.poll() is None, f"the demo exited:\n{self.output}"


def demo_env() -> dict[str, str]:
    """The environment for a demo that must find only its own mock proposal."""
    env = dict(os.environ)
    env.pop("EXTRA_DATA_DATA_ROOT", None)
    env["RUNTABLE_CACHE_DIR"] = "off"
    return env


@contextmanager
def running_demo(directory: str | Path, *args: str, token: str = "demo-test-token-0123456789",
                 start_timeout: float = 240.0) -> Iterator[DemoProcess]:
    """Start ``runtable demo DIRECTORY --port 0 --token TOKEN ARGS...``, wait until it
    prints its URL, and stop it with Ctrl-C (SIGINT) at the end. After the block,
    ``proc.returncode`` is the demo's exit status."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "runtable.cli", "demo", str(directory), "--port", "0",
         "--token", token, *args],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=demo_env())
    demo = DemoProcess(proc)
    stdout = proc.stdout
    assert stdout is not None
    reader = threading.Thread(target=lambda: demo.lines.extend(stdout), daemon=True)
    reader.start()
    try:
        deadline = time.monotonic() + start_timeout
        while not demo.url:
            match = next((m for m in map(_URL_RE.search, list(demo.lines)) if m), None)
            if match:
                demo.url, demo.token = match.group(1), match.group(2)
                break
            demo.check_alive()
            if time.monotonic() > deadline:
                raise TimeoutError(f"the demo printed no URL in {start_timeout:g} s:\n"
                                   f"{demo.output}")
            time.sleep(0.2)
        yield demo
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGINT)
        try:
            proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        reader.join(timeout=10)
        stdout.close()
