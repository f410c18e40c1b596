"""The columnar copy of the run table: ``table_copy/`` in the database folder.

Reading every cell of ``run_variables`` costs SQLite ~0.5 us of CPU per cell (five
seconds at 20,000 runs x 500 variables). So the writer keeps the table's summaries as
columns too, in Apache Arrow IPC files, and a reader maps them and reads from SQLite
only the runs changed since (found through the change log). It is derived data: it
holds nothing that is not in ``runs.sqlite``, may be deleted at any time, and is
rebuilt.

Layout::

    table_copy/
        manifest.json                  which files, and what each reflects
        p1234_b0000.<token>.arrow      runs 0-1023 of proposal 1234
        p1234_b0001.<token>.arrow      runs 1024-2047 ...

A *block* holds the runs ``[index * BLOCK_RUNS, (index + 1) * BLOCK_RUNS)`` of one
proposal, so that merging a run rewrites one block. Each block records the change log
position ``seq`` it reflects: a run whose last change (``runtable_run_changes.seq``) is
later than its block's was changed since and is read from SQLite. Runs of blocks the
manifest does not list had no row as of the manifest's ``base`` position. Files are
written under a new name and renamed into place, then the manifest is replaced the same
way, so a reader sees either the old or the new copy; a file that is missing or
unreadable only makes the reader read that block's runs from SQLite.

One Arrow record batch per block, its few fields the same whatever the number of
variables: ``#proposal``, ``#run``, ``#start_time``, ``#added_at`` (one entry per row);
``kind``, the cells' kinds of every column, column after column; ``f64`` and ``i64``,
the values of the columns of floats and of integers, column after column; for a
column of mixed values ``t:<name>`` (each cell's type) with ``of:``, ``oi:``, ``os:``
and ``oc:`` (floats, integers, text, imaginary parts); and ``max_diff``, attributes
and provenance as (row, column, value) entries where cells have them. The schema's
metadata names the columns of ``kind``, ``f64`` and ``i64``.

:func:`update` is what the writer calls after each commit (through
:meth:`runtable.store.DatabaseFolder.transaction`); :func:`load` is what readers call.
"""

from __future__ import annotations

import collections
import contextlib
import fcntl
import json
import logging
import os
import secrets
import sqlite3
import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from ..sharing import shared_dir, shared_file
from .table import Column, TableColumns, row_keys, shown

if TYPE_CHECKING:
    import pyarrow as pa

    from .tableread import Reader

log = logging.getLogger(__name__)

#: The copy's folder inside the database folder.
COPY_DIR = "table_copy"
MANIFEST = "manifest.json"
#: Bumped when the layout changes: a copy of another format is rebuilt, never read.
FORMAT = 1
#: Runs per block: one merge rewrites the block of its run.
BLOCK_RUNS = 1024
#: The writer brings the copy up to date once this many runs changed since (a reader
#: reads at most about so many runs from SQLite besides the copy).
PENDING_RUNS = 8
#: Runs the writer reads from SQLite in one update at most (whole blocks are the unit:
#: at least one is done). Bounds the work of one commit after a change to most runs.
UPDATE_BUDGET_RUNS = 400
#: A table of at most this many cells gets its first copy from the writer at once;
#: bigger ones are copied by ``runtable serve`` (with progress) or :func:`build`.
SMALL_TABLE_CELLS = 300_000

# Value types of a column of mixed values (``t:<name>``).
_O_NONE, _O_FLOAT, _O_INT, _O_TEXT, _O_COMPLEX, _O_BOOL = range(6)


@dataclass
class Block:
    """One block of the copy: where it is and what it reflects."""

    proposal: int
    index: int
    file: str
    #: The change log position it reflects.
    seq: int
    rows: int

    @property
    def key(self) -> tuple[int, int]:
        return self.proposal, self.index


