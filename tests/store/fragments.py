"""Build result fragments the way a processing job does (reference §1.3 layout),
independently of runtable's own writer, so the store is tested against the
documented format."""

from __future__ import annotations

import os
import secrets
import struct
import zlib
from pathlib import Path
from typing import Any

import h5py
import numpy as np
import xarray as xr


def png_bytes(width: int = 4, height: int = 3, seed: int = 0) -> bytes:
    """A real (tiny, greyscale) PNG image."""
    rng = np.random.default_rng(seed)
    pixels = rng.integers(0, 255, (height, width), dtype=np.uint8)
    raw = b"".join(b"\x00" + row.tobytes() for row in pixels)

    def chunk(kind: bytes, data: bytes) -> bytes:
        return (struct.pack(">I", len(data)) + kind + data
                + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF))

    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header)
            + chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b""))


class Trendline:
    """Marks a summary to be written as a (2, n) trendline."""

    def __init__(self, y: Any) -> None:
        y = np.asarray(y, dtype=np.float64)
        self.array = np.stack([np.arange(len(y), dtype=np.float64), y])


class Png:
    def __init__(self, data: bytes) -> None:
        self.data = data


_NO_SUMMARY = object()


def _default_summary(value: Any) -> Any:
    if isinstance(value, xr.Dataset):
        return f"Dataset ({value.nbytes / 1e6:.2f}MB)"
    if isinstance(value, xr.DataArray):
        value = value.values
    if isinstance(value, str):
        return value
    array = np.asarray(value)
    if array.ndim == 0:
        return array
    if array.ndim == 1:
        return Trendline(array)
    if array.ndim == 2:
        return Png(png_bytes(seed=int(array.size)))
    return f"{array.dtype}: {array.shape}"


def _write_summary(reduced: h5py.Group, name: str, summary: Any) -> h5py.Dataset:
    if isinstance(summary, Trendline):
        ds = reduced.create_dataset(name, data=summary.array)
        ds.attrs["summary_type"] = "trendline"
    elif isinstance(summary, Png):
        ds = reduced.create_dataset(name, data=np.frombuffer(summary.data, dtype=np.uint8))
    elif isinstance(summary, str):
        ds = reduced.create_dataset(name, data=summary, dtype=h5py.string_dtype())
    else:
        ds = reduced.create_dataset(name, data=summary)
    return ds


def write_fragment(
    db_dir: str | os.PathLike[str],
    proposal: int,
    run: int,
    values: dict[str, Any] | None = None,
    *,
    summaries: dict[str, Any] | None = None,
    attrs: dict[str, dict[str, Any]] | None = None,
    errors: dict[str, BaseException] | None = None,
    previews: dict[str, Any] | None = None,
    provenance: str = "context.py",
    start_time: float | None = None,
    mtime: float | None = None,
) -> Path:
    """Write ``extracted_data/p{proposal}_r{run}.{random}.ready.h5`` and return it.

    *values* are the variables' data; their summaries follow the reference's
    default rules unless given in *summaries* (use ``None`` for no summary).
    *attrs* adds attributes to ``.reduced/<name>`` (units, bold, background...).
    """
    values = values or {}
    summaries = summaries or {}
    out_dir = Path(db_dir) / "extracted_data"
    out_dir.mkdir(parents=True, exist_ok=True)
    token = secrets.token_hex(4)
    writing = out_dir / f"p{proposal}_r{run}.{token}.writing.h5"
    ready = out_dir / f"p{proposal}_r{run}.{token}.ready.h5"

    netcdf: dict[str, xr.Dataset | xr.DataArray] = {}
    with h5py.File(writing, "w") as f:
        f.attrs["provenance"] = provenance
        reduced = f.create_group(".reduced")
        if start_time is not None:
            f.create_dataset("start_time/data", data=np.float64(start_time))
            reduced.create_dataset("start_time", data=np.float64(start_time))
        for name, value in values.items():
            if isinstance(value, (xr.Dataset, xr.DataArray)):
                netcdf[name] = value
            elif isinstance(value, str):
                f.create_dataset(f"{name}/data", data=value, dtype=h5py.string_dtype())
            else:
                array = np.asarray(value)
                f.create_dataset(f"{name}/data", data=array)
            summary = summaries.get(name, _NO_SUMMARY)
            if summary is _NO_SUMMARY:
                summary = _default_summary(value)
            if summary is not None:
                ds = _write_summary(reduced, name, summary)
                array = np.asarray(value) if not isinstance(value, (str, xr.Dataset)) else None
                if array is not None and array.dtype.kind in "iuf" and array.size > 1:
                    ds.attrs["max_diff"] = float(abs(np.nanmax(array) - np.nanmin(array)))
        for name, summary in summaries.items():
            if name not in values and summary is not None:
                _write_summary(reduced, name, summary)
        for name, extra in (attrs or {}).items():
            for key, val in extra.items():
                reduced[name].attrs[key] = val
        if errors:
            group = f.create_group(".errors")
            for name, exc in errors.items():
                ds = group.create_dataset(name, data=str(exc), dtype=h5py.string_dtype())
                ds.attrs["type"] = type(exc).__name__
        for name, preview in (previews or {}).items():
            f.create_dataset(f".preview/{name}", data=np.asarray(preview))
    for name, value in netcdf.items():
        value.to_netcdf(writing, group=name, engine="h5netcdf", mode="a")
        with h5py.File(writing, "a") as f:
            kind = "dataset" if isinstance(value, xr.Dataset) else "dataarray"
            f[name].attrs["_damnit_objtype"] = kind
    os.rename(writing, ready)
    if mtime is not None:
        os.utime(ready, (mtime, mtime))
    return ready
