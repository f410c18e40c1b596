"""The ASGI app: REST under ``/api`` (OpenAPI at ``/api/openapi.json``), one WebSocket
for live events at ``/api/events``, and the web GUI at ``/``; all behind the token.

:func:`create_app` only builds the app; :mod:`runtable.server.serve` runs it.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import re
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

from fastapi import FastAPI, Request, WebSocket
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field
from starlette.middleware.gzip import GZipMiddleware
from starlette.websockets import WebSocketDisconnect

from .. import __version__
from ..events import EventBus, SubscriberTooSlow
from ..selection import DataKind
from ..store.uservars import INT64_MAX
from .access import FolderAccess
from .auth import TokenAuthMiddleware
from .problems import HTTPProblem, problem_response
from .table import TableCache

if TYPE_CHECKING:
    from .control import ProcessingControl

#: ``notify(run, data)``: "this run's ``data`` (raw or proc) is complete". The service
#: wires it to :meth:`runtable.sources.RunWatcher.notify`. It must return quickly; it
#: may raise ``ValueError`` (bad input: 422) or ``RuntimeError`` (cannot now: 503).
NotifyHook = Callable[[int, str], None]

#: Characters a token may have: it travels in URLs, headers and a cookie unescaped.
TOKEN_RE = re.compile(r"[A-Za-z0-9._~-]{8,}")

#: gzip level of answers: the table of a large folder is tens of MB of JSON, and level 9
#: costs several times level 4's time for a few percent less.
GZIP_LEVEL = 4

#: WebSocket close code for a client dropped because it fell too far behind
#: (4000-4999 are free for applications; RFC 6455 section 7.4.2).
CLOSE_TOO_SLOW = 4000

#: How long sending the close frame to a client that stopped reading may wait for room
#: in its connection; after that the connection is simply cut.
_CLOSE_TIMEOUT_S = 5.0


class NotifyRequest(BaseModel):
    """Body of ``POST /api/notify``."""

    run: Annotated[int, Field(ge=0, le=INT64_MAX, strict=True, description="run number")]
    data: DataKind = Field("raw", description="which data is complete")


class NotifyResponse(BaseModel):
    """Answer of ``POST /api/notify``."""

    ok: bool = True
    run: int
    data: str


class Health(BaseModel):
    """Answer of ``GET /api/health``."""

    ok: bool = True
    version: str


def check_token(token: str) -> str:
    """``token`` if usable, else ``ValueError`` saying what a token may contain."""
    if not isinstance(token, str) or not TOKEN_RE.fullmatch(token):
        raise ValueError("a token needs at least 8 characters, only letters, digits and "
                         "-._~ (it travels in URLs and a cookie)")
    return token


def _readable(exc: RequestValidationError) -> str:
    """Pydantic's error list as one line a person can act on."""
    parts = []
    for err in exc.errors():
        where = ".".join(str(p) for p in err.get("loc", ()) if p != "body") or "body"
        parts.append(f"{where}: {err.get('msg', 'invalid')}")
    return "; ".join(parts)


def _plain(exc: RequestValidationError) -> list[dict]:
    """The error list without ``ctx`` (it can hold the exception object itself) and
    ``input`` (the bytes of a body that is no JSON, a NaN, a huge text): echoing them
    back could make the answer unserialisable, and never helps."""
    return [{k: v for k, v in err.items() if k not in ("ctx", "input")}
            for err in exc.errors()]


def close_app(app: FastAPI) -> None:
    """Close the database connections of an app made by :func:`create_app`, once it
    no longer serves requests (its server has stopped). Waits for the table's
    background work first."""
    app.state.table.close()
    app.state.folder.close()


