from __future__ import annotations

import json
import os
import shutil
import struct
from pathlib import Path

import h5py
import numpy as np
import pytest
import xarray as xr

from runtable.store import DatabaseFolder, decode_summary, encode_summary, merge_pending

from .conftest import PROPOSAL
from .fragments import Png, png_bytes, write_fragment


def rows(db: DatabaseFolder) -> list[tuple]:
    """Every run_variables row except the write timestamp."""
    return [tuple(r) for r in db.conn.execute(
        "SELECT proposal, run, name, version, value, max_diff, provenance, summary_type, "
        "summary_method, attributes FROM run_variables ORDER BY proposal, run, name")]


def h5_tree(path: Path) -> dict[str, object]:
    """Every object in an HDF5 file with its attributes and (small) data."""
    out: dict[str, object] = {}

    def visit(name: str, obj: h5py.HLObject) -> None:
        attrs = {k: repr(v) for k, v in obj.attrs.items()
                 if k not in ("DIMENSION_LIST", "REFERENCE_LIST")}
        data = repr(obj[()]) if isinstance(obj, h5py.Dataset) else None
        out[name] = (attrs, data)

    with h5py.File(path, "r") as f:
        out["/"] = {k: repr(v) for k, v in f.attrs.items()}
        f.visititems(visit)
    return out


# -- summary encodings ---------------------------------------------------------

PNG = png_bytes()


@pytest.mark.parametrize(("value", "summary", "expected_type"), [
    (3, None, None),
    (2.5, None, None),
    (True, None, None),
    ("text", None, None),
    (1 + 2j, None, "complex"),
    (np.arange(5.0), None, "trendline"),
    (np.zeros((2, 2, 2)), np.ones((2, 3)), "numpy"),
    (np.zeros((4, 4)), Png(PNG), None),
], ids=["int", "float", "bool", "str", "complex", "trendline", "numpy", "png"])
def test_summary_encodings(vdb: DatabaseFolder, folder: Path, value: object, summary: object,
                           expected_type: str | None) -> None:
    db = vdb
    summaries = {"v": summary} if summary is not None else None
    write_fragment(folder, PROPOSAL, 1, {"v": value}, summaries=summaries)
    db.merge_pending()
    stored, stype = db.conn.execute(
        "SELECT value, summary_type FROM run_variables WHERE name = 'v'").fetchone()
    assert stype == expected_type
    got = db.get_value(PROPOSAL, 1, "v")
    if expected_type == "complex":
        assert stored == struct.pack("<dd", 1, 2) and got == 1 + 2j
    elif expected_type == "trendline":
        np.testing.assert_array_equal(got, [np.arange(5.0), np.arange(5.0)])
    elif expected_type == "numpy":
        np.testing.assert_array_equal(got, np.ones((2, 3)))
    elif isinstance(summary, Png):
        assert got == PNG and isinstance(stored, bytes)
    else:
        assert got == value and type(stored) is type(value if value is not True else 1)


def test_nan_is_null_and_encode_roundtrip() -> None:
    assert encode_summary(np.float64(np.nan)) == (pytest.approx(np.nan, nan_ok=True), None)
    for value in [np.int32(4), np.str_("x"), b"bytes", 3.0 + 0j, np.arange(3)]:
        encoded, stype = encode_summary(value)
        decoded = decode_summary(encoded, stype)
        if isinstance(value, np.ndarray):
            np.testing.assert_array_equal(decoded, value)
        elif isinstance(value, bytes):
            assert decoded == "bytes"
        else:
            assert decoded == value


def test_nan_summary_stored_as_null(db: DatabaseFolder, folder: Path) -> None:
    write_fragment(folder, PROPOSAL, 1, {"v": np.nan})
    db.merge_pending()
    assert db.conn.execute("SELECT value FROM run_variables WHERE name='v'").fetchone()[0] is None


