"""Reading the table: ``GET /api/table`` (columnar JSON, see :mod:`runtable.server.table`)
and the PNG thumbnails fetched lazily for visible cells.
"""

from __future__ import annotations

import hashlib
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query, Request
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel, Field
from starlette.background import BackgroundTask

from ..jobs import JobState, active_jobs
from ..runranges import RunRangeError, parse_runs
from ..store.where import WhereError, describe, parse
from .paths import RunPath
from .problems import HTTPProblem
from .table import TableCache, TableNotReady

router = APIRouter(prefix="/api", tags=["table"])


def parse_names(text: str | None) -> set[str] | None:
    """``"a,b"`` -> ``{"a", "b"}``; None or empty -> None (all columns)."""
    if text is None or not text.strip():
        return None
    return {n.strip() for n in text.split(",") if n.strip()}

_TABLE_EXAMPLE: dict[str, Any] = {
    "proposal": 1234, "seq": 57, "bus": "a1b2c3d4e5f60708", "runs": [1, 2],
    "start_time": [1.7e9, None], "added_at": [1.7e9, 1.7e9], "comment": ["", "bad beam"],
    "variables": [{"name": "xgm_flux", "title": "XGM/Photon flux", "description": None,
                   "tags": ["xgm"], "user_editable": False, "type": None, "units": "uJ"}],
    "columns": {"xgm_flux": {"values": [1.25, None], "cells": {"0": {"max_diff": True}}}},
    "jobs": {"2": "running"},
}


def job_states(request: Request) -> dict[str, str]:
    """``{run: "queued" | "running"}`` for runs with an active job (running wins)."""
    proposal = request.app.state.folder.proposal
    states: dict[str, str] = {}
    for job in active_jobs(request.app.state.db_dir):
        if proposal is not None and job.proposal != proposal:
            continue
        key = str(job.run)
        if states.get(key) != JobState.RUNNING.value:
            states[key] = job.state.value
    return states


@router.get("/table", responses={
    200: {"description": "the table, columnar (docs/dev/table-protocol.md)",
          "content": {"application/json": {"example": _TABLE_EXAMPLE}}},
    422: {"description": "a filter that cannot be read"},
    503: {"description": "the table is being read for the first time: `progress` says "
                         "how far (`done` of `total` runs); ask again after `Retry-After`"}})
def get_table(
    request: Request,
    runs: Annotated[str | None, Query(description="only these rows, e.g. `3,5-7`")] = None,
    names: Annotated[str | None, Query(description="only these columns, e.g. `a,b`")] = None,
    format: Annotated[Literal["json", "binary"], Query(
        description="`binary`: every row, numeric columns as float64 blocks "
                    "(docs/dev/table-protocol.md); with `names`, only those columns' "
                    "data; not with `runs`")] = "json",
    first: Annotated[int | None, Query(ge=0, description=(
        "binary only: the data of the first N columns only (`variables` lists all)"))] = None,
    skip: Annotated[int, Query(ge=0, description=(
        "binary only: the data of the columns after the first N only"))] = 0,
    where: Annotated[str | None, Query(description=(
        "json only: the runs this filter expression keeps, e.g. `xgm_flux > 1.5 and "
        "run in 10..20` (docs/filters.md)"))] = None,
) -> Response:
    """The run table: one entry per run in the row lists, one column per variable.

    Rows are in run order; columns in the order the context file defines them, with
    user-editable variables where they were put. ``seq`` is the last event already
    reflected: apply only events after it.
    """
    try:
        run_set = None if runs is None or not runs.strip() else parse_runs(runs).expand()
    except RunRangeError as exc:
        raise HTTPProblem(422, f"runs={runs!r}: {exc}") from exc
    name_set = parse_names(names)
    cache: TableCache = request.app.state.table
    if format != "binary" and (first is not None or skip):
        raise HTTPProblem(422, "first= and skip= are for format=binary only")
    if format == "binary" and where is not None:
        raise HTTPProblem(422, "format=binary sends every row: leave out where= "
                               "(or ask for format=json)")
    accepts_gzip = "gzip" in request.headers.get("accept-encoding", "").lower()
    after: BackgroundTask | None = None
    try:
        if format == "binary":
            if run_set is not None:
                raise HTTPProblem(422, "format=binary sends every row: leave out runs= "
                                       "(or ask for format=json)")
            body, gzipped = cache.binary(jobs=job_states(request), first=first, skip=skip,
                                         names=name_set, gzip=accepts_gzip)
            media_type = "application/octet-stream"
            headers = {"Cache-Control": "no-store"}
            # A page's first load has a few columns, then it asks for the others by
            # name, part after part: have them ready (starting once this answer is
            # sent, not to delay it).
            after = BackgroundTask(cache.encode_in_background, gzipped)
        else:
            body, gzipped = cache.snapshot(run_set, name_set, jobs=job_states(request),
                                           gzip=accepts_gzip, where=where)
            media_type = "application/json"
            headers = {"Cache-Control": "no-store", "Vary": "Accept-Encoding"}
    except TableNotReady as exc:
        return _not_ready(exc)
    except WhereError as exc:
        raise HTTPProblem(422, f"where: {exc}") from exc
    # Compressed ahead, piece by piece (runtable.server.table); "identity" tells
    # GZipMiddleware to leave an answer alone, and so does a Content-Encoding.
    headers["Content-Encoding"] = "gzip" if gzipped else "identity"
    return Response(body, media_type=media_type, headers=headers, background=after)


