"""Writing and reading result fragments (layout of reference §1.3)."""

from __future__ import annotations

import io
import json
import os
import stat

import h5py
import numpy as np
import pytest

from runtable.context.cell import Cell
from runtable.execute.fragment import read_fragment, write_fragment

from .helpers import FakeResults

PNG = b"\x89PNG\r\n\x1a\n"


@pytest.fixture
def write(tmp_path, results_of):
    """write(a=..., errors={...}) -> (path, open h5py.File) of a new fragment."""
    opened = []

    def do(errors=None, **values):
        path = write_fragment(results_of(errors, **values), tmp_path / "extracted_data", 1234, 7)
        f = h5py.File(path, "r")
        opened.append(f)
        return path, f

    yield do
    for f in opened:
        f.close()


def test_atomic_naming_and_modes(tmp_path, results_of):
    out = tmp_path / "db" / "extracted_data"
    path = write_fragment(results_of(a=1), out, 1234, 7)
    assert path.parent == out
    assert path.name.startswith("p1234_r7.") and path.name.endswith(".ready.h5")
    assert not list(out.glob("*.writing.h5"))
    # The team's (group-writable, setgid directories), never everyone's.
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o664
    assert stat.S_IMODE(os.stat(out).st_mode) == 0o2775
    assert stat.S_IMODE(os.stat(out.parent).st_mode) == 0o2775
    other = write_fragment(results_of(a=2), out, 1234, 7)
    assert other != path  # every execution gets its own file


def test_failed_write_leaves_no_file(tmp_path, monkeypatch, results_of):
    from runtable.execute import fragment

    def broken(*args):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(fragment, "_write_cell", broken)
    monkeypatch.setattr(fragment, "_write_error", broken)
    with pytest.raises(OSError):
        write_fragment(results_of(a=1), tmp_path, 1, 1)
    assert list(tmp_path.iterdir()) == []


def test_provenance(tmp_path, results_of):
    res = results_of(a=1)
    with h5py.File(write_fragment(res, tmp_path, 1, 1)) as f:
        assert f.attrs["provenance"] == "context.py"
    with h5py.File(write_fragment(res, tmp_path, 1, 1, provenance="api submit")) as f:
        assert f.attrs["provenance"] == "api submit"


def test_start_time(write):
    _, f = write()
    assert f["start_time/data"][()] == 1767225600.25
    assert f["start_time/data"].dtype == np.float64
    assert f[".reduced/start_time"][()] == 1767225600.25


def test_scalars(write):
    _, f = write(i=3, x=2.5, b=True, c=1 + 2j, n=np.uint16(9))
    assert f["i/data"][()] == 3 and f[".reduced/i"][()] == 3
    assert f["x/data"][()] == 2.5
    assert f["b/data"][()] is np.True_ or f["b/data"][()] == True  # noqa: E712
    assert f["b/data"].dtype == np.bool_
    assert f["c/data"][()] == 1 + 2j and f[".reduced/c"][()] == 1 + 2j
    assert f["n/data"].dtype == np.uint16


def test_strings(write):
    _, f = write(s="héllo")
    ds = f["s/data"]
    assert h5py.check_string_dtype(ds.dtype).encoding == "utf-8" and ds.shape == ()
    assert ds.asstr()[()] == "héllo"
    assert f[".reduced/s"].asstr()[()] == "héllo"


def test_list_of_strings_and_numbers(write):
    _, f = write(names=["a", "bc"], nums=[1, 2, 3])
    assert list(f["names/data"].asstr()[()]) == ["a", "bc"]
    np.testing.assert_array_equal(f["nums/data"][()], [1, 2, 3])
    assert f[".reduced/nums"].attrs["summary_type"] == "trendline"


@pytest.mark.parametrize("ndim", [0, 1, 2, 3, 4])
def test_ndarrays(write, ndim):
    arr = np.arange(3**ndim, dtype=np.float32).reshape((3,) * ndim)
    _, f = write(a=arr)
    np.testing.assert_array_equal(f["a/data"][()], arr)
    assert f["a/data"].dtype == np.float32
    reduced = f[".reduced/a"]
    if ndim == 0:
        assert reduced[()] == 0
    elif ndim == 1:
        assert reduced.shape == (2, 3) and reduced.attrs["summary_type"] == "trendline"
    elif ndim == 2:
        assert reduced.dtype == np.uint8 and reduced[:8].tobytes() == PNG
    else:
        assert reduced.asstr()[()] == f"float32: {arr.shape}"
    if ndim >= 1:
        assert reduced.attrs["max_diff"] == 3**ndim - 1