def test_attributes_and_columns(db: DatabaseFolder, folder: Path) -> None:
    write_fragment(
        folder, PROPOSAL, 1, {"v": np.array([1.0, 4.0])}, provenance="context.py",
        summaries={"v": np.float64(2.5)},
        attrs={"v": {"summary_method": "mean", "units": "mJ", "bold": True,
                     "background": np.array([255, 0, 10], dtype=np.uint8)}})
    db.merge_pending()
    (row,) = rows(db)
    assert row[:9] == (PROPOSAL, 1, "v", 1, 2.5, 3.0, "context.py", None, "mean")
    assert json.loads(row[9]) == {"units": "mJ", "bold": True, "background": [255, 0, 10]}


def test_error_rows(vdb: DatabaseFolder, folder: Path) -> None:
    db = vdb
    write_fragment(folder, PROPOSAL, 1, {"v": np.arange(4.0), "w": 1})
    db.merge_pending()
    assert db.run_file(PROPOSAL, 1).exists()
    write_fragment(folder, PROPOSAL, 1, errors={"v": ZeroDivisionError("division by zero")})
    db.merge_pending()
    v = next(r for r in rows(db) if r[2] == "v")
    assert v[4:9] == (None, None, "context.py", None, None)
    assert json.loads(v[9]) == {"error": "division by zero", "error_cls": "ZeroDivisionError"}
    with h5py.File(db.run_file(PROPOSAL, 1)) as f:
        assert "v" not in f and "v" not in f[".reduced"]
        assert f[".errors/v"].asstr()[()] == "division by zero"
        assert f["w/data"][()] == 1
    # A later success replaces the error again.
    write_fragment(folder, PROPOSAL, 1, {"v": 5})
    db.merge_pending()
    assert db.get_value(PROPOSAL, 1, "v") == 5
    assert db.get_attributes(PROPOSAL, 1, "v") is None
    with h5py.File(db.run_file(PROPOSAL, 1)) as f:
        assert "v" not in f[".errors"] and f["v/data"][()] == 5


# -- HDF5 merging ---------------------------------------------------------------

def test_first_fragment_becomes_run_file(db: DatabaseFolder, folder: Path) -> None:
    frag = write_fragment(folder, PROPOSAL, 7, {"a": 1.5}, start_time=1.7e9)
    expected = h5_tree(frag)
    (result,) = db.merge_pending()
    assert result.names == ["a"] and result.run == 7
    assert not frag.exists()
    assert h5_tree(db.run_file(PROPOSAL, 7)) == expected
    assert db.conn.execute("SELECT start_time FROM run_info WHERE run = 7").fetchone()[0] == 1.7e9
    assert db.get_value(PROPOSAL, 7, "start_time") is None  # not a row
    assert sorted(os.listdir(db.extracted_dir)) == [".runtable-merge.lock", f"p{PROPOSAL}_r7.h5"]


def test_merge_into_existing(vdb: DatabaseFolder, folder: Path) -> None:
    db = vdb
    ds = xr.Dataset({"img": (("t", "x"), np.arange(12.0).reshape(4, 3))},
                    coords={"t": np.arange(4) * 0.1})
    da = xr.DataArray(np.arange(5), dims="pulse", coords={"pulse": np.arange(5) + 10},
                      name="energy", attrs={"units": "eV"})
    write_fragment(folder, PROPOSAL, 1, {"keep": np.arange(3), "ds": ds, "da": da,
                                         "replace": 1.0},
                   previews={"keep": [1, 2]}, provenance="first")
    db.merge_pending()
    ds2 = xr.Dataset({"other": ("y", np.ones(2))})
    write_fragment(folder, PROPOSAL, 1, {"replace": "two", "new": ds2}, provenance="second")
    db.merge_pending()
    path = db.run_file(PROPOSAL, 1)
    with h5py.File(path) as f:
        assert f.attrs["provenance"] == "first"  # the first fragment's survives
        assert f["replace/data"].asstr()[()] == "two"
        assert f[".reduced/replace"].asstr()[()] == "two"
        np.testing.assert_array_equal(f["keep/data"][()], np.arange(3))
        np.testing.assert_array_equal(f[".preview/keep"][()], [1, 2])
        assert set(f) == {".reduced", ".preview", "keep", "ds", "da", "replace", "new"}
    xr.testing.assert_identical(
        xr.open_dataset(path, group="ds", engine="h5netcdf").load().drop_attrs(),
        ds)
    got = xr.open_dataarray(path, group="da", engine="h5netcdf").load()
    xr.testing.assert_identical(got, da.assign_attrs(units="eV"))
    got2 = xr.open_dataset(path, group="new", engine="h5netcdf").load().drop_attrs()
    xr.testing.assert_identical(got2, ds2)
    # netCDF dimension ids are unique across the merged file.
    dimids = []
    with h5py.File(path) as f:
        def visit(name: str, obj: h5py.HLObject) -> None:
            if obj.attrs.get("CLASS") == b"DIMENSION_SCALE":
                dimids.append(int(obj.attrs["_Netcdf4Dimid"]))
        f.visititems(visit)
    assert len(dimids) == len(set(dimids)) == 4
    assert db.get_value(PROPOSAL, 1, "replace") == "two"
    assert db.conn.execute(
        "SELECT provenance FROM run_variables WHERE name='replace'").fetchone()[0] == "second"


