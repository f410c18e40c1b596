"""runtable.store.read_cell: every kind of cell, downsampling checked against numpy."""

from __future__ import annotations

import base64
import math
from collections.abc import Iterator
from pathlib import Path

import h5py
import numpy as np
import pytest

from runtable.store import (
    BadCellQuery,
    CellData,
    CellNotFound,
    DatabaseFolder,
    TooMuchData,
    create_folder,
    open_db,
    read_cell,
)
from runtable.store import celldata as cd

from .celldata_cells import (
    N_TIMES,
    N_TRACE,
    PEAK_AT,
    PROPOSAL,
    RUN,
    TRAIN0,
    coord_image_values,
    delays,
    energies,
    epoch_ms,
    image_values,
    make_celldata_folder,
    stack_values,
    times,
    trace_values,
)


@pytest.fixture(scope="module")
def cdb(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DatabaseFolder]:
    path = make_celldata_folder(tmp_path_factory.mktemp("celldata") / "db")
    with open_db(path, readonly=True) as db:
        yield db


def read(db: DatabaseFolder, name: str, **kw: object) -> CellData:
    return read_cell(db, PROPOSAL, RUN, name, **kw)


def test_line_with_train_ids_is_min_max_downsampled(cdb: DatabaseFolder) -> None:
    data = read(cdb, "trace", max_points=1000)
    y = trace_values()
    assert data.kind == "line"
    assert data.meta["shape"] == [N_TRACE] and data.meta["dims"] == ["trainId"]
    assert data.meta["units"] == "uJ" and data.meta["x"]["coord"] is True
    k = data.meta["downsample"]["factor"]
    assert data.meta["downsample"]["method"] == "minmax" and k == math.ceil(N_TRACE / 500)
    assert len(data.arrays["y"]) == 1000
    # Each bucket's min and max, in index order, with their train IDs.
    buckets = y.reshape(-1, k) if N_TRACE % k == 0 else None
    assert buckets is not None
    lo, hi = buckets.min(axis=1), buckets.max(axis=1)
    got = data.arrays["y"].reshape(-1, 2)
    np.testing.assert_array_equal(np.sort(got, axis=1), np.stack([lo, hi], axis=1))
    idx = data.arrays["i"].astype(int)
    assert np.all(np.diff(idx) >= 0)
    np.testing.assert_array_equal(data.arrays["y"], y[idx])
    np.testing.assert_array_equal(data.arrays["x"], TRAIN0 + idx)
    # The narrow peak survives.
    assert data.arrays["y"].max() == 50.0 and data.arrays["y"].min() == -40.0
    assert {PEAK_AT, PEAK_AT + 7} <= set(idx.tolist())


def test_line_full_resolution_and_region(cdb: DatabaseFolder) -> None:
    full = read(cdb, "trace", max_points=0)
    assert full.meta["downsample"] == {"method": "none", "factor": 1}
    np.testing.assert_array_equal(full.arrays["y"], trace_values())
    np.testing.assert_array_equal(full.arrays["x"], TRAIN0 + np.arange(N_TRACE))
    part = read(cdb, "trace", region="54000.5,54400.2")
    assert part.meta["region"] == [54000, 54401]
    assert part.meta["downsample"]["method"] == "none"
    np.testing.assert_array_equal(part.arrays["y"], trace_values()[54000:54401])
    # A region beyond the end is clipped; one wholly outside is an error.
    assert read(cdb, "trace", region=[99_990, 200_000]).meta["region"] == [99_990, N_TRACE]
    with pytest.raises(BadCellQuery, match="empty"):
        read(cdb, "trace", region=[200_000, 300_000])
    with pytest.raises(BadCellQuery, match="2 numbers"):
        read(cdb, "trace", region=[0, 5, 0, 5])


def test_line_read_in_blocks(cdb: DatabaseFolder, monkeypatch: pytest.MonkeyPatch) -> None:
    # Blocks smaller than the line: the same answer as one read.
    whole = read(cdb, "trace", max_points=600)
    monkeypatch.setattr(cd, "BLOCK_VALUES", 1000)
    blocked = read(cdb, "trace", max_points=600)
    for key in ("x", "y", "i"):
        np.testing.assert_array_equal(whole.arrays[key], blocked.arrays[key])


