"""Result fragments: one HDF5 file per execution of a context for a run.

Layout (reference §1.3; DAMNIT data format v4)::

    /                    attr provenance
    /<name>/data         arrays, numbers, strings (vlen UTF-8); matplotlib figures as
                         RGBA uint8 (group attr _damnit_objtype='image'); plotly figures
                         as uint8 JSON ('PlotlyFigure'); pandas objects as uint8 parquet
                         bytes ('series' / 'dataframe')
    /<name>/...          xarray DataArray / Dataset as NetCDF4 ('dataarray' / 'dataset')
    /.reduced/<name>     the summary, with attrs (see :mod:`.summary`)
    /.preview/<name>     Cell.preview, stored like data
    /.errors/<name>      str(exception), attr type = exception class name
    /start_time/data     float epoch seconds (also in /.reduced/start_time)

A fragment is written as ``p{proposal}_r{run}.{random}.writing.h5`` and renamed to
``...ready.h5`` only once complete, so a reader never sees half a file. A value that
can't be stored becomes an error for that variable alone.
"""

from __future__ import annotations

import io
import logging
import os
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import h5py
import numpy as np

from ..sharing import FILE_MODE, shared_dir
from . import thumbnails
from .kinds import as_figure, value_kind
from .summary import Summary, summarise

log = logging.getLogger("runtable.execute")

SPECIAL_GROUPS = (".reduced", ".preview", ".errors")
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
OBJTYPE_ATTR = "_damnit_objtype"
DEFAULT_PROVENANCE = "context.py"
# Compression for NetCDF data variables: cheap, and camera images shrink a lot.
_NETCDF_COMPRESSION = {"compression": "gzip", "compression_opts": 1, "shuffle": True}

_STR = h5py.string_dtype()


class ResultsLike(Protocol):
    """What :func:`write_fragment` needs from ``runtable.context.Results``."""

    cells: Mapping[str, Any]
    errors: Mapping[str, BaseException]
    provenance: str


class StoreError(Exception):
    """A value that could not be written to the fragment (recorded as its error)."""


def write_fragment(
    results: ResultsLike,
    out_dir: str | Path,
    proposal: int,
    run: int,
    provenance: str | None = None,
) -> Path:
    """Write ``results`` as a fragment in ``out_dir`` (usually ``<db>/extracted_data``)
    and return the path of the finished ``...ready.h5`` file.

    ``provenance`` defaults to ``results.provenance`` (or ``"context.py"``). Raises only
    when the file itself can't be written (e.g. disk full); the partial file is removed.
    """
    out_dir = shared_dir(out_dir)
    if provenance is None:
        provenance = getattr(results, "provenance", None) or DEFAULT_PROVENANCE
    fd, tmp_name = tempfile.mkstemp(
        prefix=f"p{proposal}_r{run}.", suffix=".writing.h5", dir=out_dir
    )
    os.close(fd)
    tmp = Path(tmp_name)
    try:
        # Explicit mode, not umask: the service and users' jobs share these files.
        os.chmod(tmp, FILE_MODE)
        _write(tmp, results, provenance)
        ready = tmp.with_name(tmp.name.removesuffix(".writing.h5") + ".ready.h5")
        os.replace(tmp, ready)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return ready


@dataclass
class _Deferred:
    """An xarray object to write with h5netcdf once h5py has closed the file."""

    name: str
    group: str
    obj: Any
    objtype: str


def _write(path: Path, results: ResultsLike, provenance: str) -> None:
    errors: dict[str, BaseException] = dict(results.errors)
    deferred: list[_Deferred] = []
    with h5py.File(path, "w") as f:
        f.attrs["provenance"] = provenance
        for group in SPECIAL_GROUPS:
            f.create_group(group)
        for name, cell in results.cells.items():
            if name in errors:
                continue
            try:
                deferred += _write_cell(f, name, cell)
            except Exception as exc:
                log.error("Could not store %s", name, exc_info=True)
                _remove(f, name)
                errors[name] = _store_error(cell, exc)
    if deferred:
        failed = _write_netcdf(path, deferred)
        with h5py.File(path, "a") as f:
            for item in deferred:
                if item.name in failed:
                    _remove(f, item.name)
                elif item.group in f:
                    f[item.group].attrs[OBJTYPE_ATTR] = item.objtype
            errors.update(failed)
    with h5py.File(path, "a") as f:
        for name, exc in errors.items():
            ds = f[".errors"].create_dataset(name, data=str(exc), dtype=_STR)
            ds.attrs["type"] = type(exc).__name__


