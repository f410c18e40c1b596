"""One SQLite library per process: ``runs.sqlite`` (and its ``-wal``/``-shm``) is opened
only through Python's ``sqlite3``, and only by the store.

SQLite's locks are POSIX locks, which belong to the process: closing *any* descriptor
of the file drops all of them, so a plain ``open()`` of the database (to hash it, say)
or a second SQLite library (a driver's bundled copy) in a process breaks the locks of
its ``sqlite3`` connections ("How To Corrupt An SQLite Database File", section 2.2).
"""

from __future__ import annotations

import ast
import json
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

import runtable

SRC = Path(runtable.__file__).parent
#: Names whose values are, or lead to, the database file's path.
_DB_NAMES = {"db_path", "DB_NAME", "runs.sqlite", "-wal", "-shm"}
#: Calls that open a file (or read/write/copy it, which opens it).
_OPENERS = {"open", "read_bytes", "read_text", "write_bytes", "write_text", "file_digest",
            "copy", "copy2", "copyfile", "File", "memory_map", "OSFile", "connect"}
#: Where the database may be connected to (through sqlite3 only).
_STORE_CONNECTS = {("store/folder/__init__.py", "connect"), ("store/folder/core.py", "connect"),
                   ("store/tableread.py", "connect")}


def _mentions(node: ast.AST, tainted: set[str]) -> bool:
    for sub in ast.walk(node):
        if isinstance(sub, ast.Name) and (sub.id in tainted or sub.id in _DB_NAMES):
            return True
        if isinstance(sub, ast.Attribute) and sub.attr in _DB_NAMES:
            return True
        if isinstance(sub, ast.Constant) and isinstance(sub.value, str) and any(
                name in sub.value for name in ("runs.sqlite", "-wal", "-shm")):
            return True
    return False


def database_openings(source: str) -> list[tuple[int, str]]:
    """(line, call) of every call in *source* that opens a file whose path comes from
    the database's (names assigned from such a path count too)."""
    tree = ast.parse(source)
    functions = [n for n in ast.walk(tree) if isinstance(n, ast.FunctionDef | ast.AsyncFunctionDef)]
    top = ast.Module(body=[n for n in tree.body if not isinstance(
        n, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef)], type_ignores=[])
    found = []
    for scope in [top, *functions]:
        tainted: set[str] = set()
        assigns = [n for n in ast.walk(scope) if isinstance(n, ast.Assign | ast.AnnAssign)]
        for _ in range(3):  # names assigned from names assigned from the path
            for node in assigns:
                if node.value is not None and _mentions(node.value, tainted):
                    targets = node.targets if isinstance(node, ast.Assign) else [node.target]
                    tainted.update(t.id for t in targets if isinstance(t, ast.Name))
        for node in ast.walk(scope):
            if not isinstance(node, ast.Call):
                continue
            func = node.func
            name = func.id if isinstance(func, ast.Name) else (
                func.attr if isinstance(func, ast.Attribute) else "")
            if name not in _OPENERS:
                continue
            receiver = func.value if isinstance(func, ast.Attribute) else None
            args = [*node.args, *(k.value for k in node.keywords)]
            if any(_mentions(a, tainted) for a in args) or (
                    receiver is not None and name not in ("connect", "copy")
                    and _mentions(receiver, tainted)):
                found.append((node.lineno, name))
    return sorted(set(found))


def test_the_lint_finds_a_plain_open_of_the_database() -> None:
    """The check itself: the fingerprint the read API once took of the file."""
    source = textwrap.dedent('''
        def _fingerprint(db_path):
            with open(db_path, "rb") as f:
                header = f.read(100)
            wal_path = Path(f"{db_path}-wal")
            with open(wal_path, "rb") as f:
                digest = hashlib.file_digest(f, "blake2b")
            return header, digest

        def fine(folder):
            return (folder / "context.py").read_text(), (folder / "runs.sqlite").is_file()
    ''')
    assert [name for _, name in database_openings(source)] == ["open", "open"]


