"""A property-based fuzzer over the whole HTTP API (schemathesis, from the OpenAPI
schema): whatever the requests, no answer is a server error. Bounded budget: a few
examples per route, so the module takes seconds."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings

from runtable.events import EventBus
from runtable.server.app import close_app, create_app
from runtable.store import create_folder

from .helpers import TOKEN

#: Examples per route: the whole module stays within seconds on two loaded cores.
EXAMPLES = 15
#: Loading a context file runs a child process per request: tested on their own.
SLOW = ("/api/context/check", "/api/context")


@pytest.fixture(scope="module")
def api_schema(tmp_path_factory: pytest.TempPathFactory) -> Iterator[schemathesis.BaseSchema]:
    db_dir = tmp_path_factory.mktemp("db")
    with create_folder(db_dir, 1234) as db:
        db.add_user_variable("count", "integer")
        db.add_user_variable("sample", "string")
        for run in (1, 2, 3):
            db.ensure_run(1234, run)
        db.add_time_comment("beam down", timestamp=1.7e9)
    app = create_app(db_dir, TOKEN, bus=EventBus(), notify=lambda run, data: None,
                     warm_up=False)
    schema = schemathesis.openapi.from_asgi(f"/api/openapi.json?token={TOKEN}", app)
    yield schema.exclude(path=list(SLOW))
    close_app(app)


def test_no_request_gets_a_server_error(api_schema: schemathesis.BaseSchema) -> None:
    failures: list[tuple] = []
    operations = [result.ok() for result in api_schema.get_all_operations()]
    assert len(operations) > 15  # every route of the API

    for operation in operations:

        @given(operation.as_strategy())
        @settings(max_examples=EXAMPLES, deadline=None, database=None,
                  suppress_health_check=list(HealthCheck))
        def fuzz(case: schemathesis.Case) -> None:
            response = case.call(headers={"Authorization": f"Bearer {TOKEN}"})
            if response.status_code == 503 and "without a service" in response.text:
                return  # processing control needs `runtable serve`; the answer says so
            if response.status_code >= 500:
                failures.append((case.method, case.formatted_path, case.query, case.body,
                                 response.status_code, response.text[:300]))

        fuzz()
    assert failures == []
