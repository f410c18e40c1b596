"""The filter language's conformance cases (``docs/filters.md``) and the real
database folder they are about: ``db.table(where=)``, ``runtable table/export
--where``, ``GET /api/table?where=`` and the web GUI's filters are all checked on these
expressions and the runs each keeps."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace
from typing import Any

import numpy as np

from ..context.cell import Cell
from ..execute import write_fragment
from ..store import create_folder

PROPOSAL = 1234
#: Run r starts at START + 300 r (epoch seconds).
START = 1_700_000_000.0

__all__ = ["CASES", "PROPOSAL", "RUNS", "build_where_folder"]

RUNS = range(1, 13)

#: (expression, the runs it keeps) on the folder of :func:`build_where_folder`.
CASES: list[tuple[str, list[int]]] = [
    ("", list(RUNS)),
    ("n_trains > 800", [7, 8, 9, 10, 11, 12]),
    ("n_trains >= 700 and n_trains <= 900", [4, 5, 6, 7, 8]),
    ("n_trains in 700..900", [4, 5, 6, 7, 8]),
    ("Trains in 700..900", [4, 5, 6, 7, 8]),  # by title
    ('"XGM/Photon flux" < 1.5', [1, 3, 4, 6, 7, 9, 10, 12]),
    ("sample = YAG", [3, 6, 9, 12]),
    ('sample = "Au foil"', [1, 4, 7, 10]),
    ("sample != YAG", [1, 2, 4, 5, 7, 8, 10, 11]),
    ('sample in ["YAG", "empty"]', [2, 3, 5, 6, 8, 9, 11, 12]),
    ("sample contains FOIL", [1, 4, 7, 10]),
    ("sample ~ ag", [3, 6, 9, 12]),
    ("ratio has error", [3, 6, 9, 12]),
    ("ratio has value", [1, 2, 4, 5, 7, 8, 10, 11]),
    ("ratio has no error", [1, 2, 4, 5, 7, 8, 10, 11]),
    ("later is missing", [1, 2, 3, 4, 5, 6, 7, 8]),
    ("later is not missing", [9, 10, 11, 12]),
    ("run in [1, 5..7, 11..]", [1, 5, 6, 7, 11, 12]),
    ("run in ..3", [1, 2, 3]),
    ("run = 4 or run = 8", [4, 8]),
    ("not (run > 2 and run < 11)", [1, 2, 11, 12]),
    ("not sample = YAG and n_trains < 700", [1, 2]),
    ("n_trains in 700..900 or later is missing and sample = YAG", [3, 4, 5, 6, 7, 8]),
    ("(n_trains in 700..900 or later is missing) and sample = YAG", [3, 6]),
    ("tag:beam has error", [3, 6, 9, 12]),
    ("tag:beam >= 1.5", [2, 5, 8, 11]),
    ("good = true", [2, 4, 6, 8, 10, 12]),
    ("good = false", [1, 3, 5, 7, 9, 11]),
    ("comment contains beam", [5]),
    ("comment is missing", [r for r in RUNS if r not in (5, 7)]),
    ('timestamp >= "2023-11-14 23:53:20+01:00"', [8, 9, 10, 11, 12]),
    ("timestamp < 1700000400", [1]),
    ('timestamp contains "2023-11-14 23:3"', [4, 5]),  # as shown, in Europe/Berlin
]


def n_trains(run: int) -> int:
    return 500 + 50 * run


def _merge(db: Any, run: int, cells: dict[str, Any], errors: dict[str, BaseException]
           ) -> None:
    results = SimpleNamespace(cells=cells, errors=errors, provenance="context.py")
    db.merge_fragment(write_fragment(results, db.extracted_dir, PROPOSAL, run))


def build_where_folder(path: Path) -> Path:
    """Runs 1-12: ``n_trains`` (550..1100), ``sample`` (Au foil / empty / YAG by run
    mod 3), ``xgm_flux`` (run mod 3 / 2 + 0.5: 0.5, 1.0, 1.5...), ``ratio`` failing
    on every third run, ``later`` only from run 9; a user boolean ``good`` (even
    runs), comments on runs 5 and 7. ``xgm_flux`` and ``ratio`` have the tag beam."""
    samples = {1: "Au foil", 2: "empty", 0: "YAG"}
    with create_folder(path, PROPOSAL) as db:
        db.update_computed_variables({
            "n_trains": {"title": "Trains", "description": None, "tags": (),
                         "attributes": None},
            "sample": {"title": "Sample", "description": None, "tags": (),
                       "attributes": None},
            "xgm_flux": {"title": "XGM/Photon flux", "description": None,
                         "tags": ("beam",), "attributes": None},
            "ratio": {"title": "Ratio", "description": None, "tags": ("beam",),
                      "attributes": None},
            "later": {"title": "Added later", "description": None, "tags": (),
                      "attributes": None},
        })
        for run in RUNS:
            cells = {
                "start_time": Cell(START + 300 * run),
                "n_trains": Cell(n_trains(run)),
                "sample": Cell(samples[run % 3]),
                "xgm_flux": Cell(np.float64((run % 3) / 2 + 0.5 + (0.25 if run % 3 == 0
                                                                   else 0))),
            }
            errors: dict[str, BaseException] = {}
            if run % 3 == 0:
                errors["ratio"] = ZeroDivisionError("no beam")
            else:
                cells["ratio"] = Cell(run / 10)
            if run >= 9:
                cells["later"] = Cell(run)
            _merge(db, run, cells, errors)
        db.add_user_variable("good", "boolean", title="Good")
        for run in RUNS:
            db.set_user_value(PROPOSAL, run, "good", run % 2 == 0)
        db.set_comment(PROPOSAL, 5, "beam lost")
        db.set_comment(PROPOSAL, 7, "fine")
    return path
