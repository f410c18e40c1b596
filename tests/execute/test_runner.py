"""execute_run on real mock runs (extra_data files made by runtable.testing)."""

from __future__ import annotations

import logging
import textwrap

import h5py
import numpy as np
import pytest
import xarray as xr

from runtable.execute import execute_run, read_fragment
from runtable.execute.runner import RunOutcome, describe_load_error
from runtable.selection import Selection
from runtable.testing import make_proposal, run_start

CONTEXT = '''
import sys
import numpy as np
from runtable.context import Variable, Cell, Skip

@Variable(title="XGM flux", summary="mean", units="uJ")
def flux(run):
    return run["SA1_XTD2_XGM/DOOCS/MAIN", "pulseEnergy.photonFlux"].ndarray()

@Variable(title="Camera")
def camera(run):
    return run["SPB_IRU_CAM/CAM/SIDEMIC:daqOutput", "data.image.pixels"].ndarray().mean(axis=0)

@Variable(title="Doubled flux")
def doubled(run, f: "var#flux"):
    print("doubling flux for this run")
    return Cell(f.mean() * 2, bold=True)

@Variable(title="Broken")
def broken(run):
    return 1 / 0

@Variable(title="Skipped")
def skipped(run):
    raise Skip("nothing to see")

@Variable(title="Number of trains")
def n_trains(run, run_number: "meta#run_number"):
    return len(run.train_ids)

@Variable(title="AGIPD mean", data="proc")
def agipd(run):
    frames = run["SPB_DET_AGIPD1M-1/CORR/0CH0:output", "image.data"].select_trains(np.s_[:1])
    return float(frames.ndarray()[:4].mean())

@Variable(title="Heavy modules")
def heavy(run):
    return ",".join(m for m in ("matplotlib", "plotly") if m in sys.modules) or "none"
'''


def make_db(tmp_path, code: str = CONTEXT):
    db = tmp_path / "db"
    db.mkdir()
    (db / "context.py").write_text(textwrap.dedent(code))
    return db


def test_raw_trigger(data_root, tmp_path):
    db = make_db(tmp_path)
    out = execute_run(db, 1234, 1, selection=Selection("raw"))
    assert out.succeeded, out.failure
    assert out.fragment is not None and out.fragment.parent == db / "extracted_data"
    assert set(out.ok) == {"flux", "camera", "doubled", "n_trains", "heavy"}
    assert out.errors["broken"] == ("ZeroDivisionError", "division by zero")
    assert out.errors["skipped"][0] == "Skip"
    assert "agipd" not in out.errors and "agipd" not in out.ok
    assert {"load", "open", "execute", "write", "total"} <= set(out.durations)

    contents = read_fragment(out.fragment)
    assert contents.start_time == pytest.approx(run_start(1))
    flux = contents.summaries["flux"]
    assert flux.attrs["summary_method"] == "mean" and flux.attrs["units"] == "uJ"
    assert 300 < flux.value < 700
    assert contents.summaries["doubled"].attrs["bold"] is True
    assert contents.summaries["camera"].is_png
    with h5py.File(out.fragment) as f:
        assert f["camera/data"].ndim == 2
        assert f["n_trains/data"][()] == 64
        assert f[".errors/broken"].attrs["type"] == "ZeroDivisionError"


def test_log_file(data_root, tmp_path):
    db = make_db(tmp_path)
    out = execute_run(db, 1234, 2)
    log = (db / "process_logs" / "r2-p1234.out").read_text()
    assert out.log_path == db / "process_logs" / "r2-p1234.out"
    first = log.splitlines()[0]
    assert first.startswith("----- Processing r2 (p1234) as ") and " on " in first
    assert "doubling flux for this run" in log  # the context's own output
    assert "ZeroDivisionError" in log
    assert "Computed flux in" in log  # runtable.context's per-variable lines
    assert "----- Finished r2 (p1234)" in log and "broken: ZeroDivisionError" in log
    execute_run(db, 1234, 2)
    assert (db / "process_logs" / "r2-p1234.out").read_text().count("----- Processing") == 2


def test_proc_trigger_computes_proc_variables(data_root, tmp_path):
    db = make_db(tmp_path)
    out = execute_run(db, 1234, 3, selection=Selection("proc"))
    assert out.succeeded, out.failure
    assert "agipd" in out.ok
    assert read_fragment(out.fragment).summaries["agipd"].value == pytest.approx(13, abs=0.5)


def test_all_trigger(data_root, tmp_path):
    db = make_db(tmp_path)
    out = execute_run(db, 1234, 1, selection=Selection("all"))
    assert {"agipd", "flux", "camera"} <= set(out.ok)