@dataclass
class Manifest:
    """``manifest.json``."""

    db_id: str | None
    #: Runs in blocks not listed had no row as of this change log position.
    base: int
    blocks: dict[tuple[int, int], Block] = field(default_factory=dict)
    block_runs: int = BLOCK_RUNS
    #: Whether the blocks hold ``max_diff``, attributes and provenance (a reader's own
    #: copy of a table read without them doesn't).
    details: bool = True

    def to_json(self) -> str:
        return json.dumps({
            "format": FORMAT, "db_id": self.db_id, "base": self.base,
            "block_runs": self.block_runs, "details": self.details,
            "blocks": [{"proposal": b.proposal, "index": b.index, "file": b.file,
                        "seq": b.seq, "rows": b.rows}
                       for b in sorted(self.blocks.values(), key=lambda b: b.key)]},
            indent=0)

    @classmethod
    def from_json(cls, text: str) -> Manifest | None:
        try:
            data = json.loads(text)
            if data.get("format") != FORMAT:
                return None
            blocks = {}
            for b in data["blocks"]:
                block = Block(int(b["proposal"]), int(b["index"]), str(b["file"]),
                              int(b["seq"]), int(b["rows"]))
                if "/" in block.file or block.file.startswith("."):
                    return None
                blocks[block.key] = block
            return cls(data["db_id"], int(data["base"]), blocks, int(data["block_runs"]),
                       bool(data["details"]))
        except (ValueError, KeyError, TypeError, AttributeError):
            return None

    def threshold(self, proposal: int, run: int) -> int:
        """The change log position the copy reflects for (proposal, run)."""
        block = self.blocks.get((proposal, run // self.block_runs))
        return self.base if block is None else block.seq

    def serves(self, db_id: str | None, seq: int | None) -> bool:
        """Whether this copy is of the database *db_id* at change log position *seq*
        or before (not of another database, nor of a later state of this one)."""
        return (seq is not None and db_id == self.db_id and self.base <= seq
                and all(b.seq <= seq for b in self.blocks.values()))

    def since(self) -> int:
        """The oldest position any run of the copy reflects."""
        return min([self.base, *(b.seq for b in self.blocks.values())])


#: Environment variable naming the user's cache folder (``off``: none).
CACHE_ENV = "RUNTABLE_CACHE_DIR"


def cache_dir() -> Path | None:
    """Where readers keep copies of tables of folders that have none:
    ``$RUNTABLE_CACHE_DIR``, else ``$XDG_CACHE_HOME/runtable`` or ``~/.cache/runtable``;
    None if the variable is set to ``off`` (or empty)."""
    env = os.environ.get(CACHE_ENV)
    if env is not None:
        return None if env.strip().lower() in ("", "off", "0", "no", "false") else Path(env)
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base, "runtable")


def own_copy_dir(db_path: Path) -> Path | None:
    """The folder in the user's cache for their own copy of the table at *db_path*
    (created, private); None without a cache, or if others could write there (they
    could plant any table)."""
    import hashlib

    directory = cache_dir()
    if directory is None:
        return None
    with contextlib.suppress(OSError):
        directory.mkdir(mode=0o700, parents=True, exist_ok=True)
    key = hashlib.sha256(str(Path(db_path).resolve()).encode()).hexdigest()[:24]
    path = directory / "tables" / key
    for part in (directory, directory / "tables", path):
        try:
            st = os.stat(part)
        except FileNotFoundError:
            break
        except OSError:
            return None
        if st.st_uid != os.getuid() or st.st_mode & 0o022:
            return None
    return path


def copy_dir(folder: str | os.PathLike[str]) -> Path:
    """Where the database folder *folder* keeps its copy."""
    return Path(folder) / COPY_DIR


def read_manifest(directory: Path) -> Manifest | None:
    """The manifest of the copy in *directory*, or None (no copy, or unreadable)."""
    try:
        text = (directory / MANIFEST).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError):
        return None
    return Manifest.from_json(text)


# -- reading ---------------------------------------------------------------------------
def load(reader: Reader, manifest: Manifest, directory: Path, *, details: bool = True,
         names: frozenset[str] | None = None) -> TableColumns | None:
    """The whole table as of *reader*'s snapshot, from the copy plus the runs changed
    since; None when the copy can't serve this database (another ``db_id``, a change
    log position from its future, or no change log).

    *manifest* must have been read before *reader*'s snapshot began (then nothing in
    it is newer than the snapshot).
    """
    seq = reader.seq()
    if seq is None or not manifest.serves(reader.db_id(), seq):
        return None
    stale = {(p, r) for p, r, s in reader.changes(manifest.since())
             if s > manifest.threshold(p, r)}
    decoded_blocks = []
    with contextlib.ExitStack() as maps:
        for block in sorted(manifest.blocks.values(), key=lambda b: b.key):
            decoded = _open_block(directory / block.file, maps)
            if decoded is None:
                # Gone (replaced meanwhile) or damaged: its runs come from SQLite.
                stale.update(_runs_of_block(reader, block.proposal, block.index,
                                            manifest.block_runs))
            else:
                decoded_blocks.append(decoded)
        try:
            table = assemble(decoded_blocks, details, names)
        except (KeyError, ValueError, IndexError, TypeError):
            return None  # blocks that don't fit together: read SQLite instead
    table.db_id = manifest.db_id
    table.names_filter = names
    table.variables = reader.variables()
    table.catch_up(reader, sorted(stale), seq)
    return table


def _runs_of_block(reader: Reader, proposal: int, index: int, block_runs: int
                   ) -> list[tuple[int, int]]:
    lo = index * block_runs
    return [(proposal, int(r)) for (r,) in reader.rows(
        "SELECT CAST(run AS INTEGER) FROM run_info WHERE proposal = ? AND run >= ? "
        "AND run < ?", (proposal, lo, lo + block_runs))]


def _open_block(path: Path, maps: contextlib.ExitStack) -> _Decoded | None:
    """A block file mapped into memory (until *maps* closes); None if it is missing
    or unreadable."""
    import pyarrow as pa

    try:
        source = maps.enter_context(pa.memory_map(str(path)))
        return _Decoded.of(pa.ipc.open_file(source).read_all())
    except (OSError, pa.ArrowException, KeyError, ValueError, TypeError, IndexError):
        return None


def read_block(path: Path, details: bool = True) -> TableColumns | None:
    """One block file as a table (without variables or seq); None if it is missing or
    unreadable."""
    with contextlib.ExitStack() as maps:
        block = _open_block(path, maps)
        if block is None:
            return None
        try:
            return assemble([block], details)
        except (KeyError, ValueError, IndexError, TypeError):
            return None


def _array(arrow: pa.Table, i: int | str) -> Any:
    """Field *i* of a block (each field is a list of one element: the data)."""
    index = i
    if isinstance(i, str):
        index = arrow.schema.get_field_index(i)
        if index < 0:
            raise KeyError(i)
    return arrow.column(index).chunk(0).flatten()


