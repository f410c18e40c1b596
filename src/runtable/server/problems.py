"""The server's errors: :class:`HTTPProblem`, raised by any route, and its JSON answer.

Every route module raises :class:`HTTPProblem` for an answer other than 2xx; the app
turns it into ``{"detail": sentence, **extra}`` with its status (see
:func:`runtable.server.app.create_app`).
"""

from __future__ import annotations

from typing import Any

from fastapi.responses import JSONResponse


class HTTPProblem(Exception):
    """An answer other than 2xx, with a sentence for the person who sent the request
    (and, in ``extra``, more fields of the answer: the current value of a conflict)."""

    def __init__(self, status: int, detail: str, **extra: Any) -> None:
        super().__init__(detail)
        self.status = status
        self.detail = detail
        self.extra = extra


def problem_response(exc: HTTPProblem) -> JSONResponse:
    """The JSON answer for ``exc``."""
    return JSONResponse(status_code=exc.status, content={**exc.extra, "detail": exc.detail})
