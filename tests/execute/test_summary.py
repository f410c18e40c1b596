"""Summary rules of reference §1.3, one test per rule and Cell option."""

from __future__ import annotations

import io
import logging

import numpy as np
import pytest

from runtable.context.cell import Cell
from runtable.execute import summary as S
from runtable.execute.summary import summarise

PNG = b"\x89PNG\r\n\x1a\n"


def png_size(data: bytes) -> tuple[int, int]:
    from PIL import Image

    return Image.open(io.BytesIO(data)).size


def test_summary_value_wins_over_everything():
    s = summarise(Cell(np.arange(10), summary="max", summary_value=42))
    assert s.value == 42 and s.attrs["summary_method"] == "max"
    assert "summary_type" not in s.attrs


def test_summary_value_string():
    assert summarise(Cell(np.arange(3), summary_value="three")).value == "three"


def test_numpy_function_summary():
    s = summarise(Cell(np.array([1.0, 2.0, 6.0]), summary="mean"))
    assert s.value == 3.0 and s.value.dtype == np.float64
    assert s.attrs == {"summary_method": "mean", "max_diff": 5.0}


def test_failing_numpy_summary_falls_back_to_default(caplog):
    with caplog.at_level(logging.ERROR, "runtable.execute"):
        s = summarise(Cell("text", summary="not_a_numpy_function"), "v")
    assert s.value == "text"
    assert "Failed to produce summary data for v" in caplog.text


def test_numpy_summary_of_strings_falls_back():
    # np.sort of strings gives a string array, which is no number to show.
    assert summarise(Cell("abc", summary="sort")).value == "abc"


def test_none_has_no_summary():
    assert summarise(Cell(None)) is None
    assert summarise(Cell(None, bold=True, units="mm")) is None


@pytest.mark.parametrize("value", [3, 2.5, True, 1 + 2j, np.int8(4)])
def test_zero_d_is_the_value(value):
    s = summarise(Cell(value))
    assert s.value.ndim == 0 and s.value == value
    assert "max_diff" not in s.attrs


def test_string():
    assert summarise(Cell("hello")).value == "hello"


def test_trendline_of_1d():
    y = np.sin(np.linspace(0, 20, 5000))
    s = summarise(Cell(y))
    assert s.attrs["summary_type"] == "trendline"
    assert s.value.dtype == np.float64 and s.value.shape[0] == 2
    assert 50 <= s.value.shape[1] <= 160
    x = s.value[0]
    assert np.all(np.diff(x) > 0) and x[0] == 0 and x[-1] == 4999
    # Peaks survive downsampling.
    assert s.value[1].max() == pytest.approx(y.max())


def test_short_trendline_keeps_every_point():
    s = summarise(Cell([3, 1, 2]))
    np.testing.assert_array_equal(s.value, [[0, 1, 2], [3, 1, 2]])
    assert s.attrs["max_diff"] == 2.0


def test_trendline_of_bool_array_has_no_max_diff():
    s = summarise(Cell(np.array([True, False, True])))
    np.testing.assert_array_equal(s.value[1], [1, 0, 1])
    assert "max_diff" not in s.attrs


def test_trendline_uses_dataarray_coordinate_sorted():
    xr = pytest.importorskip("xarray")
    da = xr.DataArray([10.0, 30.0, 20.0], dims="delay", coords={"delay": [5.0, 1.0, 3.0]})
    s = summarise(Cell(da))
    np.testing.assert_array_equal(s.value, [[1, 3, 5], [30, 20, 10]])


def test_trendline_datetime_coordinate_becomes_epoch_seconds():
    xr = pytest.importorskip("xarray")
    times = np.array(["2026-01-01T00:00:00", "2026-01-01T00:00:01"], dtype="datetime64[ns]")
    s = summarise(Cell(xr.DataArray([1.0, 2.0], dims="t", coords={"t": times})))
    np.testing.assert_array_equal(s.value[0], [1767225600.0, 1767225601.0])


def test_trendline_ignores_string_coordinate():
    xr = pytest.importorskip("xarray")
    da = xr.DataArray([1.0, 2.0], dims="x", coords={"x": ["a", "b"]})
    np.testing.assert_array_equal(summarise(Cell(da)).value[0], [0, 1])