def _chunks(arrow: pa.Table, i: int | str) -> np.ndarray:
    """Field *i* of a block (numbers, no nulls) as a numpy view."""
    # (zero_copy_only=False would import pandas, a second of a server's start.)
    return _array(arrow, i).to_numpy(zero_copy_only=True)


@dataclass
class _Decoded:
    """One block file's contents, as views."""

    arrow: pa.Table
    rows: int
    names: list[str]
    kind: np.ndarray  # (len(names), rows)
    f64: dict[str, np.ndarray]
    i64: dict[str, np.ndarray]
    #: name -> {part: field index} of columns of mixed values.
    objects: dict[str, dict[str, int]]

    @classmethod
    def of(cls, arrow: pa.Table) -> _Decoded:
        meta = json.loads(arrow.schema.metadata[b"runtable"])
        rows = len(_array(arrow, "#run"))
        names, f_names, i_names = meta["names"], meta["f64"], meta["i64"]
        kind = _chunks(arrow, "kind").reshape(len(names), rows)
        f64 = _chunks(arrow, "f64").reshape(len(f_names), rows)
        i64 = _chunks(arrow, "i64").reshape(len(i_names), rows)
        objects: dict[str, dict[str, int]] = {}
        for i, full in enumerate(arrow.column_names):
            part, sep, name = full.partition(":")
            if sep:
                objects.setdefault(name, {})[part] = i
        return cls(arrow, rows, names, kind, dict(zip(f_names, f64, strict=True)),
                   dict(zip(i_names, i64, strict=True)), objects)

    def category(self, name: str) -> str:
        """How the column *name* holds its values here: f(loats), i(ntegers), o(bjects)
        or n(one at all)."""
        if name in self.f64:
            return "f"
        if name in self.i64:
            return "i"
        return "o" if "t" in self.objects.get(name, {}) else "n"

    def value_types(self, name: str) -> set[int]:
        """The types (``_O_*``) of the values column *name* has here."""
        category = self.category(name)
        if category in "fi":
            return {_O_FLOAT if category == "f" else _O_INT}
        if category == "n":
            return set()
        return set(np.unique(_chunks(self.arrow, self.objects[name]["t"])).tolist()) - {
            _O_NONE}

    def objects_of(self, name: str, kind: np.ndarray) -> np.ndarray:
        """The values of column *name* as an object array."""
        out = np.full(len(kind), None, dtype=object)
        category = self.category(name)
        if category in "fi":
            at = shown(kind)
            out[at] = (self.f64 if category == "f" else self.i64)[name][at]
            return out
        parts = self.objects.get(name, {})
        if "t" not in parts:
            return out
        types = _chunks(self.arrow, parts["t"])
        if "os" in parts:
            indices, strings = _dictionary(self.arrow, parts["os"])
            at = types == _O_TEXT
            out[at] = strings[indices[at]]
        if "of" in parts:
            floats = _chunks(self.arrow, parts["of"])
            at = types == _O_FLOAT
            out[at] = floats[at]
            at = np.flatnonzero(types == _O_COMPLEX)
            if len(at):
                imag = _chunks(self.arrow, parts["oc"])
                out[at] = [complex(a, b) for a, b in zip(floats[at].tolist(),
                                                           imag[at].tolist(), strict=True)]
        if "oi" in parts:
            ints = _chunks(self.arrow, parts["oi"])
            at = types == _O_INT
            out[at] = ints[at]  # (Python ints)
            at = np.flatnonzero(types == _O_BOOL)
            if len(at):
                out[at] = [bool(v) for v in ints[at].tolist()]
        return out

    def entries(self, what: str) -> tuple[np.ndarray, np.ndarray, Any]:
        """(rows, column numbers in ``names``, values) of the sparse field *what*."""
        return (_chunks(self.arrow, f"{what}_row").astype(np.intp),
                _chunks(self.arrow, f"{what}_col").astype(np.intp),
                _array(self.arrow, f"{what}_value"))


