"""What runtable stores reads back as the reference stores it, through the reference's
own package: error classes of skipped dependents, trendlines, image orientation,
``start_time`` and ``Cell.get_summary``."""

from __future__ import annotations

import io
import json
import os
import subprocess
import textwrap
from pathlib import Path

import numpy as np
import pytest

from runtable.context import Cell
from runtable.execute import execute_run
from runtable.execute.summary import trendline
from runtable.execute.thumbnails import image_thumbnail
from runtable.store import create_folder

SKIPS = """
from damnit_ctx import Variable, Skip

@Variable
def missing_source(run):
    return run["NO_SUCH/DEVICE/X", "value"].ndarray()

@Variable
def after_missing_source(run, x: "var#missing_source"):
    return x

@Variable
def skipped(run):
    raise Skip("no sample in the beam")

@Variable
def after_skip(run, x: "var#skipped"):
    return x

@Variable
def nothing(run):
    return None

@Variable
def after_nothing(run, x: "var#nothing"):
    return x

@Variable
def failed(run):
    return 1 / 0

@Variable
def after_failure(run, x: "var#failed", y: "var#skipped"):
    return x
"""

READ_BACK = """
import json, sqlite3, sys
from pathlib import Path
from damnit.backend.extract_data import load_reduced_data
from damnit.backend.db import DamnitDB

reduced = load_reduced_data(Path(sys.argv[1]))
db = DamnitDB(Path(sys.argv[2]))
rows = db.conn.execute("SELECT name, attributes FROM run_variables WHERE value IS NULL")
print(json.dumps({
    "h5": {n: r.attributes.get("error_cls") for n, r in reduced.items()
           if "error_cls" in r.attributes},
    "db": {n: json.loads(a)["error_cls"] for n, a in rows if a},
}))
"""