def test_trendline_error(monkeypatch):
    def broken(*args, **kwargs):
        raise RuntimeError("no")

    monkeypatch.setattr(S, "trendline", broken)
    s = summarise(Cell(np.arange(5.0)))
    assert s.value == "<trendline error>"
    assert "summary_type" not in s.attrs and s.attrs["max_diff"] == 4.0


def test_2d_thumbnail_is_300_square_rgba():
    from PIL import Image

    data = np.random.default_rng(0).normal(size=(64, 48))
    data[0, 0] = np.nan
    data[1, 1] = 1e9  # a hot pixel doesn't matter: 99% quantile clipping
    s = summarise(Cell(data))
    assert s.is_png and s.value.startswith(PNG)
    image = Image.open(io.BytesIO(s.value))
    assert image.size == (300, 300) and image.mode == "RGBA"
    assert s.attrs["max_diff"] > 1e8


def test_2d_thumbnail_keeps_aspect_with_transparent_margins():
    from PIL import Image

    image = np.asarray(Image.open(io.BytesIO(summarise(Cell(np.ones((10, 30)))).value)))
    assert image.shape == (300, 300, 4)
    assert image[0, 150, 3] == 0 and image[150, 150, 3] == 255  # 300x100 band in the middle
    assert image[99, 150, 3] == 0 and image[100, 150, 3] == 255


def test_2d_thumbnail_orientation_and_colours():
    from PIL import Image

    from runtable.execute._viridis import VIRIDIS

    data = np.zeros((100, 100))
    data[:50] = 1.0  # top half high
    image = np.asarray(Image.open(io.BytesIO(summarise(Cell(data)).value)))
    np.testing.assert_array_equal(image[10, 10, :3], VIRIDIS[255])
    np.testing.assert_array_equal(image[290, 10, :3], VIRIDIS[0])


def test_2d_all_nan_still_renders():
    assert summarise(Cell(np.full((4, 4), np.nan))).value.startswith(PNG)


def test_thumbnail_error(monkeypatch):
    def broken(data):
        raise RuntimeError("no")

    monkeypatch.setattr(S.thumbnails, "image_thumbnail", broken)
    assert summarise(Cell(np.ones((3, 3)))).value == "<thumbnail error>"


@pytest.mark.parametrize("shape", [(2, 2, 2), (2, 2, 2, 2)])
def test_more_than_2d_is_described(shape):
    assert summarise(Cell(np.zeros(shape))).value == f"float64: {shape}"


def test_string_array_is_described():
    assert summarise(Cell(np.array(["a", "b"]))).value == "str: (2,)"


def test_preview_is_summarised_instead_of_data():
    data = np.zeros((5, 4, 3, 2))
    s = summarise(Cell(data, preview=np.arange(4.0)))
    assert s.attrs["summary_type"] == "trendline"
    np.testing.assert_array_equal(s.value[1], [0, 1, 2, 3])


def test_dataset_and_pandas_sizes():
    xr = pytest.importorskip("xarray")
    pd = pytest.importorskip("pandas")
    ds = xr.Dataset({"a": ("x", np.zeros(250_000))})
    assert summarise(Cell(ds)).value == "Dataset (2.00MB)"
    df = pd.DataFrame({"a": np.zeros(125_000)})
    assert summarise(Cell(df)).value.startswith("DataFrame (1.00MB)")
    assert summarise(Cell(pd.Series(np.zeros(10)))).value == "Series (0.00MB)"


def test_matplotlib_figure_thumbnail_max_300():
    from matplotlib.figure import Figure

    fig = Figure(figsize=(8, 4), dpi=100)
    fig.add_subplot().plot([1, 3, 2])
    s = summarise(Cell(fig))
    assert png_size(s.value) == (300, 150)


def test_matplotlib_axes_is_its_figure():
    from matplotlib.figure import Figure

    fig = Figure(figsize=(3, 6))
    ax = fig.add_subplot()
    assert png_size(summarise(Cell(ax)).value) == (150, 300)