def assemble(blocks: list[_Decoded], details: bool = True,
             names: frozenset[str] | None = None) -> TableColumns:
    """The table made of block files' contents, one after the other (each in
    (proposal, run) order, and the blocks too), with every column of any block."""
    arrows = [b.arrow for b in blocks]
    lengths = [b.rows for b in blocks]
    starts = np.cumsum([0, *lengths]).tolist()
    n = starts[-1]

    def joined(field: str, dtype: type) -> np.ndarray:
        return np.concatenate([_chunks(a, field) for a in arrows]).astype(dtype) \
            if arrows else np.zeros(0, dtype)

    table = TableColumns(joined("#proposal", np.int64), joined("#run", np.int64),
                         joined("#start_time", np.float64),
                         joined("#added_at", np.float64), {}, {}, details=details)
    order: dict[str, int] = {}
    for block in blocks:
        for name in block.names:
            if names is None or name in names:
                order.setdefault(name, len(order))
    # One dtype per column, as a read of SQLite gives it: float64 if every value is a
    # float, int64 if every one is an integer, bool if every one is a bool, else object
    # (from how blocks hold them).
    types: dict[str, set[int]] = {name: set() for name in order}
    for block in blocks:
        for name in block.names:
            if name in types:
                types[name] |= block.value_types(name)
    floats = [name for name, t in types.items() if t == {_O_FLOAT}]
    ints = [name for name, t in types.items() if t == {_O_INT}]
    bools = {name for name, t in types.items() if t == {_O_BOOL}}
    f_pos = {name: i for i, name in enumerate(floats)}
    i_pos = {name: i for i, name in enumerate(ints)}
    kind2d = np.zeros((len(order), n), np.uint8)
    f2d = np.full((len(floats), n), np.nan)
    i2d = np.zeros((len(ints), n), np.int64)
    for block, start, end in zip(blocks, starts[:-1], starts[1:], strict=True):
        mine = [i for i, name in enumerate(block.names) if name in order]
        kind2d[[order[block.names[i]] for i in mine], start:end] = block.kind[mine]
        for name, values in block.f64.items():
            if name in f_pos:
                f2d[f_pos[name], start:end] = values
        for name, values in block.i64.items():
            if name in i_pos:
                i2d[i_pos[name], start:end] = values
        for name in block.objects:
            # (A block may hold the numbers of a column as objects: its own cells mixed
            # types before a change.)
            if name in f_pos or name in i_pos:
                kind = kind2d[order[name], start:end]
                objects = block.objects_of(name, kind)
                at = shown(kind)
                if name in f_pos:
                    f2d[f_pos[name], start:end][at] = objects[at].astype(np.float64)
                else:
                    i2d[i_pos[name], start:end][at] = objects[at].astype(np.int64)
    for name, j in order.items():
        kind = kind2d[j]
        if name in f_pos:
            values = f2d[f_pos[name]]
        elif name in i_pos:
            values = i2d[i_pos[name]]
        else:
            values = np.full(n, None, dtype=object)
            for block, start, end in zip(blocks, starts[:-1], starts[1:], strict=True):
                if name in block.names and block.category(name) != "n":
                    values[start:end] = block.objects_of(name, kind[start:end])
            if name in bools:
                values = values == True  # noqa: E712 (element-wise: None is False)
        table.columns[name] = Column(name, kind, values, None)
    if details:
        _details(table, blocks, starts)
    return table


def _details(table: TableColumns, blocks: list[_Decoded], starts: list[int]) -> None:
    """Fill max_diff, attributes and provenance from the blocks' entries."""
    from .tableread import json_object

    n = len(table)
    for block, start in zip(blocks, starts, strict=False):
        names = np.array(block.names, dtype=object)
        rows, cols, values = block.entries("max_diff")
        if len(rows):
            values = values.to_numpy(zero_copy_only=True).astype(np.float64)
            for c in np.unique(cols).tolist():
                column = table.columns.get(names[c])
                if column is not None:
                    if column.max_diff is None:
                        column.max_diff = np.full(n, np.nan)
                    at = cols == c
                    column.max_diff[rows[at] + start] = values[at]
        for what in ("attributes", "provenance"):
            rows, cols, values = block.entries(what)
            if not len(rows):
                continue
            indices, texts = _dictionary_array(values)
            decoded = np.empty(len(texts) + 1, dtype=object)  # (the last for null)
            decoded[:-1] = ([json_object(t) or None for t in texts.tolist()]
                            if what == "attributes" else texts.tolist())
            picked = decoded[indices]  # (-1: the last, None)
            order = np.argsort(cols, kind="stable")
            bounds = np.flatnonzero(np.diff(cols[order])) + 1
            for group in np.split(order, bounds):
                column = table.columns.get(names[cols[group[0]]])
                if column is None:
                    continue
                target = getattr(column, what)
                target.update(zip((rows[group] + start).tolist(), picked[group].tolist(),
                                  strict=True))
                if None in target.values():
                    for row in [r for r, v in target.items() if v is None]:
                        del target[row]


def _dictionary_array(array: Any) -> tuple[np.ndarray, np.ndarray]:
    """(indices with -1 for null, the dictionary as an object array) of a dictionary
    array."""
    indices = array.indices.fill_null(-1).to_numpy(zero_copy_only=True)
    dictionary = np.empty(len(array.dictionary), dtype=object)
    dictionary[:] = array.dictionary.to_pylist()  # (to_numpy would import pandas)
    return np.asarray(indices, dtype=np.intp), dictionary


def _dictionary(arrow: pa.Table, i: int) -> tuple[np.ndarray, np.ndarray]:
    return _dictionary_array(_array(arrow, i))


