"""One cell's full data, read lazily from the per-run HDF5 file for previews and plots.

:func:`read_cell` answers "what does this cell hold?" with a :class:`CellData`: a kind
(``scalar``, ``text``, ``line``, ``image``, ``rgb``, ``plotly``, ``picture``,
``dataset``, ``error``), a few facts about it (shape, dtype, dimension names, units,
how it was downsampled) and the arrays to draw. The protocol built on it is described in
``docs/dev/cell-data.md``.

Only what is shown is read. h5py reads hyperslabs, so a zoomed-in region, a strided
image or one slice of a 3D stack costs only its own size. Downsampling that must look
at every value (min/max buckets of a line, block means of an image) reads the data in
blocks of at most :data:`BLOCK_VALUES` values, so memory stays bounded whatever the
array's size.

xarray objects are read through h5py too (their NetCDF layout: dimension scales for
coordinates), which keeps the reads lazy and avoids importing xarray on the server.
Coordinates go along with the values: a line's x, an image's per-pixel x/y (following
its downsampling), and CF-encoded dates (``"<unit> since <date>"``, as xarray writes
datetime64) decoded to epoch milliseconds for a date axis.
"""

from __future__ import annotations

import base64
import io
import json
import math
import re
from collections.abc import Callable, Hashable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import h5py
import numpy as np

from ..execute.fragment import OBJTYPE_ATTR, PNG_SIGNATURE
from .errors import StoreError
from .folder import DatabaseFolder

#: Points of a line when the caller does not say: about two per pixel of a wide screen.
DEFAULT_MAX_POINTS = 4000
#: Pixels of an image when the caller does not say: 1024 x 1024.
DEFAULT_MAX_PIXELS = 1 << 20
#: Largest line sent at full resolution (``max_points=0``).
FULL_POINTS_LIMIT = 10_000_000
#: Largest image sent at full resolution (``max_pixels=0``): 4096 x 4096.
FULL_PIXELS_LIMIT = 1 << 24
#: Images whose shown part has more values than this are strided, not block-averaged:
#: averaging would have to read all of it.
STRIDE_ABOVE = 64 * 2**20
#: Most values read at once while downsampling.
BLOCK_VALUES = 1 << 22
#: Most strings sent for an array of strings.
MAX_STRINGS = 10_000

_PHONY_DIM = b"This is a netCDF dimension but not a netCDF variable"
#: Milliseconds per unit of a CF time coordinate ("<unit> since <date>").
_TIME_UNIT_MS = {
    **dict.fromkeys(("days", "day", "d"), 86_400_000.0),
    **dict.fromkeys(("hours", "hour", "hr", "h"), 3_600_000.0),
    **dict.fromkeys(("minutes", "minute", "min"), 60_000.0),
    **dict.fromkeys(("seconds", "second", "sec", "s"), 1000.0),
    **dict.fromkeys(("milliseconds", "millisecond", "msec", "ms"), 1.0),
    **dict.fromkeys(("microseconds", "microsecond", "usec", "us"), 1e-3),
    **dict.fromkeys(("nanoseconds", "nanosecond", "nsec", "ns"), 1e-6),
}
_SINCE = re.compile(r"^\s*([A-Za-z]+)\s+since\s+(.+?)\s*$", re.IGNORECASE)
#: Calendars whose dates are ordinary (proleptic) Gregorian ones; others (360_day,
#: noleap...) cannot be placed on a date axis and stay plain numbers.
_GREGORIAN = {"standard", "gregorian", "proleptic_gregorian"}
#: How xarray writes NaT in an int64 time coordinate.
_NAT = np.iinfo(np.int64).min


class CellDataError(StoreError):
    """A cell's data cannot be given as asked; ``status`` is the matching HTTP status."""

    status = 400


class CellNotFound(CellDataError, LookupError):
    """No such run, variable, member or preview."""

    status = 404


class BadCellQuery(CellDataError, ValueError):
    """A slice, region or option that does not fit the data."""

    status = 422


class TooMuchData(CellDataError):
    """Full resolution was asked for more than the limits allow."""

    status = 413


@dataclass
class CellData:
    """What a cell holds, ready to be sent: ``meta`` (JSON-able facts, ``kind`` among
    them) and ``arrays`` (name -> 1D or 2D float array, in sending order)."""

    meta: dict[str, Any]
    arrays: dict[str, np.ndarray] = field(default_factory=dict)

    @property
    def kind(self) -> str:
        return str(self.meta["kind"])


