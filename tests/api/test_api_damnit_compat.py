"""A folder written by runtable reads the same through the reference's own package.

The reference (PyPI ``damnit==0.4.0``; its API needs only h5py, numpy, pandas,
xarray, h5netcdf, plotly, pyarrow) is installed once into ``.venv-damnit/`` at the
repository root (git-ignored, reused between runs) with ``uv``. Both readers dump
everything through ``compat_normalize`` and the results are compared.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from runtable.api import Database
from runtable.context.cell import Cell
from runtable.context.codehash import text_sha256
from runtable.execute.fragment import FragmentWriter
from runtable.store import create_folder, open_db
from runtable.store.contexts import keep_text
from runtable.store.history import cell_history

from . import compat_normalize
from .api_folder import PROPOSAL, START, build_folder, write_and_merge

REFERENCE = "damnit==0.4.0"
ROOT = Path(__file__).resolve().parents[2]
VENV = ROOT / ".venv-damnit"
HERE = Path(__file__).resolve().parent

DUMP = """
import json, sys
sys.path.insert(0, sys.argv[2])
import compat_normalize
from damnit import Damnit
print(json.dumps(compat_normalize.everything(Damnit(sys.argv[1]))))
"""


def _uv() -> str | None:
    beside = Path(sys.executable).with_name("uv")
    return str(beside) if beside.exists() else shutil.which("uv")


def _has_damnit(python: Path) -> bool:
    return python.exists() and subprocess.run(
        [python, "-c", "import damnit.api"], capture_output=True).returncode == 0


@pytest.fixture(scope="module")
def damnit_python() -> Path:
    python = VENV / "bin" / "python"
    if _has_damnit(python):
        return python
    uv = _uv()
    if uv is None:
        pytest.skip("uv is not installed, so the reference package can't be installed")
    for cmd in ([uv, "venv", "--quiet", "--python", sys.executable, str(VENV)],
                [uv, "pip", "install", "--quiet", "--python", str(python), REFERENCE]):
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
        if proc.returncode != 0:
            pytest.skip(f"could not install {REFERENCE}: {proc.stderr.strip()[-500:]}")
    assert _has_damnit(python)
    return python


def _in_our_order(table: dict[str, Any], columns: list[str]) -> dict[str, Any]:
    """The reference sorts variable names and puts 'comment' at position 3 only when no
    run has a comment; we keep the context file's order, 'comment' always fourth."""
    assert sorted(table["columns"]) == sorted(columns)
    order = [table["columns"].index(c) for c in columns]
    return {"columns": [table["columns"][j] for j in order],
            "dtypes": [table["dtypes"][j] for j in order],
            "rows": [[row[j] for j in order] for row in table["rows"]]}


def test_reference_package_reads_our_folder(damnit_python: Path, tmp_path: Path) -> None:
    _compare_readers(damnit_python, build_folder(tmp_path / "amore"), tmp_path)


def test_reference_package_reads_a_folder_with_history(damnit_python: Path,
                                                      tmp_path: Path) -> None:
    """Runs reprocessed by another context text, a comment and a typed value edited:
    runtable's history (its own tables, root attributes and kept texts) is invisible
    to the reference, which reads the values as they are now."""
    folder = build_folder(tmp_path / "amore")
    text = "# the second version of the context file\n"
    sha = text_sha256(text)
    keep_text(folder, sha, text, {"label": "0" * 64})
    with open_db(folder) as db:
        writer = FragmentWriter(db.extracted_dir, PROPOSAL, 2, journal=False,
                                context_sha256=sha)
        writer.add("start_time", Cell(START + 200))
        writer.add("label", Cell("second, again"))
        writer.add("xgm_flux", Cell(np.arange(4.0) * 2, summary="mean", units="mJ"))
        db.merge_fragment(writer.finish())
        db.set_comment(PROPOSAL, 1, "good run, checked")
        db.set_user_value(PROPOSAL, 1, "quality", 0.75)
        assert [e.value for e in cell_history(db, PROPOSAL, 2, "label")] == [
            "second", "second, again"]
        assert len(cell_history(db, PROPOSAL, 1, "comment")) == 2
    _compare_readers(damnit_python, folder, tmp_path)


def _compare_readers(damnit_python: Path, folder: Path, tmp_path: Path) -> None:
    ours, ref = _both_readers(folder, damnit_python, tmp_path)
    # Deliberate difference: the reference raises KeyError for a variable that
    # has a summary but no data group (Cell(None, summary_value=...)); we return
    # the summary from read() and None from type_hint()/preview_data().
    summary_only_ref = ref["variables"]["1"]["vars"]["summary_only"]
    summary_only = ours["variables"]["1"]["vars"]["summary_only"]
    assert summary_only_ref["read"] == {"raised": "KeyError"}
    assert summary_only["read"] == summary_only["summary"] == 7
    assert (summary_only["type_hint"], summary_only["preview"]) == (None, None)
    summary_only_ref.update(read=7, type_hint=None, preview=None)

    assert ours["table"] == ref["table"]
    assert ours["table_titles"] == ref["table_titles"]
    assert ours == ref


def _both_readers(folder: Path, damnit_python: Path, tmp_path: Path
                  ) -> tuple[dict[str, Any], dict[str, Any]]:
    """Everything read from *folder* by us and by the reference (its tables' columns
    in our order)."""
    with Database(folder, cache=False) as db:
        ours = json.loads(json.dumps(compat_normalize.everything(db)))
    script = tmp_path / "dump.py"
    script.write_text(DUMP)
    proc = subprocess.run([damnit_python, script, folder, HERE], capture_output=True,
                          text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    ref = json.loads(proc.stdout)
    for key in ("table", "table_titles"):
        ref[key] = _in_our_order(ref[key], ours[key]["columns"])
    return ours, ref


def test_reference_package_reads_bools_as_the_0_and_1_it_stores(
        damnit_python: Path, tmp_path: Path) -> None:
    """Where a value was a bool, we record so in the row's attributes and read a bool;
    the reference ignores that attribute and reads SQLite's 0/1, nothing else differs."""
    folder = tmp_path / "amore"
    with create_folder(folder, PROPOSAL) as db:
        db.update_computed_variables({"aligned": {"title": "Aligned"},
                                      "count": {"title": "Count"}})
        write_and_merge(db, 1, {"start_time": Cell(START + 1), "aligned": Cell(True),
                                "count": Cell(1)})
        write_and_merge(db, 2, {"start_time": Cell(START + 2),
                                "aligned": Cell(np.bool_(False)), "count": Cell(2)})
    ours, ref = _both_readers(folder, damnit_python, tmp_path)
    for key in ("table", "table_titles"):
        at = ours[key]["columns"].index("aligned" if key == "table" else "Aligned")
        assert ours[key]["dtypes"][at] == "boolean"
        assert [row[at] for row in ours[key]["rows"]] == [True, False]
        assert [row[at] for row in ref[key]["rows"]] == [1, 0]
        ref[key]["dtypes"][at] = "boolean"
        for row, value in zip(ref[key]["rows"], (True, False), strict=True):
            row[at] = value
    for run, value in (("1", True), ("2", False)):
        aligned = ref["variables"][run]["vars"]["aligned"]
        assert aligned["summary"] == int(value) and aligned["read"] is value
        assert ours["variables"][run]["vars"]["aligned"]["summary"] is value
        aligned["summary"] = value
    assert ours == ref
