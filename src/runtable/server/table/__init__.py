"""The run table for ``GET /api/table``: columnar JSON or binary
(``docs/dev/table-protocol.md``).

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

Modules: :mod:`.cache` (the table in memory), :mod:`.encoding` (cells and columns for
the wire) and :mod:`.wire` (JSON text, the binary frame, gzip in
pieces).
"""

from .cache import ColumnInfo, TableCache, TableNotReady, column_order
from .encoding import EncodedColumn, encode_cell, trendline_points

__all__ = [
    "ColumnInfo",
    "EncodedColumn",
    "TableCache",
    "TableNotReady",
    "column_order",
    "encode_cell",
    "trendline_points",
]
