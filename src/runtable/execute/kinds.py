"""Classifying a variable's value without importing the libraries it might come from."""

from __future__ import annotations

from typing import Any, Literal

Kind = Literal[
    "none", "str", "matplotlib", "plotly", "dataarray", "dataset", "series", "dataframe", "array"
]


def value_kind(obj: Any) -> Kind:
    """What sort of value ``obj`` is, for choosing how to summarise and store it.

    Checks the type's module first, so a run that returns only numbers never imports
    matplotlib, plotly, xarray or pandas.
    """
    if obj is None:
        return "none"
    if isinstance(obj, str):
        return "str"
    cls = type(obj)
    mod, name = cls.__module__, cls.__name__
    if mod.startswith("matplotlib"):
        from matplotlib.axes import Axes
        from matplotlib.figure import Figure

        if isinstance(obj, Figure | Axes):
            return "matplotlib"
    elif mod.startswith("plotly") and hasattr(obj, "to_plotly_json"):
        return "plotly"
    elif mod.startswith("xarray"):
        if name == "DataArray":
            return "dataarray"
        if name == "Dataset":
            return "dataset"
    elif mod.startswith("pandas"):
        if name == "Series":
            return "series"
        if name == "DataFrame":
            return "dataframe"
    return "array"


def as_figure(obj: Any) -> Any:
    """A matplotlib Figure for a Figure or Axes."""
    from matplotlib.axes import Axes

    return obj.get_figure() if isinstance(obj, Axes) else obj
