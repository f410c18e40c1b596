"""The encoded table of one folder, kept in server memory and up to date
(:class:`TableCache`); see :mod:`runtable.server.table`."""

from __future__ import annotations

import functools
import logging
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

import numpy as np

from ...events import EventBus
from ...store import table as st
from ...store.columns import AFTER_ATTR, RUN_FIELDS
from ...store.columns import column_order as ordered_names
from ..access import FolderAccess
from .encoding import EncodedColumn, column_units, encode_rows, encode_table_column, json_times
from .wire import BINARY_LEVEL, Gzipped, binary_frame, deflate, dumps, frame_start, gzip_join

log = logging.getLogger(__name__)


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

    @classmethod
    def of(cls, meta: st.VariableMeta) -> ColumnInfo:
        """The column of a row of the ``variables`` table."""
        after = (meta.attributes or {}).get(AFTER_ATTR) if meta.user_editable else None
        return cls(meta.name, meta.title or meta.name, meta.description, list(meta.tags),
                   meta.user_editable, meta.type, meta.units, after)

    def to_dict(self) -> dict[str, Any]:
        """The protocol's form."""
        return {"name": self.name, "title": self.title, "description": self.description,
                "tags": self.tags, "user_editable": self.user_editable, "type": self.type,
                "units": self.units}


def column_order(variables: Iterable[st.VariableMeta], data_names: Iterable[str]
                 ) -> list[ColumnInfo]:
    """The table's columns in display order (see :mod:`runtable.store.columns`)."""
    variables = list(variables)
    infos = {meta.name: ColumnInfo.of(meta) for meta in variables}
    return [infos.get(n) or ColumnInfo(n, n, None, [], False, None, None)
            for n in ordered_names(variables, data_names)]


#: How long a whole-table request waits for the first read before it is told the
#: progress instead.
READY_WAIT_S = 1.0


#: How long the encoding in the background waits before it starts: the page that asked
#: for it is busy showing its first rows meanwhile, and needs the CPU more.
START_DELAY_S = 0.3

_Method = TypeVar("_Method", bound=Callable[..., Any])


