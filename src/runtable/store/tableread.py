"""Reading the run table out of ``run_variables`` through Python's ``sqlite3``.

Behind :func:`runtable.store.table.read_table` and
:meth:`~runtable.store.table.TableColumns.refresh`; the columnar copy
(:mod:`runtable.store.tablecopy`) is built with it too. One :class:`Reader` is one
read-only connection holding one read transaction, so every query of a read sees the
same snapshot.

``run_variables`` is long and narrow, and ``sqlite3`` hands over each cell as Python
objects (~0.5 us of CPU per cell), so the bulk read is made of two queries per
proposal that each scan the rows once: every value that is not a blob, as
``(run, name, value)`` tuples turned into numpy arrays a batch at a time (no Python
object per cell outlives its batch except text values); and the few rows that need
more (blobs: their kind, complex numbers' 16 bytes; NULL values with attributes:
errors; and with details, ``max_diff``, ``attributes``, ``provenance``). The cells
are then pivoted with numpy into one :class:`~runtable.store.table.Column` per name.
Blobs never leave SQLite (a thumbnail, trendline or array becomes a kind code).

This is the only SQLite library runtable uses: a second one in a process (a driver's
bundled copy) would release the POSIX locks of this one's connections to the same
file, which corrupts the database or shows stale data (see ``docs/architecture.md``).
"""

from __future__ import annotations

import contextlib
import gc
import json
import sqlite3
import struct
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import quote

import numpy as np

from .summaries import blob_kind_sql
from .table import (
    KIND_ARRAY,
    KIND_BLOB,
    KIND_COMPLEX,
    KIND_ERROR,
    KIND_IMAGE,
    KIND_NONE,
    KIND_TRENDLINE,
    KIND_VALUE,
    Column,
    TableColumns,
    VariableMeta,
    row_keys,
)

#: How long a reader waits for a lock (only a checkpoint or a schema change takes one).
BUSY_TIMEOUT_S = 30.0
#: Rows fetched at a time: their tuples exist at once.
_BATCH_ROWS = 50_000
_HAS_CHANGELOG = "SELECT count(*) FROM sqlite_master WHERE name = 'runtable_run_changes'"
# Placeholders for SQL parameters are limited (32766 by default); longer lists
# of runs or names are inlined as literals instead.
_MAX_PARAMS = 10_000

# The value's type in the bulk query (Python's type of what sqlite3 returns).
_T_NONE, _T_FLOAT, _T_INT, _T_TEXT, _T_OTHER = range(5)


class _TypeCodes(dict):
    def __missing__(self, key: type) -> int:
        return _T_OTHER


_TYPE_CODE = _TypeCodes({type(None): _T_NONE, float: _T_FLOAT, int: _T_INT, str: _T_TEXT})


class _Codes(dict):
    """name -> a number, given in order of first sight."""

    def __missing__(self, key: Any) -> int:
        code = self[key] = len(self)
        return code


# Kind of a cell that needs more than its value (the "extra" query); NULL: the value
# of the bulk query says it. Evaluated only for the rows the query returns.
_EXTRA_KIND = (
    "CASE WHEN typeof(v.value) = 'blob' THEN ("
    + blob_kind_sql("v.summary_type", complex=KIND_COMPLEX, trendline=KIND_TRENDLINE,
                    array=KIND_ARRAY, image=KIND_IMAGE, other=KIND_BLOB) + ") "
    "WHEN v.value IS NULL AND json_valid(v.attributes) "
    f"AND json_type(v.attributes, '$.error') IS NOT NULL THEN {KIND_ERROR} END")
# An integer that was a bool (fragments.VALUE_TYPE_ATTR); instr() spares most rows the
# JSON parse.
_BOOL_CELL = ("(typeof(v.value) = 'integer' AND instr(v.attributes, 'value_type') > 0 "
              "AND json_valid(v.attributes) "
              "AND json_extract(v.attributes, '$.value_type') = 'bool')")
_EXTRA_WHERE = ("(typeof(v.value) = 'blob' OR (v.value IS NULL AND v.attributes IS NOT NULL) "
                f"OR {_BOOL_CELL})")
_DETAIL_WHERE = ("v.max_diff IS NOT NULL OR v.attributes IS NOT NULL OR "
                 "(v.provenance IS NOT NULL AND v.provenance IS NOT 'context.py')")
