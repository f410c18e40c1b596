"""``GET /api/table``: the run table as columnar JSON (``docs/dev/table-protocol.md``).

The server keeps the encoded table in memory (:class:`TableCache`) and brings it up to
date before each answer by reading only the runs changed in SQLite since the last one
(:mod:`runtable.store.table`), then re-encoding only the changed cells. The JSON text
is cached in pieces of :data:`CHUNK_ROWS` values per column, each also kept deflated,
so the gzip answer for an unchanged 20,000 x 500 table is a join of cached bytes, and
one changed run costs one piece per column (see ``benchmarks/server_table.py``). The
first read is done in the background when the app starts (:meth:`TableCache.warm_up`).

The grid loads the binary form (:meth:`TableCache.binary`): numeric columns as float64
blocks, kept per column next to the JSON pieces, and trendline points as float32.
Answers for a few runs (``?runs=``, what the grid asks after ``values_merged``) are read
from the database for those runs only and do not wait for the cache to catch up.

Encoding of one cell (``run_variables`` row) -> ``values[row]`` and ``cells[row]``:

* numbers, strings, booleans: the value itself (NaN -> null; +-inf -> ``"inf"``)
* PNG thumbnails: null, ``kind: "image"`` (fetched lazily from
  ``/api/cell/{run}/{name}/thumbnail.png``)
* trendlines: null, ``kind: "trendline"``, ``points`` (at most 200, downsampled)
* other arrays: ``"float64: (3, 4)"``, ``kind: "array"`` (only the ``.npy`` header is read)
* complex: its string form, ``kind: "complex"``, ``re``, ``im``
* errors: null, ``kind: "error"`` or ``"skip"``, ``message``, ``error_cls``
* plus ``bold``, ``background`` (``#rrggbb``), ``units``, ``max_diff``, ``provenance``,
  and ``failed`` (``{message, error_cls}``) on a value kept while a later job for it died.
"""

from __future__ import annotations

import functools
import json
import logging
import math
import re
import sqlite3
import struct
import threading
import time
import zlib
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..events import EventBus
from ..store import table as st
from ..store.columns import AFTER_ATTR, RUN_FIELDS
from ..store.columns import column_order as ordered_names
from ..store.fragments import FAILED_ATTR
from .access import FolderAccess

log = logging.getLogger(__name__)

#: Most points of a trendline sent with the table (a sparkline is ~100 pixels wide).
MAX_POINTS = 200
#: Significant digits of a trendline's points (relative to its largest value).
POINT_DIGITS = 5
#: |max - min| within a run above which a value "varied" (the reference's threshold).
MAX_DIFF_THRESHOLD = 1e-9
#: Skip exceptions: shown grey, not as failures. (``DependencySkip`` was stored for
#: skipped dependents by earlier versions; ``SourceNameError``, a source missing from
#: the run, is shown grey by the reference too.)
SKIP_CLASSES = frozenset({"Skip", "DependencySkip", "SourceNameError"})
#: ``run_variables.provenance`` of values a person typed.
USER_PROVENANCE = ""
#: Provenance of values computed by the context file (anything else is "external").
CONTEXT_PROVENANCES = frozenset({"context.py", None})


# -- query parsing -----------------------------------------------------------------------
def parse_names(text: str | None) -> set[str] | None:
    """``"a,b"`` -> ``{"a", "b"}``; None or empty -> None (all columns)."""
    if text is None or not text.strip():
        return None
    return {n.strip() for n in text.split(",") if n.strip()}


# -- one cell ------------------------------------------------------------------------
def _json_number(value: float) -> float | str | None:
    if math.isnan(value):
        return None
    if math.isinf(value):
        return "inf" if value > 0 else "-inf"
    return value


def _hex_colour(value: Any) -> str | None:
    if isinstance(value, str):
        return value if re.fullmatch(r"#[0-9a-fA-F]{6}", value) else None
    try:
        r, g, b = (int(c) for c in list(value)[:3])
    except (TypeError, ValueError):
        return None
    return f"#{r & 255:02x}{g & 255:02x}{b & 255:02x}"


_NPY_MAGIC = b"\x93NUMPY"
_DESCR_RE = re.compile(rb"'descr':\s*'([^']+)'")
_SHAPE_RE = re.compile(rb"'shape':\s*\(([^)]*)\)")
_FORTRAN_RE = re.compile(rb"'fortran_order':\s*(True|False)")


@functools.lru_cache(maxsize=1024)
def _npy_header(header: bytes) -> tuple[np.dtype, tuple[int, ...], bool] | None:
    """(dtype, shape, fortran order) of a ``.npy`` header (the dict text), or None.

    Parsed with regular expressions and cached: the columns of one variable share
    headers, and numpy's own parser (``ast``) costs ~100 µs per cell.
    """
    descr, shape, fortran = (_DESCR_RE.search(header), _SHAPE_RE.search(header),
                             _FORTRAN_RE.search(header))
    if descr is None or shape is None:
        return None
    try:
        dims = tuple(int(d) for d in shape.group(1).split(b",") if d.strip())
        return np.dtype(descr.group(1).decode()), dims, bool(
            fortran and fortran.group(1) == b"True")
    except (TypeError, ValueError):
        return None


def _npy_parts(blob: bytes) -> tuple[np.dtype, tuple[int, ...], bool, int] | None:
    """(dtype, shape, fortran order, offset of the data) of a ``.npy`` blob."""
    if not blob.startswith(_NPY_MAGIC) or len(blob) < 10:
        return None
    if blob[6] == 1:
        size, start = int.from_bytes(blob[8:10], "little"), 10
    else:
        size, start = int.from_bytes(blob[8:12], "little"), 12
    parsed = _npy_header(bytes(blob[start:start + size]))
    return None if parsed is None else (*parsed, start + size)


def trendline_points(blob: bytes) -> list[float | None]:
    """A trendline's y values (at most :data:`MAX_POINTS`, evenly picked), rounded to
    :data:`POINT_DIGITS` significant digits of the largest; [] if unreadable."""
    parts = _npy_parts(blob)
    if parts is None or parts[0].hasobject or parts[0].kind not in "iufb":
        return []
    dtype, shape, fortran, offset = parts
    try:
        array = np.frombuffer(blob, dtype=dtype, offset=offset, count=math.prod(shape))
        array = array.reshape(shape, order="F" if fortran else "C")
    except ValueError:
        return []
    y = array[1] if array.ndim == 2 and array.shape[0] == 2 else array.ravel()
    y = y.astype(np.float64)
    if y.size > MAX_POINTS:
        y = y[np.linspace(0, y.size - 1, MAX_POINTS).round().astype(np.intp)]
    finite = np.isfinite(y)
    if finite.any():
        # One rounding for the whole line (numpy, not per point): enough to draw it,
        # and short numbers in the JSON.
        top = float(np.abs(y[finite]).max())
        digits = POINT_DIGITS - 1 - (math.floor(math.log10(top)) if top > 0 else 0)
        y = np.round(y, digits)
    out = y.tolist()
    for i in np.flatnonzero(~finite).tolist():
        out[i] = None
    return out


