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

import contextlib
import io
import json
import logging
import os
import secrets
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import h5py
import numpy as np

from ..errors import StoreError
from ..sharing import FILE_MODE, shared_dir, shared_file
from . import thumbnails
from .kinds import as_figure, value_kind
from .source import job_source
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

    # Read-only members, so that a class holding dicts matches.
    @property
    def cells(self) -> Mapping[str, Any]: ...
    @property
    def errors(self) -> Mapping[str, BaseException]: ...
    @property
    def provenance(self) -> str: ...


#: Attribute of ``/.errors/<name>`` marking the error of a job that died before
#: finishing the variable: the merge keeps the value stored before, with the failure.
JOB_FAILURE_ATTR = "job_failure"
#: Suffix of the journal beside a fragment being written: one finished name per line.
JOURNAL_SUFFIX = ".done"
#: Root attributes: where the fragment was written (JSON), and the SHA-256 of the
#: context file's text that computed it.
SOURCE_ATTR = "runtable_source"
CONTEXT_ATTR = "runtable_context_sha256"


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
    if provenance is None:
        provenance = getattr(results, "provenance", None) or DEFAULT_PROVENANCE
    writer = FragmentWriter(out_dir, proposal, run, provenance, journal=False)
    try:
        errors = dict(results.errors)
        for name, cell in results.cells.items():
            if name not in errors:
                writer.add(name, cell)
        for name, exc in errors.items():
            writer.add(name, exc)
        return writer.finish()
    except BaseException:
        writer.abort()
        raise


def partial_path(out_dir: str | Path, proposal: int, run: int) -> Path:
    """A new, unique name for a fragment being written: ``p{proposal}_r{run}.<random>
    .writing.h5`` (renamed to ``….ready.h5`` once complete)."""
    return Path(out_dir) / f"p{proposal}_r{run}.{secrets.token_hex(8)}.writing.h5"


def journal_path(partial: str | Path) -> Path:
    """The journal of a fragment being written: the names it holds completely."""
    return Path(str(partial) + JOURNAL_SUFFIX)