# Only the latest version of each cell (used only when a database has several).
_LATEST_ONLY = (" AND NOT EXISTS (SELECT 1 FROM run_variables AS w WHERE "
                "w.proposal = v.proposal AND w.run = v.run AND w.name = v.name "
                "AND w.version > v.version)")
_BLOB_KINDS = np.zeros(256, dtype=bool)
_BLOB_KINDS[[KIND_COMPLEX, KIND_TRENDLINE, KIND_ARRAY, KIND_IMAGE, KIND_BLOB]] = True


def db_path(source: Any) -> Path:
    """The ``runs.sqlite`` of a :class:`~runtable.store.DatabaseFolder`, a ``sqlite3``
    connection, a folder or the file itself."""
    path = getattr(source, "db_path", None)
    if path is not None:
        return Path(path)
    if isinstance(source, sqlite3.Connection):
        for _, schema_name, filename in source.execute("PRAGMA database_list"):
            if schema_name == "main" and filename:
                return Path(filename)
        raise ValueError("read_table needs a connection to a database file, not in memory")
    path = Path(source)
    return path / "runs.sqlite" if path.is_dir() else path


def connect_readonly(path: Path) -> sqlite3.Connection:
    """A read-only connection to ``path``, also for a folder we cannot write."""
    base = f"file:{quote(str(path))}"
    conn = sqlite3.connect(f"{base}?mode=ro", uri=True, isolation_level=None,
                           check_same_thread=False, timeout=BUSY_TIMEOUT_S)
    try:
        conn.execute("SELECT count(*) FROM sqlite_master").fetchone()
    except sqlite3.OperationalError as exc:
        conn.close()
        if "unable to open" not in str(exc):
            raise
        # A WAL database in a folder we cannot write, with no -shm file left by a
        # writer: SQLite can only read it as an immutable file.
        conn = sqlite3.connect(f"{base}?immutable=1", uri=True, isolation_level=None,
                               check_same_thread=False)
    return conn


