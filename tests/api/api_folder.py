"""A real database folder for the read API's tests: fragments written by
runtable's own fragment writer (the same code a processing job runs) and merged
by the store, plus what people add by hand (comments, a user-editable column)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import xarray as xr

from runtable.context.cell import Cell
from runtable.execute import write_fragment
from runtable.store import create_folder

PROPOSAL = 1234
START = 1_700_000_000.0

TITLES = {
    "xgm_flux": "XGM flux",
    "camera": "Camera image",
    "label": "Label",
    "count": "Count",
    "trend": "Trend",
    "z": "Complex value",
    "cube": "Cube",
    "da": "Data array",
    "ds": "Data set",
    "frame": "Frame",
    "series": "Series",
    "with_preview": "With preview",
    "summary_only": "Summary only",
    "broken": "Broken",
    "never": "Never set",
}


@dataclass
class Results:
    """What ``write_fragment`` needs: cells, errors, provenance."""

    cells: dict[str, Any]
    errors: dict[str, BaseException] = field(default_factory=dict)
    provenance: str = "context.py"


def run1_cells() -> dict[str, Any]:
    rng = np.random.default_rng(1)
    return {
        "start_time": Cell(START + 100),
        "xgm_flux": Cell(np.arange(10.0) * 1.5, summary="mean", units="mJ"),
        "camera": Cell(rng.random((20, 30))),
        "label": Cell("hello"),
        "count": Cell(42),
        "trend": Cell(np.linspace(0, 1, 50)),
        "z": Cell(np.complex128(1 + 2j)),
        "cube": Cell(np.zeros((2, 2, 2))),
        "da": Cell(xr.DataArray(np.arange(6.0).reshape(2, 3), dims=("x", "y"),
                                coords={"x": [10, 20]}, attrs={"units": "V", "note": "n"},
                                name="signal")),
        "ds": Cell(xr.Dataset({"a": ("t", np.arange(4.0)), "b": ("t", np.ones(4))})),
        "frame": Cell(pd.DataFrame({"a": [1, 2, 3], "b": [0.5, 1.5, 2.5]})),
        "series": Cell(pd.Series([1.0, 2.0, 3.0], name="s")),
        "with_preview": Cell(np.zeros((3, 3, 3)), preview=np.arange(4.0)),
        "summary_only": Cell(None, summary_value=7),
    }


def write_and_merge(db: Any, run: int, cells: dict[str, Any],
                    errors: dict[str, BaseException] | None = None) -> None:
    path = write_fragment(Results(cells, errors or {}), db.extracted_dir, PROPOSAL, run)
    db.merge_fragment(path)


def build_folder(path: Path) -> Path:
    """Runs 1-3 with start times, run 4 known but never taken (no start time).

    * run 1: every kind of value, an error (``broken``), a comment, a user value;
    * run 2: ``xgm_flux`` and ``label`` only (``camera`` etc. missing);
    * run 3: only a start time and a comment;
    * ``never`` is declared but never computed; ``quality`` is user-editable.
    """
    with create_folder(path, PROPOSAL) as db:
        db.update_computed_variables(
            {name: {"title": title, "description": None, "tags": (), "attributes": None}
             for name, title in TITLES.items()})
        write_and_merge(db, 1, run1_cells(), {"broken": ZeroDivisionError("division by zero")})
        write_and_merge(db, 2, {"start_time": Cell(START + 200),
                                "xgm_flux": Cell(np.arange(4.0), summary="mean", units="mJ"),
                                "label": Cell("second")})
        write_and_merge(db, 3, {"start_time": Cell(START + 300)})
        db.ensure_run(PROPOSAL, 4)
        db.set_comment(PROPOSAL, 1, "good run")
        db.set_comment(PROPOSAL, 3, "empty run")
        db.add_user_variable("quality", "number", title="Quality")
        db.set_user_value(PROPOSAL, 1, "quality", 0.5)
    return path
