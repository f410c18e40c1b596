"""``GET /api/table?format=binary`` (numeric columns as float64 blocks) and the cell
refresh ``?runs=`` read straight from the database, against a real server and folder."""

from __future__ import annotations

import json
import math
import struct
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from runtable.context.cell import Cell
from runtable.events import EventBus
from runtable.execute import fragment
from runtable.server.app import close_app, create_app
from runtable.server.table import EncodedColumn
from runtable.store import DatabaseFolder, create_folder
from runtable.testing.server_thread import serve_in_thread

from .helpers import TOKEN, RunningServer, get_ready

PROPOSAL = 4321


class Results:
    """What a job's execution produces, for the real fragment writer."""

    def __init__(self, **cells: Any) -> None:
        self.cells = {k: v if isinstance(v, Cell) else Cell(v) for k, v in cells.items()}
        self.errors: dict[str, Exception] = {}
        self.provenance = "context.py"


def merge(db: DatabaseFolder, run: int, **cells: Any) -> None:
    fragment.write_fragment(Results(**cells), db.extracted_dir, PROPOSAL, run)
    db.merge_pending()


def decode(body: bytes) -> tuple[dict[str, Any], set[str]]:
    """The binary answer as the JSON snapshot it stands for, and its float64 columns."""
    assert body[:4] == b"RTB1"
    (length,) = struct.unpack("<I", body[4:8])
    head = json.loads(body[8:8 + length].decode())
    start = 8 + length + (-(8 + length) % 8)
    assert start % 8 == 0
    n = len(head["runs"])
    typed = {name for name, column in head["columns"].items() if "f64" in column}
    points = np.frombuffer(body, "<f4", offset=start + len(typed) * n * 8)
    used = 0
    for name, column in head["columns"].items():
        if "f64" in column:
            k = column.pop("f64")
            block = np.frombuffer(body, "<f8", count=n, offset=start + k * n * 8)
            column["values"] = [None if math.isnan(v) else v for v in block.tolist()]
        base = column.pop("pts", None)
        for cell in column["cells"].values():
            if "pts" in cell:
                at, count = cell.pop("pts")
                line = points[base + at:base + at + count].tolist()
                cell["points"] = [None if math.isnan(p) else p for p in line]
                used += count
        head["columns"][name] = {"values": column["values"], "cells": column["cells"]}
    assert used == len(points)  # nothing else follows the points
    return head, typed


def as_float32(table: dict[str, Any]) -> dict[str, Any]:
    """``table`` with trendline points as float32 carries them."""
    for column in table["columns"].values():
        for cell in column["cells"].values():
            if "points" in cell:
                cell["points"] = [None if p is None else float(np.float32(p))
                                  for p in cell["points"]]
    return table


@pytest.fixture
def server(tmp_path: Path) -> Iterator[tuple[RunningServer, DatabaseFolder]]:
    db = create_folder(tmp_path / "db", PROPOSAL)
    db.update_computed_variables({
        "x": {"title": "X"}, "n": {"title": "N"}, "label": {"title": "Label"},
        "hot": {"title": "Hot"}, "big": {"title": "Big"}, "trend": {"title": "Trend"}})
    merge(db, 1, x=Cell(np.float64(0.5), units="mJ"), n=3, label="a", hot=1.0, big=2**60,
          trend=np.linspace(0.1, 3.3, 300))
    merge(db, 3, trend=np.array([1.5, np.nan, 2.5]))
    merge(db, 2, x=np.float64("nan"), n=4, label="b", hot=float("inf"), big=1)
    merge(db, 3, n=5)
    db.set_comment(PROPOSAL, 2, "bad beam")
    app = create_app(tmp_path / "db", TOKEN, bus=EventBus())
    with serve_in_thread(app) as url:
        yield RunningServer(url=url, token=TOKEN, app=app, bus=app.state.bus,
                            db_dir=tmp_path / "db"), db
    close_app(app)
    db.close()


def get(server: RunningServer, path: str, **headers: str) -> tuple[dict[str, str], bytes]:
    status, hdrs, body = get_ready(server, path, **headers)
    assert status == 200, body
    return hdrs, body


def test_binary_snapshot_is_the_json_snapshot_with_numbers_in_blocks(server) -> None:
    srv, _ = server
    _, text = get(srv, "/api/table")
    headers, body = get(srv, "/api/table?format=binary")
    assert headers["content-type"] == "application/octet-stream"
    assert headers.get("content-encoding", "identity") == "identity"
    table, typed = decode(body)
    # Finite numbers go binary; strings, inf and integers beyond 2**53 stay JSON.
    assert typed == {"x", "n"}
    assert table == as_float32(json.loads(text))
    # Trendline points travel as float32 after the float64 blocks.
    trend = table["columns"]["trend"]["cells"]
    assert 10 < len(trend["0"]["points"]) <= 200
    assert trend["2"]["points"] == [1.5, 2.5]  # the store keeps finite points
    assert table["columns"]["x"] == {"values": [0.5, None, None], "cells": {}}
    assert table["comment"] == [None, "bad beam", None]


