"""The summary of a cell: the one value shown in the run table (reference §1.3).

The first rule that applies gives the summary:

1. ``Cell.summary_value`` as given;
2. ``Cell.summary`` names a numpy function, applied to the data (if it fails, the
   failure is logged and the defaults apply);
3. defaults, computed on ``Cell.preview`` when there is one, else on the data:

   ====================  ==============================================================
   value                 summary
   ====================  ==============================================================
   str                   the string
   xarray Dataset        ``"Dataset (1.23MB)"`` (pandas ``DataFrame``/``Series`` alike)
   matplotlib figure     PNG, largest dimension 300 px
   plotly figure         PNG when kaleido can render one quickly, else ``"<plotly
                         figure>"``
   0-d array             the value
   1-d numeric array     trendline: float64 ``(2, n)`` array ``[x; y]``, sorted by x,
                         downsampled to about 150 points
   2-d numeric array     300x300 RGBA PNG, colours clipped to the 1-99 % quantiles
   other arrays          a description such as ``"float64: (2, 2, 2, 2)"``
   None                  no summary
   ====================  ==============================================================

Thumbnails that fail to render become ``"<thumbnail error>"`` or ``"<trendline
error>"``: a summary problem never costs the value itself.
"""

from __future__ import annotations

import logging
import warnings
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from . import thumbnails
from .kinds import as_figure, value_kind

log = logging.getLogger("runtable.execute")

#: About this many points are kept in a trendline.
TRENDLINE_POINTS = 150

THUMBNAIL_ERROR = "<thumbnail error>"
TRENDLINE_ERROR = "<trendline error>"
PLOTLY_PLACEHOLDER = "<plotly figure>"


@dataclass
class Summary:
    """A summary value and the attributes stored with it on ``.reduced/<name>``.

    ``value`` is a ``str``, ``bytes`` (a PNG image) or a numpy array (0-d for numbers,
    ``(2, n)`` float64 for a trendline). ``attrs`` may hold ``summary_method``,
    ``bold``, ``background`` (uint8[3]), ``units``, ``max_diff`` and ``summary_type``.
    """

    value: str | bytes | np.ndarray
    attrs: dict[str, Any] = field(default_factory=dict)

    @property
    def is_png(self) -> bool:
        return isinstance(self.value, bytes)


def summarise(cell: Any, name: str = "?") -> Summary | None:
    """The summary of a :class:`~runtable.context.cell.Cell`, or None if it has none.

    ``name`` is only used in log messages.
    """
    value, is_trendline = _summary_value(cell, name)
    if value is None:
        return None
    attrs: dict[str, Any] = {}
    if cell.summary:
        attrs["summary_method"] = cell.summary
    if cell.bold is not None:
        attrs["bold"] = bool(cell.bold)
    if cell.background is not None:
        attrs["background"] = np.asarray(cell.background, dtype=np.uint8)
    units = cell.units
    if units is None and value_kind(cell.data) == "dataarray":
        # A DataArray that says what its units are needs no units= in the decorator.
        units = cell.data.attrs.get("units")
    if isinstance(units, str) and units:
        attrs["units"] = units
    diff = max_diff(cell.data)
    if diff is not None:
        attrs["max_diff"] = diff
    if is_trendline:
        attrs["summary_type"] = "trendline"
    return Summary(value, attrs)


def summary_value(cell: Any, name: str = "?") -> Any:
    """Just the summary value of a cell (``Cell.get_summary``), without attributes."""
    return _summary_value(cell, name)[0]


def _summary_value(cell: Any, name: str) -> tuple[Any, bool]:
    """The summary value and whether it is a default trendline (a (2, n)
    ``summary_value`` given by the user is not one)."""
    if cell.summary_value is not None:
        value = cell.summary_value
        return (value if isinstance(value, str) else np.asarray(value)), False
    if cell.summary and cell.data is not None:
        try:
            return _apply_numpy(cell.summary, cell.data), False
        except Exception:
            log.error("Failed to produce summary data for %s", name, exc_info=True)
    target = cell.preview if cell.preview is not None else cell.data
    value = default_summary(target, describe=cell.data)
    return value, isinstance(value, np.ndarray) and value.ndim == 2 and target is not None and (
        value.dtype == np.float64 and _is_1d_numeric(target)
    )


def _is_1d_numeric(obj: Any) -> bool:
    kind = value_kind(obj)
    if kind not in ("array", "dataarray"):
        return False
    arr = obj.values if kind == "dataarray" else np.asarray(obj)
    return arr.ndim == 1 and arr.dtype.kind in "biuf"


def _apply_numpy(func_name: str, data: Any) -> np.ndarray:
    func = getattr(np, func_name)
    value = np.asarray(func(data))
    if value.dtype.kind not in "biufc":
        raise TypeError(f"np.{func_name} gave {value.dtype} data, not a number")
    return value