def test_merge_xarray_twice_over(db: DatabaseFolder, folder: Path) -> None:
    """Re-copying an xarray group that was itself copied keeps it readable."""
    da = xr.DataArray(np.arange(4.0), dims="x", coords={"x": [1, 2, 3, 4]}, name="d")
    write_fragment(folder, PROPOSAL, 1, {"a": da, "n": 1})
    for i in range(3):
        write_fragment(folder, PROPOSAL, 1, {"n": i})
        db.merge_pending()
    got = xr.open_dataarray(db.run_file(PROPOSAL, 1), group="a", engine="h5netcdf").load()
    xr.testing.assert_identical(got, da)


def test_merging_twice_changes_nothing(vdb: DatabaseFolder, folder: Path) -> None:
    db = vdb
    frag = write_fragment(folder, PROPOSAL, 1, {"a": np.arange(4.0), "s": "x"})
    copy = frag.with_name("copy.h5")
    shutil.copy2(frag, copy)
    db.merge_pending()
    write_fragment(folder, PROPOSAL, 1, {"b": 2})
    db.merge_pending()
    before_rows, before_h5 = rows(db), h5_tree(db.run_file(PROPOSAL, 1))
    stamps = db.conn.execute("SELECT name, timestamp FROM run_variables").fetchall()
    os.replace(copy, frag)
    (result,) = db.merge_pending()
    assert result.already_merged and not frag.exists()
    assert rows(db) == before_rows
    assert db.conn.execute("SELECT name, timestamp FROM run_variables").fetchall() == stamps
    assert h5_tree(db.run_file(PROPOSAL, 1)) == before_h5


def test_merge_pending_order_and_module_function(db: DatabaseFolder, folder: Path) -> None:
    write_fragment(folder, PROPOSAL, 1, {"a": 2}, mtime=2000)
    write_fragment(folder, PROPOSAL, 1, {"a": 1}, mtime=1000)
    write_fragment(folder, PROPOSAL, 2, {"a": 3}, mtime=3000)
    (folder / "extracted_data" / f"p{PROPOSAL}_r9.zz.writing.h5").write_bytes(b"")
    results = merge_pending(folder)
    assert [(r.run, r.names) for r in results] == [(1, ["a"]), (1, ["a"]), (2, ["a"])]
    assert db.get_value(PROPOSAL, 1, "a") == 2  # the newest fragment wins


def test_bad_fragment_is_kept(db: DatabaseFolder, folder: Path) -> None:
    bad = folder / "extracted_data" / f"p{PROPOSAL}_r1.bad.ready.h5"
    bad.write_bytes(b"not hdf5")
    write_fragment(folder, PROPOSAL, 2, {"a": 1})
    results = db.merge_pending()
    assert [r.run for r in results] == [2]
    assert bad.exists()


def test_protected_names_not_taken_from_fragments(db: DatabaseFolder, folder: Path) -> None:
    db.add_user_variable("note", "string")
    db.set_user_value(PROPOSAL, 1, "note", "typed")
    db.set_comment(PROPOSAL, 1, "a comment")
    write_fragment(folder, PROPOSAL, 1, {"note": "computed", "comment": "computed", "x": 1})
    (result,) = db.merge_pending()
    assert result.protected == ["comment", "note"] and result.names == ["x"]
    assert db.get_value(PROPOSAL, 1, "note") == "typed"
    assert db.get_value(PROPOSAL, 1, "comment") == "a comment"
    with h5py.File(db.run_file(PROPOSAL, 1)) as f:
        assert set(f) == {".reduced", "x"}


