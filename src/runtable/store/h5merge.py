"""Building per-run HDF5 files ``p<proposal>_r<run>.h5`` from fragments.

Nothing here modifies a per-run file in place: the merged result is written to
a temporary file next to it, flushed to disk and moved over the old one with
``os.replace``, so the per-run file is always either the old or the new
version, never a half-written one.

Objects are copied with HDF5's object copy. That copy does not carry over the
object references netCDF uses for dimension scales, so for xarray groups the
scales are re-attached afterwards, and the netCDF dimension ids are renumbered
to stay unique within the merged file (as netCDF-C expects).
"""

from __future__ import annotations

import contextlib
import os
import secrets
import time
from collections.abc import Callable
from pathlib import Path

import h5py
import numpy as np

from ..execute.fragment import SPECIAL_GROUPS
from ..sharing import FILE_MODE

TMP_SUFFIX = ".merging.tmp"
_DIMID_ATTRS = ("_Netcdf4Dimid", "_Netcdf4Coordinates")

Checkpoint = Callable[[str], None]


def _noop(step: str) -> None:
    pass


class _Copier:
    """Copies objects into one output file, keeping netCDF dimension ids unique."""

    def __init__(self, out: h5py.File, checkpoint: Checkpoint) -> None:
        self.out = out
        self.next_dimid = 0
        self.checkpoint = checkpoint

    def copy(self, src: h5py.Group | h5py.Dataset, parent: h5py.Group, name: str) -> None:
        if name in parent:
            del parent[name]
        src.file.copy(src, parent, name)
        dst = parent[name]
        if isinstance(src, h5py.Group):
            self._reattach_scales(src, dst)
            self._renumber_dimids(dst)
        self.checkpoint("hdf5_copy")

    @staticmethod
    def _reattach_scales(src: h5py.Group, dst: h5py.Group) -> None:
        base = src.name.rstrip("/") + "/"
        attached: list[tuple[str, list[list[str]]]] = []

        def find(rel: str, obj: h5py.HLObject) -> None:
            if isinstance(obj, h5py.Dataset) and "DIMENSION_LIST" in obj.attrs:
                refs = obj.attrs["DIMENSION_LIST"]
                attached.append((rel, [[src.file[r].name for r in dim] for dim in refs]))

        src.visititems(find)
        if not attached:
            return

        def strip(rel: str, obj: h5py.HLObject) -> None:
            for attr in ("DIMENSION_LIST", "REFERENCE_LIST"):
                if attr in obj.attrs:
                    del obj.attrs[attr]

        dst.visititems(strip)
        for rel, dims in attached:
            ds = dst[rel]
            for i, scale_paths in enumerate(dims):
                for path in scale_paths:
                    if path.startswith(base):
                        ds.dims[i].attach_scale(dst[path[len(base):]])

    def _renumber_dimids(self, dst: h5py.Group) -> None:
        found: list[tuple[h5py.HLObject, str, np.ndarray]] = []

        def collect(rel: str, obj: h5py.HLObject) -> None:
            for attr in _DIMID_ATTRS:
                if attr in obj.attrs:
                    found.append((obj, attr, np.asarray(obj.attrs[attr])))

        collect("", dst)
        dst.visititems(collect)
        if not found:
            return
        low = min(int(v.min()) for _, _, v in found if v.size)
        high = max(int(v.max()) for _, _, v in found if v.size)
        offset = self.next_dimid - low
        if offset:
            for obj, attr, value in found:
                obj.attrs.modify(attr, (value + offset).astype(value.dtype))
        self.next_dimid = high + offset + 1

    def copy_filtered(self, src: h5py.File, drop: set[str]) -> None:
        for key in src:
            if key in SPECIAL_GROUPS:
                group = self.out.require_group(key)
                for member in src[key]:
                    if member not in drop:
                        self.copy(src[key][member], group, member)
            elif key not in drop:
                self.copy(src[key], self.out, key)