def test_bool_array(write):
    _, f = write(mask=np.array([[True, False], [False, False]]))
    assert f["mask/data"].dtype == np.bool_
    assert "max_diff" not in f[".reduced/mask"].attrs


def test_complex_array(write):
    _, f = write(z=np.array([1j, 2, 3 + 1j]))
    np.testing.assert_array_equal(f["z/data"][()], [1j, 2, 3 + 1j])
    # No trendline of complex numbers: a description instead.
    assert f[".reduced/z"].asstr()[()] == "complex128: (3,)"


def test_none_leaves_no_trace(write):
    path, f = write(nothing=None)
    assert "nothing" not in f and "nothing" not in f[".reduced"]
    assert "nothing" not in read_fragment(path).names


def test_cell_attrs(write):
    _, f = write(v=Cell(5, bold=True, background=(1, 2, 3), units="mJ", summary="max"))
    attrs = f[".reduced/v"].attrs
    assert attrs["bold"] == True  # noqa: E712
    np.testing.assert_array_equal(attrs["background"], [1, 2, 3])
    assert attrs["background"].dtype == np.uint8
    assert attrs["units"] == "mJ" and attrs["summary_method"] == "max"


def test_preview_array(write):
    _, f = write(v=Cell(np.zeros((4, 3, 2)), preview=np.arange(3.0)))
    np.testing.assert_array_equal(f[".preview/v"][()], [0, 1, 2])
    assert f[".reduced/v"].attrs["summary_type"] == "trendline"


def test_matplotlib_figure_and_axes(write):
    from matplotlib.figure import Figure

    fig = Figure(figsize=(4, 3), dpi=50)
    ax = fig.add_subplot()
    ax.plot([1, 2])
    _, f = write(fig=fig, ax=ax)
    for name in ("fig", "ax"):
        assert f[name].attrs["_damnit_objtype"] == "image"
        assert f[f"{name}/data"].shape == (150, 200, 4) and f[f"{name}/data"].dtype == np.uint8
        assert f[f".reduced/{name}"][:8].tobytes() == PNG


def test_matplotlib_figure_canvas_is_restored():
    from matplotlib.figure import Figure

    from runtable.execute.thumbnails import figure_rgba

    fig = Figure()
    canvas = fig.canvas
    figure_rgba(fig)
    assert fig.canvas is canvas


def test_pyplot_figure_keeps_working(write):
    import matplotlib

    matplotlib.use("Agg")  # what a headless user would have; we must not change it
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots()
    try:
        ax.plot([1, 2, 3])
        write(p=fig)
        assert matplotlib.get_backend().lower() == "agg"
        fig.savefig(io.BytesIO(), format="png")
    finally:
        plt.close(fig)


def test_matplotlib_preview(write):
    from matplotlib.figure import Figure

    _, f = write(v=Cell(np.zeros((3, 3, 3)), preview=Figure(figsize=(2, 1), dpi=10)))
    assert f[".preview/v"].shape == (10, 20, 4)
    assert f[".preview/v"].attrs["_damnit_objtype"] == "image"
    assert f[".reduced/v"][:8].tobytes() == PNG


def test_plotly_figure(write):
    go = pytest.importorskip("plotly.graph_objects")
    fig = go.Figure(go.Scatter(y=[1, 2, 3]))
    _, f = write(pl=fig, v=Cell(np.zeros((2, 2, 2)), preview=fig))
    assert f["pl"].attrs["_damnit_objtype"] == "PlotlyFigure"
    data = json.loads(f["pl/data"][()].tobytes())
    assert data["data"][0]["y"] == [1, 2, 3]
    assert f[".reduced/pl"][:8].tobytes() == PNG  # rendered offline (kaleido 0.2.1)
    assert f[".preview/v"].attrs["_damnit_objtype"] == "PlotlyFigure"
    import plotly.io

    assert plotly.io.from_json(f["pl/data"][()].tobytes().decode()).data[0].y == (1, 2, 3)


