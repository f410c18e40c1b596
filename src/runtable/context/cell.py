"""What a variable returns: a value plus how to show it in the table."""

from __future__ import annotations

import re
from typing import Any

import numpy as np

_HEX_COLOUR = re.compile(r"^#[0-9a-fA-F]{6}$")


class Cell:
    """A variable's value with display options.

    A variable may return a plain value, or a ``Cell`` to control its summary and
    appearance::

        @Variable(title="Mean flux", units="µJ")
        def flux(run):
            data = run["SA1_XTD2_XGM/DOOCS/MAIN", "pulseEnergy.photonFlux"].ndarray()
            return Cell(data, summary="mean", bold=data.mean() > 500)

    ``data`` is kept as it is when it is a figure (matplotlib or plotly), an xarray
    object, a pandas object, a string or None; anything else is converted with
    ``np.asarray`` and must give an array HDF5 can store.
    """

    __slots__ = ("background", "bold", "data", "preview", "summary", "summary_value", "units")

    def __init__(
        self,
        data: Any,
        summary: str | None = None,
        summary_value: Any = None,
        bold: bool | None = None,
        background: Any = None,
        *,
        preview: Any = None,
        units: str | None = None,
    ) -> None:
        self.data = _check_data(data)
        self.summary = summary
        self.summary_value = _check_summary_value(summary_value)
        self.bold = bold
        self.background = _check_background(background)
        self.preview = _check_preview(preview)
        if units is not None and not isinstance(units, str):
            raise TypeError(f"Cell units must be a string, not {type(units).__name__}")
        self.units = units

    def __repr__(self) -> str:
        return f"Cell({_short_repr(self.data)}, summary={self.summary!r}, units={self.units!r})"

    def get_summary(self, log_name: str = "unknown") -> Any:
        """The value the table shows for this cell, by the rules of
        :mod:`runtable.execute.summary`: a number (0-d array), a string, PNG bytes, a
        ``(2, n)`` trendline array, or None. ``log_name`` names the cell in log
        messages."""
        from runtable.execute.summary import summary_value

        return summary_value(self, log_name)


def _short_repr(obj: Any) -> str:
    if isinstance(obj, np.ndarray):
        return f"<ndarray {obj.dtype}: {obj.shape}>"
    text = repr(obj)
    return text if len(text) < 60 else text[:57] + "..."


def is_figure(obj: Any) -> bool:
    """True for a matplotlib Figure/Axes or a plotly figure (checked without importing)."""
    mod = type(obj).__module__
    if mod.startswith("matplotlib"):
        return _is_matplotlib_figure(obj)
    return mod.startswith("plotly") and hasattr(obj, "to_plotly_json")


def _is_matplotlib_figure(obj: Any) -> bool:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

    return isinstance(obj, Figure | Axes)


def _keep_as_is(obj: Any) -> bool:
    if obj is None or isinstance(obj, str) or is_figure(obj):
        return True
    mod = type(obj).__module__
    return (mod.startswith("xarray") and type(obj).__name__ in ("DataArray", "Dataset")) or (
        mod.startswith("pandas") and type(obj).__name__ in ("Series", "DataFrame")
    )


def _check_data(data: Any) -> Any:
    if _keep_as_is(data):
        if type(data).__module__.startswith("matplotlib"):
            # Axes -> its Figure: what gets stored is always the whole figure.
            from matplotlib.axes import Axes

            if isinstance(data, Axes):
                return data.get_figure()
        return data
    arr = np.asarray(data)
    if arr.dtype.hasobject:
        raise TypeError(
            f"Returned data type {type(data).__name__} cannot be saved: it converts to a "
            "numpy array of Python objects. Return numbers, strings, arrays, xarray or "
            "pandas objects, or figures."
        )
    if arr.dtype.kind in "mMV":
        raise TypeError(
            f"Returned data of dtype {arr.dtype} cannot be saved in HDF5; convert it "
            "(e.g. datetimes to float seconds or to strings) first."
        )
    if arr.dtype.kind == "U":
        # HDF5 stores variable-length UTF-8, not numpy's fixed-width UCS4.
        return arr.astype(object).astype(str) if arr.ndim else str(arr)
    return arr


def _check_summary_value(value: Any) -> Any:
    if value is None or isinstance(value, str):
        return value
    arr = np.asarray(value)
    if arr.dtype.hasobject or arr.dtype.kind not in "biufc":
        raise TypeError(
            f"summary_value must be a number or a string, not {type(value).__name__}"
        )
    return arr


def _check_background(value: Any) -> np.ndarray | None:
    if value is None:
        return None
    if isinstance(value, str):
        if not _HEX_COLOUR.match(value):
            raise ValueError(f"background must be '#rrggbb' or three integers, not {value!r}")
        return np.frombuffer(bytes.fromhex(value[1:]), dtype=np.uint8).copy()
    try:
        arr = np.asarray(value)
    except Exception as exc:  # pragma: no cover - numpy accepts almost anything
        raise TypeError(f"background must be '#rrggbb' or three integers: {exc}") from None
    if arr.shape != (3,) or arr.dtype.kind not in "iu":
        raise TypeError(f"background must be '#rrggbb' or three integers, not {value!r}")
    if arr.min() < 0 or arr.max() > 255:
        raise ValueError(f"background values must be 0-255, not {value!r}")
    return arr.astype(np.uint8)


def _check_preview(value: Any) -> Any:
    if value is None:
        return None
    if is_figure(value):
        return _check_data(value)
    if type(value).__module__.startswith("xarray") and type(value).__name__ == "DataArray":
        arr = value.values
    elif isinstance(value, np.ndarray):
        arr = value
    else:
        raise TypeError(
            "Cell preview must be a 1D/2D array, an xarray DataArray or a figure, "
            f"not {type(value).__name__}"
        )
    if arr.ndim not in (1, 2) or arr.dtype.kind not in "biuf":
        raise TypeError(
            f"Cell preview must be 1D or 2D numeric data, not {arr.dtype} with shape {arr.shape}"
        )
    return value