class FragmentWriter:
    """A fragment written one variable at a time, as each finishes.

    With ``journal`` (what a processing job uses), the file is flushed after each
    variable and the variable's name appended to :func:`journal_path`: when the job
    dies, what it had finished can be taken from the partial file
    (:func:`runtable.jobs.errors.write_error_fragment`). :meth:`finish` renames the
    file to ``….ready.h5``; :meth:`abort` removes it. ``path``: the ``….writing.h5``
    name to use (default: a new one); nothing is created before the first variable.

    Every fragment records where it was written (:func:`.source.job_source`) and, with
    ``context_sha256``, the hash of the context file's text that computed it, as root
    attributes :data:`SOURCE_ATTR` and :data:`CONTEXT_ATTR` (the reference's readers
    ignore them).
    """

    def __init__(self, out_dir: str | Path, proposal: int, run: int,
                 provenance: str = DEFAULT_PROVENANCE, *, path: str | Path | None = None,
                 journal: bool = True, context_sha256: str | None = None) -> None:
        self.out_dir = Path(out_dir)
        self.path = Path(path) if path is not None else partial_path(out_dir, proposal, run)
        self.provenance = provenance
        self.context_sha256 = context_sha256
        self.journal = journal
        self.names: list[str] = []
        self._file: h5py.File | None = None
        self._journal_fd: int | None = None

    def _open(self) -> h5py.File:
        if self._file is None:
            if self.path.exists():
                self._file = h5py.File(self.path, "a")
            else:
                shared_dir(self.out_dir)
                os.close(os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, FILE_MODE))
                # Explicit mode, not umask: the service and users' jobs share these files.
                os.chmod(self.path, FILE_MODE)
                self._file = h5py.File(self.path, "w")
                self._file.attrs["provenance"] = self.provenance
                self._file.attrs[SOURCE_ATTR] = json.dumps(job_source(), sort_keys=True)
                if self.context_sha256:
                    self._file.attrs[CONTEXT_ATTR] = self.context_sha256
                for group in SPECIAL_GROUPS:
                    self._file.create_group(group)
        return self._file

    def _close(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None

    def add(self, name: str, result: Any) -> None:
        """Store one variable's result: a Cell, or the exception it failed with. A value
        that can't be stored becomes that variable's error."""
        f = self._open()
        if isinstance(result, BaseException):
            _write_error(f, name, result)
        else:
            try:
                deferred = _write_cell(f, name, result)
            except Exception as exc:
                log.error("Could not store %s", name, exc_info=True)
                _remove(f, name)
                _write_error(f, name, _store_error(result, exc))
            else:
                if deferred:
                    self._close()  # h5netcdf opens the file itself
                    failed = _write_netcdf(self.path, deferred)
                    f = self._open()
                    for item in deferred:
                        if item.name in failed:
                            _remove(f, item.name)
                        elif item.group in f:
                            f[item.group].attrs[OBJTYPE_ATTR] = item.objtype
                    for failed_name, error in failed.items():
                        _write_error(f, failed_name, error)
        self.names.append(name)
        if self.journal:
            f.flush()
            self._note_done(name)

    def _note_done(self, name: str) -> None:
        if self._journal_fd is None:
            self._journal_fd = os.open(journal_path(self.path),
                                       os.O_WRONLY | os.O_CREAT | os.O_APPEND, FILE_MODE)
            shared_file(journal_path(self.path))
        os.write(self._journal_fd, (name + "\n").encode())

    def finish(self) -> Path:
        """Close the file and rename it to ``….ready.h5``; returns that path."""
        self._open()  # a fragment with no variables is still a fragment
        self._close()
        ready = self.path.with_name(self.path.name.removesuffix(".writing.h5") + ".ready.h5")
        os.replace(self.path, ready)
        self._drop_journal()
        return ready

    def abort(self) -> None:
        """Remove what was written (the file could not be completed)."""
        with contextlib.suppress(Exception):
            self._close()
        self.path.unlink(missing_ok=True)
        self._drop_journal()

    def _drop_journal(self) -> None:
        if self._journal_fd is not None:
            os.close(self._journal_fd)
            self._journal_fd = None
        if self.journal:
            journal_path(self.path).unlink(missing_ok=True)


def _write_error(f: h5py.File, name: str, exc: BaseException) -> None:
    errors = f[".errors"]
    if name in errors:
        del errors[name]
    ds = errors.create_dataset(name, data=str(exc), dtype=_STR)
    ds.attrs["type"] = type(exc).__name__
    if getattr(exc, "keeps_previous_value", False):
        ds.attrs[JOB_FAILURE_ATTR] = True


@dataclass
class _Deferred:
    """An xarray object to write with h5netcdf once h5py has closed the file."""

    name: str
    group: str
    obj: Any
    objtype: str


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
    ``job_failures``: the errors' names recorded because the job died (the value
    stored before stays, see :data:`JOB_FAILURE_ATTR`).
    ``source``: where it was written (:func:`.source.job_source`; empty for fragments
    of other writers); ``context_sha256``: the context text that computed it, if any.
    """

    path: Path
    provenance: str
    source: dict[str, Any] = field(default_factory=dict)
    context_sha256: str | None = None
    names: list[str] = field(default_factory=list)
    data_names: list[str] = field(default_factory=list)
    summaries: dict[str, Summary] = field(default_factory=dict)
    errors: dict[str, tuple[str, str]] = field(default_factory=dict)
    job_failures: set[str] = field(default_factory=set)

    @property
    def start_time(self) -> float | None:
        """The run's start (epoch seconds), if the fragment carries it."""
        summary = self.summaries.get("start_time")
        return None if summary is None or summary.value is None else float(summary.value)


def read_fragment(path: str | Path) -> FragmentContents:
    """Read a fragment's names, summaries (with attributes) and errors."""
    path = Path(path)
    with h5py.File(path, "r") as f:
        contents = FragmentContents(path, _decode(f.attrs.get("provenance", "")),
                                    _source(f.attrs.get(SOURCE_ATTR)),
                                    _decode(f.attrs[CONTEXT_ATTR]) if CONTEXT_ATTR in f.attrs
                                    else None)
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
            if ds.attrs.get(JOB_FAILURE_ATTR, False):
                contents.job_failures.add(key)
    return contents


def _source(value: Any) -> dict[str, Any]:
    if value is None:
        return {}
    try:
        source = json.loads(_decode(value))
    except ValueError:
        return {}
    return source if isinstance(source, dict) else {}


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