@dataclass
class _Array:
    """A numeric array in the file and what xarray knew about it."""

    ds: h5py.Dataset
    dims: list[str | None]
    coords: list[h5py.Dataset | None]
    units: str | None


@dataclass
class _Coord:
    """A 1D coordinate, read as float64: plain numbers, or for a CF-encoded date
    (``units = "<unit> since <date>"``, as xarray writes datetime64) milliseconds since
    1970-01-01 UTC, which the page draws on a date axis."""

    read_raw: Callable[[slice], np.ndarray]
    dtype: np.dtype
    units: str | None
    date: bool = False
    #: Dates: value * scale + offset gives epoch milliseconds.
    scale: float = 1.0
    offset: float = 0.0
    #: Raw values that stand for "missing" (NaT, _FillValue): read as NaN.
    missing: tuple[Any, ...] = ()

    def read(self, s: slice) -> np.ndarray:
        raw = np.asarray(self.read_raw(s))
        out = _as_float(raw)
        if self.missing:
            out = np.where(np.isin(raw, self.missing), np.nan, out)
        if self.date:
            out = out * self.scale + self.offset
        return out

    @property
    def wire_dtype(self) -> type:
        # Epoch milliseconds need float64 to keep sub-millisecond steps.
        return np.float64 if self.date else _wire_dtype(self.dtype)


def read_cell(
    db: DatabaseFolder,
    proposal: int,
    run: int,
    name: str,
    *,
    path: str | None = None,
    slice: str | Sequence[int | None] | None = None,
    region: str | Sequence[int] | None = None,
    max_points: int = DEFAULT_MAX_POINTS,
    max_pixels: int = DEFAULT_MAX_PIXELS,
    preview: bool = False,
) -> CellData:
    """The data of variable ``name`` in ``run`` (see the module docstring and
    ``docs/dev/cell-data.md`` for the options).

    ``slice``: for arrays of more than 2 dimensions, an index per axis or None (``:``)
    for the 1 or 2 axes to show, or the same as text (``"3,:,:"``). ``region``: the
    index range to show, ``(x0, x1)`` for lines, ``(x0, x1, y0, y1)`` for images.
    ``max_points`` / ``max_pixels``: downsampling targets, 0 for full resolution.
    ``preview``: the ``Cell(preview=...)`` object instead of the data.

    Raises :class:`CellNotFound`, :class:`BadCellQuery` or :class:`TooMuchData`.
    """
    if max_points < 0 or max_pixels < 0:
        raise BadCellQuery("max_points and max_pixels must be 0 (full resolution) or more")
    if not name or name.startswith(".") or "/" in name:
        raise CellNotFound(f"There is no variable {name!r}")
    opts = _Options(_parse_slice(slice), _parse_region(region), max_points, max_pixels)
    base: dict[str, Any] = {"run": run, "name": name, "path": path}
    h5_path = db.run_file(proposal, run)
    if h5_path.is_file():
        with h5py.File(h5_path, "r") as f:
            base["has_preview"] = f".preview/{name}" in f
            obj = f.get(f".preview/{name}") if preview else f.get(name)
            if obj is not None:
                units = (db.get_attributes(proposal, run, name) or {}).get("units")
                return _finish(base, _read_object(obj, path, opts, units))
            if preview:
                raise CellNotFound(f"Run {run} has no preview for {name!r}")
            if name in f.get(".errors", {}):
                err = f[".errors"][name]
                message = err.asstr()[()] if h5py.check_string_dtype(err.dtype) else err[()]
                return _finish(base, CellData({
                    "kind": "error", "message": str(message),
                    "error_cls": _text(err.attrs.get("type", "Exception"))}))
    elif preview:
        raise CellNotFound(f"Run {run} has no preview for {name!r}")
    base.setdefault("has_preview", False)
    return _finish(base, _from_database(db, proposal, run, name, path))


def _finish(base: dict[str, Any], data: CellData) -> CellData:
    data.meta = {**base, **data.meta}
    return data


# -- options -----------------------------------------------------------------------------
@dataclass
class _Options:
    slice: list[int | None] | None
    region: list[int] | None
    max_points: int
    max_pixels: int