def trendline_points_many(blobs: Sequence[bytes]) -> list[list[float | None] | np.ndarray]:
    """:func:`trendline_points` of many blobs: those of one array layout (a column's
    usually share it) at once, with the same numbers, as float64 arrays (NaN: null)
    that the JSON encoding turns into lists (and the binary form into float32)."""
    out: list[list[float | None] | np.ndarray | None] = [None] * len(blobs)
    groups: dict[tuple[np.dtype, tuple[int, ...], bool, int, int], list[int]] = {}
    for i, blob in enumerate(blobs):
        parts = _npy_parts(blob)
        if parts is None or parts[0].hasobject or parts[0].kind not in "iufb" or (
                len(blob) < parts[3] + parts[0].itemsize * math.prod(parts[1])):
            out[i] = trendline_points(blob)
        else:
            groups.setdefault((*parts, len(blob)), []).append(i)
    for (dtype, shape, fortran, offset, length), members in groups.items():
        count = math.prod(shape)
        # (Blobs of one layout and length: one buffer, the headers cut off.)
        raw = np.frombuffer(b"".join([blobs[i] for i in members]), np.uint8).reshape(
            len(members), length)[:, offset:offset + count * dtype.itemsize]
        raw = np.ascontiguousarray(raw).view(dtype).reshape(len(members), count)
        if fortran:  # (column-major: each array is the transpose of its reversed shape)
            arrays = raw.reshape((len(members), *shape[::-1])).transpose(
                0, *range(len(shape), 0, -1))
        else:
            arrays = raw.reshape((len(members), *shape))
        if len(shape) == 2 and shape[0] == 2:
            y = arrays[:, 1].astype(np.float64)
        else:
            y = arrays.reshape(len(members), -1).astype(np.float64)
        if y.shape[1] > MAX_POINTS:
            y = y[:, np.linspace(0, y.shape[1] - 1, MAX_POINTS).round().astype(np.intp)]
        finite = np.isfinite(y)
        top = np.where(finite, np.abs(y), 0).max(axis=1, initial=0)
        magnitude = np.floor(np.log10(np.where(top > 0, top, 1)))
        digits = (POINT_DIGITS - 1 - magnitude).astype(np.int64)
        # np.round(y, d) row by row: rint(y * 10**d) / 10**d, or for d < 0
        # rint(y / 10**-d) * 10**-d.
        scale = 10.0 ** np.abs(digits)[:, None]
        with np.errstate(invalid="ignore", over="ignore"):
            y = np.where(digits[:, None] >= 0, np.rint(y * scale) / scale,
                         np.rint(y / scale) * scale)
        y[~finite] = np.nan
        for i, line in zip(members, y, strict=True):
            out[i] = line
    return out  # type: ignore[return-value]


def array_label(blob: bytes) -> str:
    """``"float64: (3, 4)"`` from the start of a ``.npy`` blob (its header)."""
    parts = _npy_parts(blob)
    return "array" if parts is None else f"{parts[0]}: {parts[1]}"


def encode_cell(kind: int, value: Any, attrs: dict[str, Any] | None,
                provenance: str | None, max_diff: float | None, blob: bytes | None = None,
                boolean: bool = False,
                points: list[float | None] | np.ndarray | None = None
                ) -> tuple[Any, dict[str, Any] | None]:
    """One cell -> (``values[row]``, ``cells[row]`` or None).

    ``kind`` is a :mod:`runtable.store.table` ``KIND_*`` code; ``value`` the column's
    value (numbers, strings, complex); ``blob`` the trendline's ``.npy`` bytes or the
    start of an array's (or ``points``, a trendline's :func:`trendline_points` made
    already); ``boolean``: the column holds booleans (SQLite stores 0/1).
    """
    attrs = attrs if isinstance(attrs, dict) else {}
    extra: dict[str, Any] = {}
    out: Any = None
    if kind == st.KIND_VALUE:
        if isinstance(value, float):
            out = _json_number(value)
        elif boolean and isinstance(value, int):
            out = bool(value)
        elif isinstance(value, bytes):
            out = value.decode("utf-8", "replace")
        else:
            out = value
    elif kind == st.KIND_ERROR:
        cls = str(attrs.get("error_cls") or "Exception")
        extra["kind"] = "skip" if cls in SKIP_CLASSES else "error"
        extra["message"] = str(attrs.get("error") or "")
        extra["error_cls"] = cls
    elif kind == st.KIND_IMAGE:
        extra["kind"] = "image"
    elif kind == st.KIND_TRENDLINE:
        if points is None:
            points = trendline_points(blob) if blob else []
        extra.update(kind="trendline", points=points)
    elif kind == st.KIND_ARRAY:
        out = array_label(blob) if blob else "array"
        extra["kind"] = "array"
    elif kind == st.KIND_COMPLEX:
        c = complex(value)
        out = f"{c.real:.6g}{c.imag:+.6g}j"
        extra.update(kind="complex", re=_json_number(c.real), im=_json_number(c.imag))
    elif kind == st.KIND_BLOB:
        out = "<blob>"
    if attrs.get("bold"):
        extra["bold"] = True
    if attrs.get("background") is not None:
        colour = _hex_colour(attrs["background"])
        if colour is not None:
            extra["background"] = colour
    if attrs.get("units"):
        extra["units"] = str(attrs["units"])
    failed = attrs.get(FAILED_ATTR)
    if isinstance(failed, dict) and kind != st.KIND_ERROR:
        # A value kept from an earlier processing: the latest one died before it.
        extra["failed"] = {"message": str(failed.get("error") or ""),
                           "error_cls": str(failed.get("error_cls") or "Exception")}
    # Bold-when-varied is about the number shown; images and trendlines show the variation.
    if max_diff is not None and max_diff > MAX_DIFF_THRESHOLD and \
            kind in (st.KIND_VALUE, st.KIND_COMPLEX):  # NaN compares False
        extra["max_diff"] = True
    if provenance is not None and kind != st.KIND_MISSING:
        if provenance == USER_PROVENANCE:
            extra["provenance"] = "user"
        elif provenance not in CONTEXT_PROVENANCES:
            extra["provenance"] = "external"
    return out, extra or None