# -- writing ---------------------------------------------------------------------------
def _encode(table: TableColumns) -> pa.Table:
    """One block as an Arrow table (see the module docstring)."""
    import pyarrow as pa

    present = {name: column for name, column in table.columns.items()
               if column.present().any()}
    names = list(present)
    f_names = [n for n, c in present.items() if c.values.dtype.kind == "f"]
    i_names = [n for n, c in present.items() if c.values.dtype.kind in "iu"]

    def packed(columns: list[np.ndarray], dtype: type) -> np.ndarray:
        return np.concatenate(columns).astype(dtype, copy=False) if columns else np.zeros(
            0, dtype)

    packs: dict[str, Any] = {
        "#proposal": pa.array(table.proposal, pa.int64()),
        "#run": pa.array(table.run, pa.int64()),
        "#start_time": pa.array(table.start_time, pa.float64()),
        "#added_at": pa.array(table.added_at, pa.float64()),
        "kind": pa.array(packed([c.kind for c in present.values()], np.uint8), pa.uint8()),
        "f64": pa.array(packed([present[n].values for n in f_names], np.float64),
                        pa.float64()),
        "i64": pa.array(packed([present[n].values for n in i_names], np.int64), pa.int64()),
    }
    md_rows, md_cols, md_values = [], [], []
    texts: dict[str, tuple[list[int], list[int], list[str]]] = {
        "attributes": ([], [], []), "provenance": ([], [], [])}
    # (Cells with the same attributes share one dict: one JSON text each.)
    json_of: dict[int, str] = {}
    for j, (name, column) in enumerate(present.items()):
        if name not in f_names and name not in i_names:
            packs.update(_encode_objects(name, column.values, column.kind))
        if column.max_diff is not None:
            at = np.flatnonzero(~np.isnan(column.max_diff))
            md_rows.append(at)
            md_cols.append(np.full(len(at), j))
            md_values.append(column.max_diff[at])
        for what, entries in (("attributes", column.attributes),
                              ("provenance", column.provenance)):
            rows, cols, values = texts[what]
            for row, value in entries.items():
                rows.append(row)
                cols.append(j)
                if isinstance(value, dict):  # attributes (provenance is text already)
                    text = json_of.get(id(value))
                    if text is None:
                        text = json_of[id(value)] = json.dumps(value, separators=(",", ":"))
                    value = text
                values.append(value)
    packs["max_diff_row"] = pa.array(packed(md_rows, np.int32), pa.int32())
    packs["max_diff_col"] = pa.array(packed(md_cols, np.int32), pa.int32())
    packs["max_diff_value"] = pa.array(packed(md_values, np.float64), pa.float64())
    for what, (rows, cols, values) in texts.items():
        packs[f"{what}_row"] = pa.array(rows, pa.int32())
        packs[f"{what}_col"] = pa.array(cols, pa.int32())
        packs[f"{what}_value"] = pa.array(values, pa.string()).dictionary_encode()
    # Fields of different lengths: each is a list of one element, the data.
    meta = {"names": names, "f64": f_names, "i64": i_names}
    return pa.table({field: pa.ListArray.from_arrays(
        pa.array([0, len(array)], pa.int32()), array) for field, array in packs.items()},
        metadata={"runtable": json.dumps(meta)})


class _ObjectTypes(dict):
    """Python type -> ``_O_*`` code; numpy scalars and anything else by what they are."""

    def __missing__(self, kind: type) -> int:
        if issubclass(kind, bool | np.bool_):
            return _O_BOOL
        if issubclass(kind, int | np.integer):
            return _O_INT
        if issubclass(kind, float | np.floating):
            return _O_FLOAT
        if issubclass(kind, complex | np.complexfloating):
            return _O_COMPLEX
        return _O_TEXT


_OBJECT_TYPES = _ObjectTypes({str: _O_TEXT, float: _O_FLOAT, int: _O_INT, bool: _O_BOOL,
                              complex: _O_COMPLEX, type(None): _O_NONE})


def _encode_objects(name: str, values: np.ndarray, kind: np.ndarray) -> dict[str, Any]:
    import pyarrow as pa

    n = len(values)
    rows = np.flatnonzero(shown(kind))
    picked = values[rows]
    codes = np.fromiter(map(_OBJECT_TYPES.__getitem__, map(type, picked)), np.uint8,
                        len(picked))
    types = np.zeros(n, np.uint8)
    types[rows] = codes
    used = set(np.unique(codes).tolist()) - {_O_NONE}
    if not used:
        return {}
    out: dict[str, Any] = {f"t:{name}": pa.array(types, pa.uint8())}
    if used & {_O_FLOAT, _O_COMPLEX}:
        floats, imag = np.zeros(n), np.zeros(n)
        at = codes == _O_FLOAT
        floats[rows[at]] = picked[at].astype(np.float64)
        at = np.flatnonzero(codes == _O_COMPLEX)
        if len(at):
            numbers = picked[at].astype(np.complex128)
            floats[rows[at]], imag[rows[at]] = numbers.real, numbers.imag
            out[f"oc:{name}"] = pa.array(imag, pa.float64())
        out[f"of:{name}"] = pa.array(floats, pa.float64())
    if used & {_O_INT, _O_BOOL}:
        ints = np.zeros(n, np.int64)
        at = (codes == _O_INT) | (codes == _O_BOOL)
        ints[rows[at]] = [int(v) for v in picked[at].tolist()]
        out[f"oi:{name}"] = pa.array(ints, pa.int64())
    if _O_TEXT in used:
        texts = np.full(n, None, dtype=object)
        at = codes == _O_TEXT
        texts[rows[at]] = [v if isinstance(v, str) else str(v) for v in picked[at].tolist()]
        out[f"os:{name}"] = pa.array(texts, pa.string()).dictionary_encode()
    return out


def write_block(directory: Path, key: tuple[int, int], table: TableColumns) -> str:
    """Write *table*, the rows of block *key*, as a new file in *directory*; returns
    its name."""
    import pyarrow as pa

    name = f"p{key[0]}_b{key[1]:04d}.{secrets.token_hex(6)}.arrow"
    arrow = _encode(table)
    tmp = directory / f".{name}.tmp"
    try:
        with pa.OSFile(str(tmp), "wb") as sink, pa.ipc.new_file(sink, arrow.schema) as out:
            out.write_table(arrow)
        shared_file(tmp)
        os.replace(tmp, directory / name)
    except BaseException:
        with contextlib.suppress(OSError):
            tmp.unlink()
        raise
    return name


