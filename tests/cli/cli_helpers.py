"""Helpers of the command-line tests: running the real ``runtable`` command."""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
from pathlib import Path
from typing import Any

#: A context file exercising every kind of cell the table shows: numbers with units,
#: a trendline (1-d array), an image (2-d array), text, a boolean, a variable that
#: always fails and a proc-only variable depending on a raw one.
RICH_CONTEXT = '''
from damnit_ctx import Variable

@Variable(title="XGM flux", units="uJ", summary="mean")
def xgm_flux(run):
    return run["SA1_XTD2_XGM/DOOCS/MAIN", "pulseEnergy.photonFlux"].ndarray()

@Variable(title="Flux trend")
def flux_trend(run):
    return run["SA1_XTD2_XGM/DOOCS/MAIN", "pulseEnergy.photonFlux"].ndarray()

@Variable(title="Camera image")
def camera(run):
    return run["SPB_IRU_CAM/CAM/SIDEMIC:daqOutput", "data.image.pixels"].ndarray().mean(axis=0)

@Variable(title="Label")
def label(run, n: "meta#run_number"):
    return f"run {n}"

@Variable(title="Trains")
def n_trains(run):
    return len(run.train_ids)

@Variable(title="Broken")
def broken(run):
    raise RuntimeError("detector offline")

@Variable(title="Doubled flux", data="proc")
def doubled(run, flux: "var#xgm_flux"):
    return float(flux.mean() * 2)
'''

RAW_VARS = {"xgm_flux", "flux_trend", "camera", "label", "n_trains"}
PROC_VARS = {"doubled"}
FAILING_VARS = {"broken"}

REPO = Path(__file__).resolve().parents[2]


def cli_env(data_root: Path | None = None, **extra: str) -> dict[str, str]:
    """The environment of a ``runtable`` child: this one, with the mock data root."""
    env = dict(os.environ)
    if data_root is not None:
        env["EXTRA_DATA_DATA_ROOT"] = str(data_root)
    env.setdefault("RUNTABLE_CACHE_DIR", "off")
    env.update(extra)
    return env


def runtable_cmd(*args: str | Path) -> list[str]:
    """The command line running ``runtable`` with this interpreter."""
    return [sys.executable, "-m", "runtable.cli", *map(str, args)]


def run_cli(*args: str | Path, data_root: Path | None = None, cwd: Path | None = None,
            timeout: float = 240, **env: str) -> subprocess.CompletedProcess[str]:
    """Run ``runtable ARGS`` as a real subprocess and wait for it."""
    return subprocess.run(runtable_cmd(*args), capture_output=True, text=True,
                          env=cli_env(data_root, **env), cwd=cwd, timeout=timeout)


def stored_values(folder: Path) -> dict[tuple[int, str], Any]:
    """``{(run, name): value}`` of the latest rows of ``run_variables``."""
    conn = sqlite3.connect(f"file:{folder / 'runs.sqlite'}?mode=ro", uri=True)
    try:
        rows = conn.execute(
            "SELECT run, name, value FROM run_variables rv WHERE version = "
            "(SELECT MAX(version) FROM run_variables WHERE proposal = rv.proposal "
            "AND run = rv.run AND name = rv.name)").fetchall()
    finally:
        conn.close()
    return {(run, name): value for run, name, value in rows}


def attributes(folder: Path, run: int, name: str) -> str | None:
    conn = sqlite3.connect(f"file:{folder / 'runs.sqlite'}?mode=ro", uri=True)
    try:
        row = conn.execute("SELECT attributes FROM run_variables WHERE run = ? AND name = ?",
                           (run, name)).fetchone()
    finally:
        conn.close()
    return None if row is None else row[0]
