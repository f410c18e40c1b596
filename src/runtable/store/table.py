"""The run table, read column by column: the fast bulk read behind
:meth:`runtable.api.Database.table` and the web server's ``GET /api/table``.

``run_variables`` is long and narrow (one row per cell). :func:`read_table` reads
it in one consistent snapshot through the ADBC SQLite driver straight into Arrow
arrays, and pivots them with numpy into one :class:`Column` per variable, so no
Python object is made per cell except for text values. :meth:`TableColumns.refresh`
then brings a table up to date by reading only the runs that changed since
(found through the change log ``runtable_run_changes``, kept by triggers; see
:mod:`runtable.store.schema`)::

    from runtable.store.table import read_table, KIND_VALUE

    table = read_table(db)                   # a DatabaseFolder, sqlite3 conn or path
    table.run, table.start_time              # one entry per row (numpy arrays)
    col = table.columns["xgm_flux"]
    col.values[col.kind == KIND_VALUE]       # float64, int64 or object array
    col.attributes.get(row)                  # {"units": "mJ", ...} or None
    changes = table.refresh(db)              # later: only what changed is read
    changes.rows, changes.names              # what to re-send to a browser

Rows are every run in ``run_info`` (also those without a start time yet),
ordered by (proposal, run). Columns are every name with at least one stored
cell in those rows, plus every name of the ``variables`` table; ``comment`` is a
column too. Rows of ``run_variables`` whose run has no ``run_info`` row are
not shown. When a cell has several versions (allowed by the format, never
written by runtable or the reference), the latest version is shown.

Reading costs SQLite ~0.6 us of CPU per cell; a big table is therefore read by
several threads at once, each over a range of rowids with its own connection
(used only when all of them see the same change log position, i.e. one
snapshot). A database that has no change log yet (made by the reference and
never opened for writing by runtable) is read whole on every refresh.
"""

from __future__ import annotations

import contextlib
import json
import os
import sqlite3
import struct
import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import quote

import numpy as np

from .errors import StoreError

__all__ = [
    "KIND_ARRAY",
    "KIND_BLOB",
    "KIND_COMPLEX",
    "KIND_ERROR",
    "KIND_IMAGE",
    "KIND_MISSING",
    "KIND_NONE",
    "KIND_TRENDLINE",
    "KIND_VALUE",
    "Column",
    "TableChanges",
    "TableColumns",
    "VariableMeta",
    "read_table",
]

#: What a cell holds (``Column.kind``). No ``run_variables`` row for the cell:
KIND_MISSING = 0
#: A number or a string (``values[row]``; SQLite has no booleans: they are 0/1).
KIND_VALUE = 1
#: A row with a NULL value and no error (e.g. a NaN summary, or ``Cell(None)``).
KIND_NONE = 2
#: The variable failed or was skipped: ``attributes[row]`` has ``error`` and ``error_cls``.
KIND_ERROR = 3
#: A PNG thumbnail (a blob without summary_type; not read, fetch it when shown).
KIND_IMAGE = 4
#: A ``(2, n)`` trendline (``.npy`` blob, summary_type ``trendline``; not read).
KIND_TRENDLINE = 5
#: Any other array (``.npy`` blob, summary_type ``numpy``; not read).
KIND_ARRAY = 6
#: A complex number: ``values[row]`` is the Python ``complex``.
KIND_COMPLEX = 7
#: A blob of an unknown summary_type (not read).
KIND_BLOB = 8

# kind -> whether ``values`` holds the cell's value (a lookup is much cheaper
# than np.isin on short arrays).
_SHOWN = np.zeros(256, dtype=bool)
_SHOWN[[KIND_VALUE, KIND_COMPLEX]] = True


@dataclass(frozen=True)
class VariableMeta:
    """One row of the ``variables`` table, with its tags."""

    name: str
    title: str | None
    description: str | None
    #: boolean|integer|number|string for user-editable variables, None for computed ones.
    type: str | None
    #: The ``attributes`` JSON decoded (e.g. ``{"units": "mJ"}``), or None.
    attributes: dict[str, Any] | None
    tags: tuple[str, ...]

    @property
    def user_editable(self) -> bool:
        return self.type is not None

    @property
    def units(self) -> str | None:
        """The column's units, from its attributes."""
        units = (self.attributes or {}).get("units")
        return units if isinstance(units, str) else None


@dataclass
class Column:
    """One variable's cells, one entry per table row.

    ``values`` holds the cell's value where ``kind`` is KIND_VALUE or
    KIND_COMPLEX. Its dtype is float64 when every such value is a float, int64
    when every one is an integer, else object; other entries are NaN, 0 or
    None respectively and mean nothing: always look at ``kind`` first.
    """

    name: str
    #: uint8 array of KIND_* codes.
    kind: np.ndarray
    values: np.ndarray
    #: float64 array: ``|max - min|`` within the run where recorded, else NaN;
    #: None when no cell of the column has one (or details were not read).
    max_diff: np.ndarray | None
    #: row -> the cell's ``attributes`` JSON decoded (units, bold, background,
    #: error), only for rows that have attributes. Cells with the same JSON text
    #: share one dict: don't modify them.
    attributes: dict[int, dict[str, Any]] = field(default_factory=dict)
    #: row -> provenance, only where it is not ``"context.py"`` (``""`` means typed
    #: by a person).
    provenance: dict[int, str] = field(default_factory=dict)

    def present(self) -> np.ndarray:
        """Boolean array: which rows have a stored cell (any kind but KIND_MISSING)."""
        return self.kind != KIND_MISSING


@dataclass
class TableChanges:
    """What :meth:`TableColumns.refresh` changed."""

    #: True when everything was read again (no change log, or too many changes).
    full: bool
    #: (proposal, run) of every row added, removed or with any cell changed.
    runs: list[tuple[int, int]]
    #: Rows (indices into the refreshed table) of runs added or changed.
    rows: np.ndarray
    #: Names whose column appeared, disappeared, or had a cell changed.
    names: set[str]
    #: True when the ``variables`` table (titles, types, units, tags) changed.
    variables_changed: bool

    def __bool__(self) -> bool:
        return self.full or bool(self.runs) or bool(self.names) or self.variables_changed


