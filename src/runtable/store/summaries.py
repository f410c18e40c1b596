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
"""

from __future__ import annotations

import io
import struct
from typing import Any

import numpy as np

from ..execute.fragment import PNG_SIGNATURE


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


def decode_summary(value: Any, summary_type: str | None) -> Any:
    """Inverse of :func:`encode_summary`: complex, ndarray, or the stored value
    (PNG thumbnails stay ``bytes``)."""
    if value is None:
        return None
    if summary_type == "complex":
        real, imag = struct.unpack("<dd", value)
        return complex(real, imag)
    if summary_type in ("numpy", "trendline"):
        return np.load(io.BytesIO(value), allow_pickle=False)
    return value

