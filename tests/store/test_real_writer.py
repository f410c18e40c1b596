"""Merge fragments made by runtable's own writer (runtable.execute.fragment)."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest
import xarray as xr

from runtable.store import DatabaseFolder

from .conftest import PROPOSAL

fragment = pytest.importorskip("runtable.execute.fragment")
cell = pytest.importorskip("runtable.context.cell")


def results(errors: dict | None = None, **cells: object) -> SimpleNamespace:
    return SimpleNamespace(cells={k: v if isinstance(v, cell.Cell) else cell.Cell(v)
                                  for k, v in cells.items()},
                           errors=errors or {}, provenance="context.py")


def test_merge_written_fragments(db: DatabaseFolder) -> None:
    da = xr.DataArray(np.arange(6.0).reshape(2, 3), dims=("x", "y"), name="img")
    first = results(
        start_time=1.7e9, a=np.arange(5.0), b=1 + 2j, c=cell.Cell("s", bold=True,
                                                                  background="#ff0000"),
        d=da, e=np.ones((3, 3)), n=4,
        p=cell.Cell(np.arange(3.0), preview=xr.DataArray(np.ones(4), dims="q",
                                                          coords={"q": np.arange(4)})),
        errors={"z": ZeroDivisionError("division by zero")})
    fragment.write_fragment(first, db.extracted_dir, PROPOSAL, 5)
    (result,) = db.merge_pending()
    assert result.names == ["a", "b", "c", "d", "e", "n", "p", "z"]
    assert db.conn.execute("SELECT start_time FROM run_info").fetchone()[0] == 1.7e9
    assert db.get_value(PROPOSAL, 5, "a").shape == (2, 5)
    assert db.get_value(PROPOSAL, 5, "b") == 1 + 2j
    assert db.get_value(PROPOSAL, 5, "c") == "s"
    assert db.get_attributes(PROPOSAL, 5, "c") == {"bold": True, "background": [255, 0, 0]}
    assert db.get_value(PROPOSAL, 5, "e")[:4] == b"\x89PNG"
    assert db.get_value(PROPOSAL, 5, "n") == 4
    assert db.get_attributes(PROPOSAL, 5, "z")["error_cls"] == "ZeroDivisionError"

    second = results(n=5, f=xr.Dataset({"v": ("t", np.arange(3))}))
    fragment.write_fragment(second, db.extracted_dir, PROPOSAL, 5)
    db.merge_pending()
    path = db.run_file(PROPOSAL, 5)
    got = xr.open_dataarray(path, group="d", engine="h5netcdf").load()
    np.testing.assert_array_equal(got.values, da.values)
    assert list(xr.open_dataset(path, group="f", engine="h5netcdf").load()["v"].values) == [0, 1, 2]
    assert db.get_value(PROPOSAL, 5, "n") == 5
    preview = xr.open_dataarray(path, group=".preview/p", engine="h5netcdf").load()
    assert list(preview.coords["q"].values) == [0, 1, 2, 3]