def test_proc_variables_dropped_without_proc_data(tmp_path, monkeypatch):
    prop = make_proposal(tmp_path / "data", 2345, runs=[1], proc=False)
    monkeypatch.setenv("EXTRA_DATA_DATA_ROOT", str(prop.root))
    db = make_db(tmp_path)
    out = execute_run(db, 2345, 1, selection=Selection("all"))
    assert out.succeeded, out.failure
    assert "agipd" not in out.ok and "agipd" not in out.errors
    assert "flux" in out.ok
    assert "no proc data" in out.log_path.read_text()


def test_select_by_name_and_title(data_root, tmp_path):
    db = make_db(tmp_path)
    out = execute_run(db, 1234, 1, selection=Selection("raw", ("doubled",)))
    assert set(out.ok) == {"doubled", "flux"}  # dependencies come along
    out = execute_run(db, 1234, 1, selection=Selection("raw", match=("trains",)))
    assert out.ok == ["n_trains"]


def test_pre_opened_run_data(data_root, tmp_path):
    import extra_data

    db = make_db(tmp_path)
    dc = extra_data.open_run(1234, 1, data="raw")
    out = execute_run(db, 1234, 1, selection=Selection("raw", ("n_trains",)), run_data=dc)
    assert out.ok == ["n_trains"] and "open" not in out.durations


def test_context_file_argument(data_root, tmp_path):
    db = tmp_path / "db"
    db.mkdir()
    other = tmp_path / "elsewhere.py"
    other.write_text(CONTEXT)
    out = execute_run(db, 1234, 1, context_file=other, selection=Selection("raw", ("n_trains",)))
    assert out.ok == ["n_trains"]


def test_numbers_only_run_imports_no_plotting_library(data_root, tmp_path):
    """Checked in a fresh interpreter: other tests here import matplotlib."""
    from runtable.testing.subprocess_run import run_in_subprocess

    db = make_db(tmp_path)
    out = run_in_subprocess(db, 1234, 1, selection=Selection("raw", ("heavy",)))
    assert read_fragment(out.fragment).summaries["heavy"].value == "none"


@pytest.mark.parametrize(
    ("code", "line", "cls"),
    [
        ("from runtable.context import Variable\n\ndef f(:\n", 3, "SyntaxError"),
        ("from runtable.context import Variable\nx = 1\nundefined_name + 1\n", 3, "NameError"),
        ("import no_such_module_here\n", 1, "ModuleNotFoundError"),
    ],
)
def test_broken_context_file(data_root, tmp_path, code, line, cls):
    db = make_db(tmp_path, code)
    out = execute_run(db, 1234, 1)
    assert not out.succeeded and out.fragment is None
    assert f"context.py:{line}" in out.failure[1], out.failure
    assert cls in out.failure[0] + out.failure[1]
    assert not (db / "extracted_data").exists() or not list((db / "extracted_data").iterdir())
    log = out.log_path.read_text()
    assert "Could not load the context file" in log and "----- Failed r1 (p1234)" in log


def test_missing_context_file(data_root, tmp_path):
    db = tmp_path / "db"
    db.mkdir()
    out = execute_run(db, 1234, 1)
    assert not out.succeeded and "context.py" in out.failure[1]


def test_missing_run(data_root, tmp_path):
    db = make_db(tmp_path)
    out = execute_run(db, 1234, 99)
    assert not out.succeeded and "Could not open the run" in out.failure[1]
    assert out.fragment is None


def test_repeated_calls_leave_logging_as_it_was(data_root, tmp_path):
    db = make_db(tmp_path)
    logger = logging.getLogger("runtable")
    handlers, level = list(logger.handlers), logger.level
    for run in (1, 2, 1):
        assert execute_run(db, 1234, run, selection=Selection("raw", ("flux",))).ok == ["flux"]
    assert logger.handlers == handlers and logger.level == level


def test_dataarray_result_round_trips(data_root, tmp_path):
    db = make_db(tmp_path, '''
        import xarray as xr
        from runtable.context import Variable

        @Variable(title="XGM per train")
        def xgm(run):
            return run["SA1_XTD2_XGM/DOOCS/MAIN", "pulseEnergy.photonFlux"].xarray()
    ''')
    out = execute_run(db, 1234, 1)
    assert out.ok == ["xgm"], out.errors
    with xr.open_dataarray(out.fragment, group="xgm", engine="h5netcdf") as da:
        assert da.sizes["trainId"] == 64
    summary = read_fragment(out.fragment).summaries["xgm"]
    assert summary.attrs["summary_type"] == "trendline"
    assert np.all(np.diff(summary.value[0]) > 0)  # x = train IDs