def create_app(
    db_dir: str | os.PathLike[str],
    token: str,
    *,
    bus: EventBus | None = None,
    notify: NotifyHook | None = None,
    warm_up: bool = True,
    control: ProcessingControl | None = None,
) -> FastAPI:
    """The web app for the database folder ``db_dir``.

    ``token`` is required on every request (see :mod:`runtable.server.auth`). ``bus``
    feeds ``/api/events`` (a new, idle bus if not given; it is ``app.state.bus``).
    ``notify`` backs ``POST /api/notify`` (503 without it); ``control`` (the service)
    backs reprocessing, jobs, variable deletion and new rows (:mod:`.processing`;
    503 without it). ``warm_up`` starts reading
    the table in the background at once, so the first page load need not wait for it.
    """
    check_token(token)
    bus = bus if bus is not None else EventBus()
    app = FastAPI(
        title="runtable",
        version=__version__,
        description="The run table of one database folder. Every request needs the "
        "server's token: `?token=`, `Authorization: Bearer`, or the cookie the page "
        "gets after its first `?token=` visit.",
        openapi_url="/api/openapi.json",
        # The interactive docs pages load their scripts from a CDN, which neither our
        # Content-Security-Policy nor an offline beamline network allows.
        docs_url=None,
        redoc_url=None,
    )
    app.state.db_dir = Path(db_dir)
    app.state.bus = bus
    app.state.notify = notify
    app.state.control = control
    #: One writer and per-thread readers of the folder (runtable.server.access).
    app.state.folder = FolderAccess(app.state.db_dir)
    #: The encoded table, kept up to date in memory (runtable.server.table).
    app.state.table = TableCache(app.state.folder, bus)
    if warm_up:
        app.state.table.warm_up()

    @app.exception_handler(RequestValidationError)
    async def _validation_error(request: Request, exc: RequestValidationError) -> JSONResponse:
        return JSONResponse(status_code=422,
                            content={"detail": _readable(exc), "errors": _plain(exc)})

    @app.exception_handler(HTTPProblem)
    async def _problem(request: Request, exc: HTTPProblem) -> JSONResponse:
        return problem_response(exc)

    @app.get("/api/health", response_model=Health, tags=["service"])
    async def health() -> Health:
        """Whether the server is up, and its version."""
        return Health(version=__version__)

    @app.post("/api/notify", response_model=NotifyResponse, status_code=202,
              tags=["service"],
              responses={422: {"description": "bad run or data"},
                         503: {"description": "no watcher to tell"}})
    def notify_run(body: NotifyRequest) -> NotifyResponse | JSONResponse:
        """Say that a run's raw or proc data is complete, so it is processed now.

        For facilities whose data-management system signals the end of a transfer.
        """
        # A plain `def`: FastAPI runs it in a worker thread, so a hook that takes a lock
        # shared with the watcher cannot stall the event loop.
        hook = app.state.notify
        if hook is None:
            return JSONResponse(status_code=503, content={
                "detail": "this server has no run watcher to notify"})
        try:
            hook(body.run, body.data)
        except ValueError as exc:
            return JSONResponse(status_code=422, content={"detail": str(exc)})
        except RuntimeError as exc:
            return JSONResponse(status_code=503, content={"detail": str(exc)})
        return NotifyResponse(run=body.run, data=body.data)

    @app.websocket("/api/events")
    async def events(websocket: WebSocket) -> None:
        """Live events, one JSON text message each (see :mod:`runtable.events`).

        The first message is ``{"kind": "hello", "seq": N, "bus": ID, "version": V}``:
        the next event has ``seq`` N+1. Messages from the client are ignored.
        """
        await _stream_events(websocket, app.state.bus)

    # The table, the edits, cell data, the context file and processing control.
    from . import celldata, cells, contextfile, display, edits, history, processing

    for module in (cells, edits, celldata, contextfile, processing, display, history):
        app.include_router(module.router)

    # The GUI (another part's module): `/` and `/assets`, behind the same token.
    from .frontend import mount_frontend

    mount_frontend(app)
    # Added last, so outermost: the token is checked before anything else runs.
    app.add_middleware(GZipMiddleware, minimum_size=1000, compresslevel=GZIP_LEVEL)
    app.add_middleware(TokenAuthMiddleware, token=token)
    return app


async def _stream_events(websocket: WebSocket, bus: EventBus) -> None:
    # Subscribe before accepting, so that no event falls between `hello` and the queue.
    with bus.subscribe() as sub:
        await websocket.accept()
        await websocket.send_text(json.dumps(
            {"kind": "hello", "seq": sub.start_seq, "bus": bus.id, "version": __version__},
            separators=(",", ":")))

        async def forward() -> None:
            while True:
                for text in await sub.next_batch():
                    await websocket.send_text(text)

        async def watch_client() -> None:
            # Reading is how we learn that the client went away.
            while True:
                message = await websocket.receive()
                if message["type"] == "websocket.disconnect":
                    return

        async def watch_overflow() -> None:
            # forward() can be stuck sending to a client that stopped reading; this
            # notices the overflow anyway.
            await sub.wait_overflow()
            raise SubscriberTooSlow

        tasks = [asyncio.create_task(forward()), asyncio.create_task(watch_client()),
                 asyncio.create_task(watch_overflow())]
        try:
            done, _ = await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for task in tasks:
                task.cancel()
            for task in tasks:
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await task
        for task in done:
            exc = task.exception()
            if isinstance(exc, SubscriberTooSlow):
                sub.close()  # free its place on the bus before the slow goodbye
                # The client may not be reading at all: do not wait for it forever.
                with contextlib.suppress(Exception):
                    await asyncio.wait_for(websocket.close(
                        code=CLOSE_TOO_SLOW,
                        reason="too slow: events were dropped; reconnect and re-fetch"),
                        timeout=_CLOSE_TIMEOUT_S)
            elif exc is not None and not isinstance(exc, WebSocketDisconnect | OSError):
                if tasks[1] in done:
                    continue  # the client left while we were sending: not an error
                raise exc
