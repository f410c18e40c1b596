"""Encoding of summary values in the ``run_variables.value`` column (format v4).

=================  ========================  ====================
Python / HDF5      stored value              ``summary_type``
=================  ========================  ====================
int, float, bool   as is (NaN becomes NULL)  NULL
str                as is                     NULL
PNG image          the PNG bytes             NULL
complex            16 bytes ``'<dd'``        ``'complex'``
(2, n) trendline   ``.npy`` bytes            ``'trendline'``
other arrays       ``.npy`` bytes            ``'numpy'``
=================  ========================  ====================

Every reader of this encoding goes through this module: :func:`decode_summary` for one
value, :func:`blob_kind_sql` and :func:`image_sql` for the SQL that tells a blob's kind
without reading it (the whole-table read, thumbnails), :func:`npy_parts` for an
array's dtype and shape from the start of its ``.npy`` bytes (the web table's labels
and trendlines).
"""

from __future__ import annotations

import functools
import io
import re
import struct
from typing import Any

import numpy as np

from ..execute.fragment import PNG_SIGNATURE

#: ``summary_type`` of values stored as ``.npy`` bytes.
ARRAY_TYPES = ("numpy", "trendline")
#: Every ``summary_type`` this encoding writes; a blob without one is a PNG thumbnail.
SUMMARY_TYPES = ("complex", *ARRAY_TYPES)
NPY_MAGIC = b"\x93NUMPY"


def _npy_bytes(array: np.ndarray) -> bytes:
    buf = io.BytesIO()
    np.save(buf, array, allow_pickle=False)
    return buf.getvalue()


def encode_summary(value: Any, summary_type: str | None = None) -> tuple[Any, str | None]:
    """Turn a summary (as read from ``.reduced/<name>``) into ``(value, summary_type)``
    for SQLite. *summary_type* is the dataset's own attribute, if any."""
    if isinstance(value, bytes):
        if value.startswith(PNG_SIGNATURE):
            return value, None
        # h5py gives bytes for fixed-length/ASCII strings.
        return value.decode("utf-8", errors="replace"), None
    if isinstance(value, str) or value is None:
        return value, None
    if isinstance(value, (bool, int, float)):
        return value, None
    if isinstance(value, complex):
        return struct.pack("<dd", value.real, value.imag), "complex"
    array = np.asarray(value)
    if array.dtype.kind in "SO" and array.ndim == 0:
        item = array.item()
        return encode_summary(item.decode() if isinstance(item, bytes) else str(item))
    if array.dtype.kind == "U" and array.ndim == 0:
        return str(array.item()), None
    if array.ndim == 0:
        if array.dtype.kind == "c":
            item = complex(array.item())
            return struct.pack("<dd", item.real, item.imag), "complex"
        return array.item(), None
    if array.dtype == np.uint8 and array.ndim == 1 and bytes(array[:8]) == PNG_SIGNATURE:
        return array.tobytes(), None
    if array.dtype.kind in "OS":
        # .npy without pickling cannot hold objects; strings become unicode.
        array = np.vectorize(
            lambda v: v.decode("utf-8", "replace") if isinstance(v, bytes) else str(v),
            otypes=[str])(array)
    if summary_type == "trendline":
        return _npy_bytes(array), "trendline"
    return _npy_bytes(array), "numpy"


def decode_summary(value: Any, summary_type: str | None, *,
                   untyped_npy: bool = False) -> Any:
    """Inverse of :func:`encode_summary`: complex, ndarray, or the stored value
    (PNG thumbnails stay ``bytes``). ``untyped_npy``: a blob with ``.npy`` bytes but no
    ``summary_type`` (older writers) is an array too."""
    if value is None:
        return None
    if summary_type == "complex":
        real, imag = struct.unpack("<dd", value)
        return complex(real, imag)
    if summary_type in ARRAY_TYPES or (
            untyped_npy and summary_type not in SUMMARY_TYPES and isinstance(value, bytes)
            and value.startswith(NPY_MAGIC)):
        return np.load(io.BytesIO(value), allow_pickle=False)
    return value


def blob_kind_sql(type_column: str, *, complex: int, trendline: int, array: int, image: int,
                  other: int) -> str:
    """An SQL expression giving, for a blob in ``run_variables.value``, the code of its
    kind from its ``summary_type`` column (``type_column``) alone."""
    return (f"CASE WHEN {type_column} = 'complex' THEN {complex} "
            f"WHEN {type_column} = 'trendline' THEN {trendline} "
            f"WHEN {type_column} = 'numpy' THEN {array} "
            f"WHEN {image_sql(type_column)} THEN {image} "
            f"ELSE {other} END")


def image_sql(type_column: str) -> str:
    """An SQL condition, true when a blob's ``summary_type`` (``type_column``) says it is
    an image: none (PNG bytes, as the reference writes them)."""
    return f"({type_column} IS NULL OR {type_column} = '')"


_DESCR_RE = re.compile(rb"'descr':\s*'([^']+)'")
_SHAPE_RE = re.compile(rb"'shape':\s*\(([^)]*)\)")
_FORTRAN_RE = re.compile(rb"'fortran_order':\s*(True|False)")


@functools.lru_cache(maxsize=1024)
def _npy_header(header: bytes) -> tuple[np.dtype, tuple[int, ...], bool] | None:
    # Regular expressions and a cache: the cells of one variable share headers, and
    # numpy's own parser (ast) costs ~100 us per cell.
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


def npy_parts(blob: bytes) -> tuple[np.dtype, tuple[int, ...], bool, int] | None:
    """(dtype, shape, fortran order, offset of the data) of a ``.npy`` blob, from its
    header alone (the blob may be cut after it), or None if it is not one."""
    if not blob.startswith(NPY_MAGIC) or len(blob) < 10:
        return None
    if blob[6] == 1:
        size, start = int.from_bytes(blob[8:10], "little"), 10
    else:
        size, start = int.from_bytes(blob[8:12], "little"), 12
    parsed = _npy_header(bytes(blob[start:start + size]))
    return None if parsed is None else (*parsed, start + size)