def write_manifest(directory: Path, manifest: Manifest) -> None:
    tmp = directory / f".{MANIFEST}.{secrets.token_hex(4)}.tmp"
    try:
        tmp.write_text(manifest.to_json(), encoding="utf-8")
        shared_file(tmp)
        os.replace(tmp, directory / MANIFEST)
    except BaseException:
        with contextlib.suppress(OSError):
            tmp.unlink()
        raise


def split(table: TableColumns, block_runs: int
          ) -> Iterable[tuple[tuple[int, int], TableColumns]]:
    """The rows of *table* block by block: ((proposal, index), rows)."""
    if not len(table):
        return
    block = table.run // block_runs
    key = row_keys(table.proposal, block)
    starts = np.flatnonzero(np.r_[True, key[1:] != key[:-1]])
    ends = np.r_[starts[1:], len(table)]
    for start, end in zip(starts.tolist(), ends.tolist(), strict=True):
        rows = slice(start, end)
        part = TableColumns(table.proposal[rows], table.run[rows], table.start_time[rows],
                            table.added_at[rows], {}, {})
        for name, column in table.columns.items():
            kind = column.kind[rows]
            if not kind.any():
                continue
            part.columns[name] = Column(
                name, kind, column.values[rows],
                None if column.max_diff is None else column.max_diff[rows],
                {r - start: a for r, a in column.attributes.items() if start <= r < end},
                {r - start: p for r, p in column.provenance.items() if start <= r < end})
        yield (int(table.proposal[start]), int(block[start])), part


# -- keeping it -----------------------------------------------------------------------
_locks: dict[Path, threading.Lock] = {}
_locks_guard = threading.Lock()


@contextlib.contextmanager
def _exclusive(directory: Path, wait: bool) -> Any:
    """The right to change the copy in *directory* (in this process and across
    processes); yields False when someone else has it and *wait* is False."""
    with _locks_guard:
        lock = _locks.setdefault(directory, threading.Lock())
    if not lock.acquire(blocking=wait):
        yield False
        return
    try:
        with open(directory / ".lock", "a") as lockfile:
            # Whoever of the team writes the folder next must be able to take it.
            shared_file(lockfile.name)
            try:
                fcntl.flock(lockfile, fcntl.LOCK_EX | (0 if wait else fcntl.LOCK_NB))
            except BlockingIOError:
                yield False
                return
            yield True
    finally:
        lock.release()


#: Blocks decoded by this process's last updates, by file name (a writer rewrites
#: the same block again and again while runs arrive).
_decoded: dict[str, TableColumns] = {}


def update(db_path: Path, directory: Path, conn: sqlite3.Connection | None = None) -> bool:
    """Bring the copy in *directory* up to date with the database at *db_path*, doing
    at most about :data:`UPDATE_BUDGET_RUNS` runs' work; for the writer, after a
    commit (reading through its connection *conn*, if given: see
    :class:`~runtable.store.tableread.Reader`). A table without a copy gets one only
    if it is small. Returns whether the copy was changed. Never raises for a copy it
    cannot write (it only costs readers time)."""
    from .tableread import Reader

    try:
        shared_dir(directory)
        with _exclusive(directory, wait=False) as mine:
            if not mine:
                return False  # being changed by another thread or process
            manifest = read_manifest(directory)
            with Reader(db_path, conn) as reader:
                seq = reader.seq()
                if seq is None:
                    return False
                if manifest is None or not manifest.serves(reader.db_id(), seq):
                    # (Cells ever written, from the rowid: no count over the table.)
                    cells = reader.one("SELECT max(rowid) FROM run_variables") or 0
                    if cells > SMALL_TABLE_CELLS:
                        return False
                    _build_with(reader, directory, seq)
                    return True
                return _update(reader, directory, manifest, seq)
    except (OSError, ValueError) as exc:
        log.warning("Could not update the table's copy in %s: %s", directory, exc)
        return False


#: Whether :func:`schedule` leaves the work to a background thread (else it is done
#: at once, on the caller's thread).
BACKGROUND = True


class _Keeper:
    """The thread that brings one copy up to date for this process's writer, so that
    rewriting a block (a tenth of a second at 500 variables) never holds up the commit
    of the next merge. It runs at a lower priority than the writer's threads, reads
    through a connection of its own, and goes on until the copy is caught up."""

    def __init__(self, db_path: Path, directory: Path) -> None:
        self.db_path, self.directory = db_path, directory
        self._wake = threading.Condition()
        self._wanted = False
        self._busy = False
        self._thread: threading.Thread | None = None
        #: (wall, CPU) seconds of the latest passes that changed the copy (for
        #: benchmarks).
        self.passes: collections.deque[tuple[float, float]] = collections.deque(
            maxlen=1000)

    def poke(self) -> None:
        with self._wake:
            self._wanted = True
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(target=self._run, daemon=True,
                                                name="runtable-table-copy")
                self._thread.start()
            self._wake.notify_all()

    def wait(self, timeout: float | None = None) -> bool:
        """Block until nothing is left to do; False if *timeout* passed first."""
        with self._wake:
            return self._wake.wait_for(lambda: not (self._wanted or self._busy), timeout)

    def _run(self) -> None:
        import time

        with contextlib.suppress(AttributeError, OSError):
            # (Linux: a thread's own nice value; the writer's merges come first.)
            os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), 10)
        while True:
            with self._wake:
                while not self._wanted:
                    self._wake.wait()
                self._wanted, self._busy = False, True
            try:
                while True:  # (a pass does a bounded amount: on until caught up)
                    t0, c0 = time.perf_counter(), time.thread_time()
                    if not update(self.db_path, self.directory):
                        break
                    self.passes.append((time.perf_counter() - t0, time.thread_time() - c0))
            except Exception:  # a stale copy only costs readers time
                log.warning("Could not update the table's copy in %s", self.directory,
                            exc_info=True)
            finally:
                with self._wake:
                    self._busy = False
                    self._wake.notify_all()