def test_skipped_dependents_are_stored_as_skip_for_the_reference(
        data_root, tmp_path, python_with_damnit):
    db = create_folder(tmp_path / "amore", 1234, SKIPS)
    outcome = execute_run(db.path, 1234, 1)
    assert outcome.fragment is not None
    db.merge_pending()
    db.close()
    proc = subprocess.run([str(python_with_damnit), "-c", READ_BACK,
                           str(tmp_path / "amore" / "extracted_data" / "p1234_r1.h5"),
                           str(tmp_path / "amore" / "runs.sqlite")],
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    read = json.loads(proc.stdout)
    expected = {"missing_source": "SourceNameError", "after_missing_source": "Skip",
                "skipped": "Skip", "after_skip": "Skip", "after_nothing": "Skip",
                "failed": "ZeroDivisionError", "after_failure": "DependencyError"}
    assert read["h5"] == expected
    assert read["db"] == expected


def test_skipped_dependents_keep_runtables_message(data_root, tmp_path):
    db = create_folder(tmp_path / "amore", 1234, SKIPS)
    execute_run(db.path, 1234, 1)
    db.merge_pending()
    attrs = db.get_attributes(1234, 1, "after_missing_source")
    db.close()
    assert attrs["error_cls"] == "Skip"
    assert attrs["error"].startswith("Skipped due to missing dependency:\n└ (missing_source) "
                                     "failed: SourceNameError:")


REFERENCE_SUMMARIES = """
import io, json, sys
import damnit.context  # puts the reference's ctxsupport on sys.path
import numpy as np
import xarray as xr
from damnit_writing import downsample_line, generate_thumbnail
from damnit_ctx import Cell
from PIL import Image

out = {}
for n in (50, 200, 10_000):
    y = np.random.default_rng(n).normal(size=n)
    out[f"trend{n}"] = downsample_line(y).tolist()
image = np.zeros((40, 40))
image[:20] = 1.0  # first rows bright
for name, value in (("dataarray", xr.DataArray(image, dims=("y", "x"))),
                    ("ndarray", image),
                    ("decreasing", xr.DataArray(image, dims=("y", "x"),
                                                coords={"y": np.arange(40)[::-1]}))):
    png = Image.open(io.BytesIO(generate_thumbnail(value).data)).convert("L")
    pixels = np.asarray(png, dtype=float)
    out[name] = "top" if pixels[:150].mean() > pixels[150:].mean() else "bottom"
print(json.dumps(out))
"""


@pytest.fixture(scope="module")
def reference_summaries(python_with_damnit):
    proc = subprocess.run([str(python_with_damnit), "-c", REFERENCE_SUMMARIES],
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout)


@pytest.mark.parametrize("n", [50, 200, 10_000])
def test_trendlines_keep_the_points_the_reference_keeps(n, reference_summaries):
    y = np.random.default_rng(n).normal(size=n)
    ours = trendline(y)
    theirs = np.asarray(reference_summaries[f"trend{n}"])
    assert ours.shape == theirs.shape
    np.testing.assert_allclose(ours, theirs)


def _bright_half(png: bytes) -> str:
    from PIL import Image

    image = Image.open(io.BytesIO(png)).convert("RGBA")
    pixels = np.asarray(image, dtype=float)
    lum = pixels[..., :3].mean(axis=-1) * (pixels[..., 3] > 0)
    return "top" if lum[:150].mean() > lum[150:].mean() else "bottom"


@pytest.mark.parametrize("kind", ["dataarray", "ndarray", "decreasing"])
def test_image_thumbnails_have_the_references_orientation(kind, reference_summaries):
    import xarray as xr

    image = np.zeros((40, 40))
    image[:20] = 1.0
    value = {"dataarray": xr.DataArray(image, dims=("y", "x")), "ndarray": image,
             "decreasing": xr.DataArray(image, dims=("y", "x"),
                                        coords={"y": np.arange(40)[::-1]})}[kind]
    from runtable.execute.summary import default_summary

    assert _bright_half(default_summary(value)) == reference_summaries[kind]


def test_an_ndarray_thumbnail_keeps_row_zero_at_the_top():
    image = np.zeros((10, 10))
    image[0] = 1.0
    assert _bright_half(image_thumbnail(image)) == "top"


def test_start_time_without_train_timestamps_is_the_first_raw_file_in_name_order(tmp_path):
    import extra_data
    from extra_data.tests.make_examples import make_spb_run

    from runtable.context.execution import start_time

    run_dir = tmp_path / "raw" / "r0001"
    run_dir.mkdir(parents=True)
    make_spb_run(str(run_dir), sensor_size=(8, 8), format_version="0.5")
    names = sorted(p.name for p in run_dir.iterdir())
    for i, name in enumerate(names):
        os.utime(run_dir / name, (1000.0 + 10 * i, 1000.0 + 10 * i))
    # Files listed in reverse name order: the first file in name order still counts.
    run = extra_data.DataCollection.from_paths(
        [str(run_dir / n) for n in reversed(names)])
    assert Path(run.files[0].filename).name != names[0]
    assert start_time(run) == 1000.0


def test_cell_get_summary_gives_the_tables_value():
    assert Cell(np.arange(10.0), summary="max").get_summary() == 9.0
    assert Cell("text").get_summary() == "text"
    assert Cell(np.float64(2.5)).get_summary() == 2.5
    assert Cell(np.zeros((5, 5))).get_summary().startswith(b"\x89PNG")
    assert Cell(None).get_summary() is None
    line = Cell(np.arange(5.0)).get_summary()
    assert line.shape == (2, 5)


CONTEXT_WITH_SUMMARY = textwrap.dedent("""
    from damnit_ctx import Cell, Variable

    @Variable
    def summed(run):
        cell = Cell([1, 2, 3], summary="sum")
        return Cell(cell.data, summary_value=cell.get_summary() * 2)
""")


def test_a_context_file_can_call_get_summary(data_root, tmp_path):
    db = create_folder(tmp_path / "amore", 1234, CONTEXT_WITH_SUMMARY)
    execute_run(db.path, 1234, 1)
    db.merge_pending()
    assert db.get_value(1234, 1, "summed") == 12
    db.close()


PLOTLY_CONTEXT = textwrap.dedent("""
    from damnit_ctx import Variable
    import plotly.express as px

    @Variable(title="Flux figure")
    def flux_figure(run):
        return px.line(y=run["SA1_XTD2_XGM/DOOCS/MAIN", "pulseEnergy.photonFlux"].ndarray())
""")


def test_a_plotly_figure_gets_a_png_thumbnail_in_the_run_file(data_root, tmp_path):
    """Processed by a warm worker (runtable reprocess), on a fresh installation: no
    browser installed by hand."""
    import h5py
    from PIL import Image

    from runtable.reprocess import reprocess

    create_folder(tmp_path / "amore", 1234, PLOTLY_CONTEXT).close()
    [outcome] = reprocess(tmp_path / "amore", [1], jobs=1)
    assert outcome.ok == ["flux_figure"], outcome
    with h5py.File(tmp_path / "amore" / "extracted_data" / "p1234_r1.h5") as f:
        png = f[".reduced/flux_figure"][()].tobytes()
        assert f["flux_figure"].attrs["_damnit_objtype"] == "PlotlyFigure"
    assert Image.open(io.BytesIO(png)).size == (300, 214)
