"""Realistic proposal folders made with extra_data's own file generators.

The generators write valid European XFEL run files whose datasets are zeros. We then
fill a few datasets with values drawn from a generator seeded by (seed, run), so each
run differs from the next and the same call always writes the same numbers.

Layout (what ``extra_data.open_run`` expects, root from ``EXTRA_DATA_DATA_ROOT``)::

    <root>/<instrument>/<cycle>/p<proposal:06d>/raw/r<run:04d>/RAW-R<run>-*.h5
    <root>/<instrument>/<cycle>/p<proposal:06d>/proc/r<run:04d>/CORR-R<run>-*.h5
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import h5py
import numpy as np

XGM_FLUX = "CONTROL/SA1_XTD2_XGM/DOOCS/MAIN/pulseEnergy/photonFlux/value"
XGM_INTENSITY = "INSTRUMENT/SPB_XTD9_XGM/DOOCS/MAIN:output/data/intensityTD"
CAMERA_IMAGE = "INSTRUMENT/SPB_IRU_CAM/CAM/SIDEMIC:daqOutput/data/image/pixels"
PROC_AGIPD_IMAGE = "INSTRUMENT/SPB_DET_AGIPD1M-1/CORR/0CH0:output/image/data"
PROC_FILLED_FRAMES = 4

#: First run's start (2026-01-01T00:00:00Z); later runs start ``run_spacing_s`` apart.
EPOCH_START = 1767225600


@dataclass(frozen=True)
class MockProposal:
    """Where a mock proposal lives; ``root`` is the value for EXTRA_DATA_DATA_ROOT."""

    root: Path
    proposal: int
    instrument: str = "SPB"
    cycle: str = "202601"

    @property
    def path(self) -> Path:
        return self.root / self.instrument / self.cycle / f"p{self.proposal:06d}"

    def raw_dir(self, run: int) -> Path:
        return self.path / "raw" / f"r{run:04d}"

    def proc_dir(self, run: int) -> Path:
        return self.path / "proc" / f"r{run:04d}"


def make_proposal(
    root: str | Path,
    proposal: int = 1234,
    runs: Iterable[int] = (1, 2, 3),
    *,
    proc: bool = True,
    seed: int = 0,
    camera_shape: tuple[int, int] = (64, 64),
) -> MockProposal:
    """Create a proposal folder with raw (and optionally proc) data for ``runs``.

    >>> prop = make_proposal(tmp_path, 1234, runs=[1, 2])  # doctest: +SKIP
    >>> os.environ["EXTRA_DATA_DATA_ROOT"] = str(prop.root)  # doctest: +SKIP
    >>> extra_data.open_run(1234, 1)  # doctest: +SKIP
    """
    prop = MockProposal(Path(root), proposal)
    prop.path.joinpath("usr").mkdir(parents=True, exist_ok=True)
    for run in runs:
        add_raw_run(prop, run, seed=seed, camera_shape=camera_shape)
        if proc:
            add_proc_run(prop, run, seed=seed)
    return prop


def add_raw_run(
    prop: MockProposal,
    run: int,
    *,
    seed: int = 0,
    camera_shape: tuple[int, int] = (64, 64),
    run_spacing_s: int = 600,
) -> Path:
    """Write the raw data of one run (AGIPD, two XGMs, a camera; 64 trains)."""
    from extra_data.tests.make_examples import make_spb_run

    run_dir = prop.raw_dir(run)
    run_dir.mkdir(parents=True, exist_ok=True)
    make_spb_run(str(run_dir), sensor_size=camera_shape, format_version="1.2")
    _rename_for_run(run_dir, run)
    rng = np.random.default_rng([seed, run])
    start = run_start(run, run_spacing_s)
    # Run-level mean photon flux drifts between runs; trains scatter around it.
    flux_level = 500 + 50 * rng.standard_normal()
    for path in sorted(run_dir.glob("RAW-*-DA01-S*.h5")):
        with h5py.File(path, "r+") as f:
            _fill(f, XGM_FLUX, lambda shape: flux_level + 10 * rng.standard_normal(shape))
            _fill(f, XGM_INTENSITY, lambda shape: rng.gamma(2.0, flux_level / 2, shape))
            _fill(f, CAMERA_IMAGE, lambda shape: _camera_frames(rng, shape))
            _stamp_trains(f, start)
    for path in sorted(run_dir.glob("RAW-*-AGIPD*.h5")):
        with h5py.File(path, "r+") as f:
            _stamp_trains(f, start)
    return run_dir


def run_start(run: int, run_spacing_s: int = 600) -> int:
    """The start time (epoch seconds) mock data gives to ``run``."""
    return EPOCH_START + run * run_spacing_s


def add_proc_run(
    prop: MockProposal, run: int, *, seed: int = 0, run_spacing_s: int = 600
) -> Path:
    """Write calibrated (proc) AGIPD data for one run; module 0's first frames are filled."""
    from extra_data.tests.make_examples import make_modern_spb_proc_run

    run_dir = prop.proc_dir(run)
    run_dir.mkdir(parents=True, exist_ok=True)
    make_modern_spb_proc_run(str(run_dir), format_version="1.2")
    _rename_for_run(run_dir, run)
    rng = np.random.default_rng([seed, run, 1])
    for path in sorted(run_dir.glob("CORR-*.h5")):
        with h5py.File(path, "r+") as f:
            _stamp_trains(f, run_start(run, run_spacing_s))
            if path.name.endswith("AGIPD00-S00000.h5"):
                # Only a few frames: enough for a proc variable to vary, small on disk.
                f[PROC_AGIPD_IMAGE][:PROC_FILLED_FRAMES] = rng.normal(
                    10 + run, 1, (PROC_FILLED_FRAMES, 512, 128)
                )
    return run_dir


def _rename_for_run(run_dir: Path, run: int) -> None:
    # The generators name files after their own example run; real files carry ours.
    for path in run_dir.glob("*-R0*-*.h5"):
        prefix, _, rest = path.name.split("-", 2)
        target = run_dir / f"{prefix}-R{run:04d}-{rest}"
        if target != path:
            path.rename(target)


def _fill(f: h5py.File, name: str, make: Callable[[tuple[int, ...]], Any]) -> None:
    if name in f:
        ds = f[name]
        ds[...] = np.asarray(make(ds.shape)).astype(ds.dtype, copy=False)


def _camera_frames(rng: np.random.Generator, shape: tuple[int, ...]) -> np.ndarray:
    # A Gaussian spot that wanders a little from run to run, plus Poisson noise.
    n, h, w = shape[0], shape[-2], shape[-1]
    cy, cx = h / 2 + rng.normal(0, h / 10), w / 2 + rng.normal(0, w / 10)
    yy, xx = np.mgrid[0:h, 0:w]
    spot = 200 * np.exp(-((yy - cy) ** 2 + (xx - cx) ** 2) / (2 * (h / 8) ** 2))
    frames = rng.poisson(spot + 5, size=(n, h, w))
    return frames.reshape(shape)


def _stamp_trains(f: h5py.File, start_s: int) -> None:
    # 10 Hz trains from the run's start, as uint64 nanoseconds since the epoch.
    if "INDEX/timestamp" in f and "INDEX/trainId" in f:
        tids = f["INDEX/trainId"][:]
        ts = f["INDEX/timestamp"]
        offsets = (tids.astype(np.int64) - 10000) * 100_000_000
        ts[...] = (start_s * 1_000_000_000 + offsets).astype(np.uint64)
