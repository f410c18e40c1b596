"""Server tests run against a real uvicorn server on a free 127.0.0.1 port: one per test
module, serving a real database folder, in a thread of the test process so that tests
can publish on its bus and see what its notify hook received."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from runtable.events import EventBus
from runtable.server.app import create_app
from runtable.server.discovery import advertised
from runtable.store import create_folder
from runtable.testing.server_thread import serve_in_thread

from .helpers import TOKEN, RunningServer

PROPOSAL = 1234


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory,
           request: pytest.FixtureRequest) -> Iterator[RunningServer]:
    """A real server for this module. A module may set ``BUS_MAX_QUEUE``."""
    db_dir = tmp_path_factory.mktemp("db")
    create_folder(db_dir, PROPOSAL).close()
    bus = EventBus(max_queue=getattr(request.module, "BUS_MAX_QUEUE", 10_000))
    holder: dict[str, RunningServer] = {}

    def notify(run: int, data: str) -> None:
        srv = holder["server"]
        if srv.notify_error is not None:
            raise srv.notify_error
        srv.notified.append((run, data))

    app = create_app(db_dir, TOKEN, bus=bus, notify=notify)
    with serve_in_thread(app) as url, advertised(db_dir, url, TOKEN):
        holder["server"] = RunningServer(url=url, token=TOKEN, app=app, bus=bus,
                                         db_dir=db_dir)
        yield holder["server"]