_keepers: dict[Path, _Keeper] = {}


def keeper(db_path: Path, directory: Path) -> _Keeper:
    """This process's keeper of the copy in *directory*."""
    with _locks_guard:
        found = _keepers.get(directory)
        if found is None:
            found = _keepers[directory] = _Keeper(db_path, directory)
        return found


def schedule(db_path: Path, directory: Path) -> None:
    """After a commit of the writer: have the copy in *directory* brought up to date
    (:func:`update`) in the background, without waiting for it."""
    if not BACKGROUND:
        update(db_path, directory)
        return
    keeper(db_path, directory).poke()


def settle(directory: Path, timeout: float | None = None) -> bool:
    """Wait until this process's background updates of the copy in *directory* are
    done (None: as long as it takes); False if *timeout* passed first."""
    with _locks_guard:
        found = _keepers.get(directory)
    return True if found is None else found.wait(timeout)


def _update(reader: Reader, directory: Path, manifest: Manifest, seq: int) -> bool:
    stale: dict[tuple[int, int], set[tuple[int, int]]] = {}
    for p, r, s in reader.changes(manifest.since()):
        if s > manifest.threshold(p, r):
            stale.setdefault((p, r // manifest.block_runs), set()).add((p, r))
    pending = sum(len(runs) for runs in stale.values())
    if pending < PENDING_RUNS:
        return False
    budget = UPDATE_BUDGET_RUNS
    done: set[tuple[int, int]] = set()
    blocks = dict(manifest.blocks)
    for key in sorted(stale, key=lambda k: (k in manifest.blocks, -len(stale[k]))):
        if done and budget <= 0:
            break
        runs = stale[key]
        old = blocks.get(key)
        part = None
        if old is not None and len(runs) * 2 < max(old.rows, 1):
            part = _decoded.pop(old.file, None) or read_block(directory / old.file)
        if part is None:
            # A new block, one mostly changed, or one that can't be read: all its runs.
            runs = set(_runs_of_block(reader, key[0], key[1], manifest.block_runs))
            fresh = reader.read(sorted(runs), None, True) if runs else None
            budget -= len(runs)
        else:
            fresh = reader.read(sorted(runs), None, True)
            budget -= len(runs)
            part.splice(sorted(runs), fresh)
            fresh = part
        done.add(key)
        if fresh is None or not len(fresh):
            blocks.pop(key, None)
            continue
        name = write_block(directory, key, fresh)
        blocks[key] = Block(key[0], key[1], name, seq, len(fresh))
        _decoded.clear()
        _decoded[name] = fresh
    for key, block in blocks.items():
        if key not in stale:
            block.seq = seq  # nothing of it changed: it reflects this position too
    new_blocks_done = all(key in done for key in stale if key not in manifest.blocks)
    new = Manifest(manifest.db_id, seq if new_blocks_done else manifest.base, blocks,
                   manifest.block_runs, manifest.details)
    write_manifest(directory, new)
    _remove_unused(directory, new, manifest)
    return True


def _build_with(reader: Reader, directory: Path, seq: int) -> Manifest:
    """A copy of a small table, at once."""
    table = reader.read(None, None, True)
    table.seq, table.db_id = seq, reader.db_id()
    return _write_all(directory, table)


def _write_all(directory: Path, table: TableColumns) -> Manifest:
    """Replace the copy in *directory* by *table* (a whole table, seq set)."""
    assert table.seq is not None
    manifest = Manifest(table.db_id, table.seq, block_runs=BLOCK_RUNS, details=table.details)
    for key, part in split(table, manifest.block_runs):
        name = write_block(directory, key, part)
        manifest.blocks[key] = Block(key[0], key[1], name, table.seq, len(part))
    old = read_manifest(directory)
    write_manifest(directory, manifest)
    _remove_unused(directory, manifest, old)
    return manifest


def save(directory: Path, table: TableColumns) -> bool:
    """Keep *table* (a whole table just read) as the copy in *directory*, a folder of
    the reader's own; False if it can't (no change log, or the folder can't be
    written)."""
    if table.seq is None or table.runs_filter is not None or table.names_filter is not None:
        return False
    try:
        directory.mkdir(mode=0o700, parents=True, exist_ok=True)
        with _exclusive(directory, wait=False) as mine:
            if mine:
                _write_all(directory, table)
            return bool(mine)
    except OSError as exc:
        log.warning("Could not keep a copy of the table in %s: %s", directory, exc)
        return False


#: Runs per process at which building a copy is shared among processes.
PARALLEL_RUNS = 4 * BLOCK_RUNS


def build(db_path: Path, directory: Path, *,
          progress: Callable[[int, int], None] | None = None,
          processes: int | None = None) -> Manifest | None:
    """Make the copy in *directory* anew from the database at *db_path*: one read of
    every cell, block by block, shared among up to *processes* processes (default: one
    per core; each reads its blocks from SQLite through its own snapshot, and each block
    records the change log position it was read at). ``progress(runs done, runs)`` is
    called as blocks are done. None when the database has no change log (a copy could
    not be kept up to date)."""
    from .tableread import Reader

    shared_dir(directory)
    with _exclusive(directory, wait=True):
        with Reader(db_path) as reader:
            seq = reader.seq()
            if seq is None:
                return None
            sizes = _block_sizes(reader, BLOCK_RUNS)
            manifest = Manifest(reader.db_id(), seq, block_runs=BLOCK_RUNS)
            total = sum(sizes.values())
            if processes is None:
                processes = os.cpu_count() or 1
            processes = max(1, min(processes, total // PARALLEL_RUNS))
            if processes == 1:
                done = 0
                for key in sizes:
                    block = _build_block(reader, directory, key, seq, BLOCK_RUNS)
                    if block is not None:
                        manifest.blocks[key] = block
                    done += sizes[key]
                    if progress is not None:
                        progress(done, total)
        if processes > 1:
            for block in _build_in_processes(db_path, directory, sizes, processes, progress):
                manifest.blocks[block.key] = block
        old = read_manifest(directory)
        write_manifest(directory, manifest)
        _remove_unused(directory, manifest, old)
        return manifest


def _block_sizes(reader: Reader, block_runs: int) -> dict[tuple[int, int], int]:
    """(proposal, block) -> number of runs, of every block with runs."""
    return {(int(p), int(b)): int(n) for p, b, n in reader.rows(
        "SELECT CAST(proposal AS INTEGER) AS p, CAST(run AS INTEGER) / ? AS b, count(*) "
        "FROM run_info WHERE proposal IS NOT NULL AND run IS NOT NULL GROUP BY p, b "
        "ORDER BY p, b", (block_runs,))}


def _build_block(reader: Reader, directory: Path, key: tuple[int, int], seq: int,
                 block_runs: int) -> Block | None:
    runs = _runs_of_block(reader, key[0], key[1], block_runs)
    part = reader.read(runs, None, True)
    if not len(part):
        return None
    return Block(key[0], key[1], write_block(directory, key, part), seq, len(part))


def _build_in_processes(db_path: Path, directory: Path, sizes: dict[tuple[int, int], int],
                        processes: int, progress: Callable[[int, int], None] | None
                        ) -> list[Block]:
    """Build the blocks *sizes* names in *processes* child processes (``python -m
    runtable.store.tablecopy``), every n-th block in the same one."""
    import selectors
    import subprocess
    import sys
    import tempfile

    keys = list(sizes)
    blocks: list[Block] = []
    failed = []
    with contextlib.ExitStack() as stack:
        children = []
        for i in range(processes):
            error = stack.enter_context(tempfile.TemporaryFile("w+"))
            children.append((stack.enter_context(subprocess.Popen(
                [sys.executable, "-m", "runtable.store.tablecopy", str(db_path),
                 str(directory), str(BLOCK_RUNS), json.dumps(keys[i::processes])],
                stdout=subprocess.PIPE, stderr=error, text=True)), error))
        total, done = sum(sizes.values()), 0
        selector = stack.enter_context(selectors.DefaultSelector())
        for child, _ in children:
            assert child.stdout is not None
            selector.register(child.stdout, selectors.EVENT_READ)
        open_pipes = len(children)
        while open_pipes:
            for event, _ in selector.select():
                line = event.fileobj.readline()  # type: ignore[union-attr]
                if not line:
                    selector.unregister(event.fileobj)
                    open_pipes -= 1
                    continue
                info = json.loads(line)
                key = (int(info["key"][0]), int(info["key"][1]))
                if info["file"] is not None:
                    blocks.append(Block(key[0], key[1], info["file"], int(info["seq"]),
                                        int(info["rows"])))
                done += sizes[key]
                if progress is not None:
                    progress(done, total)
        for child, error in children:
            child.wait()
            if child.returncode != 0:
                error.seek(0)
                failed.append(error.read().strip().splitlines()[-3:])
    if failed:
        raise OSError(f"building the table's copy failed in a child process: {failed}")
    return blocks


def _main() -> None:
    """A child of :func:`build`: builds the blocks it is given, one JSON line each."""
    import sys

    from .tableread import Reader

    db_path, directory, block_runs = Path(sys.argv[1]), Path(sys.argv[2]), int(sys.argv[3])
    keys = [(int(p), int(b)) for p, b in json.loads(sys.argv[4])]
    with Reader(db_path) as reader:
        seq = reader.seq()
        assert seq is not None
        for key in keys:
            block = _build_block(reader, directory, key, seq, block_runs)
            print(json.dumps({"key": key, "file": block and block.file, "seq": seq,
                              "rows": block and block.rows}), flush=True)


def _remove_unused(directory: Path, manifest: Manifest, previous: Manifest | None) -> None:
    """Delete block files neither manifest names (the previous one's stay for readers
    that read it a moment ago) and temporary files left by a crash."""
    keep = {b.file for b in manifest.blocks.values()}
    if previous is not None:
        keep |= {b.file for b in previous.blocks.values()}
    for entry in os.scandir(directory):
        if (entry.name.endswith(".arrow") and entry.name not in keep) or (
                entry.name.endswith(".tmp") and _older_than(entry, 3600)):
            with contextlib.suppress(OSError):
                os.unlink(entry.path)


def _older_than(entry: os.DirEntry, seconds: float) -> bool:
    import time

    try:
        return entry.stat().st_mtime < time.time() - seconds
    except OSError:
        return False


if __name__ == "__main__":
    _main()