def test_dataarray(tmp_path, write):
    xr = pytest.importorskip("xarray")
    da = xr.DataArray(
        np.arange(6.0).reshape(2, 3), dims=("x", "y"), coords={"x": [10, 20]},
        name="foo/manchu", attrs={"units": "mJ"},
    )
    path, f = write(da=da)
    assert f["da"].attrs["_damnit_objtype"] == "dataarray"
    assert f["da/foo_manchu"].compression == "gzip"
    assert f["da/foo_manchu"].compression_opts == 1 and f["da/foo_manchu"].shuffle
    assert f[".reduced/da"][:8].tobytes() == PNG
    assert f[".reduced/da"].attrs["units"] == "mJ"
    f.close()
    back = xr.open_dataarray(path, group="da", engine="h5netcdf")
    try:
        xr.testing.assert_identical(back, da.rename("foo_manchu"))
    finally:
        back.close()
    with xr.open_dataset(path, group="da", engine="h5netcdf") as ds:
        assert list(ds.data_vars) == ["foo_manchu"] and ds["x"].values.tolist() == [10, 20]


def test_unnamed_dataarray(write):
    xr = pytest.importorskip("xarray")
    path, f = write(da=xr.DataArray(np.arange(3), dims="t"))
    assert "__xarray_dataarray_variable__" in f["da"]
    f.close()
    with xr.open_dataarray(path, group="da", engine="h5netcdf") as back:
        assert back.name is None
        np.testing.assert_array_equal(back.values, [0, 1, 2])


def test_dataset(write):
    xr = pytest.importorskip("xarray")
    ds = xr.Dataset(
        {"a/b": (("t",), np.arange(4.0)), "label": ((), "x"), "c": (("t",), np.ones(4) * 1j)},
        coords={"t": np.arange(4) * 0.5},
    )
    path, f = write(ds=ds)
    assert f["ds"].attrs["_damnit_objtype"] == "dataset"
    assert f[".reduced/ds"].asstr()[()].startswith("Dataset (")
    f.close()
    with xr.open_dataset(path, group="ds", engine="h5netcdf") as back:
        np.testing.assert_array_equal(back["a_b"].values, np.arange(4.0))
        np.testing.assert_array_equal(back["c"].values, np.ones(4) * 1j)
        assert back["label"].values == "x"
        np.testing.assert_array_equal(back["t"].values, np.arange(4) * 0.5)


def test_dataarray_preview(write):
    xr = pytest.importorskip("xarray")
    preview = xr.DataArray(np.arange(3.0), dims="x", coords={"x": [3, 2, 1]})
    path, f = write(v=Cell(np.zeros((2, 2, 2)), preview=preview))
    assert f[".preview/v"].attrs["_damnit_objtype"] == "dataarray"
    f.close()
    with xr.open_dataarray(path, group=".preview/v", engine="h5netcdf") as back:
        np.testing.assert_array_equal(back.values, [0, 1, 2])


def test_pandas(write):
    pd = pytest.importorskip("pandas")
    df = pd.DataFrame({"a": [1, 2], "b": ["x", "y"]})
    series = pd.Series([1.5, 2.5], name="s")
    unnamed = pd.Series([1, 2])
    _, f = write(df=df, series=series, unnamed=unnamed)
    assert f["df"].attrs["_damnit_objtype"] == "dataframe"
    assert f["series"].attrs["_damnit_objtype"] == "series"
    assert f["df/data"].dtype == np.uint8
    back = pd.read_parquet(io.BytesIO(f["df/data"][()].tobytes()))
    pd.testing.assert_frame_equal(back, df)
    back = pd.read_parquet(io.BytesIO(f["series/data"][()].tobytes()))["s"]
    pd.testing.assert_series_equal(back, series)
    back = pd.read_parquet(io.BytesIO(f["unnamed/data"][()].tobytes()))
    assert back["0"].tolist() == [1, 2]
    assert f[".reduced/df"].asstr()[()].startswith("DataFrame (")


def test_errors(write):
    class Skip(Exception):
        pass

    _, f = write(errors={"bad": ZeroDivisionError("division by zero"), "sk": Skip("no data")},
                 good=1)
    assert f[".errors/bad"].asstr()[()] == "division by zero"
    assert f[".errors/bad"].attrs["type"] == "ZeroDivisionError"
    assert f[".errors/sk"].attrs["type"] == "Skip"
    assert "bad" not in f and "good" in f


