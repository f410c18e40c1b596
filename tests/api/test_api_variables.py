"""RunVariables and VariableData: keys, titles, read(), summary(), previews."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import xarray as xr

from runtable.api import DataType, RunVariables, VariableFailed

from .api_folder import PROPOSAL, START

RUN1_KEYS = ["camera", "comment", "count", "cube", "da", "ds", "frame", "label", "quality",
             "series", "start_time", "summary_only", "trend", "with_preview", "xgm_flux", "z"]


def test_keys_and_titles(db) -> None:
    rv = db[1]
    assert rv.keys() == RUN1_KEYS  # 'broken' failed: no data, so not a key
    assert "Timestamp" in rv.titles() and "Comment" in rv.titles()
    assert "XGM flux" in rv.titles() and "Quality" in rv.titles()
    assert len(rv.titles()) == len(RUN1_KEYS)
    assert db[2].keys() == ["label", "start_time", "xgm_flux"]
    assert db[3].keys() == ["comment", "start_time"]
    assert repr(rv) == f"<RunVariables for p{PROPOSAL}, r1 with {len(RUN1_KEYS)} variables>"
    assert rv._ipython_key_completions_() == RUN1_KEYS
    assert "XGM flux" in rv and "nope" not in rv


def test_run_without_file(db) -> None:
    # A run known to the database with no HDF5 file: only what people typed.
    rv = RunVariables(db._db, PROPOSAL, 77)
    assert rv.keys() == []
    with pytest.raises(KeyError):
        rv["label"]


def test_lookup_by_name_or_title(db) -> None:
    rv = db[1]
    assert rv["xgm_flux"].name == rv["XGM flux"].name == "xgm_flux"
    assert rv["start_time"].title == "Timestamp"
    assert rv["Comment"].name == "comment"
    with pytest.raises(KeyError, match="available"):
        rv["Never set"]


def test_read_arrays_and_scalars(db) -> None:
    rv = db[1]
    np.testing.assert_array_equal(rv["xgm_flux"].read(), np.arange(10.0) * 1.5)
    assert rv["camera"].read().shape == (20, 30)
    assert rv["count"].read() == 42
    assert rv["label"].read() == "hello"
    assert rv["z"].read() == 1 + 2j
    assert rv["start_time"].read() == START + 100
    assert rv["cube"].read().shape == (2, 2, 2)


def test_read_xarray_and_pandas(db) -> None:
    rv = db[1]
    da = rv["da"].read()
    assert isinstance(da, xr.DataArray)
    assert da.dims == ("x", "y") and da.name == "signal"
    assert da.attrs == {"units": "V", "note": "n"}  # no _damnit_* bookkeeping
    np.testing.assert_array_equal(da.coords["x"], [10, 20])
    ds = rv["ds"].read()
    assert isinstance(ds, xr.Dataset) and set(ds.data_vars) == {"a", "b"}
    assert not any(k.startswith("_damnit_") for k in ds.attrs)
    frame = rv["frame"].read()
    pd.testing.assert_frame_equal(frame, pd.DataFrame({"a": [1, 2, 3], "b": [0.5, 1.5, 2.5]}))
    series = rv["series"].read()
    assert isinstance(series, pd.Series) and series.tolist() == [1.0, 2.0, 3.0]


def test_read_db_only_values(db) -> None:
    assert db[1, "comment"].read() == "good run"
    assert db[1, "quality"].read() == 0.5
    assert db[1, "Quality"].summary() == 0.5
    assert db[1, "summary_only"].read() == 7


def test_summary(db) -> None:
    rv = db[1]
    assert rv["xgm_flux"].summary() == pytest.approx(6.75)
    assert rv["label"].summary() == "hello"
    assert rv["z"].summary() == 1 + 2j
    assert rv["camera"].summary().startswith(b"\x89PNG\r\n\x1a\n")
    trend = rv["trend"].summary()
    assert isinstance(trend, np.ndarray) and trend.shape[0] == 2
    assert rv["cube"].summary() == "float64: (2, 2, 2)"
    assert rv["start_time"].summary() is None  # no summary row, as in the reference


def test_units_and_type_hints(db) -> None:
    rv = db[1]
    assert rv["xgm_flux"].units == "mJ"
    assert rv["da"].units == "V"
    assert rv["label"].units is None
    assert rv["comment"].units is None
    assert rv["da"].type_hint() is DataType.DataArray
    assert rv["ds"].type_hint() is DataType.Dataset
    assert rv["frame"].type_hint() is DataType.DataFrame
    assert rv["series"].type_hint() is DataType.Series
    assert rv["xgm_flux"].type_hint() is None
    assert rv["comment"].type_hint() is None
    assert rv["summary_only"].type_hint() is None


def test_file_and_repr(db) -> None:
    var = db[1, "label"]
    assert var.file == db.path / "extracted_data" / f"p{PROPOSAL}_r1.h5"
    assert repr(var) == f"<VariableData for 'label' in p{PROPOSAL}, r1>"


def test_preview_data(db) -> None:
    rv = db[1]
    np.testing.assert_array_equal(rv["with_preview"].preview_data(), np.arange(4.0))
    assert rv["with_preview"].preview_data(data_fallback=False) is not None
    np.testing.assert_array_equal(rv["xgm_flux"].preview_data(), np.arange(10.0) * 1.5)
    assert rv["xgm_flux"].preview_data(data_fallback=False) is None
    assert rv["camera"].preview_data().shape == (20, 30)
    assert isinstance(rv["da"].preview_data(), xr.DataArray)
    assert rv["series"].preview_data().tolist() == [1.0, 2.0, 3.0]
    assert rv["cube"].preview_data() is None  # 3D but not an RGB(A) image
    assert rv["ds"].preview_data() is None
    assert rv["frame"].preview_data() is None
    assert rv["label"].preview_data() is None
    assert rv["comment"].preview_data() is None


def test_preview_plots(db, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MPLBACKEND", "Agg")
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    try:
        assert db[1, "camera"].preview() is not None
        assert db[1, "xgm_flux"].preview() is not None
        with pytest.raises(ValueError, match="No preview"):
            db[1, "label"].preview()
    finally:
        plt.close("all")


def test_plotly_figure(folder) -> None:
    import plotly.graph_objects as go

    from runtable.context.cell import Cell
    from runtable.store import open_db

    from .api_folder import write_and_merge

    fig = go.Figure(go.Scatter(x=[1, 2], y=[3, 4]))
    with open_db(folder) as store:
        write_and_merge(store, 2, {"plot": Cell(fig, summary_value="plot")})
    from runtable.api import Database

    var = Database(folder)[2, "plot"]
    assert var.type_hint() is DataType.PlotlyFigure
    assert isinstance(var.read(), go.Figure)
    assert list(var.read().data[0].y) == [3, 4]
    text = var.read(deserialize_plotly=False)
    assert isinstance(text, str) and '"scatter"' in text
    assert var.summary() == "plot"


def test_string_arrays(folder) -> None:
    from runtable.api import Database
    from runtable.context.cell import Cell
    from runtable.store import open_db

    from .api_folder import write_and_merge

    with open_db(folder) as store:
        write_and_merge(store, 2, {"names": Cell(np.array(["a", "b"])),
                                   "one_name": Cell(np.array(["only"]))})
    db = Database(folder)
    assert db[2, "names"].read().tolist() == ["a", "b"]
    assert db[2, "one_name"].read() == "only"


def test_a_failed_variable_says_why_it_has_no_data(db) -> None:
    for key in ("broken", "Broken"):  # by name or title
        with pytest.raises(VariableFailed) as info:
            db[1, key]
        assert str(info.value) == (f"'broken' failed in p{PROPOSAL}, r1: "
                                   "ZeroDivisionError: division by zero")
        assert (info.value.error_cls, info.value.message) == (
            "ZeroDivisionError", "division by zero")
    # Still a KeyError, as for any variable without data.
    with pytest.raises(KeyError):
        db[1]["broken"]
    assert "broken" not in db[1]
    # A variable that is simply not there says so, as before.
    with pytest.raises(KeyError, match="No data for variable 'broken' in p1234, r2"):
        db[2, "broken"]
