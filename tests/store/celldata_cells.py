"""A database folder holding one run with every kind of cell a preview shows, written
the real way: results -> fragment (runtable.execute) -> merge (runtable.store)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from runtable.context import Cell, Results, Skip
from runtable.store import create_folder

PROPOSAL = 1234
RUN = 3
N_TRACE = 100_000
PEAK_AT = 54_321
TRAIN0 = 10_000


def trace_values() -> np.ndarray:
    """A noisy line with one narrow peak, which min/max downsampling must keep."""
    y = np.sin(np.linspace(0, 20, N_TRACE))
    y[PEAK_AT] = 50.0
    y[PEAK_AT + 7] = -40.0
    return y


def image_values() -> np.ndarray:
    img = np.arange(300 * 200, dtype=np.float64).reshape(300, 200) / 100
    img[10:14, 20:24] = np.nan
    return img


def stack_values() -> np.ndarray:
    return np.arange(4 * 30 * 40, dtype=np.float32).reshape(4, 30, 40)


#: First time of the datetime coordinates, and their step.
T0 = np.datetime64("2026-03-04T05:06:07.123", "ns")
T_STEP = np.timedelta64(100, "ms")
N_TIMES = 1000


def times(n: int = N_TIMES) -> np.ndarray:
    return T0 + np.arange(n) * T_STEP


def epoch_ms(t: np.ndarray) -> np.ndarray:
    """What the page gets for datetimes: milliseconds since 1970-01-01 UTC."""
    return t.astype("datetime64[ns]").astype(np.int64) / 1e6


def energies() -> np.ndarray:
    """A rising coordinate (rows of ``coord_image``)."""
    return 8000 + 2.5 * np.arange(60)


def delays() -> np.ndarray:
    """A falling coordinate (columns of ``coord_image``)."""
    return 5 - 0.1 * np.arange(80)


def coord_image_values() -> np.ndarray:
    return np.add.outer(np.arange(60) * 100.0, np.arange(80, dtype=float))


def results() -> Results:
    import pandas as pd
    import plotly.graph_objects as go
    import xarray as xr
    from matplotlib.figure import Figure

    trace = xr.DataArray(trace_values(), dims=["trainId"],
                         coords={"trainId": TRAIN0 + np.arange(N_TRACE)},
                         attrs={"units": "uJ"})
    ds = xr.Dataset({
        "energy": (("trainId",), np.linspace(1, 2, 50)),
        "frame": (("y", "x"), np.ones((20, 10))),
    }, coords={"trainId": TRAIN0 + np.arange(50)})
    coord_image = xr.DataArray(
        coord_image_values(), dims=["energy", "delay"],
        coords={"energy": ("energy", energies(), {"units": "eV"}),
                "delay": ("delay", delays(), {"units": "ps"})})
    time_line = xr.DataArray(np.sin(np.arange(N_TIMES) / 50), dims=["time"],
                             coords={"time": times()})
    nat_times = times(10)
    nat_times[4] = np.datetime64("NaT")
    nat_line = xr.DataArray(np.arange(10.0), dims=["time"], coords={"time": nat_times})
    # Dates across the columns; rows labelled by a position that goes back and forth.
    time_image = xr.DataArray(np.ones((5, 40)), dims=["pos", "time"],
                              coords={"time": times(40), "pos": [3.0, 1.0, 2.0, 5.0, 4.0]})
    text_image = xr.DataArray(np.ones((2, 3)), dims=["y", "label"],
                              coords={"label": ["a", "b", "c"]})
    dated = pd.Series([1.0, 2.0, 3.0], index=pd.date_range(
        "2026-03-04 06:00", periods=3, freq="1min", tz="Europe/Berlin"))
    fig = go.Figure(go.Scatter(x=[1, 2, 3], y=[4, 1, 9], name="abc"))
    fig.update_layout(title="A plotly figure")
    mpl = Figure(figsize=(2, 1))
    mpl.add_subplot().plot([1, 3, 2])
    cells = {
        "start_time": Cell(1.7e9),
        "trace": Cell(trace),
        "image": Cell(image_values()),
        "stack": Cell(stack_values()),
        "dataset": Cell(ds),
        "plotly": Cell(fig),
        "mpl": Cell(mpl),
        "text": Cell("hello <b>world</b>"),
        "number": Cell(3.5, units="mm"),
        "nan": Cell(float("nan")),
        "cplx": Cell(1 + 2j),
        "strings": Cell(np.array(["a", "bc"])),
        "summary_only": Cell(None, summary_value=7),
        "small_int": Cell(np.arange(10, dtype=np.int16)),
        "series": Cell(pd.Series([1.0, 4.0, 2.0], index=[10, 20, 30])),
        "bools": Cell(np.array([True, False, True])),
        "with_preview": Cell(np.zeros((3, 3, 3, 3)), preview=np.arange(5.0)),
        "coord_image": Cell(coord_image),
        "time_line": Cell(time_line),
        "nat_line": Cell(nat_line),
        "time_image": Cell(time_image),
        "text_image": Cell(text_image),
        "dated_series": Cell(dated),
    }
    errors: dict[str, BaseException] = {
        "boom": ZeroDivisionError("division by zero"),
        "skipped": Skip("no beam"),
    }
    return Results(cells, errors)


def make_celldata_folder(path: Path) -> Path:
    """The folder with run :data:`RUN` merged; returns ``path``."""
    with create_folder(path, PROPOSAL) as db:
        db.ensure_run(PROPOSAL, RUN)
        db.ensure_run(PROPOSAL, RUN + 1)  # a run with no values at all
        db.merge_fragment(results().save(db.extracted_dir, PROPOSAL, RUN))
    return path