def test_figure_thumbnail_error(monkeypatch):
    from matplotlib.figure import Figure

    def broken(fig):
        raise RuntimeError("no")

    monkeypatch.setattr(S.thumbnails, "figure_thumbnail", broken)
    assert summarise(Cell(Figure())).value == "<thumbnail error>"


def test_plotly_without_a_renderer_gives_placeholder(monkeypatch):
    go = pytest.importorskip("plotly.graph_objects")
    monkeypatch.setattr(S.thumbnails, "_plotly_renderer", lambda: None)  # no kaleido
    fig = go.Figure(go.Scatter(y=[1, 2, 3]))
    assert summarise(Cell(fig)).value == "<plotly figure>"


def test_plotly_figures_get_a_300_px_thumbnail_offline():
    """With the installed kaleido (0.2.1, its own browser), as on a fresh installation."""
    go = pytest.importorskip("plotly.graph_objects")
    fig = go.Figure(go.Scatter(y=[1, 4, 9]))
    png = summarise(Cell(fig)).value
    assert isinstance(png, bytes) and png.startswith(b"\x89PNG")
    assert png_size(png) == (300, 214)  # plotly's 700x500, largest side 300


def test_a_hung_plotly_renderer_costs_the_time_limit_once(monkeypatch):
    import threading
    import time

    go = pytest.importorskip("plotly.graph_objects")
    release = threading.Event()
    monkeypatch.setattr(S.thumbnails, "_plotly_renderer",
                        lambda: lambda fig: release.wait(60) and b"")
    monkeypatch.setattr(S.thumbnails, "_plotly_stuck", False)
    start = time.monotonic()
    assert S.thumbnails.plotly_thumbnail(go.Figure(), timeout=0.5) is None
    assert S.thumbnails.plotly_thumbnail(go.Figure(), timeout=0.5) is None
    assert time.monotonic() - start < 5  # the second figure did not wait again
    release.set()


def test_plotly_failing_renderer_gives_placeholder(monkeypatch):
    go = pytest.importorskip("plotly.graph_objects")

    def broken(fig, timeout=10.0):
        raise RuntimeError("Kaleido requires Google Chrome to be installed")

    monkeypatch.setattr(S.thumbnails, "plotly_thumbnail", broken)
    assert summarise(Cell(go.Figure())).value == "<plotly figure>"


def test_plotly_thumbnail_through_kaleido_1(monkeypatch):
    """kaleido >= 1 (installed by a user instead) renders through plotly's to_image;
    its PNG is resized to 300 px too."""
    import importlib.metadata

    from runtable.execute import thumbnails

    go = pytest.importorskip("plotly.graph_objects")
    real_version = importlib.metadata.version
    monkeypatch.setattr(importlib.metadata, "version",
                        lambda name: "1.5.0" if name == "kaleido" else real_version(name))
    big = thumbnails.rgba_to_png(np.zeros((500, 700, 4), np.uint8), max_size=None)
    monkeypatch.setattr(go.Figure, "to_image", lambda self, format: big)
    assert png_size(summarise(Cell(go.Figure())).value) == (300, 214)


def test_cell_options_become_attrs():
    s = summarise(Cell(np.arange(4), bold=True, background="#102030", units="mJ"))
    assert s.attrs["bold"] is True
    np.testing.assert_array_equal(s.attrs["background"], [16, 32, 48])
    assert s.attrs["background"].dtype == np.uint8
    assert s.attrs["units"] == "mJ"
    assert s.attrs["max_diff"] == 3.0


def test_bold_false_is_kept():
    assert summarise(Cell(1, bold=False)).attrs == {"bold": False}


def test_max_diff_ignores_nan_and_avoids_int_overflow():
    assert S.max_diff(np.array([np.nan, 1.0, 4.0])) == 3.0
    assert S.max_diff(np.array([-128, 127], dtype=np.int8)) == 255.0
    assert np.isnan(S.max_diff(np.array([np.nan, np.nan])))
    assert S.max_diff(np.array([1.0])) is None
    assert S.max_diff(np.array([1 + 1j, 2j])) is None