class WherePart(BaseModel):
    text: str = Field(description="the part in canonical form (a filter chip)")
    field: str | None = Field(description="the column a column filter of the GUI shows "
                                          "it in (null: none can)")
    model: dict[str, Any] | None = Field(description="that column filter's settings")


class WhereOut(BaseModel):
    runs: list[int] = Field(description="the runs the filter keeps, in run order")
    expression: str = Field(description="the filter in canonical form")
    parts: list[WherePart] = Field(description="the parts of its top-level `and`")
    seq: int = Field(description="the last event these runs reflect")


@router.get("/table/runs", response_model=WhereOut, responses={
    422: {"description": "a filter that cannot be read, or names an unknown column"},
    503: {"description": "the table is being read for the first time (see /api/table)"}})
def get_runs_where(
    request: Request,
    where: Annotated[str, Query(description="a filter expression (docs/filters.md)")] = "",
) -> Any:
    """Which runs a filter expression keeps: what the web GUI's filters ask."""
    cache: TableCache = request.app.state.table
    try:
        node = parse(where)
        runs, parts, seq = cache.runs_where(where)
    except TableNotReady as exc:
        return _not_ready(exc)
    except WhereError as exc:
        raise HTTPProblem(422, str(exc)) from exc
    return WhereOut(runs=runs, expression=describe(node),
                    parts=[WherePart(**part) for part in parts], seq=seq)


def _not_ready(exc: TableNotReady) -> JSONResponse:
    return JSONResponse(
        {"detail": str(exc), "progress": {"done": exc.done, "total": exc.total}},
        status_code=503, headers={"Retry-After": "1", "Cache-Control": "no-store"})


@router.get("/cell/{run}/{name}/thumbnail.png", response_class=Response, responses={
    200: {"content": {"image/png": {}}, "description": "the cell's thumbnail"},
    304: {"description": "unchanged since the ETag sent in If-None-Match"},
    404: {"description": "no such cell, or it holds no image"}})
def get_thumbnail(run: RunPath, name: str, request: Request) -> Response:
    """The PNG thumbnail of one cell. Answers carry an ``ETag``; send it back in
    ``If-None-Match`` to get 304 while the image is unchanged."""
    folder = request.app.state.folder
    proposal = folder.run_proposal(run)
    if proposal is None:
        raise HTTPProblem(404, f"Run {run} is not in this table")
    data = folder.reader().thumbnail(proposal, run, name)
    if data is None:
        raise HTTPProblem(404, f"Run {run} has no image for {name!r}")
    etag = '"' + hashlib.blake2b(data, digest_size=12).hexdigest() + '"'
    headers = {"ETag": etag, "Cache-Control": "no-cache"}
    if etag in _etags(request.headers.get("if-none-match", "")):
        return Response(status_code=304, headers=headers)
    return Response(data, media_type="image/png", headers=headers)


def _etags(header: str) -> set[str]:
    tags = {t.strip() for t in header.split(",") if t.strip()}
    return {t[2:] if t.startswith("W/") else t for t in tags}
