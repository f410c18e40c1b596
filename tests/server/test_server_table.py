"""GET /api/table and the thumbnails, against a real server and a folder filled by the
real fragment writer and merger (and, once, by executing a real context file)."""

from __future__ import annotations

import gzip
import json
import textwrap
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import numpy as np
import pytest

from runtable.context.cell import Cell
from runtable.context.variable import Skip
from runtable.events import EventBus, ValuesMerged
from runtable.execute import fragment
from runtable.jobs.model import Job, JobState
from runtable.jobs.store import JobStore
from runtable.server.app import close_app, create_app
from runtable.store import DatabaseFolder, create_folder
from runtable.testing.server_thread import serve_in_thread

from .helpers import TOKEN, RunningServer, get_ready

PROPOSAL = 1234


def results(errors: dict | None = None, provenance: str = "context.py",
            **cells: Any) -> SimpleNamespace:
    """What a job's execution produces, for the real fragment writer."""
    return SimpleNamespace(
        cells={k: v if isinstance(v, Cell) else Cell(v) for k, v in cells.items()},
        errors=errors or {}, provenance=provenance)


def merge(db: DatabaseFolder, run: int, res: SimpleNamespace) -> None:
    """Write ``res`` as run ``run``'s fragment and merge it, as the service does."""
    fragment.write_fragment(res, db.extracted_dir, PROPOSAL, run)
    db.merge_pending()


@pytest.fixture(scope="module")
def filled(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[RunningServer,
                                                                        DatabaseFolder]]:
    """A server on a folder with runs 1-3: every kind of cell, via real fragments."""
    db_dir = tmp_path_factory.mktemp("table")
    db = create_folder(db_dir, PROPOSAL)
    db.update_computed_variables({
        "flux": {"title": "XGM/Photon flux", "description": "Mean pulse energy",
                 "tags": ["xgm"]},
        "n": {"title": "Trains"}, "label": {"title": "Label"},
        "img": {"title": "Camera"}, "trend": {"title": "Trend"}, "c": {"title": "Complex"},
        "cube": {"title": "Cube"}, "bad": {"title": "Bad"}, "skipped": {"title": "Skipped"},
    })
    merge(db, 1, results(
        start_time=1.7e9,
        flux=Cell(np.float64(1.25), units="µJ", bold=True, background="#ff0000"),
        n=40, label="sample A", img=np.arange(12.0).reshape(3, 4),
        trend=np.arange(500.0), c=1 + 2j, cube=np.zeros((2, 3, 4)),
        errors={"bad": ZeroDivisionError("division by zero"),
                "skipped": Skip("no XGM data in this run")}))
    merge(db, 2, results(flux=Cell(np.float64(float("nan")), units="µJ"), n=41))
    merge(db, 3, results(flux=Cell(np.float64(3.5e-7), units="mJ"), n=42,
                         provenance="manual"))
    db.set_comment(PROPOSAL, 2, "bad beam")
    bus = EventBus()
    app = create_app(db_dir, TOKEN, bus=bus)
    with serve_in_thread(app) as url:
        yield RunningServer(url=url, token=TOKEN, app=app, bus=bus, db_dir=db_dir), db
    close_app(app)
    db.close()


def get_json(server: RunningServer, path: str) -> Any:
    status, _, body = get_ready(server, path)
    assert status == 200, body
    return json.loads(body)


def test_snapshot_is_columnar_with_every_kind_of_cell(filled) -> None:
    server, _ = filled
    table = get_json(server, "/api/table")
    assert table["proposal"] == PROPOSAL
    assert table["bus"] == server.bus.id
    assert table["seq"] == server.bus.last_seq
    assert table["runs"] == [1, 2, 3]
    assert table["start_time"] == [1.7e9, None, None]
    assert all(isinstance(t, float) for t in table["added_at"])
    assert table["comment"] == [None, "bad beam", None]
    assert table["jobs"] == {}
    # Column order: as the context file's variables were recorded.
    names = [v["name"] for v in table["variables"]]
    assert names == ["flux", "n", "label", "img", "trend", "c", "cube", "bad", "skipped"]
    assert set(table["columns"]) == set(names)
    flux_var = table["variables"][0]
    assert flux_var == {"name": "flux", "title": "XGM/Photon flux",
                        "description": "Mean pulse energy", "tags": ["xgm"],
                        "user_editable": False, "type": None, "units": "µJ"}

    cols = table["columns"]
    # NaN is null; units only where they differ from the column's; Cell styles.
    assert cols["flux"]["values"] == [1.25, None, 3.5e-7]
    assert cols["flux"]["cells"] == {
        "0": {"bold": True, "background": "#ff0000"},
        "2": {"units": "mJ", "provenance": "external"},
    }
    assert cols["n"]["values"] == [40, 41, 42]
    assert cols["n"]["cells"] == {"2": {"provenance": "external"}}
    assert cols["label"]["values"] == ["sample A", None, None]
    assert cols["img"] == {"values": [None, None, None], "cells": {"0": {"kind": "image"}}}
    trend = cols["trend"]["cells"]["0"]
    assert trend["kind"] == "trendline"
    assert 10 < len(trend["points"]) <= 200
    assert trend["points"][0] == 0.0 and trend["points"] == sorted(trend["points"])
    assert cols["trend"]["values"][0] is None
    assert cols["c"]["values"][0] == "1+2j"
    assert cols["c"]["cells"]["0"] == {"kind": "complex", "re": 1.0, "im": 2.0}
    cube = cols["cube"]
    assert cube["values"][0] == "float64: (2, 3, 4)" or cube["cells"]["0"]["kind"] == "array"
    assert cols["bad"]["values"] == [None, None, None]
    assert cols["bad"]["cells"]["0"] == {"kind": "error", "message": "division by zero",
                                        "error_cls": "ZeroDivisionError"}
    skipped = cols["skipped"]["cells"]["0"]
    assert skipped["kind"] == "skip"
    assert "no XGM data" in skipped["message"]


