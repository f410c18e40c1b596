"""Encoding the table's cells for the wire: one cell (``run_variables`` row) ->
``values[row]`` and ``cells[row]``, and whole columns (:class:`EncodedColumn`).

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
import math
import re
import sqlite3
from collections.abc import Sequence
from typing import Any

import numpy as np

from ...store import table as st
from ...store.folder.userdata import USER_PROVENANCE
from ...store.fragments import FAILED_ATTR
from ...store.summaries import ARRAY_TYPES, npy_parts
from .wire import BINARY_LEVEL, deflate, dumps

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
#: Provenance of values computed by the context file (anything else is "external").
CONTEXT_PROVENANCES = frozenset({"context.py", None})


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


def trendline_points(blob: bytes) -> list[float | None]:
    """A trendline's y values (at most :data:`MAX_POINTS`, evenly picked), rounded to
    :data:`POINT_DIGITS` significant digits of the largest; [] if unreadable."""
    parts = npy_parts(blob)
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
        parts = npy_parts(blob)
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
    parts = npy_parts(blob)
    return "array" if parts is None else _label(parts[0], parts[1])


@functools.lru_cache(maxsize=1024)
def _label(dtype: np.dtype, shape: tuple[int, ...]) -> str:
    return f"{dtype}: {shape}"  # (the cells of a column share it; str(dtype) is slow)


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
        """:meth:`f64_bytes` as a piece of a deflate stream (see :func:`deflate`)."""
        raw = self.f64_bytes()
        if raw is not None and self._f64_gz is None:
            self._f64_gz = deflate(raw, BINARY_LEVEL)
        return self._f64_gz if raw is not None else None

    def points_deflated(self) -> bytes:
        """The trendline points of :meth:`binary_cells` as a piece of a deflate stream."""
        points = self.binary_cells()[1]
        if self._points_gz is None or self._points_gz[0] is not points:
            self._points_gz = (points, deflate(points, BINARY_LEVEL))
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
            self._binary_cells = (dumps(cells).encode(), block.tobytes())
        return self._binary_cells

    def cells_json(self) -> bytes:
        """``],"cells":{...}}``: the end of the column's JSON text."""
        if self._cells_json is None:
            cells = dumps({str(k): self.cells[k] for k in sorted(self.cells)})
            self._cells_json = ('],"cells":' + cells + "}").encode()
        return self._cells_json

    def value_pieces(self) -> list[bytes]:
        """The column's values as JSON text without its brackets, in pieces: one per
        :data:`CHUNK_ROWS` values. A piece stays the same object while its rows are
        unchanged (the gzip cache relies on it)."""
        for i, chunk in enumerate(self._chunks):
            if chunk is None:
                text = dumps(self.values[i * CHUNK_ROWS:(i + 1) * CHUNK_ROWS])[1:-1]
                self._chunks[i] = (text if i == 0 else "," + text).encode()
        return list(self._chunks)  # type: ignore[arg-type]

    def pieces(self) -> list[bytes]:
        """The column's JSON text after its opening ``{"values":[``, in pieces:
        :meth:`value_pieces`, then the cells."""
        return [*self.value_pieces(), self.cells_json()]

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



def read_blobs(conn: sqlite3.Connection, name: str, keys: list[tuple[int, int]] | None
           ) -> dict[tuple[int, int], bytes]:
    """Trendline blobs and the headers of array blobs of column ``name`` (of the runs
    ``keys``, or all), by (proposal, run)."""
    sql = ("SELECT proposal, run, CASE WHEN summary_type = 'trendline' THEN value "
           "ELSE substr(value, 1, 512) END FROM run_variables WHERE name = ? "
           f"AND summary_type IN ({','.join('?' * len(ARRAY_TYPES))})")
    if keys is None:
        return {(p, r): v for p, r, v in conn.execute(sql, (name, *ARRAY_TYPES))}
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
                    (name, *ARRAY_TYPES, proposal, *part)):
                out[p, r] = v
    return out


def encode_table_column(table: st.TableColumns, keys: list[tuple[int, int]], name: str,
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
            boolean = vtype == "boolean"
            for i in np.flatnonzero(is_value).tolist():
                value = out[i]
                if type(value) is not str:  # (most are: no call for them)
                    out[i] = _plain(value, boolean)
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
    encode_rows(encoded, column, sorted(special), name, vtype, keys, conn, all_rows=whole)
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


def encode_rows(encoded: EncodedColumn, column: st.Column | None, rows: Sequence[int],
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
        blobs = read_blobs(conn, name, None if all_rows else [keys[r] for r in need_blobs])
    # A column's trendlines at once (one numpy operation per array layout).
    lines = [r for r in need_blobs if kinds[r] == st.KIND_TRENDLINE and keys[r] in blobs]
    points = dict(zip(lines, trendline_points_many([blobs[keys[r]] for r in lines]),
                      strict=True))
    boolean = vtype == "boolean"
    values, diffs = column.values, column.max_diff
    # An error cell is its attributes and provenance only; cells with the same
    # attributes share one dict (the store reads each JSON text once), and a failing
    # variable often fails the same way for many runs: one encoding each.
    errors: dict[tuple[int, str | None], tuple[Any, dict[str, Any] | None]] = {}
    for row in rows:
        if kinds[row] == st.KIND_ERROR:
            attrs, provenance = column.attributes.get(row), column.provenance.get(row)
            key = (id(attrs), provenance)
            done = errors.get(key)
            if done is None:
                done = errors[key] = encode_cell(st.KIND_ERROR, None, attrs, provenance, None)
            encoded.set(row, *done)
            continue
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


def json_times(values: np.ndarray) -> list[float | None]:
    return [v if math.isfinite(v) else None for v in values.tolist()]