def _parse_slice(spec: str | Sequence[int | None] | None) -> list[int | None] | None:
    if spec is None:
        return None
    if isinstance(spec, str):
        if not spec.strip():
            return None
        out: list[int | None] = []
        for part in spec.split(","):
            part = part.strip()
            if part == ":":
                out.append(None)
                continue
            try:
                out.append(int(part))
            except ValueError:
                raise BadCellQuery(
                    f"slice={spec!r}: each part must be an index or ':' (like 3,:,:)"
                ) from None
        return out
    return [None if v is None else int(v) for v in spec]


def _parse_region(spec: str | Sequence[int] | None) -> list[int] | None:
    if spec is None:
        return None
    if isinstance(spec, str):
        if not spec.strip():
            return None
        try:
            numbers = [float(v) for v in spec.split(",")]
            # Zooming gives fractional bounds: take every index they touch.
            values = [math.floor(v) if i % 2 == 0 else math.ceil(v)
                      for i, v in enumerate(numbers)]
        except (ValueError, OverflowError):
            raise BadCellQuery(
                f"region={spec!r}: give index numbers x0,x1 (lines) or x0,x1,y0,y1 (images)"
            ) from None
    else:
        values = [int(v) for v in spec]
    if len(values) not in (2, 4):
        raise BadCellQuery(f"region needs 2 numbers (x0,x1) for lines or 4 (x0,x1,y0,y1) "
                           f"for images, not {len(values)}")
    return values


def _clip(lo: int, hi: int, size: int, axis: str) -> tuple[int, int]:
    lo, hi = max(0, min(lo, size)), max(0, min(hi, size))
    if hi <= lo:
        raise BadCellQuery(f"the region's {axis} range is empty inside the data "
                           f"(0 to {size})")
    return lo, hi


# -- objects in the file ---------------------------------------------------------------
def _text(value: Any) -> str:
    return value.decode("utf-8", "replace") if isinstance(value, bytes) else str(value)


def _objtype(obj: h5py.HLObject) -> str:
    return _text(obj.attrs.get(OBJTYPE_ATTR, ""))


def _read_object(obj: h5py.Group | h5py.Dataset, path: str | None, opts: _Options,
                 units: str | None) -> CellData:
    kind = _objtype(obj)
    if kind in ("dataarray", "dataset") and isinstance(obj, h5py.Group):
        arrays = _netcdf_arrays(obj)
        if kind == "dataarray" and path is None:
            if not arrays:
                raise CellNotFound("This DataArray holds no array")
            main = next(iter(arrays.values()))
            main.units = main.units or units
            return _read_array(main, opts)
        if path is None:
            return CellData({"kind": "dataset", "members": [
                {"name": key, "dims": arr.dims, "shape": list(arr.ds.shape),
                 "dtype": str(arr.ds.dtype), "units": arr.units}
                for key, arr in arrays.items()]})
        if path not in arrays:
            raise CellNotFound(f"There is no array {path!r} here; there are: "
                               f"{', '.join(arrays) or 'none'}")
        return _read_array(arrays[path], opts)
    if path is not None and kind not in ("dataframe",):
        raise BadCellQuery("path= is for the members of a Dataset or DataFrame; "
                           "this cell holds a single value")
    ds = obj if isinstance(obj, h5py.Dataset) else obj.get("data")
    if not isinstance(ds, h5py.Dataset):
        raise CellNotFound("This cell's group in the HDF5 file holds no data")
    kind = kind or _objtype(ds)
    if kind == "PlotlyFigure":
        return CellData({"kind": "plotly", "figure": json.loads(ds[()].tobytes())})
    if kind in ("series", "dataframe"):
        return _read_pandas(ds, kind, path, opts)
    if kind == "image":
        return _rgb(ds[()])
    if h5py.check_string_dtype(ds.dtype) is not None:
        return _read_strings(ds)
    if ds.dtype.kind not in "biufc":
        raise BadCellQuery(f"{ds.dtype} data cannot be shown")
    if ds.ndim == 0:
        return _scalar(ds[()], str(ds.dtype), units)
    if ds.ndim == 3 and ds.dtype == np.uint8 and ds.shape[-1] in (3, 4) \
            and opts.slice is None:
        return _rgb(ds[()])
    return _read_array(_Array(ds, [None] * ds.ndim, [None] * ds.ndim, units), opts)


