"""The read API stays light: no plotting libraries, no web server, no file watcher."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

HEAVY = ("matplotlib", "plotly", "watchdog", "runtable.server", "extra_data")

SCRIPT = """
import json, sys
import runtable.api
from runtable import Database
db = Database(sys.argv[1])
db.table(with_titles=True)
for name in db[1].keys():
    if name not in ("da", "ds", "frame", "series"):
        db[1, name].read(); db[1, name].summary(); db[1, name].preview_data()
print(json.dumps(sorted(m for m in sys.modules if m.split(".")[0] in
                        ("matplotlib", "plotly", "watchdog", "extra_data")
                        or m.startswith("runtable.server"))))
"""


def test_api_imports_nothing_heavy(shared_folder: Path, tmp_path: Path) -> None:
    proc = subprocess.run(
        [sys.executable, "-c", SCRIPT, str(shared_folder)], capture_output=True, text=True,
        env={"RUNTABLE_CACHE_DIR": str(tmp_path), "PATH": "/usr/bin:/bin"}, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout) == []


def test_import_alone(tmp_path: Path) -> None:
    code = ("import sys, runtable.api; "
            f"print([m for m in {HEAVY!r} if m in sys.modules or "
            "any(k.startswith(m + '.') for k in sys.modules)])")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True, timeout=60).stdout
    assert out.strip() == "[]"