class Reader:
    """One read-only connection holding one read transaction (a snapshot).

    The connection is its own, unless *conn* (not in a transaction, and used by no
    other thread meanwhile) is given: connecting costs SQLite a parse of the whole
    schema, a few milliseconds with the ``runs`` view of hundreds of variables.
    """

    def __init__(self, source: Any, conn: sqlite3.Connection | None = None) -> None:
        self.path = db_path(source).absolute()
        if not self.path.is_file():
            raise FileNotFoundError(f"No database at {self.path}")
        self._given = conn

    def __enter__(self) -> Reader:
        self.conn = self._given if self._given is not None else connect_readonly(self.path)
        try:
            self.conn.execute("BEGIN")  # one snapshot for every query, from the first
            self.has_changelog = self.one(_HAS_CHANGELOG) == 1
        except BaseException:
            self._close()
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        with contextlib.suppress(sqlite3.Error):
            self.conn.execute("ROLLBACK")
        self._close()

    def _close(self) -> None:
        if self._given is None:
            self.conn.close()

    def rows(self, sql: str, params: list[Any] | tuple = ()) -> list[tuple]:
        return self.conn.execute(sql, params).fetchall()

    def one(self, sql: str, params: list[Any] | tuple = ()) -> Any:
        row = self.conn.execute(sql, params).fetchone()
        return row[0] if row else None

    # -- small reads ------------------------------------------------------------------
    def seq(self) -> int | None:
        """The change log position of this snapshot (None: no change log)."""
        if not self.has_changelog:
            return None
        return int(self.one(
            "SELECT CAST(ifnull(max(seq), 0) AS INTEGER) FROM runtable_run_changes"))

    def db_id(self) -> str | None:
        value = self.one("SELECT CAST(value AS TEXT) FROM metameta WHERE key = 'db_id'")
        return str(value) if value is not None else None

    def changes(self, since: int) -> list[tuple[int, int, int]]:
        """(proposal, run, seq) of every run changed after change log position *since*."""
        # (Not sorted by SQLite: ORDER BY would make it scan the log in key order
        # instead of seeking the few new entries by seq.)
        return [(int(p), int(r), int(s)) for p, r, s in self.rows(
            "SELECT CAST(proposal AS INTEGER), CAST(run AS INTEGER), seq "
            "FROM runtable_run_changes WHERE seq > ?", (since,))
            if p is not None and r is not None]

    def changed_runs(self, since: int, runs: frozenset[int] | None) -> list[tuple[int, int]]:
        """(proposal, run) of the runs changed after *since* (of *runs* only, if given)."""
        return sorted({(p, r) for p, r, _ in self.changes(since)
                       if runs is None or r in runs})

    def variables(self) -> dict[str, VariableMeta]:
        tags: dict[str, list[str]] = {}
        for var, tag in self.rows(
                "SELECT CAST(variable_tags.variable_name AS TEXT), CAST(tags.name AS TEXT) "
                "FROM variable_tags JOIN tags ON tags.id = variable_tags.tag_id "
                "ORDER BY tags.name"):
            tags.setdefault(var, []).append(tag)
        out = {}
        for name, vtype, title, description, attrs in self.rows(
                "SELECT CAST(name AS TEXT), CAST(type AS TEXT), CAST(title AS TEXT), "
                "CAST(description AS TEXT), CAST(attributes AS TEXT) FROM variables "
                "ORDER BY rowid"):
            if name is None:
                continue
            decoded = json_object(attrs) if attrs else None
            out[name] = VariableMeta(name, title, description, vtype, decoded or None,
                                     tuple(tags.get(name, ())))
        return out

    # -- the table --------------------------------------------------------------------
    def read_all(self, runs: frozenset[int] | None, names: frozenset[str] | None,
                 details: bool) -> TableColumns:
        """The table (of *runs*, columns *names*) complete: variables, seq and db_id."""
        seq = self.seq()
        table = self.read(runs, names, details)
        table.seq = seq
        table.db_id = self.db_id()
        table.variables = self.variables()
        table.runs_filter, table.names_filter = runs, names
        table.sync_columns()
        return table

    def read(self, runs: frozenset[int] | list[tuple[int, int]] | None,
             names: frozenset[str] | None, details: bool,
             latest_only: bool = False) -> TableColumns:
        """The rows of *runs* (run numbers, or a list of (proposal, run) pairs from the
        change log), columns *names*; without variables, seq or db_id."""
        name_params: list[Any] = []
        names_where = in_list("v.name", names, name_params)
        if latest_only:
            names_where += _LATEST_ONLY
        run_sql = ("SELECT CAST(proposal AS INTEGER), CAST(run AS INTEGER), "
                   "CAST(start_time AS REAL), CAST(added_at AS REAL) FROM run_info")
        if isinstance(runs, list):
            pairs = sorted(set(runs))
            if not pairs:
                run_rows: list[tuple] = []
            else:
                run_rows = self.rows(run_sql + " WHERE (proposal, run) IN (VALUES " + ", ".join(
                    f"({int(p)}, {int(r)})" for p, r in pairs) + ")")
        else:
            params: list[Any] = []
            run_rows = self.rows(run_sql + f" WHERE 1{in_list('run', runs, params)}", params)
        run_rows = [r for r in run_rows if r[0] is not None and r[1] is not None]
        run_rows.sort(key=lambda r: (r[0], r[1]))
        proposal = np.array([r[0] for r in run_rows], dtype=np.int64)
        run = np.array([r[1] for r in run_rows], dtype=np.int64)
        start_time = np.array([np.nan if r[2] is None else r[2] for r in run_rows], np.float64)
        added_at = np.array([np.nan if r[3] is None else r[3] for r in run_rows], np.float64)
        table = TableColumns(proposal, run, start_time, added_at, {}, {}, details=details)
        if not run_rows:
            return table
        by_proposal: dict[int, list[int]] = {}
        for p, r in zip(proposal.tolist(), run.tolist(), strict=True):
            by_proposal.setdefault(p, []).append(r)
        cells = _Cells()
        for p, run_nos in by_proposal.items():
            if runs is None:
                # '+' keeps SQLite on a plain table scan, faster than any index
                # for (most of) a whole table.
                where = f"+v.proposal = {int(p)}{names_where}"
            else:
                # The unique index on (proposal, run, name, version) finds the rows.
                where = (f"v.proposal = {int(p)} AND v.run IN "
                         f"({', '.join(str(int(r)) for r in run_nos)}){names_where}")
            cells.read(self.conn, p, where, name_params, details)
        if not _pivot(table, cells, details):
            # Several versions of some cell: read again, keeping the latest ones.
            return self.read(runs, names, details, latest_only=True)
        return table