def test_binary_snapshot_is_gzipped_for_clients_that_take_it(server) -> None:
    """Compressed where it pays (the head, integers, gaps), the rest stored as it is,
    with the blocks kept deflated between answers; the same bytes once inflated."""
    import gzip

    srv, db = server
    _, plain = get(srv, "/api/table?format=binary")
    for _ in range(2):  # (the second answer from what was kept)
        headers, body = get(srv, "/api/table?format=binary", **{"Accept-Encoding": "gzip"})
        assert headers["content-encoding"] == "gzip"
        assert gzip.decompress(body) == plain
    merge(db, 2, x=1.75)
    headers, body = get(srv, "/api/table?format=binary", **{"Accept-Encoding": "gzip"})
    assert decode(gzip.decompress(body))[0]["columns"]["x"]["values"] == [0.5, 1.75, None]


def test_binary_columns_by_name(server) -> None:
    """The grid asks for the columns it needs: every row of those, every column listed
    in ``variables``; no names at all (``first=0``) is the table without its columns."""
    srv, _ = server
    whole, _ = decode(get(srv, "/api/table?format=binary")[1])
    some, typed = decode(get(srv, "/api/table?format=binary&names=label,x,nope")[1])
    assert list(some["columns"]) == ["x", "label"] and typed == {"x"}
    assert some["columns"]["label"] == whole["columns"]["label"]
    # What places the rows, not the run-level lists or the variables (the page has them).
    assert some["runs"] == whole["runs"] and "variables" not in some and "comment" not in some
    bare, _ = decode(get(srv, "/api/table?format=binary&first=0")[1])
    assert bare["columns"] == {} and bare["comment"] == whole["comment"]