def default_summary(obj: Any, describe: Any = None) -> Any:
    """The default summary of a value (rule 3 above); None for None.

    ``describe`` is the cell's data, used for the description of >2-d arrays.
    """
    kind = value_kind(obj)
    if kind == "none":
        return None
    if kind == "str":
        return obj
    if kind == "dataset":
        return f"Dataset ({obj.nbytes / 1e6:.2f}MB)"
    if kind == "dataframe":
        return f"DataFrame ({obj.memory_usage(deep=True).sum() / 1e6:.2f}MB)"
    if kind == "series":
        return f"Series ({obj.memory_usage(deep=True) / 1e6:.2f}MB)"
    if kind == "matplotlib":
        try:
            return thumbnails.figure_thumbnail(as_figure(obj))
        except Exception:
            log.error("Could not render a thumbnail of a figure", exc_info=True)
            return THUMBNAIL_ERROR
    if kind == "plotly":
        try:
            png = thumbnails.plotly_thumbnail(obj)
        except Exception:
            log.warning("Could not render a thumbnail of a plotly figure", exc_info=True)
            png = None
        return PLOTLY_PLACEHOLDER if png is None else png
    return _array_summary(obj, describe if describe is not None else obj)


def _array_summary(obj: Any, describe: Any) -> Any:
    arr = np.asarray(obj.values if value_kind(obj) == "dataarray" else obj)
    if arr.ndim == 0:
        return arr
    if arr.ndim == 1 and arr.dtype.kind in "biuf":
        try:
            return trendline(arr, _trendline_x(obj, arr))
        except Exception:
            log.error("Could not make a trendline", exc_info=True)
            return TRENDLINE_ERROR
    if arr.ndim == 2 and arr.dtype.kind in "biuf":
        try:
            return thumbnails.image_thumbnail(_as_plotted(obj, arr))
        except Exception:
            log.error("Could not render a thumbnail of 2-D data", exc_info=True)
            return THUMBNAIL_ERROR
    return describe_array(describe)


def _as_plotted(obj: Any, arr: np.ndarray) -> np.ndarray:
    """2-D data as it is drawn, first row at the top of the picture.

    The reference draws a DataArray with xarray's ``imshow``, whose axes increase
    upwards and to the right (so row 0 of plain indices is at the bottom), and a
    numpy array with matplotlib's, row 0 at the top. Thumbnails follow both.
    """
    if value_kind(obj) != "dataarray":
        return arr
    ydim, xdim = obj.dims
    if _increasing(obj, ydim):
        arr = arr[::-1]
    if not _increasing(obj, xdim):
        arr = arr[:, ::-1]
    return arr


def _increasing(obj: Any, dim: str) -> bool:
    if dim not in obj.coords:
        return True
    values = np.asarray(obj.coords[dim].values)
    if values.ndim != 1 or len(values) < 2 or values.dtype.kind not in "biufM":
        return True
    return bool(values[-1] >= values[0])


def describe_array(obj: Any) -> str:
    """``"float64: (2, 2, 2, 2)"``: the dtype and shape of array-like data."""
    kind = value_kind(obj)
    arr = obj.values if kind == "dataarray" else np.asarray(obj)
    dtype = "str" if arr.dtype.kind in "USO" else str(arr.dtype)
    return f"{dtype}: {tuple(arr.shape)}"


def _trendline_x(obj: Any, arr: np.ndarray) -> np.ndarray | None:
    # A DataArray's coordinate along its dimension is a better x than the index.
    if value_kind(obj) != "dataarray":
        return None
    dim = obj.dims[0]
    candidates = [obj.coords[dim]] if dim in obj.coords else []
    candidates += [c for c in obj.coords.values() if c.dims == (dim,)]
    for coord in candidates:
        x = np.asarray(coord.values)
        if x.shape == arr.shape and x.dtype.kind in "biufM":
            return x
    return None


def trendline(y: np.ndarray, x: np.ndarray | None = None) -> np.ndarray:
    """A float64 ``(2, n)`` array ``[x; y]`` sorted by x, downsampled with FPCS so
    peaks and dips survive (to about 150 points). Datetime x values become epoch
    seconds."""
    y = np.asarray(y, dtype=np.float64)
    if x is None:
        x = np.arange(len(y), dtype=np.float64)
    else:
        x = np.asarray(x)
        if x.dtype.kind == "M":
            x = x.astype("datetime64[ns]").astype(np.int64) / 1e9
        x = x.astype(np.float64)
        order = np.argsort(x, kind="stable")
        x, y = x[order], y[order]
    if len(y) == 0:
        return np.empty((2, 0), np.float64)
    # The reference's rule, so its readers see the same points: windows of
    # int(n / 120) points, of which FPCS keeps about 1.25 each (~150 in all), and
    # every point of a line shorter than 240.
    ratio = max(1, int(len(y) / (0.8 * TRENDLINE_POINTS)))
    try:
        import fpcs
    except ImportError:  # pragma: no cover - fpcs is a dependency; keep working without
        keep = np.isfinite(x) & np.isfinite(y)
        x, y = x[keep], y[keep]
        idx = np.unique(np.linspace(0, len(y) - 1, min(len(y), TRENDLINE_POINTS)).astype(int))
        return np.stack([x[idx], y[idx]]) if len(y) else np.empty((2, 0))
    xd, yd = fpcs.downsample(x, y, ratio)
    return np.stack([np.asarray(xd, np.float64), np.asarray(yd, np.float64)])


def max_diff(data: Any) -> float | None:
    """``|nanmax - nanmin|`` of numeric (not bool) array data with more than one element."""
    kind = value_kind(data)
    if kind == "dataarray":
        data = data.values
    elif kind != "array":
        return None
    arr = np.asarray(data)
    if arr.size <= 1 or arr.dtype.kind not in "iuf":
        return None
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN arrays
        # float64 first: the difference of two int8 values can overflow int8.
        diff = np.float64(np.nanmax(arr)) - np.float64(np.nanmin(arr))
    return float(abs(diff))