def in_list(column: str, items: frozenset | list | None, params: list[Any]) -> str:
    """``" AND column IN (...)"`` for *items* (nothing for None), adding parameters."""
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


@dataclass
class _Cells:
    """Cells read in bulk, in pieces of one batch each (all numpy)."""

    codes: _Codes = field(default_factory=_Codes)
    #: (proposal, run, name code, value type, floats, ints, texts) per batch.
    parts: list[tuple[int, np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray,
                      np.ndarray]] = field(default_factory=list)
    #: (proposal, run, name code, kind or None, complex bytes, max_diff, attributes,
    #: provenance, whether the value was a bool) of the rows of the extra query.
    extra: list[tuple] = field(default_factory=list)

    def read(self, conn: sqlite3.Connection, proposal: int, where: str, params: list[Any],
             details: bool) -> None:
        try:
            self._read_values(conn, proposal, where, params)
        except sqlite3.OperationalError as exc:
            if "decode" not in str(exc):
                raise
            # Text that is not UTF-8 (written by another tool): shown with U+FFFD.
            conn.text_factory = lambda raw: raw.decode("utf-8", "replace")
            try:
                self.parts = [p for p in self.parts if p[0] != proposal]
                self._read_values(conn, proposal, where, params)
            finally:
                conn.text_factory = str
        condition = f"({_EXTRA_WHERE} OR {_DETAIL_WHERE})" if details else _EXTRA_WHERE
        cur = conn.execute(
            f"SELECT v.run, v.name, {_EXTRA_KIND}, iif(v.summary_type = 'complex' AND "
            "typeof(v.value) = 'blob', v.value, NULL), v.max_diff, CAST(v.attributes AS TEXT), "
            f"CAST(v.provenance AS TEXT), {_BOOL_CELL} FROM run_variables AS v "
            f"WHERE {where} AND {condition}", params)
        code_of = self.codes.__getitem__
        self.extra.extend((proposal, run, code_of(name), kind, blob, md, attrs, prov, is_bool)
                          for run, name, kind, blob, md, attrs, prov, is_bool in cur)

    def _read_values(self, conn: sqlite3.Connection, proposal: int, where: str,
                     params: list[Any]) -> None:
        cur = conn.execute(f"SELECT v.run, v.name, v.value FROM run_variables AS v "
                           f"WHERE {where} AND typeof(v.value) != 'blob'", params)
        code_of = self.codes.__getitem__
        type_of = _TYPE_CODE.__getitem__
        with _gc_paused():
            self._convert(cur, proposal, code_of, type_of)

    def _convert(self, cur: sqlite3.Cursor, proposal: int, code_of: Any, type_of: Any) -> None:
        while rows := cur.fetchmany(_BATCH_ROWS):
            runs, names, values = zip(*rows)
            del rows
            n = len(runs)
            vtype = np.fromiter(map(type_of, map(type, values)), np.uint8, n)
            objects = np.array(values, dtype=object)
            self.parts.append((
                proposal,
                _int_array(runs),
                np.fromiter(map(code_of, names), np.intp, n),
                vtype,
                objects[vtype == _T_FLOAT].astype(np.float64),
                objects[vtype == _T_INT].astype(np.int64),
                objects[vtype == _T_TEXT],
            ))


_gc_pauses = 0
_gc_lock = threading.Lock()
_gc_was_enabled = False


@contextlib.contextmanager
def _gc_paused() -> Iterator[None]:
    """Pause Python's cyclic garbage collector: a bulk read makes millions of tuples
    (freed by reference counting), which would trigger it over and over (~20% of the
    read's time). Nested and concurrent pauses end with the last one."""
    global _gc_pauses, _gc_was_enabled
    with _gc_lock:
        if _gc_pauses == 0:
            _gc_was_enabled = gc.isenabled()
            gc.disable()
        _gc_pauses += 1
    try:
        yield
    finally:
        with _gc_lock:
            _gc_pauses -= 1
            if _gc_pauses == 0 and _gc_was_enabled:
                gc.enable()


def _int_array(values: tuple) -> np.ndarray:
    try:
        return np.array(values, dtype=np.int64)
    except (TypeError, ValueError, OverflowError):
        # Odd cells (a run number stored as text): such cells belong to no row.
        out = np.full(len(values), -1, np.int64)
        for i, v in enumerate(values):
            if isinstance(v, int) and -2**63 <= v < 2**63:
                out[i] = v
        return out