def _store_error(cell: Any, exc: BaseException) -> StoreError:
    return StoreError(
        f"Could not store the returned {type(cell.data).__name__}: "
        f"{type(exc).__name__}: {exc}"
    )


def _write_cell(f: h5py.File, name: str, cell: Any) -> list[_Deferred]:
    deferred = []
    summary = summarise(cell, name)
    if cell.data is not None:
        deferred += _write_value(f, name, f"{name}", cell.data, as_group=True)
    if cell.preview is not None:
        deferred += _write_value(f, name, f".preview/{name}", cell.preview, as_group=False)
    if summary is not None:
        _write_summary(f[".reduced"], name, summary)
    return deferred


def _write_value(
    f: h5py.File, name: str, path: str, value: Any, *, as_group: bool
) -> list[_Deferred]:
    """Store ``value`` at ``path``: as ``path/data`` in a group (data) or as the
    dataset ``path`` itself (previews). xarray objects are deferred."""
    kind = value_kind(value)
    if kind in ("dataarray", "dataset"):
        return [_Deferred(name, path, _netcdf_ready(value, kind), kind)]
    objtype = None
    if kind == "str":
        array: Any = value
        dtype = _STR
    elif kind == "matplotlib":
        array, dtype, objtype = thumbnails.figure_rgba(as_figure(value)), None, "image"
    elif kind == "plotly":
        array, dtype, objtype = _bytes_array(value.to_json().encode()), None, "PlotlyFigure"
    elif kind in ("series", "dataframe"):
        array, dtype, objtype = _bytes_array(_parquet_bytes(value, kind)), None, kind
    else:
        array, dtype = _hdf5_array(value)
    if as_group:
        group = f.create_group(path)
        group.create_dataset("data", data=array, dtype=dtype)
        if objtype:
            group.attrs[OBJTYPE_ATTR] = objtype
    else:
        ds = f.create_dataset(path, data=array, dtype=dtype)
        if objtype:
            ds.attrs[OBJTYPE_ATTR] = objtype
    return []


def _hdf5_array(value: Any) -> tuple[np.ndarray, Any]:
    arr = np.asarray(value)
    if arr.dtype.kind == "U" or (arr.dtype.kind == "O" and _all_str(arr)):
        return arr.astype(object), _STR
    if arr.dtype.hasobject or arr.dtype.kind in "mMV":
        raise TypeError(f"{arr.dtype} arrays can't be stored in HDF5")
    return arr, None


def _all_str(arr: np.ndarray) -> bool:
    return all(isinstance(v, str) for v in arr.flat)


def _bytes_array(data: bytes) -> np.ndarray:
    return np.frombuffer(data, dtype=np.uint8)


def _parquet_bytes(obj: Any, kind: str) -> bytes:
    frame = obj.to_frame() if kind == "series" else obj
    if not all(isinstance(c, str) for c in frame.columns):
        # Parquet needs string column names; an unnamed Series' column is 0.
        frame = frame.rename(columns=str)
    buf = io.BytesIO()
    frame.to_parquet(buf)
    return buf.getvalue()


def _netcdf_ready(obj: Any, kind: str) -> Any:
    """A shallow copy NetCDF can hold: no '/' in names, no inherited encodings."""
    obj = obj.copy(deep=False)
    names = set(obj.coords) | set(obj.dims)
    if kind == "dataset":
        names |= set(obj.data_vars)
    renames = {n: str(n).replace("/", "_") for n in names if "/" in str(n)}
    if renames:
        obj = obj.rename(renames)
    if kind == "dataarray" and obj.name is not None and "/" in str(obj.name):
        obj = obj.rename(str(obj.name).replace("/", "_"))
    # Encodings from a file the data was read from (chunks, filters) may not fit ours.
    for var in obj.variables.values() if kind == "dataset" else [obj, *obj.coords.values()]:
        var.encoding = {}
    return obj


def _netcdf_encoding(obj: Any, kind: str) -> dict[str, dict]:
    if kind == "dataarray":
        name = obj.name if obj.name is not None else "__xarray_dataarray_variable__"
        variables = {name: obj}
    else:
        variables = dict(obj.data_vars)
    return {
        name: dict(_NETCDF_COMPRESSION)
        for name, var in variables.items()
        if var.ndim > 0 and var.dtype.kind in "biuf"
    }