def _fsync_file(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def fsync_dir(path: Path) -> None:
    with contextlib.suppress(OSError):  # not supported everywhere; best effort
        fd = os.open(path, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def _tmp_path(dst: Path) -> Path:
    return dst.with_name(f"{dst.name}.{secrets.token_hex(4)}{TMP_SUFFIX}")


def _write_atomically(dst: Path, build: Callable[[h5py.File], None],
                      checkpoint: Checkpoint) -> None:
    tmp = _tmp_path(dst)
    try:
        with h5py.File(tmp, "w") as out:
            build(out)
        _fsync_file(tmp)
        checkpoint("hdf5_tmp_written")
        os.chmod(tmp, FILE_MODE)  # the team's, whatever this process's umask
        os.replace(tmp, dst)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    fsync_dir(dst.parent)


def _copy_root_attrs(src: h5py.File, out: h5py.File) -> None:
    for key, value in src.attrs.items():
        out.attrs[key] = value


def merge_into_run_file(fragment: Path, dst: Path, replace: set[str], skip: set[str],
                        checkpoint: Checkpoint = _noop,
                        extra: Callable[[h5py.File], None] | None = None) -> None:
    """Make *dst* hold the fragment's objects (except *skip*) instead of the old
    objects named in *replace*, keeping everything else; ``extra(out)`` adds more
    (after the fragment's objects) to the file being written.

    When *dst* does not exist, the fragment itself becomes it (hard link, so the
    fragment stays in place until the caller removes it).
    """
    if not dst.exists() and not skip and extra is None:
        try:
            os.link(fragment, dst)
            fsync_dir(dst.parent)
            return
        except FileExistsError:
            pass
        except OSError:  # e.g. no hard links on this file system: copy below
            pass

    def build(out: h5py.File) -> None:
        copier = _Copier(out, checkpoint)
        if dst.exists():
            with h5py.File(dst, "r") as old:
                _copy_root_attrs(old, out)
                copier.copy_filtered(old, replace)
            root_done = True
        else:
            root_done = False
        with h5py.File(fragment, "r") as new:
            if not root_done:
                _copy_root_attrs(new, out)
            copier.copy_filtered(new, skip)
        if extra is not None:
            extra(out)

    _write_atomically(dst, build, checkpoint)


def damage(path: Path) -> str | None:
    """Why the HDF5 file at *path* cannot be read (truncated, overwritten...), or None
    when it can be opened and all its objects listed. A file that is not there, or
    that this process may not read, is not damaged."""
    if not path.exists() or not os.access(path, os.R_OK):
        return None
    try:
        with h5py.File(path, "r") as f:
            f.visititems(lambda name, obj: None)
    except Exception as exc:  # h5py raises OSError, KeyError, RuntimeError... for damage
        return f"{type(exc).__name__}: {exc}"
    return None


def set_aside(path: Path) -> Path:
    """Rename a damaged file to ``<name>.damaged-<UTC time>`` beside it (never deleted:
    someone may still get data out of it); returns the new path."""
    stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
    aside = path.with_name(f"{path.name}.damaged-{stamp}")
    n = 1
    while aside.exists():
        n += 1
        aside = path.with_name(f"{path.name}.damaged-{stamp}-{n}")
    os.replace(path, aside)
    fsync_dir(path.parent)
    return aside


def copy_variables(src: h5py.File, out: h5py.File, drop: set[str]) -> None:
    """Copy every variable's objects of *src* into *out* except those named in *drop*
    (data groups with their ``.reduced``/``.preview``/``.errors`` entries)."""
    _Copier(out, _noop).copy_filtered(src, drop)


def remove_from_run_file(dst: Path, names: set[str]) -> bool:
    """Rewrite *dst* without the objects in *names*; False if it had none of them."""
    if not dst.exists():
        return False
    with h5py.File(dst, "r") as f:
        present = any(n in f for n in names) or any(
            g in f and n in f[g] for g in SPECIAL_GROUPS for n in names
        )
    if not present:
        return False

    def build(out: h5py.File) -> None:
        with h5py.File(dst, "r") as old:
            _copy_root_attrs(old, out)
            _Copier(out, _noop).copy_filtered(old, names)

    _write_atomically(dst, build, _noop)
    return True