def test_the_first_read_of_a_big_folder_answers_with_its_progress(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """While the table of a folder without a copy is read for the first time, the
    page gets how far it is (503 with ``progress``), not a request that hangs."""
    import threading

    from runtable.server.table import cache as server_table

    db = create_folder(tmp_path / "db", PROPOSAL)
    merge(db, 1, x=0.5)
    release = threading.Event()
    load = server_table.TableCache._load

    def slow(self: server_table.TableCache) -> Any:
        self.progress = (512, 2048)
        release.wait(30)
        return load(self)

    monkeypatch.setattr(server_table.TableCache, "_load", slow)
    monkeypatch.setattr(server_table, "READY_WAIT_S", 0.05)
    app = create_app(tmp_path / "db", TOKEN, bus=EventBus())
    try:
        with serve_in_thread(app) as url:
            srv = RunningServer(url=url, token=TOKEN, app=app, bus=app.state.bus,
                                db_dir=tmp_path / "db")
            for path in ("/api/table?format=binary", "/api/table"):
                status, headers, body = srv.request("GET", path)
                assert status == 503 and headers["retry-after"] == "1"
                assert json.loads(body)["progress"] == {"done": 512, "total": 2048}
            status, _, body = srv.request("GET", "/api/table?runs=1")  # not the whole table
            assert status == 200
            release.set()
            app.state.table.wait_for_warm_up()
            assert decode(get(srv, "/api/table?format=binary")[1])[0]["runs"] == [1]
    finally:
        release.set()
        close_app(app)
        db.close()


def test_binary_snapshot_follows_changes(server) -> None:
    srv, db = server
    decode(get(srv, "/api/table?format=binary")[1])  # the cache is filled
    merge(db, 4, x=2.25, n=6)
    merge(db, 1, n="many")  # a string lands in a numeric column
    table, typed = decode(get(srv, "/api/table?format=binary")[1])
    assert typed == {"x"}
    assert table["runs"] == [1, 2, 3, 4]
    assert table["columns"]["x"]["values"] == [0.5, None, None, 2.25]
    assert table["columns"]["n"]["values"] == ["many", 4, 5, 6]
    assert table == as_float32(json.loads(get(srv, "/api/table")[1]))


def test_binary_is_for_the_whole_table_only(server) -> None:
    srv, _ = server
    status, _, body = srv.request("GET", "/api/table?format=binary&runs=1")
    assert status == 422
    assert "leave out runs=" in json.loads(body)["detail"]
    status, _, _ = srv.request("GET", "/api/table?format=xml")
    assert status == 422


def test_cells_of_one_run_are_read_without_refreshing_the_cache(server) -> None:
    srv, db = server
    get(srv, "/api/table")
    cache = srv.app.state.table
    seq = cache._table.seq
    merge(db, 2, x=Cell(np.float64(7.5), units="mJ"), n=40)
    db.set_comment(PROPOSAL, 2, "better beam")
    _, body = get(srv, "/api/table?runs=2&names=x,n")
    part = json.loads(body)
    assert part["runs"] == [2]
    assert part["comment"] == ["better beam"]
    assert [v["name"] for v in part["variables"]] == ["x", "n"]
    assert part["variables"][0]["units"] == "mJ"
    # Units equal to the column's are not repeated per cell, as in the full snapshot.
    assert part["columns"] == {"x": {"values": [7.5], "cells": {}},
                               "n": {"values": [40], "cells": {}}}
    assert cache._table.seq == seq  # answered from the database, the cache untouched
    full = json.loads(get(srv, "/api/table")[1])
    assert full["columns"]["x"]["values"] == [0.5, 7.5, None]
    assert full["comment"] == [None, "better beam", None]
    # A run that does not exist, or another column set: simply absent.
    assert json.loads(get(srv, "/api/table?runs=99")[1])["runs"] == []


def test_encoded_column_keeps_its_float64_copy_in_step() -> None:
    column = EncodedColumn([1.0, None, 3.0], None, None, np.array([1.0, math.nan, 3.0]))
    column.set(1, 2.5, None)
    assert column.f64_bytes() == np.array([1.0, 2.5, 3.0], "<f8").tobytes()
    column.grow(5)
    assert np.isnan(np.frombuffer(column.f64_bytes() or b"", "<f8")[3:]).all()
    column.set(0, None, None)
    assert math.isnan(np.frombuffer(column.f64_bytes() or b"", "<f8")[0])
    column.set(2, True, None)  # a bool is not a number here
    assert column.f64_bytes() is None
    assert column.json() == b'{"values":[null,2.5,true,null,null],"cells":{}}'


def test_binary_in_two_parts_holds_every_column_once(server) -> None:
    srv, _ = server
    whole, _ = decode(get(srv, "/api/table?format=binary")[1])
    first, _ = decode(get(srv, "/api/table?format=binary&first=2")[1])
    rest, _ = decode(get(srv, "/api/table?format=binary&skip=2")[1])
    names = [v["name"] for v in whole["variables"]]
    # Every part lists every variable and row; the data is split by column position.
    assert first["variables"] == rest["variables"] == whole["variables"]
    assert first["runs"] == rest["runs"] == whole["runs"]
    assert list(first["columns"]) == names[:2]
    assert list(rest["columns"]) == names[2:]
    assert {**first["columns"], **rest["columns"]} == whole["columns"]
    assert "trend" in rest["columns"]
    status, _, body = srv.request("GET", "/api/table?first=2")
    assert status == 422
    assert "format=binary" in json.loads(body)["detail"]


def test_every_column_is_encoded_in_the_background_for_the_page(server) -> None:
    # The page's first load leaves most columns out and then asks for all of them by
    # name, part after part: they are encoded (and deflated) ahead of its requests,
    # and kept in step with later merges.
    srv, db = server
    cache = srv.app.state.table
    get(srv, "/api/table?format=binary&first=1", **{"Accept-Encoding": "gzip"})
    get(srv, "/api/table?format=binary&names=n", **{"Accept-Encoding": "gzip"})
    deadline = time.monotonic() + 30
    while len(cache._columns) < len(cache._order) and time.monotonic() < deadline:
        time.sleep(0.01)
    assert set(cache._columns) == {c.name for c in cache._order}
    assert cache._columns["n"]._f64_gz is not None
    merge(db, 2, n=41)
    part, _ = decode(get(srv, "/api/table?format=binary&names=n,label")[1])
    assert part["columns"]["n"]["values"] == [3, 41, 5]
    assert part["columns"]["label"]["values"] == ["a", "b", None]


def test_closing_the_app_stops_the_encoding_in_the_background(tmp_path: Path) -> None:
    # Closing a reader under the encoding thread's query would crash the process.
    db = create_folder(tmp_path / "db", PROPOSAL)
    db.update_computed_variables({f"v{i}": {"title": f"V{i}"} for i in range(200)})
    merge(db, 1, **{f"v{i}": float(i) for i in range(200)})
    db.close()
    app = create_app(tmp_path / "db", TOKEN, warm_up=False)
    with serve_in_thread(app) as url:
        server = RunningServer(url=url, token=TOKEN, app=app, bus=app.state.bus,
                               db_dir=tmp_path / "db")
        get(server, "/api/table?format=binary&names=v0")
        cache = app.state.table
        deadline = time.monotonic() + 10  # (the encoding starts once the answer is sent)
        while cache._rest_thread is None and len(cache._columns) < len(cache._order) \
                and time.monotonic() < deadline:
            time.sleep(0.001)
        encoding = cache._rest_thread
    close_app(app)
    assert encoding is None or not encoding.is_alive()


def test_binary_of_a_folder_with_runs_of_another_proposal(server) -> None:
    """Rows of other proposals are left out; the answer is then all JSON."""
    srv, db = server
    fragment.write_fragment(Results(x=9.0), db.extracted_dir, PROPOSAL + 1, 1)
    db.merge_pending()
    table, typed = decode(get(srv, "/api/table?format=binary")[1])
    assert typed == set()
    assert table["runs"] == [1, 2, 3]
    assert table == json.loads(get(srv, "/api/table")[1])