def _netcdf_arrays(group: h5py.Group) -> dict[str, _Array]:
    """The data variables of a NetCDF group (not coordinates), with their dimensions."""
    coord_names: set[str] = set()
    candidates: list[h5py.Dataset] = []
    for obj in group.values():
        if not isinstance(obj, h5py.Dataset):
            continue
        if _text(obj.attrs.get("CLASS", b"")) == "DIMENSION_SCALE":
            continue
        coord_names.update(_text(obj.attrs.get("coordinates", "")).split())
        candidates.append(obj)
    out: dict[str, _Array] = {}
    for ds in candidates:
        key = ds.name.rsplit("/", 1)[-1]
        if key in coord_names:
            continue
        dims: list[str | None] = []
        coords: list[h5py.Dataset | None] = []
        for dim in ds.dims:
            scale = dim[0] if len(dim) else None
            if scale is None:
                dims.append(None)
                coords.append(None)
                continue
            dims.append(scale.name.rsplit("/", 1)[-1])
            phony = bytes(np.asarray(scale.attrs.get("NAME", b"")).tobytes()).startswith(
                _PHONY_DIM)
            coords.append(None if phony or scale.ndim != 1 else scale)
        units = ds.attrs.get("units")
        out[key] = _Array(ds, dims, coords, None if units is None else _text(units))
    return out


def _read_strings(ds: h5py.Dataset) -> CellData:
    if ds.ndim == 0:
        return CellData({"kind": "text", "value": _text(ds[()]), "shape": [],
                         "dtype": "str"})
    flat = ds.asstr("utf-8", "replace")[()].ravel()
    return CellData({"kind": "text", "values": [str(v) for v in flat[:MAX_STRINGS]],
                     "truncated": flat.size > MAX_STRINGS, "shape": list(ds.shape),
                     "dtype": "str"})


def _scalar(value: Any, dtype: str, units: str | None) -> CellData:
    if isinstance(value, np.generic):
        value = value.item()
    text = str(value)
    if isinstance(value, complex):
        shown: Any = None
        text = str(value).strip("()")
    elif isinstance(value, float) and not math.isfinite(value):
        shown = None
    else:
        shown = value
    return CellData({"kind": "scalar", "value": shown, "text": text, "dtype": dtype,
                     "units": units})


def _png(rgb: np.ndarray) -> str:
    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(np.ascontiguousarray(rgb)).save(buf, format="PNG")
    return base64.b64encode(buf.getvalue()).decode("ascii")


def _rgb(value: np.ndarray) -> CellData:
    arr = np.asarray(value)
    if arr.dtype != np.uint8:
        arr = np.clip(np.nan_to_num(arr * (255 if arr.max(initial=0) <= 1 else 1)),
                      0, 255).astype(np.uint8)
    return CellData({"kind": "rgb", "shape": list(arr.shape), "png": _png(arr)})


def _read_pandas(ds: h5py.Dataset, kind: str, path: str | None, opts: _Options) -> CellData:
    import pandas as pd

    frame = pd.read_parquet(io.BytesIO(ds[()].tobytes()), engine="pyarrow")
    if kind == "dataframe" and path is None:
        return CellData({"kind": "dataset", "members": [
            {"name": str(c), "dims": [str(frame.index.name or "index")],
             "shape": [len(frame)], "dtype": str(frame[c].dtype), "units": None}
            for c in frame.columns]})
    column = frame.columns[0] if path is None else path
    if column not in frame.columns:
        raise CellNotFound(f"There is no column {path!r}; there are: "
                           f"{', '.join(map(str, frame.columns))}")
    series = frame[column]
    values = np.asarray(series.to_numpy())
    if values.dtype.kind not in "biufc":
        return CellData({"kind": "text", "values": [str(v) for v in values[:MAX_STRINGS]],
                         "truncated": values.size > MAX_STRINGS, "shape": [values.size],
                         "dtype": str(values.dtype)})
    coord, note = _index_coord(frame.index)
    return _line(_memory_reader(values), values.shape[0], values.dtype, coord,
                 _axis_info(frame.index.name, coord, note),
                 opts, {"kind": "line", "shape": [values.size], "ndim": 1,
                        "dtype": str(values.dtype), "dims": [frame.index.name],
                        "units": None})


def _memory_reader(arr: np.ndarray) -> Callable[[slice], np.ndarray]:
    return lambda s: arr[s]


def _index_coord(index: Any) -> tuple[_Coord | None, str | None]:
    """A pandas index as a coordinate: numbers, or dates (time zones converted to UTC)."""
    import pandas as pd

    if isinstance(index, pd.DatetimeIndex):
        ns = index.tz_convert("UTC").tz_localize(None) if index.tz is not None else index
        raw = np.asarray(ns.to_numpy(dtype="datetime64[ns]")).view(np.int64)
        return _Coord(_memory_reader(raw), raw.dtype, None, date=True, scale=1e-6,
                      missing=(_NAT,)), None
    values = np.asarray(index.to_numpy())
    if values.dtype.kind in "biuf":
        return _Coord(_memory_reader(values), values.dtype, None), None
    if isinstance(index, pd.RangeIndex):
        return None, None
    return None, "the index is not numeric: shown in index units"