def test_filters_select_rows_and_columns(filled) -> None:
    server, _ = filled
    table = get_json(server, "/api/table?runs=2-3&names=n,label,nonexistent")
    assert table["runs"] == [2, 3]
    assert table["comment"] == ["bad beam", None]
    assert [v["name"] for v in table["variables"]] == ["n", "label"]
    assert table["columns"]["n"] == {"values": [41, 42], "cells": {"1": {
        "provenance": "external"}}}
    assert table["columns"]["label"] == {"values": [None, None], "cells": {}}
    assert get_json(server, "/api/table?runs=99")["runs"] == []
    assert get_json(server, "/api/table?runs=1,3")["runs"] == [1, 3]


@pytest.mark.parametrize(("query", "mentions"), [
    ("runs=abc", "'abc' is not a run number"),
    ("runs=7-3", "goes backwards"),
    ("runs=1-99999999", "more than"),
])
def test_bad_filters_are_422_with_a_sentence(filled, query: str, mentions: str) -> None:
    server, _ = filled
    status, _, body = server.request("GET", f"/api/table?{query}")
    assert status == 422
    assert mentions in json.loads(body)["detail"]


def test_table_is_gzipped_when_the_client_accepts_it(filled) -> None:
    server, _ = filled
    status, headers, body = server.request("GET", "/api/table",
                                           headers={"Accept-Encoding": "gzip"})
    assert status == 200
    assert headers["content-encoding"] == "gzip"
    assert json.loads(gzip.decompress(body))["runs"] == [1, 2, 3]


def test_token_is_required(filled) -> None:
    server, _ = filled
    for path in ("/api/table", "/api/cell/1/img/thumbnail.png"):
        status, _, _ = server.request("GET", path, token=None)
        assert status == 401
        status, _, _ = server.request("GET", path, token="wrong-token-123")
        assert status == 401


def test_thumbnail_with_etag(filled) -> None:
    server, _ = filled
    status, headers, body = server.request("GET", "/api/cell/1/img/thumbnail.png")
    assert status == 200
    assert headers["content-type"] == "image/png"
    assert body.startswith(b"\x89PNG\r\n\x1a\n")
    assert headers["cache-control"] == "no-cache"
    etag = headers["etag"]
    status, headers2, body2 = server.request("GET", "/api/cell/1/img/thumbnail.png",
                                             headers={"If-None-Match": etag})
    assert status == 304 and body2 == b"" and headers2["etag"] == etag
    status, _, body3 = server.request("GET", "/api/cell/1/img/thumbnail.png",
                                      headers={"If-None-Match": '"other"'})
    assert status == 200 and body3 == body


@pytest.mark.parametrize(("path", "mentions"), [
    ("/api/cell/9/img/thumbnail.png", "Run 9"),
    ("/api/cell/2/img/thumbnail.png", "no image"),
    ("/api/cell/1/n/thumbnail.png", "no image"),
    ("/api/cell/1/nothing/thumbnail.png", "no image"),
])
def test_thumbnail_404(filled, path: str, mentions: str) -> None:
    server, _ = filled
    status, _, body = server.request("GET", path)
    assert status == 404
    assert mentions in json.loads(body)["detail"]


def test_openapi_lists_the_routes(filled) -> None:
    server, _ = filled
    schema = get_json(server, "/api/openapi.json")
    paths = schema["paths"]
    assert "get" in paths["/api/table"]
    assert "get" in paths["/api/cell/{run}/{name}/thumbnail.png"]
    assert "put" in paths["/api/runs/{run}/comment"]
    assert "put" in paths["/api/runs/{run}/values/{name}"]
    assert "post" in paths["/api/variables"]
    assert {"get", "post"} <= set(paths["/api/time-comments"])
    assert {"put", "delete"} <= set(paths["/api/time-comments/{comment_id}"])