@dataclass
class TableColumns:
    """The run table as numpy columns; see the module docstring.

    Not thread-safe: refresh it from one thread at a time (it changes in place).
    """

    #: int64 arrays: row -> proposal and run number.
    proposal: np.ndarray
    run: np.ndarray
    #: float64 arrays of epoch seconds (UTC); NaN when unknown.
    start_time: np.ndarray
    added_at: np.ndarray
    #: Name -> its cells. Order: by name.
    columns: dict[str, Column]
    #: Rows of the ``variables`` table by name, in table order.
    variables: dict[str, VariableMeta]
    #: The change log position this snapshot includes; None when the database
    #: has no change log (then :meth:`refresh` reads everything again).
    seq: int | None = None
    #: The *runs* and *names* the table was read with (None: all).
    runs_filter: frozenset[int] | None = None
    names_filter: frozenset[str] | None = None
    #: ``metameta.db_id`` of the database read (a cache must not move between databases).
    db_id: str | None = None

    #: Whether ``max_diff``, ``attributes`` and ``provenance`` were read.
    details: bool = True

    def __len__(self) -> int:
        return len(self.run)

    def row_of(self, proposal: int, run: int) -> int | None:
        """Index of the row of (proposal, run), or None."""
        hits = np.flatnonzero((self.proposal == proposal) & (self.run == run))
        return int(hits[0]) if len(hits) else None

    @property
    def comment(self) -> np.ndarray:
        """Object array: each run's comment, or None."""
        column = self.columns.get("comment")
        out = np.full(len(self), None, dtype=object)
        if column is not None:
            shown = column.kind == KIND_VALUE
            out[shown] = column.values[shown]
        return out

    def refresh(self, source: Any) -> TableChanges:
        """Bring this table up to date with the database, in place, reading only
        the runs changed since it was read (plus the small ``variables`` table).

        *source* is as for :func:`read_table`. Returns what changed.
        """
        with _Reader(source) as reader:
            seq = reader.seq()
            if (self.seq is None or seq is None or seq < self.seq
                    or reader.db_id() != self.db_id):
                return self._replace(reader, seq)
            changed = reader.changed_runs(self.seq, self.runs_filter)
            # Re-reading a large share of the table costs as much as reading it all.
            if len(changed) > max(64, len(self) // 4):
                return self._replace(reader, seq)
            variables = reader.variables()
            part = reader.read(changed, self.names_filter, self.details) if changed else None
        variables_changed = variables != self.variables
        self.variables = variables
        self.seq = seq
        if part is None:
            names = self._sync_columns()
            return TableChanges(False, [], np.zeros(0, np.intp), names, variables_changed)
        return self._splice(changed, part, variables_changed)

    # -- internals -----------------------------------------------------------------
    def _replace(self, reader: _Reader, seq: int | None) -> TableChanges:
        fresh = reader.read_all(self.runs_filter, self.names_filter, self.details)
        old_keys = set(zip(self.proposal.tolist(), self.run.tolist(), strict=True))
        new_keys = set(zip(fresh.proposal.tolist(), fresh.run.tolist(), strict=True))
        names = set(self.columns) | set(fresh.columns)
        self.__dict__.update(fresh.__dict__)
        return TableChanges(True, sorted(old_keys | new_keys), np.arange(len(self)), names,
                            True)

    def _sync_columns(self) -> set[str]:
        """Give every variable of the ``variables`` table a column, drop columns
        left without cells or variable; returns the names added or dropped."""
        wanted = {name for name in self.variables
                  if self.names_filter is None or name in self.names_filter}
        gone = {name for name, col in self.columns.items()
                if name not in wanted and not col.present().any()}
        added = wanted - set(self.columns)
        if gone or added:
            columns = {name: col for name, col in self.columns.items() if name not in gone}
            columns.update((name, _empty_column(name, len(self))) for name in added)
            self.columns = dict(sorted(columns.items()))
        return gone | added

    def _splice(self, changed: list[tuple[int, int]], part: TableColumns,
                variables_changed: bool) -> TableChanges:
        """Replace the rows of *changed* runs by those of *part* (which has the
        changed runs that still exist), keeping every other row as it was."""
        old_key = _row_keys(self.proposal, self.run)
        changed_key = _row_keys(np.array([p for p, _ in changed], np.int64),
                                np.array([r for _, r in changed], np.int64))
        part_key = _row_keys(part.proposal, part.run)
        keep = ~np.isin(old_key, changed_key)
        new_key = np.concatenate([old_key[keep], part_key])
        order = np.argsort(new_key, kind="stable")
        new_key = new_key[order]
        n_keep = int(keep.sum())
        # Where each surviving old row and each part row lands in the new table.
        inverse = np.empty(len(order), np.intp)
        inverse[order] = np.arange(len(order))
        old_dest = np.full(len(old_key), -1, np.intp)
        old_dest[keep] = inverse[:n_keep]
        part_dest = inverse[n_keep:]
        same_rows = len(new_key) == len(old_key) and bool(np.all(new_key == old_key))

        # Which cells really changed: rows of runs in both, compared cell by cell,
        # plus every cell of runs added or removed.
        changed_rows = np.flatnonzero(~keep)
        in_part = np.isin(old_key[changed_rows], part_key)
        both_old = changed_rows[in_part]
        both_new = np.searchsorted(part_key, old_key[both_old])
        only_old = changed_rows[~in_part]
        only_new = np.flatnonzero(~np.isin(part_key, old_key))
        names = set()
        for name in set(self.columns) | set(part.columns):
            old_col, new_col = self.columns.get(name), part.columns.get(name)
            if (old_col is not None and (old_col.kind[only_old] != KIND_MISSING).any()) or (
                    new_col is not None and (new_col.kind[only_new] != KIND_MISSING).any()) \
                    or _cells_differ(old_col, both_old, new_col, both_new):
                names.add(name)
        n = len(new_key)
        self.proposal = _place(self.proposal, part.proposal, old_dest, part_dest, n, same_rows)
        self.run = _place(self.run, part.run, old_dest, part_dest, n, same_rows)
        self.start_time = _place(self.start_time, part.start_time, old_dest, part_dest, n,
                                 same_rows)
        self.added_at = _place(self.added_at, part.added_at, old_dest, part_dest, n, same_rows)
        empty = _empty_column("", len(part))
        columns = {}
        for name in sorted(set(self.columns) | set(part.columns)):
            old = self.columns.get(name) or _empty_column(name, len(old_key))
            new = part.columns.get(name, empty)
            columns[name] = _splice_column(name, old, new, old_dest, part_dest, n, same_rows)
        self.columns = columns
        names |= self._sync_columns()
        rows = np.flatnonzero(np.isin(new_key, part_key))
        return TableChanges(False, sorted(changed), rows, names, variables_changed)


def _cells_differ(old: Column | None, old_rows: np.ndarray, new: Column | None,
                  new_rows: np.ndarray) -> bool:
    """Whether the cells *old_rows* of *old* differ from *new_rows* of *new*."""
    if not len(old_rows):
        return False
    if old is None or new is None:
        col = old if old is not None else new
        rows = old_rows if old is not None else new_rows
        return bool((col.kind[rows] != KIND_MISSING).any())
    if not np.array_equal(old.kind[old_rows], new.kind[new_rows]):
        return True
    if not np.array_equal(_max_diff(old)[old_rows], _max_diff(new)[new_rows], equal_nan=True):
        return True
    shown = _SHOWN[old.kind[old_rows]]
    old_values = old.values[old_rows][shown].tolist()
    new_values = new.values[new_rows][shown].tolist()
    # Compare types too: 1 == 1.0 == True, but they show differently.
    if old_values != new_values or list(map(type, old_values)) != list(map(type, new_values)):
        return True
    for a, b in zip(old_rows.tolist(), new_rows.tolist(), strict=True):
        if old.attributes.get(a) != new.attributes.get(b) or \
                old.provenance.get(a) != new.provenance.get(b):
            return True
    return False


def _row_keys(proposal: np.ndarray, run: np.ndarray) -> np.ndarray:
    """One sortable int64 per (proposal, run), in (proposal, run) order."""
    return (proposal.astype(np.int64) << 32) + (run.astype(np.int64) + 2**31)


def _place(old: np.ndarray, new: np.ndarray, old_dest: np.ndarray, new_dest: np.ndarray,
           n: int, in_place: bool) -> np.ndarray:
    if old.dtype != new.dtype:
        old, new = old.astype(object), new.astype(object)
    out = old if in_place else np.empty(n, old.dtype)
    if not in_place:
        sel = old_dest >= 0
        out[old_dest[sel]] = old[sel]
    out[new_dest] = new
    return out


def _empty_column(name: str, n: int) -> Column:
    return Column(name, np.zeros(n, np.uint8), np.full(n, None, dtype=object), None)


def _max_diff(col: Column) -> np.ndarray:
    return col.max_diff if col.max_diff is not None else np.full(len(col.kind), np.nan)


def _blank(n: int, dtype: np.dtype) -> np.ndarray:
    if dtype.kind == "O":
        return np.full(n, None, dtype=object)
    return np.full(n, np.nan) if dtype.kind == "f" else np.zeros(n, dtype)


def _has_values(col: Column) -> bool:
    return bool(_SHOWN[col.kind].any())


def _splice_column(name: str, old: Column, new: Column, old_dest: np.ndarray,
                   new_dest: np.ndarray, n: int, in_place: bool) -> Column:
    """*old* with the rows of *new* placed at *new_dest* (see _place). Costs
    O(rows replaced) when *in_place* and the dtype stays, so that a refresh
    that changed one run doesn't pay for the whole table."""
    replaced = new_dest if in_place else np.flatnonzero(old_dest < 0)
    had_values = bool(_SHOWN[old.kind[replaced] if in_place else old.kind[old_dest < 0]].any())
    old_values, new_values = old.values, new.values
    if old_values.dtype != new_values.dtype:
        # A side without any value takes the other side's dtype.
        if not _has_values(new):
            new_values = _blank(len(new_values), old_values.dtype)
        elif not _has_values(old):
            old_values = _blank(len(old_values), new_values.dtype)
    if old_values.dtype != new_values.dtype:
        old_values, new_values = old_values.astype(object), new_values.astype(object)
        old_values[~_SHOWN[old.kind]] = None
        new_values[~_SHOWN[new.kind]] = None
    # (old.kind may be changed in place: only now.)
    kind = _place(old.kind, new.kind, old_dest, new_dest, n, in_place)
    values = _place(old_values, new_values, old_dest, new_dest, n, in_place)
    # The same dtype as a fresh read would give; values that made a column
    # object or typed can only have gone if the replaced cells had values.
    if had_values and not _SHOWN[kind].any():
        values = np.full(n, None, dtype=object)
    elif values.dtype == object and (had_values or new_values.dtype != object) and \
            not (new_values.dtype == object and _has_values(new)
                 and _typed_dtype(new_values, new.kind) is None) and \
            _typed_dtype(values, kind) is not None:
        # (Skipped when the new cells themselves need object, e.g. text.)
        values = _typed(values, kind)
    max_diff = None
    if old.max_diff is not None or new.max_diff is not None:
        max_diff = _place(_max_diff(old), _max_diff(new), old_dest, new_dest, n,
                          in_place and old.max_diff is not None)
        if new.max_diff is None and np.isnan(max_diff).all():
            max_diff = None  # as a fresh read
    if in_place:
        attributes, provenance = old.attributes, old.provenance
        for row in replaced.tolist():
            attributes.pop(row, None)
            provenance.pop(row, None)
    else:
        attributes = {int(old_dest[r]): a for r, a in old.attributes.items()
                      if old_dest[r] >= 0}
        provenance = {int(old_dest[r]): p for r, p in old.provenance.items()
                      if old_dest[r] >= 0}
    attributes.update((int(new_dest[r]), a) for r, a in new.attributes.items())
    provenance.update((int(new_dest[r]), p) for r, p in new.provenance.items())
    if in_place:
        old.kind, old.values, old.max_diff = kind, values, max_diff
        return old
    return Column(name, kind, values, max_diff, attributes, provenance)


def _typed_dtype(values: np.ndarray, kind: np.ndarray) -> type | None:
    """float64 / int64 if every shown value of an object array is a float / an int."""
    shown = values[_SHOWN[kind]]
    if not len(shown):
        return None
    types = {type(v) for v in shown.tolist()}
    if types == {float}:
        return np.float64
    if types == {int}:
        return np.int64
    return None


def _typed(values: np.ndarray, kind: np.ndarray) -> np.ndarray:
    dtype = _typed_dtype(values, kind)
    shown = kind == KIND_VALUE
    out = np.full(len(values), np.nan) if dtype is np.float64 else np.zeros(len(values),
                                                                          np.int64)
    out[shown] = values[shown].tolist()
    return out


def read_table(source: Any, runs: Any = None, names: Any = None, *,
               details: bool = True) -> TableColumns:
    """Read the run table in one consistent snapshot.

    *source* is a :class:`~runtable.store.DatabaseFolder`, a ``sqlite3``
    connection to ``runs.sqlite``, or the path of a folder or of its
    ``runs.sqlite``; the table is read through a read-only connection of its
    own, so the caller's connection and transactions are not touched.
    *runs* (run numbers) and *names* (variable names) restrict the rows and
    columns read; the restriction is kept by :meth:`TableColumns.refresh`.
    With ``details=False``, ``max_diff``, ``attributes`` and ``provenance`` are
    not read (all NaN / empty), which makes reading faster.
    """
    runs_filter = None if runs is None else frozenset(int(r) for r in runs)
    names_filter = None if names is None else frozenset(str(n) for n in names)
    with _Reader(source) as reader:
        return reader.read_all(runs_filter, names_filter, details)


# -- reading -----------------------------------------------------------------------
def _db_path(source: Any) -> Path:
    db_path = getattr(source, "db_path", None)
    if db_path is not None:
        return Path(db_path)
    if isinstance(source, sqlite3.Connection):
        for _, schema_name, filename in source.execute("PRAGMA database_list"):
            if schema_name == "main" and filename:
                return Path(filename)
        raise ValueError("read_table needs a connection to a database file, not in memory")
    path = Path(source)
    return path / "runs.sqlite" if path.is_dir() else path


# Bulk reads of more rows than this are shared among threads (at most _MAX_THREADS).
_ROWS_PER_THREAD = 250_000
_MAX_THREADS = 8

# Rows converted to Arrow at a time without ADBC (their Python objects exist at once).
_BATCH_ROWS = 100_000
_BUSY_TIMEOUT_S = 30.0
_HAS_CHANGELOG = "SELECT count(*) FROM sqlite_master WHERE name = 'runtable_run_changes'"

# Placeholders for SQL parameters are limited (32766 by default); longer lists
# of runs or names are inlined as literals instead.
_MAX_PARAMS = 10_000

# The ADBC driver types each column from the first rows it sees, and fails
# when a later row brings another type (the sqlite3 path types them from the
# first row). Every query therefore starts with one row of typed sentinels
# (dropped after reading), and the untyped `value` column is split by SQLite
# type. SQLite evaluates these expressions for every cell (each costs ~0.1 us
# per cell), so the bulk query carries only what every cell needs; the rarely
# set columns come from a query that returns only the rows that have them.
_BIG_INT = 2**53  # integers beyond this don't survive a trip through a double
_KIND_CODE = (
    "CASE typeof(v.value) WHEN 'real' THEN {real} WHEN 'integer' THEN {integer} "
    "WHEN 'text' THEN {text} WHEN 'null' THEN "
    "(CASE WHEN json_valid(v.attributes) AND json_type(v.attributes, '$.error') IS NOT NULL "
    "THEN {error} ELSE {none} END) "
    "ELSE (CASE WHEN v.summary_type = 'complex' THEN {complex} "
    "WHEN v.summary_type = 'trendline' THEN {trendline} "
    "WHEN v.summary_type = 'numpy' THEN {array} "
    "WHEN v.summary_type IS NULL OR v.summary_type = '' THEN {image} "
    "ELSE {blob} END) END")
_MAIN_COLUMNS: list[tuple[str, str]] = [
    ("v.run", "0"),
    ("v.name", "''"),
    (_KIND_CODE.format(real=ord("r"), integer=ord("i"), text=ord("t"), error=KIND_ERROR,
                       none=KIND_NONE, complex=KIND_COMPLEX, trendline=KIND_TRENDLINE,
                       array=KIND_ARRAY, image=KIND_IMAGE, blob=KIND_BLOB), "0"),
    ("CASE typeof(v.value) WHEN 'real' THEN v.value WHEN 'integer' THEN v.value END", "0.5"),
    # Text values; and as text what a double can't carry: complex numbers (hex
    # of their 16 bytes) and big integers (decimal).
    ("CASE typeof(v.value) WHEN 'text' THEN v.value "
     "WHEN 'blob' THEN iif(v.summary_type = 'complex', hex(v.value), NULL) "
     f"WHEN 'integer' THEN iif(v.value > {_BIG_INT} OR v.value < -{_BIG_INT}, "
     "CAST(v.value AS TEXT), NULL) END", "''"),
]
_DETAIL_WHERE = ("(v.max_diff IS NOT NULL OR v.attributes IS NOT NULL "
                 "OR v.provenance IS NOT 'context.py')")
_DETAIL_COLUMNS: list[tuple[str, str]] = [
    ("CAST(v.proposal AS INTEGER)", "0"),
    ("CAST(v.run AS INTEGER)", "0"),
    ("CAST(v.name AS TEXT)", "''"),
    ("CAST(v.max_diff AS REAL)", "0.5"),
    ("CAST(v.attributes AS TEXT)", "''"),
    ("CAST(v.provenance AS TEXT)", "''"),
]
# Only the latest version of each cell (used only when a database has several).
_LATEST_ONLY = (" AND NOT EXISTS (SELECT 1 FROM run_variables AS w WHERE "
                "w.proposal = v.proposal AND w.run = v.run AND w.name = v.name "
                "AND w.version > v.version)")
_RUN_COLUMNS: list[tuple[str, str]] = [
    ("CAST(proposal AS INTEGER)", "0"),
    ("CAST(run AS INTEGER)", "0"),
    ("CAST(start_time AS REAL)", "0.5"),
    ("CAST(added_at AS REAL)", "0.5"),
]


def _typed_select(columns: list[tuple[str, str]], rest: str) -> str:
    sentinel = ", ".join(f"{literal} AS c{i}" for i, (_, literal) in enumerate(columns))
    real = ", ".join(expr for expr, _ in columns)
    return f"SELECT {sentinel} UNION ALL SELECT {real} {rest}"


def _in_list(column: str, items: frozenset | list | None, params: list[Any]) -> str:
    if items is None:
        return ""
    items = sorted(items)
    if len(items) > _MAX_PARAMS:
        if all(isinstance(i, int) for i in items):
            return f" AND {column} IN ({', '.join(str(int(i)) for i in items)})"
        literals = ", ".join("'" + str(i).replace("'", "''") + "'" for i in items)
        return f" AND {column} IN ({literals})"
    params.extend(items)
    return f" AND {column} IN ({', '.join('?' * len(items))})"


def _arrow_type(sentinel: object) -> Any:
    import pyarrow as pa

    return {int: pa.int64(), float: pa.float64(), str: pa.string()}[type(sentinel)]


def _arrow_array(values: tuple, arrow_type: Any) -> Any:
    import pyarrow as pa

    try:
        return pa.array(values, type=arrow_type)
    except (pa.ArrowInvalid, pa.ArrowTypeError, OverflowError):
        # An integer no double holds exactly (its text travels in another column),
        # or bytes where text was expected: convert one by one.
        convert = float if pa.types.is_floating(arrow_type) else (
            int if pa.types.is_integer(arrow_type) else _text)
        return pa.array([None if v is None else convert(v) for v in values],
                        type=arrow_type)


def _text(value: object) -> str:
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    return str(value)


# Writers in this process that keep the folder open through Python's sqlite3
# (see keep_adbc_out).
_writers_here = 0
_writers_lock = threading.Lock()


@contextlib.contextmanager
def keep_adbc_out() -> Iterator[None]:
    """While in this block, tables are read without the ADBC driver in this process.

    For a process that writes the database through Python's ``sqlite3`` all along
    (the service, with its web server). The driver carries its own copy of SQLite,
    and SQLite's locks are POSIX locks, which belong to the process: a second copy
    opening or closing the file releases the first one's locks and may reset the
    WAL index under it, which corrupts the database or ends the process with
    SIGBUS. Here, whole tables are read by ADBC in a child process
    (``runtable.store.table_child``) and parts of tables through ``sqlite3``.
    """
    global _writers_here
    with _writers_lock:
        _writers_here += 1
    try:
        yield
    finally:
        with _writers_lock:
            _writers_here -= 1


class _Reader:
    """One read-only connection holding one read transaction (a snapshot).

    Through the ADBC SQLite driver (fast: straight into Arrow, threads without the
    GIL), or Python's ``sqlite3`` inside :func:`keep_adbc_out`.
    """

    def __init__(self, source: Any) -> None:
        self.path = _db_path(source).absolute()
        if not self.path.is_file():
            raise FileNotFoundError(f"No database at {self.path}")
        self.adbc = _writers_here == 0

    def __enter__(self) -> _Reader:
        base = f"file:{quote(str(self.path))}"
        try:
            self.conn = self._connect(f"{base}?mode=ro")
            self._has_changelog = self._one(_HAS_CHANGELOG) == 1
        except Exception as exc:
            with contextlib.suppress(Exception):
                self.conn.close()
            # A WAL database in a folder we cannot write, with no -shm file left by
            # a writer: SQLite can only read it as an immutable file. (sqlite3 says
            # which error it is; ADBC's messages don't.)
            if not self.adbc and "unable to open" not in str(exc):
                raise
            self.conn = self._connect(f"{base}?immutable=1")
            self._has_changelog = self._one(_HAS_CHANGELOG) == 1
        return self

    def _connect(self, uri: str) -> Any:
        if self.adbc:
            import adbc_driver_sqlite.dbapi as adbc

            return adbc.connect(uri)
        conn = sqlite3.connect(uri, uri=True, isolation_level=None,
                               check_same_thread=False, timeout=_BUSY_TIMEOUT_S)
        conn.execute("BEGIN")  # one snapshot for every query, as ADBC's transaction
        return conn

    def __exit__(self, *exc: object) -> None:
        with contextlib.suppress(Exception):
            self.conn.rollback()
        self.conn.close()

    def _arrow(self, sql: str, params: list[Any] | None = None) -> Any:
        """The rows of a :func:`_typed_select` as an Arrow table (sentinel row first)."""
        if not self.adbc:
            return self._arrow_sqlite3(sql, params)
        cur = self.conn.cursor()
        try:
            # Big batches: Arrow operations on many small chunks cost more
            # (the default is 1024 rows).
            cur.adbc_statement.set_options(**{"adbc.sqlite.query.batch_rows": "262144"})
            cur.execute(sql, parameters=params or None)
            return cur.fetch_arrow_table().combine_chunks()
        finally:
            cur.close()

    def _arrow_sqlite3(self, sql: str, params: list[Any] | None) -> Any:
        # In batches, so that Python objects for only one batch of rows exist at once.
        import pyarrow as pa

        cur = self.conn.execute(sql, params or [])
        try:
            names = [d[0] for d in cur.description]
            first = cur.fetchone()
            types = [_arrow_type(v) for v in first]
            batches = [pa.record_batch(
                [pa.array([v], type=t) for v, t in zip(first, types, strict=True)],
                names=names)]
            while rows := cur.fetchmany(_BATCH_ROWS):
                batches.append(pa.record_batch(
                    [_arrow_array(col, t) for col, t in zip(zip(*rows), types, strict=True)],
                    names=names))
        finally:
            cur.close()
        return pa.Table.from_batches(batches).combine_chunks()

    def _rows(self, sql: str, params: list[Any] | None = None) -> list[tuple]:
        if not self.adbc:
            return self.conn.execute(sql, params or []).fetchall()
        cur = self.conn.cursor()
        try:
            cur.execute(sql, parameters=params or None)
            return cur.fetchall()
        finally:
            cur.close()

    def _one(self, sql: str, params: list[Any] | None = None) -> Any:
        rows = self._rows(sql, params)
        return rows[0][0] if rows else None

    def _bulk(self, sql: str, params: list[Any], parallel: bool) -> Any:
        """The bulk query's rows; for a big table, read by several threads at
        once (SQLite and the driver run without the GIL), each over a range of
        rowids through its own connection."""
        import pyarrow as pa

        # (Python's sqlite3 makes a Python object per value, with the GIL held.)
        workers = min(_MAX_THREADS, os.cpu_count() or 1) if self.adbc else 1
        seq = self.seq() if parallel and workers > 1 else None
        if seq is None:
            return self._arrow(sql, params).slice(1)
        # (One min() or max() per SELECT: SQLite scans the whole table for both at once.)
        first, last = self._rows("SELECT (SELECT min(rowid) FROM run_variables), "
                                 "(SELECT max(rowid) FROM run_variables)")[0]
        if first is None or last - first < _ROWS_PER_THREAD:
            return self._arrow(sql, params).slice(1)
        workers = min(workers, (last - first) // _ROWS_PER_THREAD + 1)
        bounds = np.linspace(first, last + 1, workers + 1).astype(np.int64).tolist()

        def part(lo: int, hi: int) -> Any:
            with _Reader(self.path) as reader:
                # Each connection has its own snapshot: only if all of them saw
                # the same change log position do they add up to one table.
                if reader.seq() != seq:
                    return None
                return reader._arrow(f"{sql} AND v.rowid >= {lo} AND v.rowid < {hi}",
                                     params).slice(1)

        with ThreadPoolExecutor(workers) as pool:
            parts = list(pool.map(part, bounds[:-1], bounds[1:]))
        if any(p is None for p in parts):
            return self._arrow(sql, params).slice(1)  # a write came between: read alone
        return pa.concat_tables(parts)

    def seq(self) -> int | None:
        """The change log position of this snapshot (None: no change log)."""
        if not self._has_changelog:
            return None
        return int(self._one(
            "SELECT CAST(ifnull(max(seq), 0) AS INTEGER) FROM runtable_run_changes"))

    def db_id(self) -> str | None:
        value = self._one("SELECT CAST(value AS TEXT) FROM metameta WHERE key = 'db_id'")
        return str(value) if value is not None else None

    def changed_runs(self, since: int, runs: frozenset[int] | None) -> list[tuple[int, int]]:
        params: list[Any] = [since]
        where = _in_list("run", runs, params)
        # (Sorted here: ORDER BY would make SQLite scan the log in key order
        # instead of seeking the few new entries by seq.)
        return sorted((int(p), int(r)) for p, r in self._rows(
            "SELECT CAST(proposal AS INTEGER), CAST(run AS INTEGER) FROM runtable_run_changes "
            f"WHERE seq > ?{where}", params))

    def variables(self) -> dict[str, VariableMeta]:
        tags: dict[str, list[str]] = {}
        for var, tag in self._rows(
                "SELECT CAST(variable_tags.variable_name AS TEXT), CAST(tags.name AS TEXT) "
                "FROM variable_tags JOIN tags ON tags.id = variable_tags.tag_id "
                "ORDER BY tags.name"):
            tags.setdefault(var, []).append(tag)
        out = {}
        for name, vtype, title, description, attrs in self._rows(
                "SELECT CAST(name AS TEXT), CAST(type AS TEXT), CAST(title AS TEXT), "
                "CAST(description AS TEXT), CAST(attributes AS TEXT) FROM variables "
                "ORDER BY rowid"):
            try:
                decoded = json.loads(attrs) if attrs else None
            except ValueError:
                decoded = None
            out[name] = VariableMeta(name, title, description, vtype,
                                     decoded if isinstance(decoded, dict) else None,
                                     tuple(tags.get(name, ())))
        return out

    def read_all(self, runs: frozenset[int] | None, names: frozenset[str] | None,
                 details: bool) -> TableColumns:
        if runs is None and not self.adbc:
            return _read_table_in_child(self.path, names, details)
        seq = self.seq()
        table = self.read(None if runs is None else runs, names, details)
        table.seq = seq
        table.db_id = self.db_id()
        table.variables = self.variables()
        table.runs_filter, table.names_filter = runs, names
        table._sync_columns()
        return table

    def read(self, runs: frozenset[int] | list[tuple[int, int]] | None,
             names: frozenset[str] | None, details: bool,
             latest_only: bool = False) -> TableColumns:
        """The rows of *runs* (run numbers, or a list of (proposal, run) pairs
        from the change log), columns *names*; no variables, seq or db_id."""
        params: list[Any] = []
        names_where = _in_list("v.name", names, params)
        if latest_only:
            names_where += _LATEST_ONLY
        if isinstance(runs, list):
            pairs = sorted(set(runs))
            runs_tab = self._arrow(_typed_select(
                _RUN_COLUMNS, "FROM run_info WHERE (proposal, run) IN (VALUES "
                + ", ".join(f"({int(p)}, {int(r)})" for p, r in pairs) + ")")).slice(1)
        else:
            run_params: list[Any] = []
            run_where = _in_list("run", runs, run_params)
            runs_tab = self._arrow(_typed_select(_RUN_COLUMNS, f"FROM run_info WHERE 1{run_where}"),
                                   run_params).slice(1)
            if runs is not None:
                pairs = list(zip(_int_column(runs_tab.column(0)).tolist(),
                                 _int_column(runs_tab.column(1)).tolist(), strict=True))
        by_proposal: dict[int, list[int]] = {}
        if runs is None:
            by_proposal = {p: [] for p in sorted(set(_int_column(runs_tab.column(0)).tolist()))}
        else:
            for p, r in pairs:
                by_proposal.setdefault(p, []).append(r)
        main, detail_parts = [], []
        for proposal, run_nos in by_proposal.items():
            if runs is None:
                # '+' keeps SQLite on a plain table scan, faster than any index
                # for (most of) a whole table.
                where = f"+v.proposal = {int(proposal)}{names_where}"
            else:
                # The unique index on (proposal, run, name, version) finds the rows.
                where = (f"v.proposal = {int(proposal)} AND v.run IN "
                         f"({', '.join(str(int(r)) for r in run_nos)}){names_where}")
            # One bulk query per proposal, so it needn't return every cell's proposal.
            sql = _typed_select(_MAIN_COLUMNS, f"FROM run_variables AS v WHERE {where}")
            main.append((proposal, self._bulk(sql, params, parallel=runs is None)))
            if details:
                detail_parts.append(self._bulk(_typed_select(
                    _DETAIL_COLUMNS, f"FROM run_variables AS v WHERE {_DETAIL_WHERE} AND "
                    f"{where}"), params, parallel=runs is None))
        detail = None
        if details and detail_parts:
            import pyarrow as pa

            detail = pa.concat_tables(detail_parts)
        table = _pivot(runs_tab, main, detail, names, details)
        if table is None:
            # Several versions of some cell: read again, keeping the latest ones.
            return self.read(runs, names, details, latest_only=True)
        return table


def _read_table_in_child(path: Path, names: frozenset[str] | None,
                         details: bool) -> TableColumns:
    """:func:`read_table` of the whole table through ADBC, in a child process."""
    import pickle
    import subprocess
    import sys

    request = {"path": str(path), "names": None if names is None else sorted(names),
               "details": details}
    proc = subprocess.run([sys.executable, "-m", "runtable.store.table_child"],
                          input=json.dumps(request).encode(), capture_output=True,
                          check=False)
    if proc.returncode != 0:
        tail = proc.stderr.decode("utf-8", "replace").strip().splitlines()[-5:]
        raise StoreError(f"Reading the table of {path} failed in its reader process "
                         f"(exit status {proc.returncode}): " + "\n".join(tail))
    return pickle.loads(proc.stdout)


def _int_column(array: Any) -> np.ndarray:
    import pyarrow.compute as pc

    if array.null_count:
        array = pc.fill_null(array, -1)
    return np.asarray(array.to_numpy(), dtype=np.int64)


def _float_column(array: Any) -> np.ndarray:
    import pyarrow as pa

    return np.asarray(array.cast(pa.float64()).to_numpy(), dtype=np.float64)


def _valid(array: Any) -> np.ndarray:
    return np.asarray(array.is_valid().to_numpy(zero_copy_only=False), dtype=bool)


def _pivot(runs_tab: Any, main: list[tuple[int, Any]], detail: Any,
           names_filter: frozenset[str] | None, details: bool) -> TableColumns | None:
    """Arrow tables of run_info rows and of run_variables rows -> TableColumns,
    or None if some cell has several rows (versions)."""
    import pyarrow as pa
    import pyarrow.compute as pc

    proposal = _int_column(runs_tab.column(0))
    run = _int_column(runs_tab.column(1))
    order = np.lexsort((run, proposal))
    proposal, run = proposal[order], run[order]
    start_time = _float_column(runs_tab.column(2))[order]
    added_at = _float_column(runs_tab.column(3))[order]
    n = len(run)
    key = _row_keys(proposal, run)
    columns: dict[str, Column] = {}
    table = TableColumns(proposal, run, start_time, added_at, columns, {}, details=details)
    m_rows = sum(t.num_rows for _, t in main)
    d_rows = detail.num_rows if detail is not None else 0
    if n == 0 or not (m_rows or d_rows):
        return table

    # One numbering of names across all queries.
    name_chunks = [c for _, t in main for c in t.column(1).cast(pa.string()).chunks]
    if detail is not None:
        name_chunks += detail.column(2).cast(pa.string()).chunks
    encoded = pc.dictionary_encode(
        pa.chunked_array(name_chunks, type=pa.string()).combine_chunks())
    all_codes = np.asarray(encoded.indices.to_numpy(zero_copy_only=False), dtype=np.intp)
    names: list[str] = encoded.dictionary.to_pylist()
    n_names = len(names)

    def locate(props: np.ndarray, runs: np.ndarray, offset: int) -> tuple[np.ndarray, ...]:
        """(selected indices, table rows, name codes) of one query's rows; rows
        of runs without a run_info row drop out."""
        cell_key = _row_keys(props, runs)
        pos = np.minimum(np.searchsorted(key, cell_key), n - 1)
        sel = np.flatnonzero(key[pos] == cell_key)
        return sel, pos[sel], all_codes[offset:offset + len(props)][sel]

    # -- the bulk query: every cell. Memory traffic is what costs here (10
    # million cells make each temporary array 10-80 MB), so work on whole
    # arrays without copies where possible.
    m_tab = pa.concat_tables([t for _, t in main]).combine_chunks()
    pos = np.concatenate([_rows_in(p, proposal, run, _int_column(t.column(0)))
                          for p, t in main])
    m_codes = all_codes[:m_rows]
    if (pos >= 0).all():
        sel = None  # every cell belongs to a known run (the usual case)
        rows, codes = pos, m_codes
    else:
        sel = np.flatnonzero(pos >= 0)
        rows, codes = pos[sel], m_codes[sel]

    def picked(array: np.ndarray) -> np.ndarray:
        return array if sel is None else array[sel]

    def source_rows(mask: np.ndarray) -> np.ndarray:
        """Indices into the query's rows of the selected cells in *mask*."""
        return np.flatnonzero(mask) if sel is None else sel[mask]

    code = picked(np.asarray(m_tab.column(2).cast(pa.uint8()).to_numpy(), dtype=np.uint8))
    is_f, is_i, is_s = code == ord("r"), code == ord("i"), code == ord("t")
    is_value = is_f | is_i | is_s
    kind = code.copy()
    kind[is_value] = KIND_VALUE
    kind2d = np.zeros((n_names, n), np.uint8)
    kind2d[codes, rows] = kind
    if np.count_nonzero(kind2d) != len(rows):
        return None
    num = picked(_float_column(m_tab.column(3)))
    text = m_tab.column(4)

    n_f = np.bincount(codes[is_f], minlength=n_names)
    i_at = np.flatnonzero(is_i)
    n_i = np.bincount(codes[i_at], minlength=n_names)
    n_other = np.bincount(codes[(is_value & ~is_f & ~is_i) | (code == KIND_COMPLEX)],
                          minlength=n_names)
    float_only = (n_f > 0) & (n_i == 0) & (n_other == 0)
    int_only = (n_i > 0) & (n_f == 0) & (n_other == 0)
    is_object = ~(float_only | int_only)
    obj_row = np.cumsum(is_object) - 1
    obj2d = np.full((int(is_object.sum()), n), None, dtype=object)
    f2d = i2d = None
    if float_only.any():
        # Every number at once (ints land only in columns that don't use f2d).
        f2d = np.full((n_names, n), np.nan)
        f2d[codes, rows] = num
    ints = num[i_at].astype(np.int64)
    big = np.flatnonzero(_valid(text.take(source_rows(is_i))))
    if len(big):
        ints[big] = [int(t) for t in text.take(source_rows(is_i)[big]).to_pylist()]
    if int_only.any():
        i2d = np.zeros((n_names, n), np.int64)
        i2d[codes[i_at], rows[i_at]] = ints
    in_obj = is_object[codes]
    if in_obj.any():
        at = np.flatnonzero(in_obj & is_f)
        obj2d[obj_row[codes[at]], rows[at]] = num[at]
        to_obj = in_obj[i_at]
        # Python ints, not numpy scalars, in object columns.
        obj2d[obj_row[codes[i_at[to_obj]]], rows[i_at[to_obj]]] = ints[to_obj].tolist()
        at = np.flatnonzero(is_s)
        obj2d[obj_row[codes[at]], rows[at]] = text.take(source_rows(is_s)).to_numpy(
            zero_copy_only=False)
        at = np.flatnonzero(code == KIND_COMPLEX)
        if len(at):
            hexes = text.take(source_rows(code == KIND_COMPLEX)).to_pylist()
            decoded = [_complex(h) if h is not None else None for h in hexes]
            obj2d[obj_row[codes[at]], rows[at]] = decoded
            bad = np.array([v is None for v in decoded])
            if bad.any():  # not 16 bytes: shown as an unknown blob rather than failing
                kind2d[codes[at[bad]], rows[at[bad]]] = KIND_BLOB

    # -- max_diff, attributes, provenance -----------------------------------------------
    md2d = None
    attributes: dict[int, dict[int, dict[str, Any]]] = {}
    provenance: dict[int, dict[int, str]] = {}
    if detail is not None and detail.num_rows:
        d_sel, d_rows, d_codes = locate(_int_column(detail.column(0)),
                                        _int_column(detail.column(1)), m_rows)
        has_md = _valid(detail.column(3))[d_sel]
        if has_md.any():
            has_md_name = np.bincount(d_codes[has_md], minlength=n_names) > 0
            md2d = np.full((n_names, n), np.nan)
            md2d[d_codes[has_md], d_rows[has_md]] = \
                _float_column(detail.column(3))[d_sel][has_md]
        has_attrs = _valid(detail.column(4))[d_sel]
        decoded: dict[str, dict[str, Any]] = {}
        texts = detail.column(4).take(d_sel[has_attrs]).to_pylist()
        for code, row, text_ in zip(d_codes[has_attrs].tolist(), d_rows[has_attrs].tolist(),
                                    texts, strict=True):
            value = decoded.get(text_)
            if value is None:
                decoded[text_] = value = _json_object(text_)
            if value:
                attributes.setdefault(code, {})[row] = value
        has_prov = _valid(detail.column(5))[d_sel]
        texts = detail.column(5).take(d_sel[has_prov]).to_pylist()
        for code, row, text_ in zip(d_codes[has_prov].tolist(), d_rows[has_prov].tolist(),
                                    texts, strict=True):
            if text_ != "context.py":
                provenance.setdefault(code, {})[row] = text_

    present = np.count_nonzero(kind2d, axis=1) > 0
    for j in sorted(np.flatnonzero(present).tolist(), key=names.__getitem__):
        name = names[j]
        if names_filter is not None and name not in names_filter:
            continue
        if float_only[j]:
            values = f2d[j]
        elif int_only[j]:
            values = i2d[j]
        else:
            values = obj2d[obj_row[j]]
        columns[name] = Column(name, kind2d[j], values,
                               md2d[j] if md2d is not None and has_md_name[j] else None,
                               attributes.get(j, {}), provenance.get(j, {}))
    return table


def _rows_in(proposal: int, table_proposal: np.ndarray, table_run: np.ndarray,
             runs: np.ndarray) -> np.ndarray:
    """Table row of each run number in *runs* of *proposal*; -1 where the run
    has no row."""
    mine = np.flatnonzero(table_proposal == proposal)
    known = table_run[mine]
    if not len(known) or known.min() < 0 or known.max() >= 2**26:
        # Odd run numbers: look them up by sorting instead of an array.
        order = np.argsort(known)
        pos = np.minimum(np.searchsorted(known[order], runs), max(len(known) - 1, 0))
        found = known[order][pos] == runs if len(known) else np.zeros(len(runs), bool)
        return np.where(found, mine[order][pos] if len(known) else -1, -1)
    lut = np.full(int(known.max()) + 2, -1, dtype=np.intp)
    lut[known] = mine
    if len(runs) and (runs.min() < 0 or runs.max() >= len(lut)):
        runs = np.clip(runs, -1, len(lut) - 1)  # -1 and the last entry are -1
    return lut[runs]


def _complex(hex_text: str) -> complex | None:
    data = bytes.fromhex(hex_text)
    return complex(*struct.unpack("<dd", data)) if len(data) == 16 else None


def _json_object(text: str) -> dict[str, Any]:
    try:
        value = json.loads(text)
    except ValueError:
        return {}
    return value if isinstance(value, dict) else {}