def _write_netcdf(path: Path, deferred: list[_Deferred]) -> dict[str, BaseException]:
    failed: dict[str, BaseException] = {}
    for item in deferred:
        if item.name in failed:
            continue
        try:
            item.obj.to_netcdf(
                path,
                mode="a",
                group=item.group,
                engine="h5netcdf",
                encoding=_netcdf_encoding(item.obj, item.objtype),
                # Allows complex and bool data, which h5py and xarray read back fine.
                invalid_netcdf=True,
            )
        except Exception as exc:
            log.error("Could not store %s", item.name, exc_info=True)
            failed[item.name] = StoreError(
                f"Could not store the returned {type(item.obj).__name__}: "
                f"{type(exc).__name__}: {exc}"
            )
    return failed


def _write_summary(reduced: h5py.Group, name: str, summary: Summary) -> None:
    value = summary.value
    if isinstance(value, str):
        ds = reduced.create_dataset(name, data=value, dtype=_STR)
    elif isinstance(value, bytes):
        ds = reduced.create_dataset(name, data=_bytes_array(value))
    else:
        arr, dtype = _hdf5_array(value)
        ds = reduced.create_dataset(name, data=arr, dtype=dtype)
    for key, attr in summary.attrs.items():
        ds.attrs[key] = attr


def _remove(f: h5py.File, name: str) -> None:
    for path in (name, f".reduced/{name}", f".preview/{name}"):
        if path in f:
            del f[path]


# -- reading -------------------------------------------------------------------------


@dataclass
class FragmentContents:
    """What a fragment holds, without the (possibly large) data itself.

    ``names``: every variable the fragment touches (data groups and ``.reduced`` /
    ``.preview`` / ``.errors`` entries), in file order; merging a fragment replaces
    exactly these names in the per-run file.
    ``summaries``: name -> :class:`Summary`; 0-d values come back as Python scalars
    (int, float, bool, complex), strings as ``str``, PNG thumbnails as ``bytes``,
    other arrays as numpy arrays; attrs are decoded (``str``, ``bool``, ``float``,
    ``background`` as a uint8 array).
    ``errors``: name -> ``(exception class name, message)``.
    """

    path: Path
    provenance: str
    names: list[str] = field(default_factory=list)
    data_names: list[str] = field(default_factory=list)
    summaries: dict[str, Summary] = field(default_factory=dict)
    errors: dict[str, tuple[str, str]] = field(default_factory=dict)

    @property
    def start_time(self) -> float | None:
        """The run's start (epoch seconds), if the fragment carries it."""
        summary = self.summaries.get("start_time")
        return None if summary is None else float(summary.value)  # type: ignore[arg-type]


def read_fragment(path: str | Path) -> FragmentContents:
    """Read a fragment's names, summaries (with attributes) and errors."""
    path = Path(path)
    with h5py.File(path, "r") as f:
        contents = FragmentContents(path, _decode(f.attrs.get("provenance", "")))
        seen: dict[str, None] = {}
        for key in f:
            if key not in SPECIAL_GROUPS:
                contents.data_names.append(key)
                seen[key] = None
        for group in SPECIAL_GROUPS:
            for key in f.get(group, {}):
                seen[key] = None
        contents.names = list(seen)
        for key, ds in f.get(".reduced", {}).items():
            if not isinstance(ds, h5py.Dataset):
                continue
            attrs = {k: _decode_attr(k, v) for k, v in ds.attrs.items()}
            contents.summaries[key] = Summary(_read_summary_value(ds), attrs)
        for key, ds in f.get(".errors", {}).items():
            if not isinstance(ds, h5py.Dataset):
                continue
            cls = _decode(ds.attrs.get("type", "Exception"))
            contents.errors[key] = (cls, _read_str(ds))
    return contents


def _decode(value: Any) -> str:
    return value.decode("utf-8", "replace") if isinstance(value, bytes) else str(value)


def _decode_attr(key: str, value: Any) -> Any:
    if isinstance(value, bytes | str):
        return _decode(value)
    if key == "background":
        return np.asarray(value, dtype=np.uint8)
    if isinstance(value, np.ndarray) and value.ndim == 0:
        value = value[()]
    if isinstance(value, np.generic):
        return value.item()
    return value


def _read_str(ds: h5py.Dataset) -> str:
    value = ds.asstr()[()] if h5py.check_string_dtype(ds.dtype) else ds[()]
    return _decode(value) if not isinstance(value, np.ndarray) else str(value)


def _read_summary_value(ds: h5py.Dataset) -> Any:
    if h5py.check_string_dtype(ds.dtype) is not None:
        value = ds.asstr()[()]
        return value if isinstance(value, str) else np.asarray(value, dtype=object)
    value = ds[()]
    if isinstance(value, np.ndarray):
        if value.dtype == np.uint8 and value.ndim == 1 and value[:8].tobytes() == PNG_SIGNATURE:
            return value.tobytes()
        return value
    return value.item() if isinstance(value, np.generic) else value
