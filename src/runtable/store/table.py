"""The run table as numpy columns: the model behind
:meth:`runtable.api.Database.table` and the web server's ``GET /api/table``.

``run_variables`` is long and narrow (one row per cell). :func:`read_table` gives it
as one :class:`Column` per variable, in one consistent snapshot: from the columnar
copy the writer keeps (:mod:`runtable.store.tablecopy`) plus the runs changed since,
or read from SQLite (:mod:`runtable.store.tableread`). :meth:`TableColumns.refresh`
then brings a table up to date by reading only the runs that changed since (found
through the change log ``runtable_run_changes``, kept by triggers; see
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
column too. They come in the order of the ``variables`` table, then the names it
lacks, sorted. Rows of ``run_variables`` whose run has no ``run_info`` row are
not shown. When a cell has several versions (allowed by the format, never
written by runtable or the reference), the latest version is shown.

A database that has no change log yet (made by the reference and never opened for
writing by runtable) is read whole on every refresh.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    import sqlite3

    from .tableread import Reader

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
    "PLACEHOLDERS",
    "Column",
    "TableChanges",
    "TableColumns",
    "VariableMeta",
    "read_table",
    "row_keys",
]

#: What a cell holds (``Column.kind``). No ``run_variables`` row for the cell:
KIND_MISSING = 0
#: A number, a bool or a string (``values[row]``; SQLite stores bools as 0/1, and the
#: row's attributes say which were bools: ``fragments.VALUE_TYPE_ATTR``).
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

#: What a cell that holds no single value shows in a table of values (the read API's
#: DataFrame, ``runtable table`` and exports): the reference's words.
PLACEHOLDERS: dict[int, str] = {KIND_IMAGE: "<thumbnail>", KIND_TRENDLINE: "<sparkline>",
                                KIND_ARRAY: "<ndarray>", KIND_BLOB: "<blob>"}

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
    when every one is an integer, bool when every one is a bool, else object;
    other entries are NaN, 0, False or None respectively and mean nothing: always
    look at ``kind`` first.
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
    #: Name -> its cells, in order (see the module docstring).
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

    def refresh(self, source: Any, conn: sqlite3.Connection | None = None) -> TableChanges:
        """Bring this table up to date with the database, in place, reading only
        the runs changed since it was read (plus the small ``variables`` table).

        *source* is as for :func:`read_table`; *conn*, a read-only connection to it
        that is in no transaction and used by no other thread meanwhile, saves
        connecting (SQLite parses the whole schema then). Returns what changed.
        """
        from .tableread import Reader

        with Reader(source, conn) as reader:
            seq = reader.seq()
            if (self.seq is None or seq is None or seq < self.seq
                    or reader.db_id() != self.db_id):
                return self._replace(reader, seq)
            return self.catch_up(reader, reader.changed_runs(self.seq, self.runs_filter),
                                 seq)

    def catch_up(self, reader: Reader, changed: list[tuple[int, int]], seq: int
                 ) -> TableChanges:
        """Bring this table to *reader*'s snapshot (change log position *seq*) by
        reading the runs *changed* since it was made, and the ``variables`` table."""
        # Re-reading a large share of the table costs as much as reading it all.
        if len(changed) > max(64, len(self) // 4):
            return self._replace(reader, seq)
        variables = reader.variables()
        part = reader.read(changed, self.names_filter, self.details) if changed else None
        variables_changed = variables != self.variables
        self.variables = variables
        self.seq = seq
        if part is None:
            names = self.sync_columns()
            return TableChanges(False, [], np.zeros(0, np.intp), names, variables_changed)
        return self._splice(changed, part, variables_changed)

    def splice(self, changed: list[tuple[int, int]], part: TableColumns) -> TableChanges:
        """Replace the rows of the runs *changed* by those of *part* (which has the
        changed runs that still exist), keeping every other row as it was."""
        return self._splice(changed, part, False)

    # -- internals -----------------------------------------------------------------
    def _replace(self, reader: Reader, seq: int | None) -> TableChanges:
        fresh = reader.read_all(self.runs_filter, self.names_filter, self.details)
        old_keys = set(zip(self.proposal.tolist(), self.run.tolist(), strict=True))
        new_keys = set(zip(fresh.proposal.tolist(), fresh.run.tolist(), strict=True))
        names = set(self.columns) | set(fresh.columns)
        self.__dict__.update(fresh.__dict__)
        return TableChanges(True, sorted(old_keys | new_keys), np.arange(len(self)), names,
                            True)

    def sync_columns(self) -> set[str]:
        """Give every variable of the ``variables`` table a column, drop columns
        left without cells or variable, put them in order; returns the names added
        or dropped."""
        wanted = {name for name in self.variables
                  if self.names_filter is None or name in self.names_filter}
        gone = {name for name, col in self.columns.items()
                if name not in wanted and not col.present().any()}
        added = wanted - set(self.columns)
        columns = {name: col for name, col in self.columns.items() if name not in gone}
        columns.update((name, _empty_column(name, len(self))) for name in added)
        self.columns = ordered_columns(columns, self.variables)
        return gone | added

    def _splice(self, changed: list[tuple[int, int]], part: TableColumns,
                variables_changed: bool) -> TableChanges:
        """Replace the rows of *changed* runs by those of *part* (which has the
        changed runs that still exist), keeping every other row as it was."""
        old_key = row_keys(self.proposal, self.run)
        changed_key = row_keys(np.array([p for p, _ in changed], np.int64),
                                np.array([r for _, r in changed], np.int64))
        part_key = row_keys(part.proposal, part.run)
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
        for name in set(self.columns) | set(part.columns):
            old = self.columns.get(name) or _empty_column(name, len(old_key))
            new = part.columns.get(name, empty)
            columns[name] = _splice_column(name, old, new, old_dest, part_dest, n, same_rows)
        self.columns = columns
        names |= self.sync_columns()
        rows = np.flatnonzero(np.isin(new_key, part_key))
        return TableChanges(False, sorted(changed), rows, names, variables_changed)


def _cells_differ(old: Column | None, old_rows: np.ndarray, new: Column | None,
                  new_rows: np.ndarray) -> bool:
    """Whether the cells *old_rows* of *old* differ from *new_rows* of *new*."""
    if not len(old_rows):
        return False
    if old is None or new is None:
        col, rows = (old, old_rows) if old is not None else (new, new_rows)
        return col is not None and bool((col.kind[rows] != KIND_MISSING).any())
    if not np.array_equal(old.kind[old_rows], new.kind[new_rows]):
        return True
    if (old.max_diff is not None or new.max_diff is not None) and not np.array_equal(
            _max_diff(old)[old_rows], _max_diff(new)[new_rows], equal_nan=True):
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


def row_keys(proposal: np.ndarray, run: np.ndarray) -> np.ndarray:
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
    """float64 / int64 / bool if every shown value of an object array is a float / an
    int / a bool."""
    shown = values[_SHOWN[kind]]
    if not len(shown):
        return None
    types = {type(v) for v in shown.tolist()}
    if types == {float}:
        return np.float64
    if types == {int}:
        return np.int64
    if types == {bool}:
        return np.bool_
    return None


def shown(kind: np.ndarray) -> np.ndarray:
    """Boolean array: which cells of kinds *kind* have their value in ``values``."""
    return _SHOWN[kind]


def _typed(values: np.ndarray, kind: np.ndarray) -> np.ndarray:
    dtype = _typed_dtype(values, kind)
    shown = kind == KIND_VALUE
    out = np.full(len(values), np.nan) if dtype is np.float64 else np.zeros(len(values),
                                                                          dtype)
    out[shown] = values[shown].tolist()
    return out


def ordered_columns(columns: Mapping[str, Column], variables: Mapping[str, VariableMeta]
                    ) -> dict[str, Column]:
    """*columns* in table order: as the ``variables`` table lists them (the context
    file's order), then the names it lacks (``comment``, cells of unknown
    variables), sorted."""
    out = {name: columns[name] for name in variables if name in columns}
    out.update((name, columns[name]) for name in sorted(columns) if name not in out)
    return out


def read_table(source: Any, runs: Any = None, names: Any = None, *,
               details: bool = True, copy: bool | str | os.PathLike[str] = True,
               build: bool = False, progress: Callable[[int, int], None] | None = None
               ) -> TableColumns:
    """Read the run table in one consistent snapshot.

    *source* is a :class:`~runtable.store.DatabaseFolder`, a ``sqlite3``
    connection to ``runs.sqlite``, or the path of a folder or of its
    ``runs.sqlite``; the table is read through a read-only connection of its
    own, so the caller's connection and transactions are not touched.
    *runs* (run numbers) and *names* (variable names) restrict the rows and
    columns read; the restriction is kept by :meth:`TableColumns.refresh`.
    With ``details=False``, ``max_diff``, ``attributes`` and ``provenance`` are
    not read (all NaN / empty), which makes reading faster.

    The whole table (no *runs*) comes from the folder's columnar copy
    (:mod:`runtable.store.tablecopy`) plus the runs changed since, when it has one;
    *copy* may also name a folder of the reader's own where a copy is kept for
    database folders without one (made there after reading SQLite), and ``False``
    reads SQLite only. With *build*, a folder without a usable copy gets one first
    (in the database folder if it can be written, else in *copy*), read block by
    block in several processes, calling ``progress(runs done, runs)``.
    """
    from . import tablecopy
    from .tableread import Reader, db_path

    runs_filter = None if runs is None else frozenset(int(r) for r in runs)
    names_filter = None if names is None else frozenset(str(n) for n in names)
    own = Path(copy) if isinstance(copy, (str, os.PathLike)) else None
    path = db_path(source)
    folder_copy = tablecopy.copy_dir(path.parent)
    copies = []
    if runs_filter is None and copy is not False:
        # (Manifests first: then nothing in them is newer than the snapshot.)
        for directory in (folder_copy, own):
            if directory is not None:
                manifest = tablecopy.read_manifest(directory)
                if manifest is not None and (manifest.details or not details):
                    copies.append((directory, manifest))
    with Reader(source) as reader:
        for directory, manifest in copies:
            table = tablecopy.load(reader, manifest, directory, details=details,
                                   names=names_filter)
            if table is not None:
                return table
        whole = runs_filter is None and copy is not False
        if not (build and whole and reader.seq() is not None):
            table = reader.read_all(runs_filter, names_filter, details)
            if own is not None and whole and names_filter is None:
                tablecopy.save(own, table)
            return table
    target = folder_copy if os.access(path.parent, os.W_OK) else own
    if target is None or tablecopy.build(path, target, progress=progress) is None:
        return read_table(source, runs, names, details=details, copy=False)
    return read_table(source, runs, names, details=details, copy=copy)