def test_nothing_but_the_store_opens_the_database_file() -> None:
    problems = []
    for path in sorted(SRC.rglob("*.py")):
        rel = path.relative_to(SRC).as_posix()
        for line, name in database_openings(path.read_text(encoding="utf-8")):
            if (rel, name) not in _STORE_CONNECTS:
                problems.append(f"{rel}:{line}: {name}()")
    assert problems == []


_EXERCISE = '''
import json, sys, urllib.request
from pathlib import Path

folder = Path(sys.argv[1])
opened, connects = [], []

def hook(event, args):
    if event == "open" and args and isinstance(args[0], (str, bytes, Path)):
        name = Path(args[0] if not isinstance(args[0], bytes) else args[0].decode()).name
        if name.startswith("runs.sqlite"):
            opened.append(name)
    elif event == "sqlite3.connect":
        frame = sys._getframe(1)
        while frame is not None and "sqlite3" in frame.f_code.co_filename:
            frame = frame.f_back
        connects.append(frame.f_code.co_filename if frame else "?")

sys.addaudithook(hook)

from runtable.api import Database
from runtable.cli import main
from runtable.server.app import close_app, create_app
from runtable.testing.server_thread import serve_in_thread

with Database(folder) as db:
    db.table(); db.runs(); db[1]["flux"].summary(); db[1, "flux"].read()
    db.table(with_titles=True)
main(["table", "--in", str(folder)])
main(["export", "--in", str(folder), "-o", str(folder.parent / "out.csv")])
app = create_app(folder, "token-0123456789")
with serve_in_thread(app) as base:
    for path in ("/api/table", "/api/table?format=binary", "/api/table?runs=1&names=label"):
        urllib.request.urlopen(base + path + ("&" if "?" in path else "?")
                               + "token=token-0123456789").read()
    request = urllib.request.Request(base + "/api/runs/2/comment?token=token-0123456789",
                                     data=b'{"text": "edited"}', method="PUT",
                                     headers={"Content-Type": "application/json"})
    urllib.request.urlopen(request).read()
close_app(app)
maps = Path("/proc/self/maps").read_text()
libraries = sorted({line.split()[-1] for line in maps.splitlines()
                    if "sqlite" in line.lower() or "adbc" in line.lower()})
print(json.dumps({"opened": opened, "connects": sorted(set(connects)),
                  "libraries": libraries,
                  "adbc": [m for m in sys.modules if "adbc" in m]}))
'''


def test_reading_serving_and_exporting_open_the_database_only_through_the_store(
        tmp_path: Path) -> None:
    """The read API, ``runtable table`` / ``export`` and the web server in one process:
    no plain open of runs.sqlite, every sqlite3 connection made by the store, and one
    SQLite library mapped."""
    from runtable.store import create_folder

    from .test_store_table import PROPOSAL, merge, run_cells

    folder = tmp_path / "amore"
    with create_folder(folder, PROPOSAL) as db:
        for run in (1, 2):
            merge(db, run, run_cells(run))
    script = tmp_path / "exercise.py"
    script.write_text(_EXERCISE)
    proc = subprocess.run([sys.executable, str(script), str(folder)], capture_output=True,
                          text=True, timeout=300, cwd=tmp_path,
                          env={"RUNTABLE_CACHE_DIR": str(tmp_path / "cache"),
                               "PATH": "/usr/bin:/bin", "HOME": str(tmp_path)})
    assert proc.returncode == 0, proc.stderr[-3000:]
    report = json.loads(proc.stdout.strip().splitlines()[-1])
    assert report["opened"] == []
    assert report["adbc"] == []
    assert report["connects"] and all(
        f"{Path('runtable') / 'store'}" in c or f"{Path('runtable') / 'jobs'}" in c
        for c in report["connects"]), report["connects"]
    libraries = [lib for lib in report["libraries"] if "libsqlite3" in lib]
    assert len(libraries) <= 1, report["libraries"]
    if not libraries:
        pytest.skip("sqlite3 is linked statically here: no library to count")