def test_full_resolution_limit(cdb: DatabaseFolder, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(cd, "FULL_POINTS_LIMIT", 1000)
    with pytest.raises(TooMuchData, match="limit of 1,000"):
        read(cdb, "trace", max_points=0)
    assert len(read(cdb, "trace", max_points=0, region=[0, 1000]).arrays["y"]) == 1000
    monkeypatch.setattr(cd, "FULL_PIXELS_LIMIT", 100)
    with pytest.raises(TooMuchData):
        read(cdb, "image", max_pixels=0)


def block_means(img: np.ndarray, f: int) -> np.ndarray:
    h, w = img.shape
    out = np.full((math.ceil(h / f), math.ceil(w / f)), np.nan)
    for r in range(out.shape[0]):
        for c in range(out.shape[1]):
            block = img[r * f:(r + 1) * f, c * f:(c + 1) * f]
            finite = block[np.isfinite(block)]
            if finite.size:
                out[r, c] = finite.mean()
    return out


def test_image_block_means(cdb: DatabaseFolder) -> None:
    data = read(cdb, "image", max_pixels=2000)
    img = image_values()
    f = data.meta["downsample"]["factor"]
    assert data.meta["downsample"]["method"] == "mean"
    assert data.arrays["z"].shape == (math.ceil(300 / f), math.ceil(200 / f))
    assert data.arrays["z"].size <= 2000 and data.arrays["z"].dtype == np.float32
    np.testing.assert_allclose(data.arrays["z"], block_means(img, f), rtol=1e-6)
    assert data.meta["x"] == {"name": None, "start": 0, "step": f, "size": 200 // f + (200 % f > 0),
                              "coord": False, "date": False, "units": None, "note": None}
    assert set(data.arrays) == {"z"}  # no coordinate: no x/y arrays
    z = data.arrays["z"]
    np.testing.assert_allclose(data.meta["percentiles"],
                               np.percentile(z[np.isfinite(z)], [1, 99]), rtol=1e-6)


def test_image_full_and_region(cdb: DatabaseFolder) -> None:
    data = read(cdb, "image")
    assert data.meta["downsample"]["method"] == "none"
    np.testing.assert_array_equal(data.arrays["z"], image_values().astype(np.float32))
    part = read(cdb, "image", region="5,25,8,18", max_pixels=10_000)
    assert part.meta["region"] == [5, 25, 8, 18]
    assert part.meta["x"]["start"] == 5 and part.meta["y"]["start"] == 8
    np.testing.assert_array_equal(part.arrays["z"],
                                  image_values()[8:18, 5:25].astype(np.float32))
    with pytest.raises(BadCellQuery, match="4 numbers"):
        read(cdb, "image", region="0,5")


def test_image_stride_above_threshold(cdb: DatabaseFolder,
                                      monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(cd, "STRIDE_ABOVE", 1000)
    data = read(cdb, "image", max_pixels=2000)
    f = data.meta["downsample"]["factor"]
    assert data.meta["downsample"]["method"] == "stride"
    np.testing.assert_array_equal(data.arrays["z"], image_values()[::f, ::f].astype(np.float32))


def test_block_means_in_bands(cdb: DatabaseFolder, monkeypatch: pytest.MonkeyPatch) -> None:
    whole = read(cdb, "image", max_pixels=3000)
    monkeypatch.setattr(cd, "BLOCK_VALUES", 500)
    np.testing.assert_array_equal(read(cdb, "image", max_pixels=3000).arrays["z"],
                                  whole.arrays["z"])


def test_slices_of_a_3d_array(cdb: DatabaseFolder) -> None:
    stack = stack_values()
    first = read(cdb, "stack")
    assert first.meta["slice"] == "0,:,:" and first.meta["shape"] == [4, 30, 40]
    np.testing.assert_array_equal(first.arrays["z"], stack[0])
    np.testing.assert_array_equal(read(cdb, "stack", slice="3,:,:").arrays["z"], stack[3])
    np.testing.assert_array_equal(read(cdb, "stack", slice="-1").arrays["z"], stack[3])
    line = read(cdb, "stack", slice="2,5,:")
    assert line.kind == "line" and line.meta["slice"] == "2,5,:"
    np.testing.assert_array_equal(line.arrays["y"], stack[2, 5])
    np.testing.assert_array_equal(read(cdb, "stack", slice=":,4,:").arrays["z"], stack[:, 4])
    for bad, why in [("4,:,:", "outside axis 0"), ("x,:,:", "index or ':'"),
                     ("1,2,3", "leave 1 axis"), ("1,:,:,:", "only 3")]:
        with pytest.raises(BadCellQuery, match=why):
            read(cdb, "stack", slice=bad)
    with pytest.raises(BadCellQuery, match="more than 2 dimensions"):
        read(cdb, "image", slice="0,:")


def test_dataset_members(cdb: DatabaseFolder) -> None:
    data = read(cdb, "dataset")
    assert data.kind == "dataset"
    members = {m["name"]: m for m in data.meta["members"]}
    assert set(members) == {"energy", "frame"}
    assert members["energy"]["dims"] == ["trainId"] and members["frame"]["shape"] == [20, 10]
    energy = read(cdb, "dataset", path="energy")
    assert energy.kind == "line" and energy.meta["x"]["coord"] is True
    np.testing.assert_array_equal(energy.arrays["x"], TRAIN0 + np.arange(50))
    np.testing.assert_allclose(energy.arrays["y"], np.linspace(1, 2, 50))
    frame = read(cdb, "dataset", path="frame")
    assert frame.kind == "image" and frame.meta["dims"] == ["y", "x"]
    assert frame.meta["x"]["name"] == "x"
    with pytest.raises(CellNotFound, match="energy, frame"):
        read(cdb, "dataset", path="nope")
    with pytest.raises(BadCellQuery, match="path="):
        read(cdb, "image", path="a")


def test_scalars_strings_and_objects(cdb: DatabaseFolder) -> None:
    assert read(cdb, "number").meta.items() >= {"kind": "scalar", "value": 3.5,
                                                "units": "mm"}.items()
    nan = read(cdb, "nan").meta
    assert nan["value"] is None and nan["text"] == "nan"
    assert read(cdb, "cplx").meta["text"] == "1+2j"
    assert read(cdb, "text").meta["value"] == "hello <b>world</b>"
    assert read(cdb, "strings").meta["values"] == ["a", "bc"]
    assert read(cdb, "summary_only").meta["value"] == 7
    fig = read(cdb, "plotly").meta["figure"]
    assert fig["data"][0]["y"] == [4, 1, 9] and fig["layout"]["title"]["text"] == "A plotly figure"
    rgb = read(cdb, "mpl").meta
    assert rgb["kind"] == "rgb" and base64.b64decode(rgb["png"])[:4] == b"\x89PNG"
    small = read(cdb, "small_int")
    assert small.arrays["y"].dtype == np.float32 and small.arrays["y"].tolist() == list(range(10))
    assert read(cdb, "bools").arrays["y"].tolist() == [1.0, 0.0, 1.0]
    series = read(cdb, "series")
    assert series.arrays["x"].tolist() == [10, 20, 30]
    assert series.arrays["y"].tolist() == [1.0, 4.0, 2.0]


def test_explicit_preview(cdb: DatabaseFolder) -> None:
    data = read(cdb, "with_preview")
    assert data.meta["has_preview"] is True and data.meta["slice"] == "0,0,:,:"
    preview = read(cdb, "with_preview", preview=True)
    assert preview.kind == "line" and preview.arrays["y"].tolist() == [0, 1, 2, 3, 4]
    with pytest.raises(CellNotFound, match="no preview"):
        read(cdb, "image", preview=True)


def test_errors_and_missing(cdb: DatabaseFolder) -> None:
    assert read(cdb, "boom").meta.items() >= {"kind": "error", "message": "division by zero",
                                              "error_cls": "ZeroDivisionError"}.items()
    assert read(cdb, "skipped").meta["error_cls"] == "Skip"
    for name in ("nothere", ".reduced", "a/b", ""):
        with pytest.raises(CellNotFound):
            read(cdb, name)
    with pytest.raises(CellNotFound):
        read_cell(cdb, PROPOSAL, RUN + 1, "trace")
    with pytest.raises(BadCellQuery):
        read(cdb, "trace", max_points=-1)


def test_thumbnail_only_and_error_in_database(tmp_path: Path) -> None:
    # A folder whose run file is gone (or never had this cell): the database answers.
    with create_folder(tmp_path / "db", PROPOSAL) as db:
        png = b"\x89PNG\r\n\x1a\n" + b"rest"
        with db.transaction() as conn:
            conn.execute("INSERT INTO run_variables(proposal, run, name, version, value) "
                         "VALUES (?, 1, 'thumb', 1, ?)", (PROPOSAL, png))
            conn.execute("INSERT INTO run_variables(proposal, run, name, version, value, "
                         "attributes) VALUES (?, 1, 'bad', 1, NULL, ?)",
                         (PROPOSAL, '{"error": "oops", "error_cls": "ValueError"}'))
        pic = read_cell(db, PROPOSAL, 1, "thumb")
        assert pic.kind == "picture" and base64.b64decode(pic.meta["png"]) == png
        bad = read_cell(db, PROPOSAL, 1, "bad")
        assert bad.meta["message"] == "oops" and bad.meta["error_cls"] == "ValueError"


def test_reads_only_what_is_shown(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A strided image and a region read only their own part of the dataset."""
    path = make_celldata_folder(tmp_path / "db")
    reads: list[tuple] = []
    original = h5py.Dataset.__getitem__

    def spy(self: h5py.Dataset, key: object) -> object:
        out = original(self, key)
        if self.name == "/image/data":
            reads.append((key, np.asarray(out).size))
        return out

    monkeypatch.setattr(h5py.Dataset, "__getitem__", spy)
    monkeypatch.setattr(cd, "STRIDE_ABOVE", 1000)
    with open_db(path, readonly=True) as db:
        data = read_cell(db, PROPOSAL, RUN, "image", max_pixels=600)
        assert sum(n for _, n in reads) == data.arrays["z"].size < 300 * 200 / 50
        reads.clear()
        read_cell(db, PROPOSAL, RUN, "image", region=[0, 10, 0, 10])
        assert sum(n for _, n in reads) == 100


# -- coordinates ---------------------------------------------------------------------------
def test_image_with_coordinates_full_resolution(cdb: DatabaseFolder) -> None:
    data = read(cdb, "coord_image")
    assert data.meta["downsample"]["method"] == "none"
    x, y = data.meta["x"], data.meta["y"]
    assert x.items() >= {"name": "delay", "units": "ps", "coord": True, "date": False,
                         "note": None, "start": 0, "step": 1, "size": 80}.items()
    assert y.items() >= {"name": "energy", "units": "eV", "coord": True}.items()
    # A falling coordinate is sent as it is: the page draws it against its values.
    np.testing.assert_array_equal(data.arrays["x"], delays())
    np.testing.assert_array_equal(data.arrays["y"], energies())
    assert data.arrays["x"].dtype == np.float64
    np.testing.assert_array_equal(data.arrays["z"], coord_image_values())


def test_image_coordinates_follow_block_means_stride_and_region(
        cdb: DatabaseFolder, monkeypatch: pytest.MonkeyPatch) -> None:
    means = read(cdb, "coord_image", max_pixels=500)
    f = means.meta["downsample"]["factor"]
    assert means.meta["downsample"]["method"] == "mean" and f == 4
    # Each pixel's coordinate is the mean over its block (the block's centre).
    np.testing.assert_allclose(means.arrays["x"], delays().reshape(-1, f).mean(axis=1))
    np.testing.assert_allclose(means.arrays["y"], energies().reshape(-1, f).mean(axis=1))
    # A short last block: the mean of what there is.
    odd = read(cdb, "coord_image", region=[0, 80, 0, 58], max_pixels=500)
    assert odd.meta["downsample"]["factor"] == 4 and odd.arrays["y"].size == 15
    assert odd.arrays["y"][-1] == pytest.approx(energies()[56:58].mean())
    monkeypatch.setattr(cd, "STRIDE_ABOVE", 100)
    strided = read(cdb, "coord_image", max_pixels=500)
    assert strided.meta["downsample"]["method"] == "stride"
    np.testing.assert_array_equal(strided.arrays["x"], delays()[::f])
    np.testing.assert_array_equal(strided.arrays["y"], energies()[::f])
    monkeypatch.undo()
    part = read(cdb, "coord_image", region="10,30,5,9")
    assert part.meta["x"]["start"] == 10 and part.meta["y"]["start"] == 5
    np.testing.assert_array_equal(part.arrays["x"], delays()[10:30])
    np.testing.assert_array_equal(part.arrays["y"], energies()[5:9])
    np.testing.assert_array_equal(part.arrays["z"], coord_image_values()[5:9, 10:30])


def test_image_coordinates_that_cannot_be_used(cdb: DatabaseFolder) -> None:
    data = read(cdb, "time_image")
    # Dates across, a position going back and forth down: that one stays in index units.
    assert data.meta["x"]["date"] is True and data.meta["x"]["coord"] is True
    np.testing.assert_array_equal(data.arrays["x"], epoch_ms(times(40)))
    assert data.meta["y"]["coord"] is False and "y" not in data.arrays
    assert data.meta["y"]["note"] == "coordinate 'pos' is not monotonic: shown in index units"
    text = read(cdb, "text_image")
    assert text.meta["x"]["coord"] is False and set(text.arrays) == {"z"}
    assert text.meta["x"]["note"] == "coordinate 'label' is text: shown in index units"
    # A dimension without a coordinate says nothing.
    assert text.meta["y"]["note"] is None


def test_datetime_coordinate_of_a_line(cdb: DatabaseFolder) -> None:
    data = read(cdb, "time_line")
    assert data.meta["x"] == {"name": "time", "units": None, "coord": True, "date": True,
                              "note": None}
    assert data.arrays["x"].dtype == np.float64
    expected = epoch_ms(times())
    np.testing.assert_array_equal(data.arrays["x"], expected)
    # 2026-03-04T05:06:07.123 UTC, to the millisecond.
    assert data.arrays["x"][0] == 1_772_600_767_123
    assert np.diff(data.arrays["x"]) == pytest.approx(100.0)
    small = read(cdb, "time_line", max_points=100)
    assert small.meta["downsample"]["method"] == "minmax"
    np.testing.assert_array_equal(small.arrays["x"], expected[small.arrays["i"].astype(int)])
    part = read(cdb, "time_line", region=[N_TIMES - 3, N_TIMES])
    np.testing.assert_array_equal(part.arrays["x"], expected[-3:])


def test_not_a_time_is_nan(cdb: DatabaseFolder) -> None:
    data = read(cdb, "nat_line")
    x = data.arrays["x"]
    assert np.isnan(x[4]) and np.isfinite(np.delete(x, 4)).all()
    np.testing.assert_array_equal(np.delete(x, 4), np.delete(epoch_ms(times(10)), 4))


def test_series_with_time_zone_dates(cdb: DatabaseFolder) -> None:
    data = read(cdb, "dated_series")
    assert data.meta["x"]["date"] is True
    # 06:00 in Berlin (UTC+1 in March) is 05:00 UTC.
    start = np.datetime64("2026-03-04T05:00", "ms").astype(np.int64)
    assert data.arrays["x"].tolist() == [start, start + 60_000, start + 120_000]


@pytest.mark.parametrize(("units", "calendar", "expected"), [
    ("days since 1970-01-01", None, (86_400_000.0, 0.0)),
    ("nanoseconds since 2026-03-04 05:06:07.123", "proleptic_gregorian",
     (1e-6, 1_772_600_767_123.0)),
    ("seconds since 2000-01-01T01:00:00+01:00", "standard", (1000.0, 946_684_800_000.0)),
    ("hours since 2000-01-01 00:00:00 UTC", "gregorian", (3_600_000.0, 946_684_800_000.0)),
    ("Seconds Since 2000-01-01", None, (1000.0, 946_684_800_000.0)),
    ("days since 2000-01-01", "noleap", None),  # not Gregorian dates
    ("seconds", None, None),  # a duration, not a date
    ("fortnights since 2000-01-01", None, None),
    ("days since the start", None, None),
    (None, None, None),
])
def test_cf_time_units(units: str | None, calendar: str | None,
                       expected: tuple[float, float] | None) -> None:
    assert cd._date_encoding(units, calendar) == expected