def test_delete_variable(vdb: DatabaseFolder, folder: Path) -> None:
    db = vdb
    db.update_computed_variables({"a": {"title": "A", "tags": ["t1"]}, "b": {"title": "B"}})
    for run in (1, 2):
        write_fragment(folder, PROPOSAL, run, {"a": 1, "b": 2}, previews={"a": [1, 2]})
    db.merge_pending()
    db.delete_variable("a")
    assert "a" not in db.variables()
    assert db.conn.execute("SELECT count(*) FROM run_variables WHERE name='a'").fetchone()[0] == 0
    assert "t1" not in {r[0] for r in db.conn.execute("SELECT name FROM tags")}
    assert "a" not in {r[1] for r in db.conn.execute("PRAGMA table_info(runs)")}
    for run in (1, 2):
        with h5py.File(db.run_file(PROPOSAL, run)) as f:
            assert set(f) == {".reduced", ".preview", "b"} and set(f[".reduced"]) == {"b"}
            assert len(f[".preview"]) == 0


def test_update_computed_variables(db: DatabaseFolder) -> None:
    changed = db.update_computed_variables({
        "a": {"title": "A", "description": "first", "tags": ["x", "y"]},
        "b": {"title": "B", "attributes": {"units": "mm"}, "tags": "x"},
    })
    assert changed == ["a", "b"]
    assert db.update_computed_variables({"a": {"title": "A", "description": "first",
                                               "tags": ["y", "x"]}}) == []
    assert db.update_computed_variables({"a": {"title": "A2", "tags": ["y"]}}) == ["a"]
    v = db.variables()
    assert v["a"].title == "A2" and v["a"].description is None and v["a"].tags == ("y",)
    assert v["b"].attributes == {"units": "mm"} and v["b"].tags == ("x",)  # kept
    assert v["a"].type is None
    tags = [r[0] for r in db.conn.execute("SELECT name FROM tags ORDER BY name")]
    assert tags == ["x", "y"]
    assert {"a", "b"} <= {r[1] for r in db.conn.execute("PRAGMA table_info(runs)")}


def test_interrupted_deletion_is_finished(db: DatabaseFolder, folder: Path) -> None:
    write_fragment(folder, PROPOSAL, 1, {"a": 1, "b": 2})
    db.merge_pending()
    # As if the process died after delete_variable's commit, before the HDF5 part.
    with db.transaction() as conn:
        conn.execute("DELETE FROM run_variables WHERE name = 'a'")
        conn.execute("INSERT INTO runtable_pending_deletions(name) VALUES ('a')")
    db.close()
    merge_pending(folder)
    with h5py.File(db.run_file(PROPOSAL, 1)) as f:
        assert set(f) == {".reduced", "b"}
    with DatabaseFolder(folder) as again:
        assert again.conn.execute(
            "SELECT count(*) FROM runtable_pending_deletions").fetchone()[0] == 0


def test_merge_fragment_directly(db: DatabaseFolder, folder: Path) -> None:
    frag = write_fragment(folder, PROPOSAL, 3, {"a": 1})
    result = db.merge_fragment(frag)
    assert (result.proposal, result.run, result.names, result.already_merged) == (
        PROPOSAL, 3, ["a"], False)
    with pytest.raises(ValueError, match="is not named like"):
        db.merge_fragment(folder / "extracted_data" / "whatever.h5")


def test_string_array_summary(db: DatabaseFolder, folder: Path) -> None:
    frag = write_fragment(folder, PROPOSAL, 1, {"x": 1})
    with h5py.File(frag, "a") as f:
        f[".reduced"].create_dataset("labels", data=["a", "bb"], dtype=h5py.string_dtype())
        f[".reduced"].create_dataset("odd", data=np.zeros(2, dtype=[("a", "i4"), ("b", "O")][:1]))
    db.merge_pending()
    assert list(db.get_value(PROPOSAL, 1, "labels")) == ["a", "bb"]
    assert db.get_value(PROPOSAL, 1, "odd") is not None