# -- a folder that changes -----------------------------------------------------------------
@pytest.fixture
def live(tmp_path: Path) -> Iterator[tuple[RunningServer, DatabaseFolder]]:
    """A server on a fresh folder with run 1, for tests that change it."""
    db = create_folder(tmp_path / "db", PROPOSAL)
    db.update_computed_variables({"n": {"title": "Trains"}, "x": {"title": "X"}})
    merge(db, 1, results(n=1, x=0.5))
    bus = EventBus()
    app = create_app(tmp_path / "db", TOKEN, bus=bus)
    with serve_in_thread(app) as url:
        yield RunningServer(url=url, token=TOKEN, app=app, bus=bus,
                            db_dir=tmp_path / "db"), db
    close_app(app)
    db.close()


def test_merges_after_the_first_load_are_seen(live) -> None:
    server, db = live
    first = get_json(server, "/api/table")
    assert first["runs"] == [1] and first["columns"]["n"]["values"] == [1]
    # A new run, a changed value, a new variable, a deleted one: what the service does.
    merge(db, 2, results(n=2, x=1.5))
    merge(db, 1, results(n=10))
    db.update_computed_variables({"y": {"title": "Y", "tags": ["new"]}})
    merge(db, 2, results(y="why"))
    server.bus.publish(ValuesMerged(PROPOSAL, 2, ("y",)))
    table = get_json(server, "/api/table")
    assert table["seq"] == 1
    assert table["runs"] == [1, 2]
    assert table["columns"]["n"]["values"] == [10, 2]
    assert table["columns"]["x"]["values"] == [0.5, 1.5]
    assert table["columns"]["y"]["values"] == [None, "why"]
    assert [v["name"] for v in table["variables"]] == ["n", "x", "y"]
    assert table["variables"][2]["tags"] == ["new"]
    # The cached snapshot equals a fresh server's first answer for the same folder.
    fresh = create_app(server.db_dir, TOKEN, bus=server.bus)
    with serve_in_thread(fresh) as url:
        other = RunningServer(url=url, token=TOKEN, app=fresh, bus=server.bus,
                              db_dir=server.db_dir)
        assert get_json(other, "/api/table") == table
    close_app(fresh)

    db.delete_variable("x")
    db.set_comment(PROPOSAL, 1, "hello")
    table = get_json(server, "/api/table")
    assert "x" not in table["columns"]
    assert [v["name"] for v in table["variables"]] == ["n", "y"]
    assert table["comment"] == ["hello", None]
    assert get_json(server, "/api/table?runs=1&names=n")["columns"]["n"]["values"] == [10]


def test_closing_the_app_waits_for_the_background_read(tmp_path: Path) -> None:
    # Closing a reader under the warm-up thread's query crashes the process (sqlite3).
    db = create_folder(tmp_path / "db", PROPOSAL)
    db.update_computed_variables({f"v{i}": {"title": f"V{i}"} for i in range(50)})
    for run in range(1, 4):
        merge(db, run, results(**{f"v{i}": float(run * i) for i in range(50)}))
    db.close()
    app = create_app(tmp_path / "db", TOKEN, warm_up=False)
    reading = app.state.table.warm_up()
    close_app(app)
    assert not reading.is_alive()


def test_units_of_cells_merged_after_the_first_load_reach_every_answer(live) -> None:
    # A column without units when the table was first read (the service started
    # before any run was processed) whose cells then arrive with units.
    server, db = live
    db.update_computed_variables({"flux": {"title": "Flux"}})
    get_json(server, "/api/table")
    merge(db, 2, results(flux=Cell(np.float64(2.5), units="µJ")))
    whole = get_json(server, "/api/table")
    row = whole["runs"].index(2)
    assert whole["columns"]["flux"]["cells"][str(row)]["units"] == "µJ"
    part = get_json(server, "/api/table?runs=2&names=flux")
    assert part["columns"]["flux"]["values"] == [2.5]
    assert part["columns"]["flux"]["cells"]["0"]["units"] == "µJ"


def test_jobs_show_the_active_job_per_run(live) -> None:
    server, _ = live
    store = JobStore(server.db_dir)
    try:
        store.add(Job(id=0, proposal=PROPOSAL, run=1, state=JobState.QUEUED))
        running = store.add(Job(id=0, proposal=PROPOSAL, run=1, state=JobState.QUEUED))
        store.save(running.copy(state=JobState.RUNNING, started_at=time.time()))
        store.add(Job(id=0, proposal=PROPOSAL, run=2, state=JobState.QUEUED))
        store.add(Job(id=0, proposal=PROPOSAL, run=3, state=JobState.DONE))
        store.add(Job(id=0, proposal=999, run=4, state=JobState.RUNNING))
        assert get_json(server, "/api/table")["jobs"] == {"1": "running", "2": "queued"}
    finally:
        store.close()


