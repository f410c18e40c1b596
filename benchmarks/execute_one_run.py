"""Time to execute a 5-variable context on one mock run, in-process and as a subprocess.

The context matches the one the reference system was measured with on this kind of
machine (docs/performance.md): XGM flux mean, fast-data array mean, 2D camera mean
image, a string, and one dependent variable. Prints median times and the ratio to the
reference's figures.

    ./dev bench execute_one_run [--repeat N]
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
from pathlib import Path

CONTEXT = '''
from damnit_ctx import Variable

@Variable(title="XGM flux", summary="mean")
def xgm_flux(run):
    return run["SA1_XTD2_XGM/DOOCS/MAIN", "pulseEnergy.photonFlux"].ndarray()

@Variable(title="Fast XGM mean")
def xgm_fast_mean(run):
    return float(run["SPB_XTD9_XGM/DOOCS/MAIN:output", "data.intensityTD"].ndarray().mean())

@Variable(title="Camera mean image")
def camera_mean(run):
    return run["SPB_IRU_CAM/CAM/SIDEMIC:daqOutput", "data.image.pixels"].ndarray().mean(axis=0)

@Variable(title="Label")
def label(run):
    return "benchmark"

@Variable(title="Flux doubled")
def flux_doubled(run, flux: "var#xgm_flux"):
    return float(flux.mean() * 2)
'''

# Reference system, same machine kind, same context (see docs/performance.md).
REFERENCE_S = {"in-process (Pipeline API)": 0.19, "subprocess (inner runner)": 3.13}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=7)
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        from runtable.testing import make_proposal

        prop = make_proposal(Path(tmp, "data"), 1234, runs=[1], proc=False,
                             camera_shape=(256, 256))
        os.environ["EXTRA_DATA_DATA_ROOT"] = str(prop.root)
        db_dir = Path(tmp, "db")
        db_dir.mkdir()
        (db_dir / "context.py").write_text(CONTEXT)

        figures = {
            "in-process (Pipeline API)": time_in_process(db_dir, args.repeat),
            "subprocess (inner runner)": time_subprocess(db_dir, args.repeat),
        }

    print(f"5-variable context, one mock SPB run (64 trains, 256x256 camera), "
          f"median of {args.repeat}")
    for what, seconds in figures.items():
        ref = REFERENCE_S[what]
        print(f"  {what:28s} {seconds * 1000:8.1f} ms   reference {ref * 1000:7.0f} ms   "
              f"{ref / seconds:5.1f}x faster")


def time_in_process(db_dir: Path, repeat: int) -> float:
    """Load the context, open the run, execute, write the fragment: all in this process."""
    import extra_data

    from runtable.context import Pipeline

    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        pipeline = Pipeline.from_context_file(db_dir / "context.py")
        run = extra_data.open_run(1234, 1, data="raw")
        results = pipeline.with_context(proposal=1234, run_number=1).execute(data=run)
        path = results.save(db_dir / "extracted_data", 1234, 1)
        times.append(time.perf_counter() - t0)
        assert not results.errors, results.errors
        path.unlink()
    return statistics.median(times)


def time_subprocess(db_dir: Path, repeat: int) -> float:
    """A fresh interpreter per run: start, imports, load, open, execute, write."""
    from runtable.selection import Selection
    from runtable.testing.subprocess_run import run_in_subprocess

    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        outcome = run_in_subprocess(db_dir, 1234, 1, selection=Selection("raw"))
        times.append(time.perf_counter() - t0)
        assert not outcome.errors, outcome.errors
        outcome.fragment.unlink()
    return statistics.median(times)


if __name__ == "__main__":
    main()
