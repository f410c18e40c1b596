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

One Arrow table per block: ``#proposal``, ``#run``, ``#start_time``, ``#added_at``,
then per variable ``k:<name>`` (the cells' kinds) and its values: ``f:<name>``
(float64), ``i:<name>`` (int64), or for a column of mixed values ``t:<name>`` (each
cell's type) with ``of:``, ``oi:``, ``os:`` and ``oc:`` (floats, integers, text,
imaginary parts); ``d:``, ``a:``, ``p:`` hold ``max_diff``, the attributes' JSON and the
provenance where a cell has them.

:func:`update` is what the writer calls after each commit (through
:meth:`runtable.store.DatabaseFolder.transaction`); :func:`load` is what readers call.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import logging
import os
import secrets
import threading
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from .table import (
    KIND_COMPLEX,
    KIND_VALUE,
    Column,
    TableColumns,
    row_keys,
)

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
#: Cells the writer reads from SQLite in one update at most (whole blocks are the unit:
#: at least one is done). Bounds the work of one commit after a change to most runs.
UPDATE_BUDGET_CELLS = 200_000
#: A table of at most this many cells gets its first copy from the writer at once;
#: bigger ones are copied by ``runtable serve`` (with progress) or :func:`build`.
SMALL_TABLE_CELLS = 300_000

# Value types of a column of mixed values (``t:<name>``).
_O_NONE, _O_FLOAT, _O_INT, _O_TEXT, _O_COMPLEX, _O_BOOL = range(6)
_SHOWN_KINDS = (KIND_VALUE, KIND_COMPLEX)


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
    parts = []
    for block in sorted(manifest.blocks.values(), key=lambda b: b.key):
        part = read_block(directory / block.file, details, names)
        if part is None:
            # Gone (replaced meanwhile) or damaged: this block's runs come from SQLite.
            stale.update(_runs_of_block(reader, block.proposal, block.index,
                                        manifest.block_runs))
        else:
            parts.append(part)
    table = concat(parts, details)
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


def read_block(path: Path, details: bool = True, names: frozenset[str] | None = None
               ) -> TableColumns | None:
    """One block file as a table (without variables or seq); None if it is missing or
    unreadable."""
    import pyarrow as pa

    try:
        with pa.memory_map(str(path)) as source:
            arrow = pa.ipc.open_file(source).read_all()
            return _decode(arrow, details, names)
    except (OSError, pa.ArrowException, KeyError, ValueError, IndexError):
        return None


def _numpy(array: Any) -> np.ndarray:
    """A writable numpy copy of an Arrow array without nulls."""
    return np.array(array.to_numpy(zero_copy_only=False))


def _decode(arrow: pa.Table, details: bool, names: frozenset[str] | None) -> TableColumns:
    fields: dict[str, dict[str, Any]] = {}
    for i, full in enumerate(arrow.column_names):
        part, _, name = full.partition(":")
        if names is not None and name and name not in names:
            continue
        fields.setdefault(name, {})[part] = arrow.column(i).combine_chunks()
    rows = fields.pop("", {})
    n = arrow.num_rows
    table = TableColumns(
        _numpy(arrow.column("#proposal")).astype(np.int64),
        _numpy(arrow.column("#run")).astype(np.int64),
        _numpy(arrow.column("#start_time")).astype(np.float64),
        _numpy(arrow.column("#added_at")).astype(np.float64), {}, {}, details=details)
    del rows
    for name, parts in fields.items():
        kind = _numpy(parts["k"]).astype(np.uint8)
        if len(kind) != n:
            raise ValueError(f"column {name!r} has {len(kind)} rows, not {n}")
        if "f" in parts:
            values = _numpy(parts["f"]).astype(np.float64)
        elif "i" in parts:
            values = _numpy(parts["i"]).astype(np.int64)
        else:
            values = _decode_objects(parts, n)
        column = Column(name, kind, values, None)
        if details:
            if "d" in parts:
                column.max_diff = _numpy(parts["d"]).astype(np.float64)
            if "a" in parts:
                column.attributes = _decode_texts(parts["a"], json_decode=True)
            if "p" in parts:
                column.provenance = _decode_texts(parts["p"])
        table.columns[name] = column
    return table


def _dictionary_values(array: Any) -> tuple[np.ndarray, np.ndarray]:
    """(indices with -1 for null, the dictionary as an object array) of a dictionary
    array."""
    indices = array.indices.fill_null(-1).to_numpy(zero_copy_only=False)
    return (np.asarray(indices, dtype=np.intp),
            np.asarray(array.dictionary.to_numpy(zero_copy_only=False), dtype=object))


def _decode_objects(parts: dict[str, Any], n: int) -> np.ndarray:
    out = np.full(n, None, dtype=object)
    if "t" not in parts:
        return out
    types = _numpy(parts["t"]).astype(np.uint8)
    if "os" in parts:
        indices, strings = _dictionary_values(parts["os"])
        at = types == _O_TEXT
        out[at] = strings[indices[at]]
    if "of" in parts:
        floats = _numpy(parts["of"]).astype(np.float64)
        at = types == _O_FLOAT
        out[at] = floats[at]
        at = np.flatnonzero(types == _O_COMPLEX)
        if len(at):
            imag = _numpy(parts["oc"]).astype(np.float64)
            out[at] = [complex(a, b) for a, b in zip(floats[at].tolist(), imag[at].tolist(),
                                                       strict=True)]
    if "oi" in parts:
        ints = _numpy(parts["oi"]).astype(np.int64)
        at = types == _O_INT
        out[at] = ints[at]  # (Python ints)
        at = np.flatnonzero(types == _O_BOOL)
        if len(at):
            out[at] = [bool(v) for v in ints[at].tolist()]
    return out


def _decode_texts(array: Any, json_decode: bool = False) -> dict[int, Any]:
    from .tableread import json_object

    indices, texts = _dictionary_values(array)
    decoded = [json_object(t) for t in texts.tolist()] if json_decode else texts.tolist()
    return {int(r): decoded[i] for r, i in enumerate(indices.tolist())
            if i >= 0 and (decoded[i] or not json_decode)}


def concat(parts: list[TableColumns], details: bool = True) -> TableColumns:
    """The rows of *parts* one after the other (each in (proposal, run) order, and
    the parts too), with every column of any part."""
    if not parts:
        empty_i, empty_f = np.zeros(0, np.int64), np.zeros(0)
        return TableColumns(empty_i, empty_i.copy(), empty_f, empty_f.copy(), {}, {},
                            details=details)
    if len(parts) == 1:
        return parts[0]
    offsets = np.cumsum([0, *(len(p) for p in parts)])
    n = int(offsets[-1])
    table = TableColumns(
        np.concatenate([p.proposal for p in parts]), np.concatenate([p.run for p in parts]),
        np.concatenate([p.start_time for p in parts]),
        np.concatenate([p.added_at for p in parts]), {}, {}, details=details)
    pieces: dict[str, list[tuple[int, Column]]] = {}
    for i, part in enumerate(parts):
        for name, column in part.columns.items():
            pieces.setdefault(name, []).append((int(offsets[i]), column))
    for name, columns in pieces.items():
        kind = np.zeros(n, np.uint8)
        dtypes = set()
        for start, column in columns:
            kind[start:start + len(column.kind)] = column.kind
            if np.isin(column.kind, _SHOWN_KINDS).any():
                dtypes.add(column.values.dtype)
        dtype = dtypes.pop() if len(dtypes) == 1 else np.dtype(object)
        if dtype.kind == "f":
            values = np.full(n, np.nan)
        elif dtype.kind == "i":
            values = np.zeros(n, np.int64)
        else:
            values = np.full(n, None, dtype=object)
        max_diff = None
        if any(c.max_diff is not None for _, c in columns):
            max_diff = np.full(n, np.nan)
        column = Column(name, kind, values, max_diff)
        for start, part_column in columns:
            end = start + len(part_column.kind)
            if part_column.values.dtype == values.dtype:
                values[start:end] = part_column.values
            elif np.isin(part_column.kind, _SHOWN_KINDS).any():
                values[start:end] = part_column.values.astype(object)
            if part_column.max_diff is not None:
                assert max_diff is not None
                max_diff[start:end] = part_column.max_diff
            column.attributes.update((start + r, a) for r, a in part_column.attributes.items())
            column.provenance.update((start + r, p) for r, p in part_column.provenance.items())
        table.columns[name] = column
    return table


# -- writing ---------------------------------------------------------------------------
def _encode(table: TableColumns) -> pa.Table:
    """One block as an Arrow table (see the module docstring)."""
    import pyarrow as pa

    arrays: dict[str, Any] = {
        "#proposal": pa.array(table.proposal, pa.int64()),
        "#run": pa.array(table.run, pa.int64()),
        "#start_time": pa.array(table.start_time, pa.float64()),
        "#added_at": pa.array(table.added_at, pa.float64()),
    }
    for name, column in table.columns.items():
        if not column.present().any():
            continue
        arrays[f"k:{name}"] = pa.array(column.kind, pa.uint8())
        values = column.values
        if values.dtype.kind == "f":
            arrays[f"f:{name}"] = pa.array(values, pa.float64())
        elif values.dtype.kind in "iu":
            arrays[f"i:{name}"] = pa.array(values.astype(np.int64), pa.int64())
        else:
            arrays.update(_encode_objects(name, values, column.kind))
        if column.max_diff is not None:
            arrays[f"d:{name}"] = pa.array(column.max_diff, pa.float64())
        if column.attributes:
            arrays[f"a:{name}"] = _encode_texts(
                {r: json.dumps(a, separators=(",", ":")) for r, a in column.attributes.items()},
                len(table))
        if column.provenance:
            arrays[f"p:{name}"] = _encode_texts(column.provenance, len(table))
    return pa.table(arrays)


def _encode_texts(texts: dict[int, str], n: int) -> Any:
    import pyarrow as pa

    values: list[str | None] = [None] * n
    for row, text in texts.items():
        values[row] = text
    return pa.array(values, pa.string()).dictionary_encode()


def _encode_objects(name: str, values: np.ndarray, kind: np.ndarray) -> dict[str, Any]:
    import pyarrow as pa

    n = len(values)
    types = np.zeros(n, np.uint8)
    floats = np.zeros(n)
    imag = np.zeros(n)
    ints = np.zeros(n, np.int64)
    texts: list[str | None] = [None] * n
    used = set()
    shown = np.flatnonzero(np.isin(kind, _SHOWN_KINDS)).tolist()
    for row in shown:
        value = values[row]
        if isinstance(value, bool | np.bool_):
            types[row], ints[row] = _O_BOOL, int(value)
        elif isinstance(value, int | np.integer):
            types[row], ints[row] = _O_INT, int(value)
        elif isinstance(value, float | np.floating):
            types[row], floats[row] = _O_FLOAT, float(value)
        elif isinstance(value, complex | np.complexfloating):
            types[row], floats[row], imag[row] = _O_COMPLEX, value.real, value.imag
        elif value is None:
            continue
        else:
            types[row] = _O_TEXT
            texts[row] = value if isinstance(value, str) else str(value)
        used.add(int(types[row]))
    if not used:
        return {}
    out: dict[str, Any] = {f"t:{name}": pa.array(types, pa.uint8())}
    if used & {_O_FLOAT, _O_COMPLEX}:
        out[f"of:{name}"] = pa.array(floats, pa.float64())
    if _O_COMPLEX in used:
        out[f"oc:{name}"] = pa.array(imag, pa.float64())
    if used & {_O_INT, _O_BOOL}:
        out[f"oi:{name}"] = pa.array(ints, pa.int64())
    if _O_TEXT in used:
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


def update(db_path: Path, directory: Path) -> bool:
    """Bring the copy in *directory* up to date with the database at *db_path*, doing
    at most about :data:`UPDATE_BUDGET_CELLS` cells' work; for the writer, after a
    commit. A table without a copy gets one only if it is small. Returns whether the
    copy was changed. Never raises for a copy it cannot write (it only costs readers
    time)."""
    from .tableread import Reader

    try:
        directory.mkdir(exist_ok=True)
        with _exclusive(directory, wait=False) as mine:
            if not mine:
                return False  # being changed by another thread or process
            manifest = read_manifest(directory)
            with Reader(db_path) as reader:
                seq = reader.seq()
                if seq is None:
                    return False
                if manifest is None or not manifest.serves(reader.db_id(), seq):
                    cells = reader.run_count() * max(1, len(reader.variables()))
                    if cells > SMALL_TABLE_CELLS:
                        return False
                    _build_with(reader, directory, seq)
                    return True
                return _update(reader, directory, manifest, seq)
    except (OSError, ValueError) as exc:
        log.warning("Could not update the table's copy in %s: %s", directory, exc)
        return False


def _update(reader: Reader, directory: Path, manifest: Manifest, seq: int) -> bool:
    stale: dict[tuple[int, int], set[tuple[int, int]]] = {}
    for p, r, s in reader.changes(manifest.since()):
        if s > manifest.threshold(p, r):
            stale.setdefault((p, r // manifest.block_runs), set()).add((p, r))
    pending = sum(len(runs) for runs in stale.values())
    if pending < PENDING_RUNS:
        return False
    n_names = max(1, len(reader.variables()))
    budget = UPDATE_BUDGET_CELLS
    done = set()
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
            budget -= len(runs) * n_names
        else:
            fresh = reader.read(sorted(runs), None, True)
            budget -= len(runs) * n_names
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


def build(db_path: Path, directory: Path) -> Manifest | None:
    """Make the copy in *directory* anew from the database at *db_path* (one full read);
    None when the database has no change log (a copy could not be kept up to date)."""
    from .tableread import Reader

    directory.mkdir(exist_ok=True)
    with _exclusive(directory, wait=True), Reader(db_path) as reader:
        seq = reader.seq()
        if seq is None:
            return None
        return _build_with(reader, directory, seq)


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
