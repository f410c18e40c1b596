"""A real database folder for the GUI's browser tests, written the way the service
writes it: results -> fragment (``runtable.execute``) -> merge (``runtable.store``),
plus the matching events on the app's bus, which is what the server's own wiring does.
"""

from __future__ import annotations

import math
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from runtable.context import Cell, Results, Skip
from runtable.events import EventBus, RunAdded, ValuesMerged
from runtable.server.app import create_app
from runtable.store import DatabaseFolder, create_folder

from .conftest import serve

PROPOSAL = 4321
TOKEN = "gui-test-token-123"
T0 = 1_790_000_000.0

#: The context file's variables as the service records them (title, tags, description).
VARIABLES = {
    "n_trains": {"title": "Trains", "description": "Number of trains in the run",
                 "tags": ["general"]},
    "xgm_energy": {"title": "XGM/Pulse energy", "description": "Mean pulse energy",
                   "tags": ["xgm"]},
    "xgm_flux": {"title": "XGM/Photon flux", "description": "Photons per pulse",
                 "tags": ["xgm"]},
    "sample": {"title": "Sample", "description": "What was in the beam", "tags": ["sample"]},
    "det_image": {"title": "Detector/Image", "description": "Mean detector image",
                  "tags": ["detector"]},
    "det_trend": {"title": "Detector/Intensity trend", "description": "Per-train intensity",
                  "tags": ["detector"]},
    "status": {"title": "Status", "description": "Cell with a background colour"},
    "ratio": {"title": "Ratio", "description": "Fails for some runs"},
    "phase": {"title": "Phase", "description": "A complex number"},
}
SAMPLES = ["YAG", "Au foil", "water jet"]
HOSTILE = '<img src=x onerror="window.__injected = true">'


def run_results(run: int) -> Results:
    """The results of one run: every kind of cell the table shows."""
    rng = np.random.default_rng(run)
    cells: dict[str, Cell] = {
        "start_time": Cell(T0 + 420 * run),
        "n_trains": Cell(600 + 37 * run),
        "xgm_energy": Cell(np.full(10, 1234.5678 / run) + (np.arange(10) if run % 4 == 0 else 0),
                           summary="mean", units="µJ"),
        "xgm_flux": Cell(3.5e-7 * run, bold=run == 2),
        "sample": Cell(SAMPLES[run % 3] if run != 7 else HOSTILE),
        "det_image": Cell(rng.normal(size=(16, 32)) + np.arange(32)),
        "det_trend": Cell(np.sin(np.linspace(0, 6, 60) + run)),
        "status": Cell("check" if run % 5 == 0 else "ok",
                       background=(255, 221, 0) if run % 5 == 0 else (20, 40, 120)),
        "phase": Cell(complex(math.cos(run), -math.sin(run))),
    }
    errors: dict[str, BaseException] = {}
    if run % 6 == 0:
        errors["ratio"] = ZeroDivisionError("division by zero")
    elif run % 6 == 3:
        errors["ratio"] = Skip("no beam in this run")
    else:
        cells["ratio"] = Cell(run / 7)
    return Results(cells, errors)


def write_run(db: DatabaseFolder, run: int, results: Results | None = None) -> None:
    """Execute-and-merge equivalent for one run: write its fragment, merge it."""
    db.ensure_run(PROPOSAL, run, added_at=T0 + 420 * run)
    path = (results or run_results(run)).save(db.extracted_dir, PROPOSAL, run)
    db.merge_fragment(path)


def make_folder(path: Path, runs: range) -> Path:
    """A database folder with the variables above and `runs` merged."""
    db = create_folder(path, PROPOSAL)
    try:
        db.update_computed_variables(VARIABLES)
        for run in runs:
            write_run(db, run)
    finally:
        db.close()
    return path


@dataclass
class GuiServer:
    """The real app for a folder, served on a free port; `url` opens the GUI."""

    base: str
    db_dir: Path
    bus: EventBus
    _lock: threading.Lock

    @property
    def url(self) -> str:
        return f"{self.base}/?token={TOKEN}"

    def add_run(self, run: int, results: Results | None = None) -> None:
        """A new run, as the service announces it: registered, then merged."""
        with self._lock, DatabaseFolder(self.db_dir) as db:
            db.ensure_run(PROPOSAL, run, added_at=T0 + 420 * run)
            self.bus.publish(RunAdded(PROPOSAL, run))
            write_run(db, run, results)
        names = tuple((results or run_results(run)).cells)
        self.bus.publish(ValuesMerged(PROPOSAL, run, names))

    def merge(self, run: int, results: Results) -> None:
        """New values for an existing run."""
        with self._lock, DatabaseFolder(self.db_dir) as db:
            write_run(db, run, results)
        self.bus.publish(ValuesMerged(PROPOSAL, run, tuple(results.cells)))


@contextmanager
def gui_server(db_dir: Path, max_queue: int | None = None) -> Iterator[GuiServer]:
    """Serve the real app for `db_dir` (`max_queue`: each browser's event queue bound).

    As `runtable serve` does."""
    bus = EventBus() if max_queue is None else EventBus(max_queue=max_queue)
    app = create_app(db_dir, TOKEN, bus=bus)
    with serve(app) as base:
        yield GuiServer(base, db_dir, bus, threading.Lock())