def test_outcome_json_round_trip(tmp_path):
    out = RunOutcome(1, 2, fragment=tmp_path / "f.h5", ok=["a"], errors={"b": ("E", "m")},
                     failure=None, durations={"total": 0.5}, log_path=tmp_path / "l")
    assert RunOutcome.from_json(out.to_json()) == out


def test_describe_load_error_uses_innermost_context_line(tmp_path):
    path = tmp_path / "context.py"
    path.write_text("def f():\n    raise ValueError('x')\n\nf()\n")
    try:
        exec(compile(path.read_text(), str(path), "exec"), {})
    except ValueError as exc:
        assert describe_load_error(exc, path) == f"{path}:2: ValueError: x"


def test_sys_exit_in_context_does_not_end_the_process(data_root, tmp_path):
    db = make_db(tmp_path, "import sys\nsys.exit(2)\n")
    out = execute_run(db, 1234, 1)
    assert not out.succeeded and "context.py:2: SystemExit" in out.failure[1]


def test_sys_exit_in_variable_does_not_end_the_process(data_root, tmp_path):
    db = make_db(tmp_path, """
        import sys
        from runtable.context import Variable

        @Variable
        def leave(run):
            sys.exit(3)
    """)
    out = execute_run(db, 1234, 1)
    assert out.succeeded and out.errors["leave"][0] == "SystemExit"


def test_log_and_output_modes(data_root, tmp_path):
    import os
    import stat

    db = make_db(tmp_path)
    out = execute_run(db, 1234, 1, selection=Selection("raw", ("flux",)))
    assert stat.S_IMODE(os.stat(out.log_path).st_mode) == 0o664
    assert stat.S_IMODE(os.stat(out.log_path.parent).st_mode) == 0o2775
    assert stat.S_IMODE(os.stat(out.fragment).st_mode) == 0o664


def test_figures_groups_and_damnit_imports(data_root, tmp_path):
    """A DAMNIT-style context: pyplot and plotly figures (thumbnails of both) and a
    Group, whose dotted variable names become HDF5 groups."""
    db = make_db(tmp_path, '''
        import matplotlib.pyplot as plt
        import plotly.express as px
        from damnit_ctx import Group, Variable

        @Variable(title="Flux plot")
        def flux_plot(run):
            fig, ax = plt.subplots(figsize=(4, 2))
            ax.plot(run["SA1_XTD2_XGM/DOOCS/MAIN", "pulseEnergy.photonFlux"].ndarray())
            return ax

        @Variable(title="Flux plotly")
        def flux_plotly(run):
            return px.line(y=run["SA1_XTD2_XGM/DOOCS/MAIN", "pulseEnergy.photonFlux"].ndarray())

        @Group
        class Motor:
            axis: int = 0

            @Variable(title="Position")
            def position(self, run, number: "meta#run_number"):
                return 0.5 * number + self.axis

        motor = Motor(axis=2)
    ''')
    out = execute_run(db, 1234, 2)
    assert out.succeeded and not out.errors, (out.failure, out.errors)
    assert set(out.ok) == {"flux_plot", "flux_plotly", "motor.position"}
    contents = read_fragment(out.fragment)
    assert contents.summaries["flux_plot"].is_png
    assert contents.summaries["flux_plotly"].is_png
    assert contents.summaries["motor.position"].value == 3.0
    with h5py.File(out.fragment) as f:
        assert f["flux_plot/data"].shape == (200, 400, 4)
        assert f["flux_plotly"].attrs["_damnit_objtype"] == "PlotlyFigure"
    import matplotlib.pyplot as plt

    assert plt.get_fignums() == []  # the worker doesn't keep every run's figures


def test_only_proc_variables_without_proc_data(tmp_path, monkeypatch):
    prop = make_proposal(tmp_path / "data", 2345, runs=[1], proc=False)
    monkeypatch.setenv("EXTRA_DATA_DATA_ROOT", str(prop.root))
    db = make_db(tmp_path)
    out = execute_run(db, 2345, 1, selection=Selection("raw", ("agipd",)))
    assert out.succeeded and out.ok == [] and out.errors == {}
    assert read_fragment(out.fragment).start_time == pytest.approx(run_start(1))


def test_unknown_variable_name(data_root, tmp_path):
    out = execute_run(make_db(tmp_path), 1234, 1, selection=Selection("raw", ("nope",)))
    assert not out.succeeded and "nope" in out.failure[1]