def _pivot(table: TableColumns, cells: _Cells, details: bool) -> bool:
    """Fill ``table.columns`` from *cells*; False if some cell has several rows
    (versions)."""
    n = len(table)
    key = row_keys(table.proposal, table.run)
    names = [str(name) for name in cells.codes]
    n_names = len(names)
    valid_name = np.array([name is not None for name in cells.codes], dtype=bool)
    if not cells.parts and not cells.extra:
        return True

    def rows_of(proposal: np.ndarray | int, runs: np.ndarray) -> np.ndarray:
        """Table row of each cell; -1 for runs without a run_info row."""
        cell_key = row_keys(np.broadcast_to(np.asarray(proposal, np.int64), runs.shape), runs)
        pos = np.minimum(np.searchsorted(key, cell_key), n - 1)
        return np.where(key[pos] == cell_key, pos, -1)

    if cells.parts:
        row = np.concatenate([rows_of(p[0], p[1]) for p in cells.parts])
        code = np.concatenate([p[2] for p in cells.parts])
        vtype = np.concatenate([p[3] for p in cells.parts])
        floats = np.concatenate([p[4] for p in cells.parts])
        ints = np.concatenate([p[5] for p in cells.parts])
        texts = np.concatenate([p[6] for p in cells.parts])
    else:
        row = code = np.zeros(0, np.intp)
        vtype = np.zeros(0, np.uint8)
        floats, ints, texts = np.zeros(0), np.zeros(0, np.int64), np.zeros(0, object)
    cells.parts.clear()  # (memory)
    keep = (row >= 0) & valid_name[code]
    if not keep.all():
        floats = floats[keep[vtype == _T_FLOAT]]
        ints = ints[keep[vtype == _T_INT]]
        texts = texts[keep[vtype == _T_TEXT]]
        row, code, vtype = row[keep], code[keep], vtype[keep]

    kind2d = np.zeros((n_names, n), np.uint8)
    kind2d[code, row] = np.where(vtype == _T_NONE, KIND_NONE,
                                 np.where(vtype == _T_OTHER, KIND_BLOB, KIND_VALUE))
    expected = len(code)

    # The extra rows: kinds of blobs and errors, complex values, details.
    ex = [e for e in cells.extra if e[2] is not None]
    ex_row = ex_code = np.zeros(0, np.intp)
    if ex:
        ex_row = rows_of(np.array([e[0] for e in ex], np.int64),
                         _int_array(tuple(e[1] for e in ex)))
        ex_code = np.array([e[2] for e in ex], np.intp)
        on = (ex_row >= 0) & valid_name[ex_code]
        if not on.all():
            ex = [e for e, ok in zip(ex, on.tolist(), strict=True) if ok]
            ex_row, ex_code = ex_row[on], ex_code[on]
    ex_kind = np.array([255 if e[3] is None else int(e[3]) for e in ex], np.uint8)
    has_kind = ex_kind != 255
    blob = _BLOB_KINDS[ex_kind]
    expected += int(blob.sum())
    complex_at: list[int] = []
    complex_values: list[complex] = []
    for i in np.flatnonzero(ex_kind == KIND_COMPLEX).tolist():
        data = ex[i][4]
        if isinstance(data, bytes) and len(data) == 16:
            complex_at.append(i)
            complex_values.append(complex(*struct.unpack("<dd", data)))
        else:
            ex_kind[i] = KIND_BLOB  # not 16 bytes: an unknown blob rather than a failure
    kind2d[ex_code[has_kind], ex_row[has_kind]] = ex_kind[has_kind]
    if np.count_nonzero(kind2d) != expected:
        return False

    # One dtype per column: float64 if every value is a float, int64 if every one is
    # an integer, bool if every one is an integer that was a bool, else object.
    is_f, is_i = vtype == _T_FLOAT, vtype == _T_INT
    i_code, i_row = code[is_i], row[is_i]
    i_bool = np.zeros(len(i_code), dtype=bool)
    was_bool = [i for i, e in enumerate(ex) if e[8]]
    if was_bool:
        bool2d = np.zeros((n_names, n), dtype=bool)
        bool2d[ex_code[was_bool], ex_row[was_bool]] = True
        i_bool = bool2d[i_code, i_row]
    n_f = np.bincount(code[is_f], minlength=n_names)
    n_i = np.bincount(i_code[~i_bool], minlength=n_names)
    n_b = np.bincount(i_code[i_bool], minlength=n_names)
    n_o = np.bincount(code[vtype == _T_TEXT], minlength=n_names)
    n_o += np.bincount(ex_code[complex_at], minlength=n_names) if complex_at else 0
    float_only = (n_f > 0) & (n_i == 0) & (n_b == 0) & (n_o == 0)
    int_only = (n_i > 0) & (n_f == 0) & (n_b == 0) & (n_o == 0)
    bool_only = (n_b > 0) & (n_f == 0) & (n_i == 0) & (n_o == 0)
    is_object = ~(float_only | int_only | bool_only)
    f_pos = np.cumsum(float_only) - 1
    i_pos = np.cumsum(int_only) - 1
    b_pos = np.cumsum(bool_only) - 1
    o_pos = np.cumsum(is_object) - 1
    f2d = np.full((int(float_only.sum()), n), np.nan)
    i2d = np.zeros((int(int_only.sum()), n), np.int64)
    b2d = np.zeros((int(bool_only.sum()), n), dtype=bool)
    o2d = np.full((int(is_object.sum()), n), None, dtype=object)
    f_code, f_row = code[is_f], row[is_f]
    typed = float_only[f_code]
    f2d[f_pos[f_code[typed]], f_row[typed]] = floats[typed]
    o2d[o_pos[f_code[~typed]], f_row[~typed]] = floats[~typed]
    typed = int_only[i_code]
    i2d[i_pos[i_code[typed]], i_row[typed]] = ints[typed]
    typed_b = bool_only[i_code]
    b2d[b_pos[i_code[typed_b]], i_row[typed_b]] = ints[typed_b] != 0
    other = ~typed & ~typed_b
    o2d[o_pos[i_code[other]], i_row[other]] = [  # (Python ints and bools)
        bool(v) if b else v for v, b in zip(ints[other].tolist(), i_bool[other].tolist(),
                                            strict=True)]
    is_t = vtype == _T_TEXT
    o2d[o_pos[code[is_t]], row[is_t]] = texts
    if complex_at:
        o2d[o_pos[ex_code[complex_at]], ex_row[complex_at]] = complex_values

    md2d = None
    has_md_name = np.zeros(n_names, dtype=bool)
    attributes: dict[int, dict[int, dict[str, Any]]] = {}
    provenance: dict[int, dict[int, str]] = {}
    if details and ex:
        md = np.full(len(ex), np.nan)
        decoded: dict[str, dict[str, Any]] = {}
        for i, (_, _, c, _, _, max_diff, attrs, prov, _) in enumerate(ex):
            r = int(ex_row[i])
            if max_diff is not None:
                with contextlib.suppress(TypeError, ValueError):
                    md[i] = float(max_diff)
            if attrs is not None:
                value = decoded.get(attrs)
                if value is None:
                    decoded[attrs] = value = json_object(attrs)
                if value:
                    attributes.setdefault(c, {})[r] = value
            if prov is not None and prov != "context.py":
                provenance.setdefault(c, {})[r] = prov
        has_md = ~np.isnan(md)
        if has_md.any():
            has_md_name[ex_code[has_md]] = True
            md2d = np.full((n_names, n), np.nan)
            md2d[ex_code[has_md], ex_row[has_md]] = md[has_md]

    present = np.count_nonzero(kind2d, axis=1) > 0
    for j in np.flatnonzero(present & valid_name).tolist():
        if float_only[j]:
            values = f2d[f_pos[j]]
        elif int_only[j]:
            values = i2d[i_pos[j]]
        elif bool_only[j]:
            values = b2d[b_pos[j]]
        else:
            values = o2d[o_pos[j]]
        table.columns[names[j]] = Column(
            names[j], kind2d[j], values, md2d[j] if md2d is not None and has_md_name[j]
            else None, attributes.get(j, {}), provenance.get(j, {}))
    return True


def json_object(text: str) -> dict[str, Any]:
    """A JSON object's text decoded; {} for anything else."""
    try:
        value = json.loads(text)
    except ValueError:
        return {}
    return value if isinstance(value, dict) else {}