# -- arrays -------------------------------------------------------------------------------
def _read_array(arr: _Array, opts: _Options) -> CellData:
    ds = arr.ds
    if ds.dtype.kind not in "biufc":
        if h5py.check_string_dtype(ds.dtype) is not None:
            return _read_strings(ds)
        raise BadCellQuery(f"{ds.dtype} data cannot be shown")
    if ds.ndim == 0:
        return _scalar(ds[()], str(ds.dtype), arr.units)
    meta: dict[str, Any] = {"shape": list(ds.shape), "ndim": ds.ndim, "dtype": str(ds.dtype),
                            "dims": arr.dims, "units": arr.units, "slice": None}
    if ds.dtype.kind == "c":
        meta["complex"] = "abs"
    lead: list[int | None]
    if ds.ndim <= 2:
        if opts.slice is not None:
            raise BadCellQuery(f"slice= is for arrays of more than 2 dimensions; this one "
                               f"has shape {tuple(ds.shape)}")
        lead = [None] * ds.ndim
    else:
        lead = _full_slice(opts.slice, ds.shape)
        meta["slice"] = ",".join(":" if v is None else str(v) for v in lead)
    kept = [axis for axis, v in enumerate(lead) if v is None]

    def index(*parts: slice) -> tuple[Any, ...]:
        out: list[Any] = list(lead)
        for axis, part in zip(kept, parts, strict=True):
            out[axis] = part
        return tuple(out)

    coords = [_coord(c, arr.dims[axis], ds.shape[axis]) if c is not None else (None, None)
              for axis, c in enumerate(arr.coords)]
    if len(kept) == 1:
        axis = kept[0]
        coord, note = coords[axis]
        meta["kind"] = "line"
        return _line(lambda s: ds[index(s)], ds.shape[axis], ds.dtype, coord,
                     _axis_info(arr.dims[axis], coord, note), opts, meta)
    rows, cols = kept
    meta["kind"] = "image"
    return _image(lambda r, c: ds[index(r, c)], ds.shape[rows], ds.shape[cols],
                  (arr.dims[rows], *coords[rows]), (arr.dims[cols], *coords[cols]),
                  opts, meta)


def _units(ds: h5py.Dataset) -> str | None:
    units = ds.attrs.get("units")
    return None if units is None else _text(units)


def _axis_info(name: Hashable, coord: _Coord | None, note: str | None) -> dict[str, Any]:
    """What the page needs to label an axis: ``coord`` (values are the coordinate's,
    not indices), ``date`` (they are epoch milliseconds), ``units``, ``note`` (why a
    coordinate there is not used)."""
    return {"name": name, "units": None if coord is None or coord.date else coord.units,
            "coord": coord is not None, "date": coord is not None and coord.date,
            "note": note}


def _coord(ds: h5py.Dataset, name: str | None, size: int) -> tuple[_Coord | None, str | None]:
    """The coordinate to draw against, or None and a note saying why there is none."""
    label = repr(name) if name else "of this axis"
    if ds.shape != (size,):
        return None, f"coordinate {label} does not match its axis: shown in index units"
    if h5py.check_string_dtype(ds.dtype) is not None or ds.dtype.kind in "SUO":
        return None, f"coordinate {label} is text: shown in index units"
    if ds.dtype.kind not in "biuf":
        return None, f"coordinate {label} is not numeric: shown in index units"
    units = _units(ds)
    missing = tuple(np.asarray(ds.attrs[key]).ravel()[0].item()
                    for key in ("_FillValue", "missing_value") if key in ds.attrs)
    coord = _Coord(lambda s: ds[s], ds.dtype, units, missing=missing)
    calendar = ds.attrs.get("calendar")
    encoding = _date_encoding(units, None if calendar is None else _text(calendar))
    if encoding is not None:
        coord.date = True
        coord.scale, coord.offset = encoding
        if ds.dtype == np.int64:
            coord.missing = (*coord.missing, _NAT)
    return coord, None


