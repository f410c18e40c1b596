"""The table's wire formats: compact JSON text, the binary frame (``RTB1``) and gzip
streams joined from separately deflated pieces (``docs/dev/table-protocol.md``)."""

from __future__ import annotations

import json
import struct
import zlib
from typing import Any

import numpy as np


def dumps(obj: Any) -> str:
    return json.dumps(obj, separators=(",", ":"), allow_nan=False, ensure_ascii=False,
                      default=_json_default)


def _json_default(value: Any) -> Any:
    """Trendline points kept as arrays (see :func:`.encoding.trendline_points_many`): a list, NaN
    as null."""
    if isinstance(value, np.ndarray):
        out = value.tolist()
        for i in np.flatnonzero(~np.isfinite(value)).tolist():
            out[i] = None
        return out
    raise TypeError(f"{type(value).__name__} is not JSON serialisable")



def frame_start(head_size: int) -> tuple[bytes, bytes]:
    """What comes before and after an RTB1 frame's JSON head of *head_size* bytes: the
    magic and the head's length, and the padding that starts the blocks 8-byte aligned."""
    return b"RTB1" + struct.pack("<I", head_size), b"\0" * (-(8 + head_size) % 8)


def binary_frame(head: bytes, blocks: list[bytes]) -> bytes:
    """The RTB1 frame of a JSON *head* and the number *blocks* it names."""
    start, pad = frame_start(len(head))
    return b"".join((start, head, pad, *blocks))



# -- gzip, piece by piece ------------------------------------------------------------------
GZIP_HEADER = b"\x1f\x8b\x08\x00\x00\x00\x00\x00\x00\xff"  # no name, no mtime, OS unknown
#: Deflate level of the binary form's numbers: they shrink little, so the fast end.
BINARY_LEVEL = 1
#: Bytes of a piece deflated to see whether deflating it pays.
_PROBE = 1 << 13


def deflate(piece: bytes, level: int) -> bytes:
    """*piece* as a raw deflate stream ending with a sync flush, so that such pieces
    can be joined into one stream; stored rather than compressed when a sample of it
    would not shrink by a tenth (float64 of measured data barely does)."""
    if len(piece) > _PROBE:
        probe = zlib.compressobj(level, zlib.DEFLATED, -15)
        if len(probe.compress(piece[:_PROBE]) + probe.flush()) > 0.9 * _PROBE:
            level = 0
    compressor = zlib.compressobj(level, zlib.DEFLATED, -15)
    return compressor.compress(piece) + compressor.flush(zlib.Z_SYNC_FLUSH)


def gzip_join(pieces: list[tuple[bytes, bytes | None]]) -> bytes:
    """A gzip file of the pieces' raw bytes one after the other, each piece given with
    its :func:`deflate` form when it has one kept."""
    out = [GZIP_HEADER]
    crc = size = 0
    for raw, deflated in pieces:
        out.append(deflated if deflated is not None else deflate(raw, BINARY_LEVEL))
        crc = zlib.crc32(raw, crc)
        size += len(raw)
    out.append(zlib.compressobj(BINARY_LEVEL, zlib.DEFLATED, -15).flush(zlib.Z_FINISH))
    out.append(struct.pack("<II", crc & 0xFFFFFFFF, size & 0xFFFFFFFF))
    return b"".join(out)


class Gzipped:
    """A gzip stream built from separately deflated pieces.

    Deflate streams that end with a sync flush (and no final block) can be
    concatenated; so each piece of the snapshot is deflated once, and only pieces that
    changed are deflated again. The CRC of the whole is kept for the unchanged prefix.
    """

    def __init__(self, level: int = 4) -> None:
        self.level = level
        self._deflated: dict[int, tuple[bytes, bytes]] = {}  # id(piece) -> (piece, deflated)
        self._prefix: tuple[list[bytes], list[bytes], int, int] | None = None

    def _deflate(self, piece: bytes) -> bytes:
        compressor = zlib.compressobj(self.level, zlib.DEFLATED, -15)
        return compressor.compress(piece) + compressor.flush(zlib.Z_SYNC_FLUSH)

    def body(self, pieces: list[bytes], tail: bytes) -> bytes:
        """The gzip file of ``pieces`` followed by ``tail``."""
        prefix = self._prefix
        if prefix is None or len(prefix[0]) != len(pieces) or any(
                a is not b for a, b in zip(prefix[0], pieces, strict=True)):
            cache: dict[int, tuple[bytes, bytes]] = {}
            deflated = []
            crc = 0
            for piece in pieces:
                hit = self._deflated.get(id(piece))
                data = hit[1] if hit is not None and hit[0] is piece else self._deflate(piece)
                cache[id(piece)] = (piece, data)
                deflated.append(data)
                crc = zlib.crc32(piece, crc)
            self._deflated = cache  # forget pieces no longer used
            prefix = self._prefix = (list(pieces), deflated, crc,
                                     sum(len(p) for p in pieces))
        _, deflated, crc, size = prefix
        end = zlib.compressobj(self.level, zlib.DEFLATED, -15)
        last = end.compress(tail) + end.flush(zlib.Z_FINISH)
        trailer = struct.pack("<II", zlib.crc32(tail, crc) & 0xFFFFFFFF,
                              (size + len(tail)) & 0xFFFFFFFF)
        return b"".join((GZIP_HEADER, *deflated, last, trailer))

