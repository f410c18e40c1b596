"""``GET /api/cell/{run}/{name}/data`` against a real server and a real folder: every
kind of cell, JSON and binary, downsampling, region, slice, Dataset members, errors."""

from __future__ import annotations

import json
import math
import struct
from collections.abc import Iterator
from typing import Any

import numpy as np
import pytest

from runtable.events import EventBus
from runtable.server.app import create_app
from runtable.testing.server_thread import serve_in_thread

# The store tests' folder: one run with every kind of cell (tests/store/celldata_cells.py).
from store.celldata_cells import (
    N_TRACE,
    RUN,
    TRAIN0,
    delays,
    energies,
    epoch_ms,
    image_values,
    make_celldata_folder,
    stack_values,
    times,
    trace_values,
)

from .helpers import TOKEN, RunningServer


@pytest.fixture(scope="module")
def srv(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    db_dir = make_celldata_folder(tmp_path_factory.mktemp("celldata") / "db")
    bus = EventBus()
    app = create_app(db_dir, TOKEN, bus=bus, warm_up=False)
    with serve_in_thread(app) as url:
        yield RunningServer(url=url, token=TOKEN, app=app, bus=bus, db_dir=db_dir)


def get(srv: RunningServer, name: str, query: str = "", run: int = RUN,
        ) -> tuple[int, dict[str, str], bytes]:
    return srv.request("GET", f"/api/cell/{run}/{name}/data{query}")


def get_json(srv: RunningServer, name: str, query: str = "") -> dict[str, Any]:
    status, _, body = get(srv, name, query)
    assert status == 200, body
    return json.loads(body)


def decode_binary(body: bytes) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
    """The binary answer as docs/dev/cell-data.md describes it."""
    assert body[:4] == b"RTCD"
    (n,) = struct.unpack("<I", body[4:8])
    assert (8 + n) % 8 == 0
    header = json.loads(body[8:8 + n])
    arrays = {}
    for spec in header["arrays"]:
        assert spec["offset"] % 8 == 0 and spec["offset"] >= 8 + n
        count = math.prod(spec["shape"])
        arr = np.frombuffer(body, dtype=np.dtype(spec["dtype"]).newbyteorder("<"),
                            count=count, offset=spec["offset"])
        assert arr.nbytes == spec["nbytes"]
        arrays[spec["name"]] = arr.reshape(spec["shape"])
    return header, arrays


def get_binary(srv: RunningServer, name: str, query: str = "",
               ) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
    sep = "&" if query else "?"
    status, headers, body = get(srv, name, f"{query}{sep}format=binary")
    assert status == 200, body
    assert headers["content-type"] == "application/octet-stream"
    return decode_binary(body)


def test_line_json_min_max(srv: RunningServer) -> None:
    data = get_json(srv, "trace", "?max_points=400")
    assert data["kind"] == "line" and data["dims"] == ["trainId"] and data["units"] == "uJ"
    k = data["downsample"]["factor"]
    y = trace_values()
    got = np.array(data["arrays"]["y"]).reshape(-1, 2)
    lo, hi = y.reshape(-1, k).min(axis=1), y.reshape(-1, k).max(axis=1)
    np.testing.assert_array_equal(np.sort(got, axis=1), np.stack([lo, hi], axis=1))
    np.testing.assert_array_equal(np.array(data["arrays"]["x"]),
                                  TRAIN0 + np.array(data["arrays"]["i"]))


def test_full_resolution_line_with_train_ids_binary(srv: RunningServer) -> None:
    header, arrays = get_binary(srv, "trace", "?max_points=0")
    assert header["downsample"] == {"method": "none", "factor": 1}
    assert header["x"] == {"name": "trainId", "units": None, "coord": True, "date": False,
                           "note": None}
    assert arrays["y"].dtype == np.float64
    np.testing.assert_array_equal(arrays["y"], trace_values())
    np.testing.assert_array_equal(arrays["x"], TRAIN0 + np.arange(N_TRACE))


def test_image_binary_block_means_and_percentiles(srv: RunningServer) -> None:
    header, arrays = get_binary(srv, "image", "?max_pixels=1500")
    f = header["downsample"]["factor"]
    assert header["downsample"]["method"] == "mean" and arrays["z"].dtype == np.float32
    img = image_values()
    h, w = math.ceil(300 / f), math.ceil(200 / f)
    assert arrays["z"].shape == (h, w) and h * w <= 1500
    # A block without NaN: the plain mean.
    np.testing.assert_allclose(arrays["z"][5, 6], img[5 * f:6 * f, 6 * f:7 * f].mean(),
                               rtol=1e-6)
    z = arrays["z"]
    np.testing.assert_allclose(header["percentiles"],
                               np.percentile(z[np.isfinite(z)], [1, 99]), rtol=1e-6)
    assert header["x"]["step"] == f and header["y"]["size"] == h


def test_image_json_region_full_resolution(srv: RunningServer) -> None:
    data = get_json(srv, "image", "?region=18,25,9,13")
    assert data["region"] == [18, 25, 9, 13] and data["downsample"]["factor"] == 1
    z = np.array(data["arrays"]["z"], dtype=float)
    expected = image_values()[9:13, 18:25]
    # NaN travels as null in JSON.
    assert data["arrays"]["z"][10 - 9][20 - 18] is None
    np.testing.assert_array_equal(np.isnan(z), np.isnan(expected))
    np.testing.assert_allclose(z[np.isfinite(z)], expected[np.isfinite(expected)], rtol=1e-6)


def test_slice_of_3d(srv: RunningServer) -> None:
    header, arrays = get_binary(srv, "stack", "?slice=2,:,:")
    assert header["slice"] == "2,:,:" and header["shape"] == [4, 30, 40]
    np.testing.assert_array_equal(arrays["z"], stack_values()[2])
    status, _, body = get(srv, "stack", "?slice=9,:,:")
    assert status == 422 and "outside axis 0" in json.loads(body)["detail"]
    status, _, body = get(srv, "stack", "?slice=a,b")
    assert status == 422 and "index or ':'" in json.loads(body)["detail"]
    status, _, _ = get(srv, "image", "?slice=1,:")
    assert status == 422


def test_dataset_member(srv: RunningServer) -> None:
    listing = get_json(srv, "dataset")
    assert [m["name"] for m in listing["members"]] == ["energy", "frame"]
    member = get_json(srv, "dataset", "?path=energy")
    assert member["kind"] == "line" and member["arrays"]["x"][0] == TRAIN0
    status, _, body = get(srv, "dataset", "?path=missing")
    assert status == 404 and "energy, frame" in json.loads(body)["detail"]


def test_objects_and_scalars(srv: RunningServer) -> None:
    fig = get_json(srv, "plotly")
    assert fig["kind"] == "plotly" and fig["figure"]["data"][0]["type"] == "scatter"
    assert get_json(srv, "mpl")["kind"] == "rgb"
    assert get_json(srv, "number")["value"] == 3.5
    assert get_json(srv, "text")["value"] == "hello <b>world</b>"
    assert get_json(srv, "nan")["value"] is None
    header, arrays = get_binary(srv, "number")
    assert header["kind"] == "scalar" and header["arrays"] == [] and arrays == {}
    assert get_json(srv, "with_preview", "?preview=true")["arrays"]["y"] == [0, 1, 2, 3, 4]


def test_errors(srv: RunningServer) -> None:
    boom = get_json(srv, "boom")
    assert boom["kind"] == "error" and boom["error_cls"] == "ZeroDivisionError"
    assert get_json(srv, "skipped")["message"] == "no beam"
    for run, name, status in [(999, "trace", 404), (RUN, "nothere", 404),
                              (RUN + 1, "trace", 404)]:
        code, _, body = get(srv, name, run=run)
        assert code == status and json.loads(body)["detail"]
    code, _, body = get(srv, "trace", "?region=1,2,3")
    assert code == 422 and "region" in json.loads(body)["detail"]
    code, _, _ = get(srv, "trace", "?max_points=-3")
    assert code == 422
    code, _, _ = get(srv, "trace", "?format=xml")
    assert code == 422
    status, _, _ = srv.request("GET", f"/api/cell/{RUN}/trace/data", token=None)
    assert status == 401


def test_too_much_at_full_resolution(srv: RunningServer,
                                     monkeypatch: pytest.MonkeyPatch) -> None:
    from runtable.store import celldata

    monkeypatch.setattr(celldata, "FULL_POINTS_LIMIT", 10)
    code, _, body = get(srv, "trace", "?max_points=0")
    assert code == 413 and "limit" in json.loads(body)["detail"]


def test_image_coordinates_binary(srv: RunningServer) -> None:
    header, arrays = get_binary(srv, "coord_image", "?max_pixels=500")
    names = [spec["name"] for spec in header["arrays"]]
    assert names == ["z", "x", "y"]
    assert arrays["x"].dtype == np.float64 and arrays["x"].shape == (header["x"]["size"],)
    f = header["downsample"]["factor"]
    np.testing.assert_allclose(arrays["x"], delays().reshape(-1, f).mean(axis=1))
    np.testing.assert_allclose(arrays["y"], energies().reshape(-1, f).mean(axis=1))
    assert header["x"]["units"] == "ps" and header["y"]["coord"] is True
    # The region stays in index space; the coordinates sent are the region's.
    header, arrays = get_binary(srv, "coord_image", "?region=70,80,0,3")
    np.testing.assert_array_equal(arrays["x"], delays()[70:80])
    np.testing.assert_array_equal(arrays["y"], energies()[:3])


def test_datetime_coordinates_json(srv: RunningServer) -> None:
    line = get_json(srv, "time_line", "?region=0,5")
    assert line["x"]["date"] is True and line["x"]["coord"] is True
    assert line["arrays"]["x"] == epoch_ms(times(5)).tolist()
    # NaT travels as null, like NaN.
    nat = get_json(srv, "nat_line")
    assert nat["arrays"]["x"][4] is None and nat["arrays"]["x"][3] is not None
    image = get_json(srv, "time_image")
    assert image["x"]["date"] is True and image["arrays"]["x"] == epoch_ms(times(40)).tolist()
    assert "not monotonic" in image["y"]["note"] and "y" not in image["arrays"]