def _date_encoding(units: str | None, calendar: str | None) -> tuple[float, float] | None:
    """``(ms per unit, epoch ms of the reference)`` for CF time units like
    ``"nanoseconds since 2026-01-02 03:04:05"``; None when ``units`` is not a date."""
    match = _SINCE.match(units or "")
    if match is None or (calendar is not None and calendar.lower() not in _GREGORIAN):
        return None
    scale = _TIME_UNIT_MS.get(match[1].lower())
    reference = _parse_reference(match[2])
    if scale is None or reference is None:
        return None
    return scale, reference


def _parse_reference(text: str) -> float | None:
    """Epoch milliseconds of a CF reference date; naive dates are UTC, as in xarray."""
    text = text.strip()
    if text.upper().endswith(" UTC"):
        text = text[:-4]
    try:
        when = datetime.fromisoformat(text)
    except ValueError:
        try:
            import pandas as pd

            when = pd.Timestamp(text).to_pydatetime()
        except (ValueError, TypeError, OverflowError):
            return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return when.timestamp() * 1000.0


def _full_slice(spec: list[int | None] | None, shape: tuple[int, ...]) -> list[int | None]:
    ndim = len(shape)
    if spec is None:
        return [0] * (ndim - 2) + [None, None]
    if len(spec) > ndim:
        raise BadCellQuery(f"slice has {len(spec)} parts but the array has only {ndim} "
                           f"dimensions (shape {tuple(shape)})")
    spec = list(spec)
    if len(spec) < ndim:
        # Leading indices given alone: the remaining axes are shown, if 1 or 2 remain.
        spec += [None] * (ndim - len(spec))
    free = sum(v is None for v in spec)
    if free not in (1, 2):
        raise BadCellQuery(f"slice must leave 1 axis (a line) or 2 axes (an image) as ':', "
                           f"not {free}; the array has shape {tuple(shape)}")
    out: list[int | None] = []
    for axis, (v, size) in enumerate(zip(spec, shape, strict=True)):
        if v is not None:
            if not -size <= v < size:
                raise BadCellQuery(f"slice index {v} is outside axis {axis}, which has "
                                   f"{size} entries (0 to {size - 1})")
            v = v % size
        out.append(v)
    return out


def _wire_dtype(dtype: np.dtype) -> type:
    """float32 where it holds the source exactly, float64 otherwise."""
    if dtype.kind == "f" and dtype.itemsize <= 4:
        return np.float32
    if dtype.kind in "biu" and dtype.itemsize <= 2:
        return np.float32
    if dtype.kind == "c" and dtype.itemsize <= 8:
        return np.float32
    return np.float64


def _as_float(block: np.ndarray) -> np.ndarray:
    if block.dtype.kind == "c":
        return np.abs(block).astype(np.float64)
    return block.astype(np.float64, copy=False)


