"""A cell's full data for previews and plots (`GET /api/cell/{run}/{name}/data`).

The reading (lazy, downsampled) is :func:`runtable.store.read_cell`; this module parses
the query and encodes the answer as JSON or as the binary form of
``docs/dev/cell-data.md``: ``"RTCD"``, a uint32 header length, a JSON header padded to 8
bytes, then little-endian arrays at 8-byte aligned offsets, which a browser wraps in
typed arrays without copying.
"""

from __future__ import annotations

import json
import struct
from typing import Annotated, Any, Literal

import numpy as np
from fastapi import APIRouter, Query, Request
from fastapi.responses import Response

from ..store import (
    DEFAULT_MAX_PIXELS,
    DEFAULT_MAX_POINTS,
    CellData,
    CellDataError,
    read_cell,
)
from .paths import RunPath
from .problems import HTTPProblem

router = APIRouter(prefix="/api", tags=["cells"])

MAGIC = b"RTCD"
_ALIGN = 8


def encode_binary(data: CellData) -> bytes:
    """``data`` in the binary form: magic, header length, JSON header, aligned arrays."""
    specs: list[dict[str, Any]] = []
    blobs: list[bytes] = []
    for name, arr in data.arrays.items():
        arr = np.ascontiguousarray(arr, dtype=arr.dtype.newbyteorder("<"))
        blobs.append(arr.tobytes())
        specs.append({"name": name, "dtype": arr.dtype.name, "shape": list(arr.shape),
                      "nbytes": arr.nbytes})
    # The offsets are in the header, so its length moves them: repeat until stable
    # (twice at most in practice: the digits of the offsets rarely change).
    start, header = 8, b""
    while True:
        offset = start
        for spec, blob in zip(specs, blobs, strict=True):
            spec["offset"] = offset
            offset = _round_up(offset + len(blob))
        header = _header(data.meta, specs)
        needed = _round_up(8 + len(header))
        if needed <= start:
            break
        start = needed
    header += b" " * (start - 8 - len(header))
    parts = [MAGIC, struct.pack("<I", len(header)), header]
    position = start
    for spec, blob in zip(specs, blobs, strict=True):
        parts.append(b"\0" * (spec["offset"] - position))
        parts.append(blob)
        position = spec["offset"] + len(blob)
    return b"".join(parts)


def _round_up(n: int) -> int:
    return -(-n // _ALIGN) * _ALIGN


def _header(meta: dict[str, Any], specs: list[dict[str, Any]]) -> bytes:
    return json.dumps({**meta, "arrays": specs}, separators=(",", ":"),
                      allow_nan=False).encode()


def encode_json(data: CellData) -> bytes:
    """``data`` as JSON; arrays as lists with NaN and infinities as null."""
    arrays = {}
    for name, arr in data.arrays.items():
        values = arr.astype(object)
        values[~np.isfinite(arr)] = None
        arrays[name] = values.tolist()
    return json.dumps({**data.meta, "arrays": arrays}, separators=(",", ":"),
                      allow_nan=False).encode()


@router.get("/cell/{run}/{name}/data", response_class=Response, responses={
    200: {"description": "the cell's data (docs/dev/cell-data.md)",
          "content": {"application/json": {}, "application/octet-stream": {}}},
    404: {"description": "unknown run, variable, member, or no value in this run"},
    413: {"description": "full resolution over the limit"},
    422: {"description": "a slice, region or path that does not fit the data"}})
def get_cell_data(
    run: RunPath,
    name: str,
    request: Request,
    path: Annotated[str | None, Query(description="a member of a Dataset / column of a "
                                                  "DataFrame")] = None,
    slice: Annotated[str | None, Query(description="indices for the leading axes of "
                                                   ">2D data, e.g. `3,:,:`")] = None,
    region: Annotated[str | None, Query(description="index range shown: `x0,x1` (lines) "
                                                    "or `x0,x1,y0,y1` (images)")] = None,
    max_points: Annotated[int, Query(ge=0, description="lines: most points sent "
                                     "(min/max per bucket); 0 = full resolution")]
    = DEFAULT_MAX_POINTS,
    max_pixels: Annotated[int, Query(ge=0, description="images: most pixels sent "
                                     "(block means or stride); 0 = full resolution")]
    = DEFAULT_MAX_PIXELS,
    preview: Annotated[bool, Query(description="the Cell(preview=...) object instead "
                                               "of the data")] = False,
    format: Annotated[Literal["json", "binary"], Query(
        description="`binary`: JSON header + little-endian arrays")] = "json",
) -> Response:
    """One cell's full data, read lazily and downsampled for the screen.

    The answer's `kind` says what it is: scalar, text, line, image, rgb, plotly,
    picture, dataset or error; see docs/dev/cell-data.md.
    """
    folder = request.app.state.folder
    proposal = folder.run_proposal(run)
    if proposal is None:
        raise HTTPProblem(404, f"Run {run} is not in this table")
    try:
        data = read_cell(folder.reader(), proposal, run, name, path=path, slice=slice,
                         region=region, max_points=max_points, max_pixels=max_pixels,
                         preview=preview)
    except CellDataError as exc:
        raise HTTPProblem(exc.status, str(exc)) from exc
    except OSError as exc:
        raise HTTPProblem(503, f"Could not read the HDF5 file of run {run}: {exc}. "
                               "If it is being rewritten, try again.") from exc
    headers = {"Cache-Control": "no-store"}
    if format == "binary":
        # Float arrays barely compress; "identity" keeps GZipMiddleware off them.
        headers["Content-Encoding"] = "identity"
        return Response(encode_binary(data), media_type="application/octet-stream",
                        headers=headers)
    return Response(encode_json(data), media_type="application/json", headers=headers)
