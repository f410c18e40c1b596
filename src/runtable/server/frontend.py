"""Serve the web GUI: the files `frontend/` builds into this package's `static/` folder.

`./dev setup` builds them (Vite); the result is git-ignored. A server started from a
checkout that was never built still runs, and says so at `/`.
"""

from __future__ import annotations

import os
from pathlib import Path

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import FileResponse, PlainTextResponse, Response
from starlette.staticfiles import StaticFiles
from starlette.types import Receive, Scope, Send

NOT_BUILT = "the web GUI is not built: run ./dev setup\n"


#: Serve the GUI from this folder instead (a build made elsewhere, e.g. with
#: `npx vite build --outDir DIR`): for developing the GUI beside an installed runtable.
STATIC_DIR_ENV = "RUNTABLE_STATIC_DIR"


def static_dir() -> Path:
    """The folder holding the built GUI (`index.html`, `assets/`): ``$RUNTABLE_STATIC_DIR``
    if set, else the package's own ``static/``."""
    configured = os.environ.get(STATIC_DIR_ENV)
    return Path(configured) if configured else Path(__file__).with_name("static")


class _HashedAssets(StaticFiles):
    """Static files whose names carry a content hash (Vite's output): cache them for good."""

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if self.directory is None or not Path(self.directory).is_dir():
            await PlainTextResponse(NOT_BUILT, status_code=503)(scope, receive, send)
            return
        await super().__call__(scope, receive, send)

    async def get_response(self, path: str, scope: Scope) -> Response:
        response = await super().get_response(path, scope)
        if response.status_code == 200:
            response.headers["Cache-Control"] = "public, max-age=31536000, immutable"
        return response


def mount_frontend(app: Starlette) -> None:
    """Serve `index.html` at `/` and the built assets under `/assets` on `app`.

    The index is re-read on every request and never cached, so a rebuilt GUI shows up
    on the next reload; without a build, `/` answers 503 with what to do.
    """
    directory = static_dir()
    index_file = directory / "index.html"

    async def index(request: Request) -> Response:
        if not index_file.is_file():
            return PlainTextResponse(NOT_BUILT, status_code=503)
        return FileResponse(index_file, headers={"Cache-Control": "no-cache"})

    app.add_route("/", index, methods=["GET", "HEAD"], include_in_schema=False)
    # check_dir=False: the app can start before the GUI is built (it then answers 503 here).
    app.mount(
        "/assets", _HashedAssets(directory=directory / "assets", check_dir=False), name="assets"
    )