def _line(read: Callable[[slice], np.ndarray], n: int, dtype: np.dtype,
          coord: _Coord | None, x_info: dict[str, Any], opts: _Options,
          meta: dict[str, Any]) -> CellData:
    if opts.region is not None and len(opts.region) != 2:
        raise BadCellQuery("a line's region needs 2 numbers: x0,x1")
    x0, x1 = _clip(opts.region[0], opts.region[1], n, "x") if opts.region else (0, n)
    m = x1 - x0
    if opts.max_points == 0 and m > FULL_POINTS_LIMIT:
        raise TooMuchData(f"{m:,} points at full resolution is more than the limit of "
                          f"{FULL_POINTS_LIMIT:,}; ask for a region or a max_points")
    meta = {**meta, "x": x_info, "region": [x0, x1]}
    y_type = _wire_dtype(dtype)
    x_type = np.float64 if coord is None else coord.wire_dtype
    arrays: dict[str, np.ndarray] = {}
    if opts.max_points == 0 or m <= opts.max_points:
        y: np.ndarray = _as_float(np.asarray(read(slice(x0, x1)))).astype(y_type)
        x: np.ndarray
        if coord is not None:
            x = coord.read(slice(x0, x1)).astype(x_type)
        else:
            x = np.arange(x0, x1, dtype=np.float64)
        meta["downsample"] = {"method": "none", "factor": 1}
        arrays = {"x": x, "y": y}
        return CellData(meta, arrays)
    buckets = max(1, opts.max_points // 2)
    k = math.ceil(m / buckets)
    per_read = max(1, BLOCK_VALUES // k)
    idx_parts, y_parts, x_parts = [], [], []
    for start in range(x0, x1, per_read * k):
        stop = min(x1, start + per_read * k)
        block = _as_float(np.asarray(read(slice(start, stop))))
        nb = math.ceil(block.size / k)
        padded = np.full(nb * k, np.nan)
        padded[:block.size] = block
        shaped = padded.reshape(nb, k)
        lo = np.argmin(np.where(np.isnan(shaped), np.inf, shaped), axis=1)
        hi = np.argmax(np.where(np.isnan(shaped), -np.inf, shaped), axis=1)
        first, second = np.minimum(lo, hi), np.maximum(lo, hi)
        # The last bucket may be short: its padding is never the min or max of real
        # values, but an all-NaN tail would point into it.
        local = np.stack([first, second], axis=1) + (np.arange(nb) * k)[:, None]
        local = np.minimum(local.ravel(), block.size - 1)
        idx_parts.append(local + start)
        y_parts.append(block[local])
        if coord is not None:
            x_parts.append(coord.read(slice(start, stop))[local])
    idx = np.concatenate(idx_parts)
    y = np.concatenate(y_parts).astype(y_type)
    x = np.concatenate(x_parts).astype(x_type) if coord is not None \
        else idx.astype(np.float64)
    meta["downsample"] = {"method": "minmax", "factor": k}
    return CellData(meta, {"x": x, "y": y, "i": idx.astype(np.float64)})


_AxisCoord = tuple[str | None, _Coord | None, str | None]


def _image(read: Callable[[slice, slice], np.ndarray], h: int, w: int,
           rows: _AxisCoord, cols: _AxisCoord, opts: _Options,
           meta: dict[str, Any]) -> CellData:
    if opts.region is not None and len(opts.region) != 4:
        raise BadCellQuery("an image's region needs 4 numbers: x0,x1,y0,y1")
    if opts.region is not None:
        x0, x1 = _clip(opts.region[0], opts.region[1], w, "x")
        y0, y1 = _clip(opts.region[2], opts.region[3], h, "y")
    else:
        x0, x1, y0, y1 = 0, w, 0, h
    rh, rw = y1 - y0, x1 - x0
    pixels = rh * rw
    if opts.max_pixels == 0 and pixels > FULL_PIXELS_LIMIT:
        raise TooMuchData(f"{pixels:,} pixels at full resolution is more than the limit "
                          f"of {FULL_PIXELS_LIMIT:,}; ask for a region or a max_pixels")
    f = 1
    if opts.max_pixels and pixels > opts.max_pixels:
        f = max(2, math.ceil(math.sqrt(pixels / opts.max_pixels)))
        while math.ceil(rh / f) * math.ceil(rw / f) > opts.max_pixels:
            f += 1
    if f == 1:
        z = _as_float(np.asarray(read(slice(y0, y1), slice(x0, x1))))
        method = "none"
    elif pixels > STRIDE_ABOVE:
        z = _as_float(np.asarray(read(slice(y0, y1, f), slice(x0, x1, f))))
        method = "stride"
    else:
        z = _block_mean(read, y0, y1, x0, x1, f)
        method = "mean"
    z = z.astype(np.float32)
    finite = z[np.isfinite(z)]
    x_info, x_values = _image_axis(cols, x0, x1, f, method)
    y_info, y_values = _image_axis(rows, y0, y1, f, method)
    arrays = {"z": z}
    if x_values is not None:
        arrays["x"] = x_values
    if y_values is not None:
        arrays["y"] = y_values
    meta = {**meta, "region": [x0, x1, y0, y1], "x": x_info, "y": y_info,
            "downsample": {"method": method, "factor": f},
            "percentiles": [float(v) for v in np.percentile(finite, [1, 99])]
            if finite.size else None,
            "range": [float(finite.min()), float(finite.max())] if finite.size else None}
    return CellData(meta, arrays)


def _image_axis(axis: _AxisCoord, lo: int, hi: int, f: int,
                method: str) -> tuple[dict[str, Any], np.ndarray | None]:
    """An image axis's facts and, with a usable coordinate, its value at each pixel
    sent: the mean over the pixel's block for block means (the block's centre), the
    coordinate at the pixel's index otherwise."""
    name, coord, note = axis
    size = math.ceil((hi - lo) / f)
    info = {"start": lo, "step": f, "size": size, **_axis_info(name, None, note)}
    if coord is None:
        return info, None
    # The whole coordinate, not just the region, decides: zooming must not switch units.
    values = coord.read(slice(None))
    label = repr(name) if name else "of this axis"
    if not np.isfinite(values).all():
        info["note"] = f"coordinate {label} has missing values: shown in index units"
        return info, None
    steps = np.diff(values)
    if not (np.all(steps > 0) or np.all(steps < 0)):
        info["note"] = f"coordinate {label} is not monotonic: shown in index units"
        return info, None
    part = values[lo:hi]
    if method == "mean" and f > 1:
        starts = np.arange(0, part.size, f)
        part = np.add.reduceat(part, starts) / np.diff(np.append(starts, part.size))
    else:
        part = part[::f]
    info.update(_axis_info(name, coord, None))
    return info, part.astype(np.float64)


def _block_mean(read: Callable[[slice, slice], np.ndarray], y0: int, y1: int,
                x0: int, x1: int, f: int) -> np.ndarray:
    """Means of f x f blocks (NaN and infinities left out), read in bands of rows."""
    rw = x1 - x0
    out_w = math.ceil(rw / f)
    bands = max(1, BLOCK_VALUES // (f * rw))
    parts = []
    for start in range(y0, y1, bands * f):
        stop = min(y1, start + bands * f)
        block = _as_float(np.asarray(read(slice(start, stop), slice(x0, x1))))
        nb = math.ceil(block.shape[0] / f)
        if block.shape[0] == nb * f and rw == out_w * f and np.isfinite(block).all():
            # The usual case: whole blocks, no missing values; a plain mean is faster.
            parts.append(block.reshape(nb, f, out_w, f).mean(axis=(1, 3)))
            continue
        padded = np.full((nb * f, out_w * f), np.nan)
        padded[:block.shape[0], :rw] = block
        shaped = padded.reshape(nb, f, out_w, f)
        ok = np.isfinite(shaped)
        total = np.where(ok, shaped, 0.0).sum(axis=(1, 3))
        count = ok.sum(axis=(1, 3))
        mean = np.full(total.shape, np.nan)
        np.divide(total, count, out=mean, where=count > 0)
        parts.append(mean)
    return np.concatenate(parts, axis=0)


# -- cells without data in the HDF5 file ---------------------------------------------------
def _from_database(db: DatabaseFolder, proposal: int, run: int, name: str,
                   path: str | None) -> CellData:
    row = db.conn.execute(
        "SELECT value, summary_type, attributes FROM run_variables WHERE proposal = ? "
        "AND run = ? AND name = ? ORDER BY version DESC LIMIT 1",
        (proposal, run, name)).fetchone()
    if row is None:
        raise CellNotFound(f"Run {run} has no value for {name!r}")
    value, summary_type, attributes = row
    attrs = json.loads(attributes) if attributes else {}
    if isinstance(attrs, dict) and attrs.get("error") is not None:
        return CellData({"kind": "error", "message": str(attrs["error"]),
                         "error_cls": str(attrs.get("error_cls") or "Exception")})
    if path is not None:
        raise BadCellQuery("path= is for the members of a Dataset or DataFrame; "
                           "this cell holds a single value")
    units = attrs.get("units") if isinstance(attrs, dict) else None
    if value is None:
        raise CellNotFound(f"Run {run} has no value for {name!r}")
    if isinstance(value, bytes) and value[:8] == PNG_SIGNATURE:
        return CellData({"kind": "picture", "png": base64.b64encode(value).decode("ascii")})
    from .summaries import decode_summary

    decoded = decode_summary(value, summary_type)
    if isinstance(decoded, str):
        return CellData({"kind": "text", "value": decoded, "shape": [], "dtype": "str"})
    if isinstance(decoded, np.ndarray):
        if summary_type == "trendline" and decoded.ndim == 2 and decoded.shape[0] == 2:
            # Only the table's sparkline was kept: show it as the line it stands for.
            return CellData({"kind": "line", "shape": [decoded.shape[1]], "ndim": 1,
                             "dtype": str(decoded.dtype), "dims": [None], "units": units,
                             "slice": None, "x": {"name": None, "units": None,
                                                  "coord": True, "date": False,
                                                  "note": None},
                             "region": [0, decoded.shape[1]],
                             "downsample": {"method": "none", "factor": 1}},
                            {"x": decoded[0].astype(np.float64),
                             "y": decoded[1].astype(np.float64)})
        if decoded.ndim == 0:
            return _scalar(decoded[()], str(decoded.dtype), units)
        raise CellNotFound(f"Run {run} has only a summary of {name!r}, no data to show")
    return _scalar(decoded, type(decoded).__name__, units)

