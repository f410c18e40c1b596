"""``GET /api/table?where=`` and ``GET /api/table/runs`` against a real server: the
same rows as the read API's ``Database.table(where=...)`` for every shared case, and
a clear 422 for an expression that cannot be read."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import quote

import pytest

from runtable.api import Database
from runtable.events import EventBus
from runtable.server.app import close_app, create_app
from runtable.testing.filter_cases import CASES, build_where_folder
from runtable.testing.server_thread import serve_in_thread

from .helpers import TOKEN, RunningServer, get_ready


@pytest.fixture(scope="module")
def where_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    db_dir = build_where_folder(tmp_path_factory.mktemp("where_server") / "amore")
    bus = EventBus()
    app = create_app(db_dir, TOKEN, bus=bus)
    with serve_in_thread(app) as url:
        yield RunningServer(url=url, token=TOKEN, app=app, bus=bus, db_dir=db_dir)
    close_app(app)


@pytest.mark.parametrize(("expression", "runs"), CASES, ids=[c[0] or "empty" for c in CASES])
def test_where_gives_the_rows_of_the_read_api(where_server: RunningServer, expression: str,
                                              runs: list[int]) -> None:
    status, _, body = get_ready(where_server, f"/api/table?where={quote(expression)}")
    assert status == 200, body
    table = json.loads(body)
    assert table["runs"] == runs
    with Database(where_server.db_dir) as db:
        expected = db.table(where=expression)
    assert table["runs"] == expected["run"].tolist()
    assert table["columns"]["n_trains"]["values"] == expected["n_trains"].tolist()

    status, _, body = get_ready(where_server, f"/api/table/runs?where={quote(expression)}")
    assert status == 200, body
    answer = json.loads(body)
    assert answer["runs"] == runs
    assert answer["seq"] == where_server.bus.last_seq


def test_runs_answer_gives_the_canonical_parts(where_server: RunningServer) -> None:
    expression = "Trains>=700 and (sample==YAG or ratio has no error) and later is not missing"
    status, _, body = get_ready(where_server, f"/api/table/runs?where={quote(expression)}")
    assert status == 200, body
    answer = json.loads(body)
    assert answer["parts"] == [
        {"text": "Trains >= 700", "field": "n_trains", "model": {"min": 700}},
        {"text": 'sample = "YAG" or ratio has no error', "field": None, "model": None},
        {"text": "later is not missing", "field": None, "model": None},
    ]
    assert answer["expression"] == ('Trains >= 700 and (sample = "YAG" or ratio has no '
                                    'error) and later is not missing')
    assert answer["runs"] == [9, 10, 11, 12]


@pytest.mark.parametrize("path", ["/api/table?where=", "/api/table/runs?where="])
def test_a_bad_expression_is_a_422_that_says_why(where_server: RunningServer, path: str) -> None:
    status, _, body = where_server.request("GET", path + quote("n_trainz > 3"))
    assert status == 422
    assert "did you mean 'n_trains'" in json.loads(body)["detail"]
    status, _, body = where_server.request("GET", path + quote("n_trains >"))
    assert status == 422
    assert "cannot read the filter" in json.loads(body)["detail"]


def test_where_is_not_for_the_binary_form(where_server: RunningServer) -> None:
    status, _, body = where_server.request("GET", "/api/table?format=binary&where=run%3D1")
    assert status == 422
    assert "format=json" in json.loads(body)["detail"]


def test_names_and_where_together(where_server: RunningServer, tmp_path: Path) -> None:
    status, _, body = get_ready(where_server, "/api/table?names=sample&where=run%20in%203..4")
    assert status == 200, body
    table = json.loads(body)
    assert table["runs"] == [3, 4]
    assert set(table["columns"]) == {"sample"}
    assert table["columns"]["sample"]["values"] == ["YAG", "Au foil"]


@pytest.mark.parametrize(("expression", "field", "model"), [
    ("n_trains in 700..900", "n_trains", {"min": 700, "max": 900}),
    ("(Trains <= 900 or n_trains is missing)", "n_trains", {"max": 900, "keepEmpty": True}),
    ('sample in ["YAG", empty]', "sample", {"choices": ["YAG", "empty"]}),
    ("n_trains in [600, 650.0]", "n_trains", {"choices": ["600", "650"], "numbers": True}),
    ("good = true", "good", {"choices": ["true"]}),
    ("ratio has error", "ratio", {"presence": "error"}),
    ("comment is missing", "comment", {"presence": "empty"}),
    ("sample contains foil", "sample", {"text": "foil"}),
    ('timestamp >= "2023-11-14 23:53:20+01:00"', "timestamp", {"min": 1_700_002_400.0}),
    ("run in 3..", "run", {"min": 3}),
    ("not run = 3", None, None),
    ("tag:beam has error", None, None),
])
def test_a_part_a_column_filter_can_show_comes_with_its_settings(
        where_server: RunningServer, expression: str, field: str | None, model: object) -> None:
    status, _, body = get_ready(where_server, f"/api/table/runs?where={quote(expression)}")
    assert status == 200, body
    [part] = json.loads(body)["parts"]
    assert (part["field"], part["model"]) == (field, model)