def test_table_of_a_real_context_execution(tmp_path: Path, data_root) -> None:
    """The whole path: a context file executed for a real (mock) run, merged, served."""
    from runtable.execute import execute_run

    context = textwrap.dedent('''
        import numpy as np
        from damnit_ctx import Cell, Variable

        @Variable(title="Trains")
        def n_trains(run):
            return len(run.train_ids)

        @Variable(title="Flux", units="mJ")
        def flux(run):
            return Cell(np.float64(2.5), bold=True)

        @Variable(title="Broken")
        def broken(run):
            return 1 / 0
    ''')
    db = create_folder(tmp_path / "db", PROPOSAL, context_text=context)
    try:
        outcome = execute_run(db.path, PROPOSAL, 1)
        assert outcome.failure is None
        db.update_computed_variables({"n_trains": {"title": "Trains"},
                                      "flux": {"title": "Flux"},
                                      "broken": {"title": "Broken"}})
        db.merge_pending()
        app = create_app(db.path, TOKEN)
        with serve_in_thread(app) as url:
            req = urllib.request.Request(url + "/api/table",
                                         headers={"Authorization": f"Bearer {TOKEN}"})
            with urllib.request.urlopen(req, timeout=10) as resp:
                table = json.loads(resp.read())
        close_app(app)
    finally:
        db.close()
    cols = table["columns"]
    assert table["runs"] == [1]
    assert isinstance(cols["n_trains"]["values"][0], int) and cols["n_trains"]["values"][0] > 0
    assert cols["flux"]["values"] == [2.5]
    assert cols["flux"]["cells"]["0"]["bold"] is True
    assert cols["broken"]["cells"]["0"]["kind"] == "error"
    assert cols["broken"]["cells"]["0"]["error_cls"] == "ZeroDivisionError"
    assert isinstance(table["start_time"][0], float)


@pytest.mark.parametrize("version", [1, 2, 4])
def test_a_folder_made_by_the_reference_system(tmp_path: Path, version: int) -> None:
    """Served as it is (upgraded on first access when older than v4), edits included."""
    from tests.store.reference_db import ARRAY, make_reference_db

    make_reference_db(tmp_path / "db", version)
    app = create_app(tmp_path / "db", TOKEN)
    with serve_in_thread(app) as url:
        server = RunningServer(url=url, token=TOKEN, app=app, bus=app.state.bus,
                               db_dir=tmp_path / "db")
        table = get_json(server, "/api/table")
        assert table["runs"] == [1, 2]
        assert table["comment"] == ["first run", None]
        assert table["start_time"] == [1700000000.0, 1700000500.0]
        by_name = {v["name"]: v for v in table["variables"]}
        assert by_name["x"]["title"] == "X value"
        assert by_name["note"]["user_editable"] is True
        cols = table["columns"]
        assert cols["x"]["values"] == [1.5, 2.5]
        assert cols["arr"]["values"][0] == f"{ARRAY.dtype}: {ARRAY.shape}"
        assert cols["arr"]["cells"]["0"] == {"kind": "array"}
        assert cols["note"] == {"values": [None, "typed"], "cells": {"1": {"provenance": "user"}}}
        status, _, body = server.request("PUT", "/api/runs/1/values/note",
                                         body={"value": "edited"})
        assert status == 200, body
        assert get_json(server, "/api/table?runs=1&names=note")["columns"]["note"][
            "values"] == ["edited"]
        assert [c["text"] for c in get_json(server, "/api/time-comments")] == ["beam down"]
    close_app(app)


def test_a_variable_of_bools_is_sent_as_booleans_without_units(tmp_path: Path) -> None:
    with create_folder(tmp_path, PROPOSAL) as db:
        db.update_computed_variables({"ok": {"title": "OK"}})
        merge(db, 1, results(ok=Cell(True, units="mm")))
        merge(db, 2, results(ok=Cell(np.bool_(False), units="mm")))
    app = create_app(tmp_path, TOKEN, bus=EventBus())
    try:
        with serve_in_thread(app) as url:
            server = RunningServer(url=url, token=TOKEN, app=app, bus=app.state.bus,
                                   db_dir=tmp_path)
            column = get_json(server, "/api/table")["columns"]["ok"]
    finally:
        close_app(app)
    # (1 == True in Python: compare what JSON sent, true/false, not 1/0.)
    assert column["values"][0] is True and column["values"][1] is False
    assert column.get("cells", {}) == {}