# -- columns ---------------------------------------------------------------------------
def _dumps(obj: Any) -> str:
    return json.dumps(obj, separators=(",", ":"), allow_nan=False, ensure_ascii=False,
                      default=_json_default)


def _json_default(value: Any) -> Any:
    """Trendline points kept as arrays (see :func:`trendline_points_many`): a list, NaN
    as null."""
    if isinstance(value, np.ndarray):
        out = value.tolist()
        for i in np.flatnonzero(~np.isfinite(value)).tolist():
            out[i] = None
        return out
    raise TypeError(f"{type(value).__name__} is not JSON serialisable")


#: Rows per piece of cached JSON text: one changed cell re-encodes only its piece.
CHUNK_ROWS = 512


class EncodedColumn:
    """One column's encoded cells for every row of the cache, and its JSON text.

    A column of numbers keeps them as float64 only (what the binary form sends); its
    list of values for JSON is made from the store's array the first time JSON is
    asked for (``source``), so that a table loaded by the grid costs no Python object
    per number.
    """

    def __init__(self, values: list[Any] | None, cells: dict[int, dict[str, Any]] | None = None,
                 units: str | None = None, f64: np.ndarray | None = None,
                 source: tuple[np.ndarray, np.ndarray] | None = None) -> None:
        self._values = values
        #: (the store's values, which of them are shown) while ``_values`` is not made.
        self._source = source
        self._overrides: dict[int, Any] = {}
        self._n = len(values) if values is not None else len(source[0]) if source else 0
        self.cells: dict[int, dict[str, Any]] = cells if cells is not None else {}
        #: The column's units (None: none); cells carry ``units`` only where theirs differ.
        self.units = units
        self._chunks: list[bytes | None] = [None] * _n_chunks(self._n)
        self._cells_json: bytes | None = None
        self._binary_cells: tuple[bytes, bytes] | None = None
        #: ``values`` as float64 (null -> NaN) while every value is a finite number
        #: that a double holds exactly; None otherwise (the column is sent as JSON).
        self.f64 = f64
        self._f64_bytes: bytes | None = None
        self._f64_gz: bytes | None = None
        self._points_gz: tuple[bytes, bytes] | None = None

    @classmethod
    def empty(cls, n_rows: int, units: str | None = None) -> EncodedColumn:
        """A column of ``n_rows`` empty cells."""
        return cls([None] * n_rows, None, units)

    @property
    def values(self) -> list[Any]:
        """One JSON value per row."""
        if self._values is None:
            assert self._source is not None
            array, shown = self._source
            out = array.tolist()
            for i in np.flatnonzero(~shown).tolist():
                out[i] = None
            out.extend([None] * (self._n - len(out)))
            for row, value in self._overrides.items():
                out[row] = value
            self._values, self._source, self._overrides = out, None, {}
        return self._values

    def set(self, row: int, out: Any, extra: dict[str, Any] | None) -> None:
        """Store the encoded cell of ``row``."""
        if extra is not None and self.units is not None and extra.get("units") == self.units:
            extra = {k: v for k, v in extra.items() if k != "units"} or None
        if self._values is None:
            self._overrides[row] = out
        else:
            self._values[row] = out
        if self.f64 is not None:
            self._f64_bytes = None
            if out is None:
                self.f64[row] = math.nan
            elif _exact_double(out):
                self.f64[row] = out
            else:
                self.f64 = None  # a string, a bool or "inf": JSON from now on
        if extra is None:
            if self.cells.pop(row, None) is not None:
                self._cells_json = self._binary_cells = None
        else:
            self.cells[row] = extra
            self._cells_json = self._binary_cells = None
        self._chunks[row // CHUNK_ROWS] = None

    def grow(self, n_rows: int) -> None:
        """Add empty rows at the end, up to ``n_rows``."""
        if n_rows > self._n:
            first = self._n // CHUNK_ROWS
            if self._values is not None:
                self._values.extend([None] * (n_rows - self._n))
            self._chunks.extend([None] * (_n_chunks(n_rows) - len(self._chunks)))
            self._chunks[first] = None
            if self.f64 is not None:
                self.f64 = np.concatenate(
                    [self.f64, np.full(n_rows - len(self.f64), math.nan)])
                self._f64_bytes = None
            self._n = n_rows

    def f64_bytes(self) -> bytes | None:
        """The values as little-endian float64 (NaN: null), or None if not numeric."""
        if self.f64 is None:
            return None
        if self._f64_bytes is None:
            self._f64_bytes = self.f64.astype("<f8", copy=False).tobytes()
            self._f64_gz = None
        return self._f64_bytes

    def f64_deflated(self) -> bytes | None:
        """:meth:`f64_bytes` as a piece of a deflate stream (see :func:`_deflate`)."""
        raw = self.f64_bytes()
        if raw is not None and self._f64_gz is None:
            self._f64_gz = _deflate(raw, BINARY_LEVEL)
        return self._f64_gz if raw is not None else None

    def points_deflated(self) -> bytes:
        """The trendline points of :meth:`binary_cells` as a piece of a deflate stream."""
        points = self.binary_cells()[1]
        if self._points_gz is None or self._points_gz[0] is not points:
            self._points_gz = (points, _deflate(points, BINARY_LEVEL))
        return self._points_gz[1]

    def binary_cells(self) -> tuple[bytes, bytes]:
        """``{...}``: the cells for the binary form, where a trendline's ``points`` is
        ``"pts": [start, count]`` into the column's points; and those points as
        little-endian float32 (NaN: null). Points are for drawing (5 digits), so 32
        bits suffice, and thousands of little number lists cost no JSON parsing."""
        if self._binary_cells is None:
            cells: dict[str, dict[str, Any]] = {}
            lines: list[np.ndarray] = []
            n_points = 0
            for row in sorted(self.cells):
                extra = self.cells[row]
                if "points" in extra:
                    line = extra["points"]
                    if not isinstance(line, np.ndarray):
                        line = np.array([math.nan if p is None else p for p in line])
                    extra = {k: v for k, v in extra.items() if k != "points"}
                    extra["pts"] = [n_points, len(line)]
                    lines.append(line)
                    n_points += len(line)
                cells[str(row)] = extra
            block = np.concatenate(lines).astype("<f4") if lines else np.zeros(0, "<f4")
            self._binary_cells = (_dumps(cells).encode(), block.tobytes())
        return self._binary_cells

    def cells_json(self) -> bytes:
        """``],"cells":{...}}``: the end of the column's JSON text."""
        if self._cells_json is None:
            cells = _dumps({str(k): self.cells[k] for k in sorted(self.cells)})
            self._cells_json = ('],"cells":' + cells + "}").encode()
        return self._cells_json

    def pieces(self) -> list[bytes]:
        """The column's JSON text after its opening ``{"values":[``, in pieces: one per
        :data:`CHUNK_ROWS` values, then the cells. A piece stays the same object while
        its rows are unchanged (the gzip cache relies on it)."""
        for i, chunk in enumerate(self._chunks):
            if chunk is None:
                text = _dumps(self.values[i * CHUNK_ROWS:(i + 1) * CHUNK_ROWS])[1:-1]
                self._chunks[i] = (text if i == 0 else "," + text).encode()
        return [*self._chunks, self.cells_json()]  # type: ignore[list-item]

    def json(self) -> bytes:
        """``{"values": [...], "cells": {...}}`` for every row."""
        return b'{"values":[' + b"".join(self.pieces())

    def subset(self, rows: Sequence[int]) -> dict[str, Any]:
        """The column for ``rows`` only, re-indexed from 0."""
        cells = {}
        for new, old in enumerate(rows):
            extra = self.cells.get(old)
            if extra is not None:
                cells[str(new)] = extra
        return {"values": [self.values[i] for i in rows], "cells": cells}


#: Integers beyond this don't survive a trip through a double.
_BIG_INT = 2**53


def _exact_double(value: Any) -> bool:
    """Whether a float64 carries ``value`` exactly (finite numbers; no bools)."""
    if isinstance(value, float):
        return math.isfinite(value)
    return type(value) is int and -_BIG_INT <= value <= _BIG_INT


def _numeric_copy(values: np.ndarray, is_value: np.ndarray) -> np.ndarray | None:
    """float64 copy of a store column's ``values`` (non-values NaN), or None when a
    value does not fit (inf, huge integers, objects)."""
    if values.dtype.kind == "f":
        f64 = values.astype(np.float64)
        if np.isinf(f64[is_value]).any():
            return None
    elif values.dtype.kind in "iu":
        picked = values[is_value]
        if picked.size and (picked.min() < -_BIG_INT or picked.max() > _BIG_INT):
            return None
        f64 = values.astype(np.float64)
    else:
        return None
    f64[~is_value] = math.nan
    return f64


def _n_chunks(n_rows: int) -> int:
    return (n_rows + CHUNK_ROWS - 1) // CHUNK_ROWS


@dataclass
class ColumnInfo:
    """A column's description for the ``variables`` list."""

    name: str
    title: str
    description: str | None
    tags: list[str]
    user_editable: bool
    type: str | None
    units: str | None
    after: str | None = None

    def to_dict(self) -> dict[str, Any]:
        """The protocol's form."""
        return {"name": self.name, "title": self.title, "description": self.description,
                "tags": self.tags, "user_editable": self.user_editable, "type": self.type,
                "units": self.units}


def column_order(variables: Iterable[st.VariableMeta], data_names: Iterable[str]
                 ) -> list[ColumnInfo]:
    """The table's columns in display order (see :mod:`runtable.store.columns`)."""
    variables = list(variables)
    infos = {}
    for meta in variables:
        attrs = meta.attributes or {}
        infos[meta.name] = ColumnInfo(meta.name, meta.title or meta.name, meta.description,
                                      list(meta.tags), meta.user_editable, meta.type,
                                      meta.units,
                                      attrs.get(AFTER_ATTR) if meta.user_editable else None)
    return [infos.get(n) or ColumnInfo(n, n, None, [], False, None, None)
            for n in ordered_names(variables, data_names)]


# -- the cache ---------------------------------------------------------------------------
def _blobs(conn: sqlite3.Connection, name: str, keys: list[tuple[int, int]] | None
           ) -> dict[tuple[int, int], bytes]:
    """Trendline blobs and the headers of array blobs of column ``name`` (of the runs
    ``keys``, or all), by (proposal, run)."""
    sql = ("SELECT proposal, run, CASE WHEN summary_type = 'trendline' THEN value "
           "ELSE substr(value, 1, 512) END FROM run_variables WHERE name = ? "
           "AND summary_type IN ('trendline', 'numpy')")
    if keys is None:
        return {(p, r): v for p, r, v in conn.execute(sql, (name,))}
    out: dict[tuple[int, int], bytes] = {}
    by_proposal: dict[int, list[int]] = {}
    for p, r in keys:
        by_proposal.setdefault(p, []).append(r)
    for proposal, all_runs in by_proposal.items():
        runs = sorted(set(all_runs))
        for start in range(0, len(runs), 400):
            part = runs[start:start + 400]
            # proposal and run first: the (proposal, run, name, version) index finds
            # the few cells at once (by name alone it walks the whole column).
            for p, r, v in conn.execute(
                    sql + f" AND proposal = ? AND run IN ({','.join('?' * len(part))})",
                    (name, proposal, *part)):
                out[p, r] = v
    return out


#: How long a whole-table request waits for the first read before it is told the
#: progress instead.
READY_WAIT_S = 1.0


class TableNotReady(Exception):
    """The table is being read for the first time (of a folder without a copy: every
    cell of SQLite). ``done`` of ``total`` runs are read."""

    def __init__(self, done: int, total: int) -> None:
        super().__init__(f"Reading the table for the first time: {done} of {total} runs")
        self.done, self.total = done, total


class TableCache:
    """The encoded table of one folder, kept in server memory and up to date.

    :meth:`snapshot` and :meth:`binary` answer ``GET /api/table``: they first bring
    the store's columnar table up to date (:meth:`runtable.store.table.TableColumns.refresh`
    reads only the runs changed since), re-encode only the changed cells, and serve
    filtered requests from memory. A column is encoded the first time it is asked
    for. Thread-safe: one lock around refresh and encoding.

    The full JSON snapshot is also kept gzip-compressed, one deflate piece per column
    (:class:`_Gzipped`), so an unchanged table costs no compression and a changed
    cell costs compressing its column again; the binary form's numbers are kept
    deflated beside them where that makes them smaller.
    """

    def __init__(self, folder: FolderAccess, bus: EventBus) -> None:
        self.folder = folder
        self.bus = bus
        self._lock = threading.Lock()
        self._table: st.TableColumns | None = None
        self._keys: list[tuple[int, int]] = []
        self._columns: dict[str, EncodedColumn] = {}
        self._comment: EncodedColumn = EncodedColumn.empty(0)
        self._order: list[ColumnInfo] = []
        self._head: bytes | None = None
        #: (name, has a leading comma) -> the column's key in the snapshot.
        self._keys_json: dict[tuple[str, bool], bytes] = {}
        self._gzip = _Gzipped()
        self._head_gz: tuple[bytes, bytes] | None = None
        self._rows_head = b""
        self._warm_up_thread: threading.Thread | None = None
        #: (runs read, runs) while the first read runs in the background.
        self.progress: tuple[int, int] | None = None

    def warm_up(self, before: Callable[[], object] | None = None,
                after: Callable[[], object] | None = None) -> threading.Thread:
        """Read the table in a background thread, so that the first browser does not
        wait for it; meanwhile whole-table answers raise :class:`TableNotReady` with
        the progress (a folder without a copy has every cell read once, and the copy
        made). The thread calls *before* first (``runtable serve`` starts the service
        there, which upgrades a folder the reference made: the read must not hold a
        lock the upgrade waits for), and *after* once the table is read (the
        upgrade's slow rest, which would otherwise delay the first page)."""

        def run() -> None:
            try:
                if before is not None:
                    before()
            except BaseException:  # (reported by whoever gave it)
                self.progress = None
                return
            try:
                with self._lock:
                    self._refresh()
            except Exception:  # e.g. the app closed meanwhile: the next request retries
                log.warning("Could not prepare the table in advance", exc_info=True)
            finally:
                self.progress = None
            if after is not None:
                try:
                    after()
                except Exception:  # (the next start does it)
                    log.warning("Could not finish upgrading the folder", exc_info=True)

        self.progress = (0, 0)
        thread = threading.Thread(target=run, name="runtable-table-warm-up", daemon=True)
        thread.start()
        self._warm_up_thread = thread
        return thread

    def _check_ready(self) -> None:
        thread = self._warm_up_thread
        if thread is not None and self._table is None:
            # (A folder with a copy is read in a moment: only a first read of one
            # without takes long.)
            thread.join(READY_WAIT_S)
            progress = self.progress
            if progress is not None and self._table is None:
                raise TableNotReady(*progress)

    def wait_for_warm_up(self) -> None:
        """Return once the background read (if any) has ended: closing the folder's
        connections while it still reads would crash the process (sqlite3 does not
        survive a connection closed under another thread's query)."""
        if self._warm_up_thread is not None:
            self._warm_up_thread.join()

    # -- answers ------------------------------------------------------------------
    def snapshot(self, runs: set[int] | None = None, names: set[str] | None = None,
                 jobs: dict[str, str] | None = None, gzip: bool = False,
                 where: str | None = None) -> tuple[bytes, bool]:
        """The table (or the ``runs`` rows / ``names`` columns of it, or the rows the
        filter expression ``where`` keeps) as JSON, and whether it is gzip-compressed
        (only the full table is, when ``gzip``). A bad ``where`` raises
        :class:`~runtable.store.where.WhereError`."""
        # `seq` is read before the data: every event numbered up to it announced a
        # change committed before this read, so the snapshot includes it.
        seq = self.bus.last_seq
        tail = f'}},"jobs":{_dumps(jobs or {})},"seq":{seq}}}'.encode()
        if where is not None:
            self._check_ready()
            with self._lock:
                rows = self._where_rows(where, runs)
                return self._encode_subset(rows, names)[:-2] + tail, False
        if runs is not None:
            # The cells an event names: read from the database for these runs only,
            # without bringing the whole cache up to date (that waits for the next
            # full snapshot).
            return self._read_rows(runs, names)[:-2] + tail, False
        self._check_ready()
        with self._lock:
            self._refresh()
            rows = self._rows(None)
            if names is not None or len(rows) != len(self._keys):
                return self._encode_subset(rows, names)[:-2] + tail, False
            pieces = self._pieces()
            if gzip:
                return self._gzip.body(pieces, tail), True
        return b"".join(pieces) + tail, False

    def binary(self, jobs: dict[str, str] | None = None, first: int | None = None,
               skip: int = 0, names: set[str] | None = None, gzip: bool = False
               ) -> tuple[bytes, bool]:
        """The table in the binary form (``GET /api/table?format=binary``): the JSON
        snapshot with numeric columns as ``{"f64": k}``, then their float64 blocks; and
        whether it is gzip-compressed (when *gzip*: the blocks that shrink are sent
        deflated, kept so; the others as they are).

        Layout: ``RTB1``, the JSON's length (uint32 little-endian), the JSON (UTF-8),
        zeros up to a multiple of 8 bytes, then block ``k`` of every binary column at
        ``k * rows * 8`` bytes from there: one little-endian float64 per row, NaN for
        null. Numbers cost 8 bytes and no parsing (a ``Float64Array`` view). After the
        blocks, the trendline points (float32): a column's ``"pts": base`` and a cell's
        ``"pts": [start, count]`` are ``count`` points at ``base + start``.

        ``first`` / ``skip`` / ``names``: only the data of the first ``first`` columns
        / of the columns after the first ``skip`` / of the columns ``names``
        (``variables`` still lists every column), so that the grid can show the
        columns on screen before the rest have arrived, and fetch a column when it is
        first needed.
        """
        seq = self.bus.last_seq
        self._check_ready()
        self._encode_ahead(names, first, skip)
        with self._lock:
            self._refresh()
            if len(self._rows(None)) != len(self._keys):
                # Rows of other proposals in the folder: the JSON subset (rare).
                body = self._encode_subset(self._rows(None), names)[:-2]
                head = body + f'}},"jobs":{_dumps(jobs or {})},"seq":{seq}}}'.encode()
                return _binary_frame(head, []), False
            if self._head is None:
                self._head = (_dumps(self._header(None, self._order))[:-1]
                              + ',"columns":{').encode()
                self._head_gz = None
                table = self._table
                assert table is not None
                # Columns asked for by name come with what places their rows only.
                self._rows_head = (_dumps({
                    "proposal": self.folder.proposal, "db_id": table.db_id,
                    "bus": self.bus.id, "runs": table.run.tolist()})[:-1]
                    + ',"columns":{').encode()
            parts: list[bytes] = []
            blocks: list[tuple[bytes, bytes | None]] = []
            points: list[tuple[bytes, bytes | None]] = []
            n_points = 0
            if names is not None:
                selected = [c for c in self._order if c.name in names]
            else:
                selected = self._order[skip:None if first is None else skip + first]
            for i, info in enumerate(selected):
                column = self._column(info)
                parts.append(((',"' if i else '"') + _dumps(info.name)[1:] + ":").encode())
                block = column.f64_bytes()
                cells, line_points = column.binary_cells()
                if block is None:
                    parts.append(b'{"values":[')
                    parts.extend(column.pieces()[:-1])
                    parts.append(b"]")
                else:
                    parts.append(b'{"f64":%d' % len(blocks))
                    blocks.append((block, column.f64_deflated() if gzip else None))
                if line_points:
                    parts.append(b',"pts":%d' % n_points)
                    points.append((line_points, column.points_deflated() if gzip else None))
                    n_points += len(line_points) // 4
                parts.extend((b',"cells":', cells, b"}"))
            parts.append(f'}},"jobs":{_dumps(jobs or {})},"seq":{seq}}}'.encode())
            head, rest = self._head if names is None else self._rows_head, b"".join(parts)
            if not gzip:
                return _binary_frame(head + rest, [b for b, _ in blocks + points]), False
            if self._head_gz is None or self._head_gz[0] is not head:
                self._head_gz = (head, _deflate(head, BINARY_LEVEL))
            head_gz = self._head_gz[1]
        size = len(head) + len(rest)
        pad = b"\0" * (-(8 + size) % 8)
        pieces = [(b"RTB1" + struct.pack("<I", size), None), (head, head_gz),
                  (rest + pad, None), *blocks, *points]
        return _gzip_join(pieces), True

    def _encode_ahead(self, names: set[str] | None, first: int | None, skip: int) -> None:
        """Encode the columns an answer needs that are not yet, one at a time, each
        under the lock: a request for a column just scrolled to gets the lock between
        two of another request's many (the answer is then made under the lock at once,
        from what is encoded, brought up to date)."""
        with self._lock:
            self._refresh()
            if names is not None:
                wanted = [c.name for c in self._order if c.name in names]
            else:
                wanted = [c.name for c in self._order[skip:None if first is None
                                                       else skip + first]]
            missing = [name for name in wanted if name not in self._columns]
        if len(missing) < 2:
            return
        for name in missing:
            time.sleep(0)  # (lets a thread waiting for the lock run)
            with self._lock:
                info = next((c for c in self._order if c.name == name), None)
                if info is not None and self._table is not None:
                    self._column(info)

    def runs_where(self, where: str) -> tuple[list[int], list[dict[str, Any]], int]:
        """The runs the filter expression *where* keeps, in table order, its parts
        (:func:`runtable.store.where.column_filters`) and the last event they
        reflect (the web GUI's filters are evaluated here)."""
        from ..store.where import column_filters, parse

        seq = self.bus.last_seq
        self._check_ready()
        with self._lock:
            rows = self._where_rows(where, None)
            assert self._table is not None
            parts = column_filters(self._table, parse(where),
                                   self.folder.reader().get_setting("timezone"))
            return [self._keys[i][1] for i in rows], parts, seq

    def _where_rows(self, where: str, runs: set[int] | None) -> list[int]:
        from ..store.where import rows_where

        self._refresh()
        assert self._table is not None
        keep = rows_where(self._table, where, self.folder.reader().get_setting("timezone"))
        return [i for i in self._rows(runs) if keep[i]]

    def _rows(self, runs: set[int] | None) -> list[int]:
        proposal = self.folder.proposal
        return [i for i, (p, r) in enumerate(self._keys)
                if (proposal is None or p == proposal) and (runs is None or r in runs)]

    def _read_rows(self, runs: set[int], names: set[str] | None) -> bytes:
        """The JSON snapshot of ``runs`` (and ``names``), read from the database."""
        reader = self.folder.reader()
        part = st.read_table(reader, runs=runs,
                             names=None if names is None else names | {"comment"})
        proposal = self.folder.proposal
        keep = np.flatnonzero((part.proposal == proposal) if proposal is not None
                              else np.ones(len(part), dtype=bool))
        order = column_order(part.variables.values(), part.columns)
        if names is not None:
            order = [c for c in order if c.name in names]
        # The column units the cache found over all rows (read without its lock, which
        # a first read of the whole table may hold for long; the list is replaced, not
        # changed).
        known = {c.name: c.units for c in self._order}
        keys = list(zip(part.proposal.tolist(), part.run.tolist(), strict=True))
        rows = keep.tolist()
        columns = {}
        for info in order:
            if info.name in known:
                info.units = known[info.name]
            # A column the cache knows keeps the cache's units, even None: its
            # clients know no other, so cells with units must carry them.
            encoded = _encode_table_column(part, keys, info.name, info.type, reader.conn,
                                           info.units, whole=False,
                                           find_units=info.name not in known)
            if info.name not in known:
                info.units = encoded.units
            columns[info.name] = encoded.subset(rows)
        comment = _encode_table_column(part, keys, "comment", None, reader.conn, None,
                                       whole=False)
        idx = np.asarray(rows, dtype=np.intp)
        head = {
            "proposal": proposal,
            "db_id": part.db_id,
            "bus": self.bus.id,
            "runs": part.run[idx].tolist(),
            "start_time": _times(part.start_time[idx]),
            "added_at": _times(part.added_at[idx]),
            "comment": [comment.values[i] for i in rows],
            "variables": [c.to_dict() for c in order],
            "columns": columns,
        }
        return _dumps(head).encode()

    def _header(self, rows: Sequence[int] | None, order: list[ColumnInfo]) -> dict[str, Any]:
        table = self._table
        assert table is not None
        idx = slice(None) if rows is None else np.asarray(rows, dtype=np.intp)
        return {
            "proposal": self.folder.proposal,
            "db_id": table.db_id,
            "bus": self.bus.id,
            "runs": table.run[idx].tolist(),
            "start_time": _times(table.start_time[idx]),
            "added_at": _times(table.added_at[idx]),
            "comment": (self._comment.values if rows is None
                        else [self._comment.values[i] for i in rows]),
            "variables": [c.to_dict() for c in order],
        }

    def _pieces(self) -> list[bytes]:
        """The full snapshot without its end: the head, then each column in pieces."""
        if self._head is None:
            self._head = (_dumps(self._header(None, self._order))[:-1]
                          + ',"columns":{').encode()
        pieces = [self._head]
        for i, info in enumerate(self._order):
            key = self._keys_json.get((info.name, bool(i)))
            if key is None:
                key = ((',"' if i else '"') + _dumps(info.name)[1:] + ':{"values":[').encode()
                self._keys_json[info.name, bool(i)] = key
            pieces.append(key)
            pieces.extend(self._column(info).pieces())
        return pieces

    def _encode_subset(self, rows: list[int], names: set[str] | None) -> bytes:
        order = [c for c in self._order if names is None or c.name in names]
        head = self._header(rows, order)
        head["columns"] = {c.name: self._column(c).subset(rows) for c in order}
        return _dumps(head).encode()

    # -- keeping up to date -----------------------------------------------------------
    def _column(self, info: ColumnInfo) -> EncodedColumn:
        """The encoded column of *info* (encoded now if it wasn't yet)."""
        column = self._columns.get(info.name)
        if column is None:
            assert self._table is not None
            column = self._columns[info.name] = _encode_table_column(
                self._table, self._keys, info.name, info.type, self.folder.reader().conn,
                info.units, find_units=False)
        return column

    def _load(self) -> st.TableColumns:
        """The whole table: through the folder's copy, else (the first time a folder is
        served) read once and a copy made, with progress."""
        from ..store.tablecopy import own_copy_dir

        db = self.folder.reader()

        def progress(done: int, total: int) -> None:
            self.progress = (done, total)

        own = own_copy_dir(db.db_path)
        started, cpu = time.monotonic(), _cpu_with_children()
        table = st.read_table(db, copy=own if own is not None else True, build=True,
                              progress=progress)
        if self.progress is not None and self.progress[1]:
            log.info("Read the table of %s for the first time (%d runs) in %.1f s (CPU "
                     "%.1f s, this process and its readers), and kept its copy",
                     self.folder.db_dir, self.progress[1], time.monotonic() - started,
                     _cpu_with_children() - cpu)
        return table

    def _refresh(self) -> None:
        db = self.folder.reader()
        if self._table is None:
            self._table = self._load()
            self._rebuild()
            return
        changes = self._table.refresh(db)
        if not changes:
            return
        keys = list(zip(self._table.proposal.tolist(), self._table.run.tolist(),
                        strict=True))
        if changes.full or keys[:len(self._keys)] != self._keys:
            self._rebuild()  # rows removed or inserted before the end
            return
        self._head = None
        n = len(keys)
        self._keys = keys
        for col in (*self._columns.values(), self._comment):
            col.grow(n)
        rows = sorted(set(changes.rows.tolist()))
        columns = self._table.columns
        if changes.variables_changed or {c.name for c in self._order} != (
                set(columns) - RUN_FIELDS):
            self._set_order()
        types = {c.name: c.type for c in self._order}
        for name in changes.names:
            if name == "comment":
                self._encode_rows(self._comment, columns.get(name), rows, name, None)
            elif name in self._columns:  # (others are encoded when first asked for)
                self._encode_rows(self._columns[name], columns.get(name), rows, name,
                                  types.get(name))
        for name in set(self._columns) - set(types):
            del self._columns[name]

    def _set_order(self) -> None:
        """The columns' order and descriptions, from the table. A column the cache knows
        keeps its units, even None: its clients know no other, so cells with other
        units carry them."""
        assert self._table is not None
        known = {c.name: c.units for c in self._order}
        self._order = column_order(self._table.variables.values(), self._table.columns)
        for info in self._order:
            info.units = known[info.name] if info.name in known else column_units(
                self._table, info.name)

    def _rebuild(self) -> None:
        table = self._table
        assert table is not None
        self._keys = list(zip(table.proposal.tolist(), table.run.tolist(), strict=True))
        self._order = []
        self._set_order()
        self._comment = _encode_table_column(table, self._keys, "comment", None,
                                             self.folder.reader().conn)
        self._columns = {}
        self._head = None

    def _encode_rows(self, encoded: EncodedColumn, column: st.Column | None,
                     rows: Sequence[int], name: str, vtype: str | None) -> None:
        _encode_rows(encoded, column, rows, name, vtype, self._keys,
                     self.folder.reader().conn)


def _cpu_with_children() -> float:
    """CPU seconds of this process and of the children it waited for (a figure taken
    on a loaded machine can be judged by it)."""
    import resource

    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    return time.process_time() + children.ru_utime + children.ru_stime


def _binary_frame(head: bytes, blocks: list[bytes]) -> bytes:
    pad = b"\0" * (-(8 + len(head)) % 8)
    return b"".join((b"RTB1", struct.pack("<I", len(head)), head, pad, *blocks))


def _encode_table_column(table: st.TableColumns, keys: list[tuple[int, int]], name: str,
                         vtype: str | None, conn: sqlite3.Connection,
                         units: str | None = None, whole: bool = True,
                         find_units: bool = True) -> EncodedColumn:
    """Encode a whole column; vectorised, since this runs for every cell at start.
    ``units``: the column's units if known, else (with ``find_units``) found from its
    cells; ``whole``: ``table`` is the whole table (its blobs are read in one query).
    Cells whose units differ from the column's carry their own."""
    n = len(keys)
    column = table.columns.get(name)
    if units is None and find_units:
        units = column_units(table, name)
    if column is None:
        return EncodedColumn.empty(n, units)
    kinds, values = column.kind, column.values
    is_value = kinds == st.KIND_VALUE
    f64 = None if vtype == "boolean" else _numeric_copy(values, is_value)
    if f64 is not None:
        # Numbers: their JSON list only when asked for (see EncodedColumn).
        encoded = EncodedColumn(None, None, units, f64, source=(values, is_value))
    else:
        out = values.tolist()
        for i in np.flatnonzero(~is_value).tolist():
            out[i] = None
        if values.dtype.kind == "f":
            for i in np.flatnonzero(is_value & ~np.isfinite(values)).tolist():
                out[i] = _json_number(out[i])
        elif values.dtype == object or vtype == "boolean":
            for i in np.flatnonzero(is_value).tolist():
                out[i] = _plain(out[i], vtype == "boolean")
        encoded = EncodedColumn(out, None, units, None)
    # Cells that need more than a value go through encode_cell one by one.
    special = set(np.flatnonzero(~is_value & (kinds != st.KIND_MISSING)
                                 & (kinds != st.KIND_NONE)).tolist())
    # Attributes that change nothing (units the column's own, as on every cell of a
    # variable with units) need no cell of their own; cells share their dicts.
    matters: dict[int, bool] = {}
    for row, attrs in column.attributes.items():
        key = id(attrs)
        if key not in matters:
            matters[key] = _attributes_matter(attrs, encoded.units)
        if matters[key]:
            special.add(row)
    special.update(column.provenance)
    if column.max_diff is not None:
        with np.errstate(invalid="ignore"):
            special.update(np.flatnonzero(column.max_diff > MAX_DIFF_THRESHOLD).tolist())
    # Thumbnails with nothing else to them (every cell of an image column) share one
    # description instead of going through the cell encoder one by one.
    images = np.flatnonzero(kinds == st.KIND_IMAGE)
    if len(images):
        plain = [r for r in images.tolist() if r not in special or (
            r not in column.provenance and not matters.get(id(column.attributes.get(r)), False)
            and (column.max_diff is None or not column.max_diff[r] > MAX_DIFF_THRESHOLD))]
        encoded.cells.update(dict.fromkeys(plain, _IMAGE_CELL))
        special.difference_update(plain)
    _encode_rows(encoded, column, sorted(special), name, vtype, keys, conn, all_rows=whole)
    return encoded


#: The description of a thumbnail cell (shared: cell descriptions are never changed).
_IMAGE_CELL: dict[str, Any] = {"kind": "image"}


def _attributes_matter(attrs: Any, units: str | None) -> bool:
    """Whether a cell's attributes show (see :func:`encode_cell`) in a column of *units*."""
    if not isinstance(attrs, dict):
        return False
    cell_units = attrs.get("units")
    return bool(attrs.get("bold")) or attrs.get("background") is not None or (
        bool(cell_units) and str(cell_units) != units) or isinstance(
        attrs.get(FAILED_ATTR), dict)


def column_units(table: st.TableColumns, name: str) -> str | None:
    """A column's units: its variable's, else the first a cell of it has (cells of one
    variable share them in practice)."""
    meta = table.variables.get(name)
    if meta is not None and meta.units is not None:
        return meta.units
    column = table.columns.get(name)
    for attrs in (column.attributes.values() if column is not None else ()):
        if isinstance(attrs, dict) and attrs.get("units"):
            return str(attrs["units"])
    return None


def _encode_rows(encoded: EncodedColumn, column: st.Column | None, rows: Sequence[int],
                 name: str, vtype: str | None, keys: list[tuple[int, int]],
                 conn: sqlite3.Connection, all_rows: bool = False) -> None:
    if column is None:
        for row in rows:
            encoded.set(row, None, None)
        return
    kinds = column.kind
    need_blobs = [r for r in rows if kinds[r] in (st.KIND_TRENDLINE, st.KIND_ARRAY)]
    blobs: dict[tuple[int, int], bytes] = {}
    if need_blobs:
        blobs = _blobs(conn, name, None if all_rows else [keys[r] for r in need_blobs])
    # A column's trendlines at once (one numpy operation per array layout).
    lines = [r for r in need_blobs if kinds[r] == st.KIND_TRENDLINE and keys[r] in blobs]
    points = dict(zip(lines, trendline_points_many([blobs[keys[r]] for r in lines]),
                      strict=True))
    boolean = vtype == "boolean"
    values, diffs = column.values, column.max_diff
    for row in rows:
        value = values[row]
        if isinstance(value, np.generic):
            value = value.item()  # json takes Python scalars only
        diff = None if diffs is None or diffs[row] != diffs[row] else float(diffs[row])
        out, extra = encode_cell(
            int(kinds[row]), value, column.attributes.get(row),
            column.provenance.get(row), diff, blobs.get(keys[row]), boolean,
            points.get(row))
        encoded.set(row, out, extra)


def _plain(value: Any, boolean: bool) -> Any:
    """A value of an object column as JSON can carry it."""
    if isinstance(value, float):
        return _json_number(value)
    if boolean and isinstance(value, int):
        return bool(value)
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    return value


def _times(values: np.ndarray) -> list[float | None]:
    return [v if math.isfinite(v) else None for v in values.tolist()]


# -- gzip, piece by piece ------------------------------------------------------------------
_GZIP_HEADER = b"\x1f\x8b\x08\x00\x00\x00\x00\x00\x00\xff"  # no name, no mtime, OS unknown
#: Deflate level of the binary form's numbers: they shrink little, so the fast end.
BINARY_LEVEL = 1
#: Bytes of a piece deflated to see whether deflating it pays.
_PROBE = 1 << 15


def _deflate(piece: bytes, level: int) -> bytes:
    """*piece* as a raw deflate stream ending with a sync flush, so that such pieces
    can be joined into one stream; stored rather than compressed when a sample of it
    would not shrink by a tenth (float64 of measured data barely does)."""
    if len(piece) > _PROBE:
        probe = zlib.compressobj(level, zlib.DEFLATED, -15)
        if len(probe.compress(piece[:_PROBE]) + probe.flush()) > 0.9 * _PROBE:
            level = 0
    compressor = zlib.compressobj(level, zlib.DEFLATED, -15)
    return compressor.compress(piece) + compressor.flush(zlib.Z_SYNC_FLUSH)


def _gzip_join(pieces: list[tuple[bytes, bytes | None]]) -> bytes:
    """A gzip file of the pieces' raw bytes one after the other, each piece given with
    its :func:`_deflate` form when it has one kept."""
    out = [_GZIP_HEADER]
    crc = size = 0
    for raw, deflated in pieces:
        out.append(deflated if deflated is not None else _deflate(raw, BINARY_LEVEL))
        crc = zlib.crc32(raw, crc)
        size += len(raw)
    out.append(zlib.compressobj(BINARY_LEVEL, zlib.DEFLATED, -15).flush(zlib.Z_FINISH))
    out.append(struct.pack("<II", crc & 0xFFFFFFFF, size & 0xFFFFFFFF))
    return b"".join(out)


class _Gzipped:
    """A gzip stream built from separately deflated pieces.

    Deflate streams that end with a sync flush (and no final block) can be
    concatenated; so each piece of the snapshot is deflated once, and only pieces that
    changed are deflated again. The CRC of the whole is kept for the unchanged prefix.
    """

    def __init__(self, level: int = 4) -> None:
        self.level = level
        self._deflated: dict[int, tuple[bytes, bytes]] = {}  # id(piece) -> (piece, deflated)
        self._prefix: tuple[list[bytes], list[bytes], int, int] | None = None

    def _deflate(self, piece: bytes) -> bytes:
        compressor = zlib.compressobj(self.level, zlib.DEFLATED, -15)
        return compressor.compress(piece) + compressor.flush(zlib.Z_SYNC_FLUSH)

    def body(self, pieces: list[bytes], tail: bytes) -> bytes:
        """The gzip file of ``pieces`` followed by ``tail``."""
        prefix = self._prefix
        if prefix is None or len(prefix[0]) != len(pieces) or any(
                a is not b for a, b in zip(prefix[0], pieces, strict=True)):
            cache: dict[int, tuple[bytes, bytes]] = {}
            deflated = []
            crc = 0
            for piece in pieces:
                hit = self._deflated.get(id(piece))
                data = hit[1] if hit is not None and hit[0] is piece else self._deflate(piece)
                cache[id(piece)] = (piece, data)
                deflated.append(data)
                crc = zlib.crc32(piece, crc)
            self._deflated = cache  # forget pieces no longer used
            prefix = self._prefix = (list(pieces), deflated, crc,
                                     sum(len(p) for p in pieces))
        _, deflated, crc, size = prefix
        end = zlib.compressobj(self.level, zlib.DEFLATED, -15)
        last = end.compress(tail) + end.flush(zlib.Z_FINISH)
        trailer = struct.pack("<II", zlib.crc32(tail, crc) & 0xFFFFFFFF,
                              (size + len(tail)) & 0xFFFFFFFF)
        return b"".join((_GZIP_HEADER, *deflated, last, trailer))