def _answer(method: _Method) -> _Method:
    """Mark a :class:`TableCache` method that answers a request: the encoding in the
    background waits while one runs, so that the request has the process to itself."""

    @functools.wraps(method)
    def answering(self: TableCache, *args: Any, **kwargs: Any) -> Any:
        with self._answering_lock:
            self._answering += 1
        try:
            return method(self, *args, **kwargs)
        finally:
            with self._answering_lock:
                self._answering -= 1

    return answering  # type: ignore[return-value]


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
    filtered requests from memory. A column is encoded when first asked for, and
    after a page's first load every other one in the background (:meth:`_encode_rest`).
    Thread-safe: one lock around refresh and encoding.

    The full JSON snapshot is also kept gzip-compressed, one deflate piece per column
    (:class:`Gzipped`), so an unchanged table costs no compression and a changed
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
        self._gzip = Gzipped()
        self._head_gz: tuple[bytes, bytes] | None = None
        self._rows_head = b""
        self._warm_up_thread: threading.Thread | None = None
        #: Encodes every column after a page's first load (see :meth:`_encode_rest`).
        self._rest_thread: threading.Thread | None = None
        self._closing = threading.Event()
        #: Requests being answered (see :func:`_answer`).
        self._answering = 0
        self._answering_lock = threading.Lock()
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
        """Return once the background read (if any) has ended."""
        if self._warm_up_thread is not None:
            self._warm_up_thread.join()

    def close(self) -> None:
        """Stop the background work and wait for it: closing the folder's connections
        while it still reads would crash the process (sqlite3 does not survive a
        connection closed under another thread's query)."""
        self._closing.set()
        self.wait_for_warm_up()
        # (read once: the thread clears the attribute as it ends)
        rest = self._rest_thread
        if rest is not None:
            rest.join()

    # -- answers ------------------------------------------------------------------
    @_answer
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
        tail = f'}},"jobs":{dumps(jobs or {})},"seq":{seq}}}'.encode()
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

    @_answer
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
        self._encode_ahead(names, first, skip)  # (brings the table up to date first)
        with self._lock:
            if len(self._rows(None)) != len(self._keys):
                # Rows of other proposals in the folder: the JSON subset (rare).
                body = self._encode_subset(self._rows(None), names)[:-2]
                head = body + f'}},"jobs":{dumps(jobs or {})},"seq":{seq}}}'.encode()
                return binary_frame(head, []), False
            if self._head is None:
                self._head = (dumps(self._header(None, self._order))[:-1]
                              + ',"columns":{').encode()
                self._head_gz = None
                table = self._table
                assert table is not None
                # Columns asked for by name come with what places their rows only.
                self._rows_head = (dumps({
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
                parts.append(((',"' if i else '"') + dumps(info.name)[1:] + ":").encode())
                block = column.f64_bytes()
                cells, line_points = column.binary_cells()
                if block is None:
                    parts.append(b'{"values":[')
                    parts.extend(column.value_pieces())
                    parts.append(b"]")
                else:
                    parts.append(b'{"f64":%d' % len(blocks))
                    blocks.append((block, column.f64_deflated() if gzip else None))
                if line_points:
                    parts.append(b',"pts":%d' % n_points)
                    points.append((line_points, column.points_deflated() if gzip else None))
                    n_points += len(line_points) // 4
                parts.extend((b',"cells":', cells, b"}"))
            parts.append(f'}},"jobs":{dumps(jobs or {})},"seq":{seq}}}'.encode())
            head, rest = self._head if names is None else self._rows_head, b"".join(parts)
            if not gzip:
                return binary_frame(head + rest, [b for b, _ in blocks + points]), False
            if self._head_gz is None or self._head_gz[0] is not head:
                self._head_gz = (head, deflate(head, BINARY_LEVEL))
            head_gz = self._head_gz[1]
        start, pad = frame_start(len(head) + len(rest))
        pieces = [(start, None), (head, head_gz), (rest + pad, None), *blocks, *points]
        return gzip_join(pieces), True

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

    def encode_in_background(self, gzip: bool = True) -> None:
        """Encode every column not encoded yet in a background thread (unless one does
        already), each deflated if *gzip* (for clients that take it); the thread
        gives way to requests, and starts :data:`START_DELAY_S` later. For after a
        page's first load, which has a few columns only: the page asks for the others
        next, and then finds them ready — encoded while it takes in each part, on the
        other core. (Started with the table's read, or at once, this would slow the
        page's own loading and its first rows.)"""
        with self._lock:
            if self._rest_thread is not None or self._closing.is_set() or all(
                    c.name in self._columns for c in self._order):
                return
            self._rest_thread = threading.Thread(
                target=self._encode_rest, args=(gzip,), name="runtable-table-columns",
                daemon=True)
            self._rest_thread.start()

    def _encode_rest(self, gzip: bool) -> None:
        """The thread of :meth:`encode_in_background`: every column not encoded yet,
        in the page's order, one at a time under the lock (as :meth:`_encode_ahead`),
        paused while a request is answered (:func:`_answer`)."""
        try:
            self._closing.wait(START_DELAY_S)
            while not self._closing.is_set():
                time.sleep(0)  # (lets a thread waiting for the lock run)
                if self._answering:
                    time.sleep(0.002)
                    continue
                with self._lock:
                    info = next((c for c in self._order if c.name not in self._columns),
                                None)
                    if info is None or self._table is None:
                        return
                    column = self._column(info)
                    if gzip:
                        column.f64_deflated()
                        if column.binary_cells()[1]:
                            column.points_deflated()
        except Exception:  # (a request encodes what it needs itself)
            log.warning("Could not encode the table's columns in advance", exc_info=True)
        finally:
            self._rest_thread = None  # (a later request starts it again)

    @_answer
    def runs_where(self, where: str) -> tuple[list[int], list[dict[str, Any]], int]:
        """The runs the filter expression *where* keeps, in table order, its parts
        (:func:`runtable.store.where.column_filters`) and the last event they
        reflect (the web GUI's filters are evaluated here)."""
        from ...store.where import column_filters, parse

        seq = self.bus.last_seq
        self._check_ready()
        with self._lock:
            rows = self._where_rows(where, None)
            assert self._table is not None
            parts = column_filters(self._table, parse(where),
                                   self.folder.reader().get_setting("timezone"))
            return [self._keys[i][1] for i in rows], parts, seq

    def _where_rows(self, where: str, runs: set[int] | None) -> list[int]:
        from ...store.where import rows_where

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
            encoded = encode_table_column(part, keys, info.name, info.type, reader.conn,
                                           info.units, whole=False,
                                           find_units=info.name not in known)
            if info.name not in known:
                info.units = encoded.units
            columns[info.name] = encoded.subset(rows)
        comment = encode_table_column(part, keys, "comment", None, reader.conn, None,
                                       whole=False)
        idx = np.asarray(rows, dtype=np.intp)
        head = {
            "proposal": proposal,
            "db_id": part.db_id,
            "bus": self.bus.id,
            "runs": part.run[idx].tolist(),
            "start_time": json_times(part.start_time[idx]),
            "added_at": json_times(part.added_at[idx]),
            "comment": [comment.values[i] for i in rows],
            "variables": [c.to_dict() for c in order],
            "columns": columns,
        }
        return dumps(head).encode()

    def _header(self, rows: Sequence[int] | None, order: list[ColumnInfo]) -> dict[str, Any]:
        table = self._table
        assert table is not None
        idx = slice(None) if rows is None else np.asarray(rows, dtype=np.intp)
        return {
            "proposal": self.folder.proposal,
            "db_id": table.db_id,
            "bus": self.bus.id,
            "runs": table.run[idx].tolist(),
            "start_time": json_times(table.start_time[idx]),
            "added_at": json_times(table.added_at[idx]),
            "comment": (self._comment.values if rows is None
                        else [self._comment.values[i] for i in rows]),
            "variables": [c.to_dict() for c in order],
        }

    def _pieces(self) -> list[bytes]:
        """The full snapshot without its end: the head, then each column in pieces."""
        if self._head is None:
            self._head = (dumps(self._header(None, self._order))[:-1]
                          + ',"columns":{').encode()
        pieces = [self._head]
        for i, info in enumerate(self._order):
            key = self._keys_json.get((info.name, bool(i)))
            if key is None:
                key = ((',"' if i else '"') + dumps(info.name)[1:] + ':{"values":[').encode()
                self._keys_json[info.name, bool(i)] = key
            pieces.append(key)
            pieces.extend(self._column(info).pieces())
        return pieces

    def _encode_subset(self, rows: list[int], names: set[str] | None) -> bytes:
        order = [c for c in self._order if names is None or c.name in names]
        head = self._header(rows, order)
        head["columns"] = {c.name: self._column(c).subset(rows) for c in order}
        return dumps(head).encode()

    # -- keeping up to date -----------------------------------------------------------
    def _column(self, info: ColumnInfo) -> EncodedColumn:
        """The encoded column of *info* (encoded now if it wasn't yet)."""
        column = self._columns.get(info.name)
        if column is None:
            assert self._table is not None
            column = self._columns[info.name] = encode_table_column(
                self._table, self._keys, info.name, info.type, self.folder.reader().conn,
                info.units, find_units=False)
        return column

    def _load(self) -> st.TableColumns:
        """The whole table: through the folder's copy, else (the first time a folder is
        served) read once and a copy made, with progress."""
        from ...store.tablecopy import own_copy_dir

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
        changes = self._table.refresh(db, db.conn)
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
        self._comment = encode_table_column(table, self._keys, "comment", None,
                                             self.folder.reader().conn)
        self._columns = {}
        self._head = None

    def _encode_rows(self, encoded: EncodedColumn, column: st.Column | None,
                     rows: Sequence[int], name: str, vtype: str | None) -> None:
        encode_rows(encoded, column, rows, name, vtype, self._keys,
                     self.folder.reader().conn)



def _cpu_with_children() -> float:
    """CPU seconds of this process and of the children it waited for (a figure taken
    on a loaded machine can be judged by it)."""
    import resource

    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    return time.process_time() + children.ru_utime + children.ru_stime

