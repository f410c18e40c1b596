"""Turn read-API results into plain JSON-able values, so results from runtable's
``Database`` and the reference's ``damnit.Damnit`` (run in its own virtualenv)
can be compared. Imported by both sides: only numpy and pandas, lazily xarray."""

from __future__ import annotations

import hashlib
import math
from typing import Any


def value(obj: Any) -> Any:
    import numpy as np
    import pandas as pd

    if obj is None:
        return None
    if obj is pd.NA:
        return "<NA>"
    if isinstance(obj, bytes):
        return {"bytes": hashlib.sha256(obj).hexdigest()}
    if isinstance(obj, (bool, np.bool_)):
        return bool(obj)
    if isinstance(obj, (complex, np.complexfloating)):
        return {"complex": [obj.real, obj.imag]}
    if isinstance(obj, (float, np.floating)):
        return "NaN" if math.isnan(obj) else float(obj)
    if isinstance(obj, (int, np.integer)):
        return int(obj)
    if isinstance(obj, str):
        return obj
    if isinstance(obj, pd.Timestamp):
        return obj.isoformat()
    if isinstance(obj, np.ndarray):
        return {"ndarray": [value(v) for v in obj.ravel().tolist()], "shape": list(obj.shape),
                "dtype": obj.dtype.kind}
    if isinstance(obj, pd.DataFrame):
        return {"dataframe": {str(c): [value(v) for v in obj[c]] for c in obj.columns}}
    if isinstance(obj, pd.Series):
        return {"series": [value(v) for v in obj], "name": obj.name}
    kind = type(obj).__name__
    if kind == "DataArray":
        return {"dataarray": value(obj.values), "dims": list(obj.dims),
                "coords": {str(k): value(v.values) for k, v in obj.coords.items()},
                "attrs": {str(k): value(v) for k, v in obj.attrs.items()}, "name": obj.name}
    if kind == "Dataset":
        return {"dataset": {str(k): value(v.values) for k, v in obj.data_vars.items()},
                "attrs": {str(k): value(v) for k, v in obj.attrs.items()}}
    if hasattr(obj, "item"):
        return value(obj.item())
    return {"repr": repr(obj)}


def table(df: Any) -> dict[str, Any]:
    return {
        "columns": [str(c) for c in df.columns],
        "dtypes": [str(t) for t in df.dtypes],
        "rows": [[value(v) for v in row] for row in df.itertuples(index=False)],
    }


def attempt(func: Any, *args: Any) -> Any:
    """value(func(*args)), or the name of the exception it raised."""
    try:
        return value(func(*args))
    except Exception as exc:
        return {"raised": type(exc).__name__}


def everything(db: Any) -> dict[str, Any]:
    """Table (by name and by title), runs, and every variable of every run."""
    out: dict[str, Any] = {
        "table": table(db.table()),
        "table_titles": table(db.table(with_titles=True)),
        "runs": sorted(db.runs()),
        "proposal": int(db.proposal),
        "variables": {},
    }
    for run in sorted(db.runs()):
        rv = db[run]
        keys = rv.keys()
        per_run: dict[str, Any] = {"keys": keys, "titles": rv.titles(), "vars": {}}
        for name in keys:
            var = db[run, name]
            db_only = name in ("comment", "quality")
            per_run["vars"][name] = {
                "title": var.title,
                "read": attempt(var.read),
                "summary": attempt(var.summary),
                "units": attempt(lambda v=var: v.units),
                "type_hint": None if db_only else attempt(
                    lambda v=var: getattr(v.type_hint(), "value", None)),
                "preview": None if db_only else attempt(var.preview_data),
            }
        out["variables"][str(run)] = per_run
    return out