def test_unstorable_values_become_errors_others_survive(write):
    bad_object = Cell(1)
    bad_object.data = np.array([{"a": 1}, None], dtype=object)  # bypasses Cell's check
    bad_datetime = Cell(1)
    bad_datetime.data = np.array(["2026-01-01"], dtype="datetime64[D]")
    path, f = write(obj=bad_object, dt=bad_datetime, good=2)
    for name in ("obj", "dt"):
        assert name not in f and name not in f[".reduced"]
        assert f[f".errors/{name}"].attrs["type"] == "StoreError"
        assert "Could not store" in f[f".errors/{name}"].asstr()[()]
    assert f["good/data"][()] == 2
    contents = read_fragment(path)
    assert set(contents.errors) == {"obj", "dt"}


def test_unstorable_xarray_becomes_error(write):
    xr = pytest.importorskip("xarray")
    bad = xr.DataArray(np.arange(2), dims="x", attrs={"nested": {"a": 1}})  # not NetCDF
    _, f = write(bad=bad, good=xr.DataArray(np.arange(2), dims="x"))
    assert "bad" not in f and "bad" not in f[".reduced"]
    assert f[".errors/bad"].attrs["type"] == "StoreError"
    assert f["good"].attrs["_damnit_objtype"] == "dataarray"


def test_failing_figure_render_becomes_error(write, monkeypatch):
    from matplotlib.figure import Figure

    from runtable.execute import thumbnails

    def broken(fig):
        raise RuntimeError("renderer exploded")

    monkeypatch.setattr(thumbnails, "figure_rgba", broken)
    _, f = write(fig=Figure(), good=1)
    assert "fig" not in f and "renderer exploded" in f[".errors/fig"].asstr()[()]
    assert "good" in f


def test_read_fragment_round_trip(tmp_path):
    from matplotlib.figure import Figure

    res = FakeResults(
        {
            "start_time": Cell(1767225600.5),
            "num": Cell(4, bold=True, background="#010203", units="mJ"),
            "line": Cell(np.array([1.0, 3.0, 2.0]), summary="max"),
            "trend": Cell(np.array([1.0, 3.0, 2.0])),
            "text": Cell("hi"),
            "img": Cell(np.ones((4, 4))),
            "fig": Cell(Figure(figsize=(1, 1))),
            "z": Cell(2j),
            "nothing": Cell(None),
            "prev": Cell(np.zeros((2, 2, 2)), preview=np.arange(2.0)),
        },
        {"err": ValueError("bad\nvalue")},
        provenance="context.py",
    )
    path = write_fragment(res, tmp_path, 1234, 3)
    c = read_fragment(path)
    assert c.path == path and c.provenance == "context.py"
    assert set(c.names) == set(res.cells) - {"nothing"} | {"err"}
    assert set(c.data_names) == set(res.cells) - {"nothing"}
    assert c.start_time == 1767225600.5
    assert c.errors == {"err": ("ValueError", "bad\nvalue")}
    num = c.summaries["num"]
    assert num.value == 4 and isinstance(num.value, int)
    assert num.attrs["bold"] is True and num.attrs["units"] == "mJ"
    np.testing.assert_array_equal(num.attrs["background"], [1, 2, 3])
    line = c.summaries["line"]
    assert line.value == 3.0 and line.attrs == {"summary_method": "max", "max_diff": 2.0}
    assert c.summaries["trend"].attrs["summary_type"] == "trendline"
    assert c.summaries["trend"].value.shape == (2, 3)
    assert c.summaries["text"].value == "hi"
    assert c.summaries["img"].is_png and c.summaries["fig"].is_png
    assert c.summaries["z"].value == 2j
    assert c.summaries["prev"].attrs["summary_type"] == "trendline"
    assert "nothing" not in c.summaries


def test_store_can_merge_our_fragments(tmp_path, results_of):
    """The store's own fragment reader understands what we write."""
    store = pytest.importorskip("runtable.store.fragments")
    path = write_fragment(
        results_of({"e": KeyError("k")}, a=Cell(2.5, units="mJ"), t=np.arange(5.0), s="x"),
        tmp_path, 1234, 9,
    )
    contents = store.fragment_rows(path)
    assert (contents.proposal, contents.run) == (1234, 9)
    assert contents.start_time == 1767225600.25
    assert contents.summaries["a"].value == 2.5
    assert contents.summaries["t"].summary_type == "trendline"
    assert contents.fragment.errors["e"][0] == "KeyError"
