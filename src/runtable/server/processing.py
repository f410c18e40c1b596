"""Processing control: reprocess runs, list and cancel jobs, follow a run's processing
log, delete a variable, pre-create empty rows.

Everything except the log goes through the service (:class:`.control.ProcessingControl`,
``app.state.control``): it owns the job queue and is the only writer of merges, so a
deleted variable cannot race a merge of the same run. A server started without one
answers those routes with 503. Reading a log needs only the files, so it always works.

Routes are plain ``def``: FastAPI runs them in worker threads, and queuing a job or
waiting for the service's writer thread may take a moment.
"""

from __future__ import annotations

import os
import re
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from pydantic import BaseModel, Field

from ..jobs import Job, JobState
from ..runranges import compress_runs, parse_runs
from ..selection import DataName, Selection
from ..store.uservars import INT64_MAX
from .paths import IdPath, RunPath
from .problems import HTTPProblem

router = APIRouter(prefix="/api", tags=["processing"])

#: Most bytes of a log one request returns (the rest comes with the next offset).
LOG_CHUNK = 256 * 1024
#: Without an offset, a log is shown from this far before its end (the start of a
#: huge log is rarely what someone opening it at 3 a.m. wants).
LOG_TAIL = 64 * 1024
#: Most empty rows one request may create.
MAX_NEW_ROWS = 1000

_ERRORS: dict[int | str, dict[str, Any]] = {
    422: {"description": "invalid input; `detail` says what to change"},
    503: {"description": "this server runs without a service, or it is not running"},
}
_NO_SERVICE = ("this server runs without a service (started without the watcher and "
               "job queue, e.g. for viewing only), so it cannot {what}; start it with "
               "`runtable serve` on the database folder")


# -- bodies and answers ------------------------------------------------------------------
class ReprocessBody(BaseModel):
    """Body of ``POST /api/reprocess``."""

    runs: Annotated[str, Field(max_length=10_000,
                               description='run numbers and ranges, e.g. "17, 20-32", '
                               'or "all"')]
    variables: list[Annotated[str, Field(max_length=200)]] | None = Field(
        None, description="names to compute; null: all of them, including variables "
        "added to the context file later")
    data: DataName = Field(
        "all", description="which variables: those of raw data, proc data, or all")


class ProgressOut(BaseModel):
    """How far a running job is (the fields of a ``job_progress`` event)."""

    variable: str = Field(description="the variable being computed; empty once all are")
    done: int = Field(description="variables finished")
    total: int = Field(description="variables the job computes")
    step: int = Field(description="the variable's own progress: steps done")
    steps: int | None = Field(description="... of this many (null: not reported)")
    variable_s: float = Field(description="seconds spent in the variable so far")


class JobOut(BaseModel):
    """One job of the queue."""

    id: int
    proposal: int
    run: int
    data: str
    variables: list[str] | None = Field(description="null: all variables")
    state: str = Field(description="queued, running, done, failed or cancelled")
    executor: str
    submitted_at: float
    started_at: float | None
    finished_at: float | None
    message: str | None
    progress: ProgressOut | None = Field(None, description="the latest progress of a "
                                         "running job (then followed by `job_progress` "
                                         "events)")
    stuck_since: float | None = Field(None, description="a running job that printed "
                                      "nothing and made no progress for `stuck_after_s`: "
                                      "its last sign of life (epoch seconds)")


class JobsOut(BaseModel):
    """Answer of ``GET /api/jobs`` and ``POST /api/reprocess``."""

    jobs: list[JobOut]


class LogOut(BaseModel):
    """A piece of a run's processing log (``GET /api/runs/{run}/log``)."""

    run: int
    file: str = Field(description="the log's path in the database folder")
    exists: bool
    text: str = Field(description="the log from `offset` (at most a chunk of it)")
    offset: int = Field(description="where `text` starts in the file, in bytes")
    next_offset: int = Field(description="ask with this offset for what comes next")
    size: int = Field(description="the file's size now, in bytes")
    restarted: bool = Field(description="the file shrank or was replaced since the "
                            "offset asked for: `text` starts again from its beginning")
    more: bool = Field(description="more is already there: ask again at once")


class DeletedOut(BaseModel):
    """Answer of ``DELETE /api/variables/{name}``."""

    name: str
    warning: str | None = Field(None, description="e.g. the context file still "
                                "defines it, so it comes back at the next processing")


class NewRowsBody(BaseModel):
    """Body of ``POST /api/runs``: either ``runs`` or ``count``."""

    runs: list[Annotated[int, Field(ge=0, le=INT64_MAX, strict=True)]] | None = Field(
        None, max_length=MAX_NEW_ROWS, description="run numbers to create")
    count: Annotated[int, Field(ge=1, le=MAX_NEW_ROWS, strict=True)] | None = Field(
        None, description="create this many runs after the last one")


class NewRowsOut(BaseModel):
    """Answer of ``POST /api/runs``."""

    added: list[int] = Field(description="rows created")
    existing: list[int] = Field(description="runs asked for that were there already")


# -- helpers -----------------------------------------------------------------------------
def _control(request: Request, what: str) -> Any:
    control = request.app.state.control
    if control is None:
        raise HTTPProblem(503, _NO_SERVICE.format(what=what))
    return control


def _job_out(job: Job, control: Any = None) -> JobOut:
    progress = stuck_since = None
    if control is not None and job.state is JobState.RUNNING:
        stuck_since = control.job_stuck(job.id)
        found = control.job_progress(job.id)
        if found is not None:
            progress = ProgressOut.model_validate(found, from_attributes=True)
    return JobOut(id=job.id, proposal=job.proposal, run=job.run, data=job.data,
                  variables=list(job.variables) or None, state=str(job.state.value),
                  executor=job.executor, submitted_at=job.submitted_at,
                  started_at=job.started_at, finished_at=job.finished_at,
                  message=job.message, progress=progress,
                  stuck_since=stuck_since)


def _table_runs(request: Request) -> list[int]:
    folder = request.app.state.folder
    proposal = folder.proposal
    return sorted({run for prop, run in folder.reader().runs()
                   if proposal is None or prop == proposal})


def _call(fn: Any, *args: Any) -> Any:
    """Call the service; its ValueError is 422, RuntimeError 503."""
    try:
        return fn(*args)
    except ValueError as exc:
        raise HTTPProblem(422, str(exc)) from exc
    except RuntimeError as exc:
        raise HTTPProblem(503, f"The service cannot do this now: {exc}") from exc


# -- reprocess and jobs ------------------------------------------------------------------
@router.post("/reprocess", response_model=JobsOut, status_code=202, responses=_ERRORS)
def reprocess(body: ReprocessBody, request: Request) -> JobsOut:
    """Queue runs for processing again; answers with the jobs queued."""
    control = _control(request, "reprocess runs")
    try:
        parsed = parse_runs(body.runs, allow_all=True)
    except ValueError as exc:
        raise HTTPProblem(422, f"Runs {body.runs!r}: {exc}") from exc
    known = _table_runs(request)
    if parsed == "all":
        runs = known
        if not runs:
            raise HTTPProblem(422, "The table has no runs yet: nothing to reprocess")
    else:
        # Ranges are compared with the table's runs, never expanded (1-1000000000).
        runs = parsed.select(known)
        missing = parsed.missing(known)
        if missing:
            have = f"it has runs {compress_runs(known)}" if known else "it has no runs yet"
            raise HTTPProblem(422, f"Run(s) {missing} are not in the table "
                              f"({have}); correct the run range")
    names = list(dict.fromkeys(body.variables or ()))
    selection = Selection(body.data, tuple(names))
    if body.variables is not None:
        if not names:
            raise HTTPProblem(422, "No variables chosen: tick at least one, or choose all")
        info = control.context
        if info is not None and info.problems is None:
            unknown = [n for n in names if n not in info.variables]
            if unknown:
                raise HTTPProblem(422, f"The context file defines no variable "
                                  f"{', '.join(unknown)}; reload the list and choose again")
            if not info.select(selection):
                raise HTTPProblem(422, f"None of the chosen variables is computed from "
                                  f"{body.data} data; choose 'all' or other variables")
    jobs = _call(control.reprocess, runs, selection)
    return JobsOut(jobs=[_job_out(j) for j in jobs])


@router.get("/jobs", response_model=JobsOut, responses=_ERRORS)
def list_jobs(request: Request) -> JobsOut:
    """Queued and running jobs, and the recently finished ones, oldest first."""
    control = _control(request, "list jobs")
    return JobsOut(jobs=[_job_out(j, control) for j in _call(control.jobs)])


@router.delete("/jobs/{job_id}", response_model=JobOut, status_code=202,
               responses={**_ERRORS, 404: {"description": "unknown job"},
                          409: {"description": "the job has ended already"}})
def cancel_job(job_id: IdPath, request: Request) -> JobOut:
    """Cancel a queued or running job. A running job is stopped; its state becomes
    ``cancelled`` (a ``job_state`` event) once it has."""
    control = _control(request, "cancel jobs")
    job = _call(control.job, job_id)
    if job is None:
        raise HTTPProblem(404, f"There is no job {job_id} (finished jobs are forgotten "
                          "after a week)")
    if job.state.final or not _call(control.cancel, job_id):
        job = control.job(job_id) or job
        raise HTTPProblem(409, f"Job {job_id} (run {job.run}) has ended already: "
                          f"{job.state.value}")
    return _job_out(control.job(job_id) or job)


# -- logs --------------------------------------------------------------------------------
_INCOMPLETE_UTF8 = re.compile(rb"(?:[\xc0-\xdf]|[\xe0-\xef][\x80-\xbf]?|"
                              rb"[\xf0-\xf7][\x80-\xbf]{0,2})\Z")


def read_log_chunk(path: os.PathLike[str] | str, offset: int | None,
                   chunk: int = LOG_CHUNK, tail: int = LOG_TAIL) -> dict[str, Any]:
    """Read ``path`` from byte ``offset`` (None: its last ``tail`` bytes, from a line
    start), at most ``chunk`` bytes, never cutting a UTF-8 character in two.

    Safe against the file being truncated, replaced or deleted meanwhile: an offset
    beyond its end starts again from the beginning (``restarted``).
    """
    try:
        f = open(path, "rb")  # noqa: SIM115 -- closed below, after fstat and read
    except FileNotFoundError:
        return {"exists": False, "text": "", "offset": 0, "next_offset": 0, "size": 0,
                "restarted": bool(offset), "more": False}
    with f:
        size = os.fstat(f.fileno()).st_size
        restarted = False
        if offset is None:
            start = max(0, size - tail)
        elif offset > size:
            start, restarted = 0, True
        else:
            start = offset
        f.seek(start)
        data = f.read(min(chunk, max(0, size - start)))
    if offset is None and start > 0:
        # Begin at a whole line.
        newline = data.find(b"\n")
        if 0 <= newline < len(data) - 1:
            start += newline + 1
            data = data[newline + 1:]
    more = start + len(data) < size
    # A character still being written (or cut by the chunk) comes whole next time.
    incomplete = _INCOMPLETE_UTF8.search(data[-3:]) if data else None
    if incomplete is not None:
        data = data[:len(data) - len(incomplete.group())]
    end = start + len(data)
    return {"exists": True, "text": data.decode("utf-8", errors="replace"),
            "offset": start, "next_offset": end, "size": size, "restarted": restarted,
            "more": more}


@router.get("/runs/{run}/log", response_model=LogOut,
            responses={404: {"description": "unknown run"}})
def run_log(request: Request, run: RunPath,
            offset: Annotated[int | None, Query(ge=0, description="byte to read from; "
                                                "absent: the log's last part")] = None
            ) -> LogOut:
    """The run's processing log from byte ``offset`` (poll with ``next_offset`` to
    follow it as it grows)."""
    from ..execute.runner import log_path_for

    folder = request.app.state.folder
    proposal = folder.run_proposal(run)
    if proposal is None:
        raise HTTPProblem(404, f"There is no run {run} in this table")
    path = log_path_for(request.app.state.db_dir, proposal, run)
    piece = read_log_chunk(path, offset)
    return LogOut(run=run, file=f"{path.parent.name}/{path.name}", **piece)


# -- variables and rows ------------------------------------------------------------------
@router.delete("/variables/{name}", response_model=DeletedOut,
               responses={**_ERRORS, 404: {"description": "unknown variable"}})
def delete_variable(name: str, request: Request) -> DeletedOut:
    """Delete a variable: its column, its values and its data in every run's HDF5 file.

    There is no undo: the GUI asks first. A variable the context file still defines
    comes back at the next processing (the answer warns about that).
    """
    control = _control(request, "delete variables")
    try:
        _call(control.delete_variable, name)
    except KeyError:
        raise HTTPProblem(404, f"There is no variable {name!r} in this database") from None
    info = control.context
    warning = None
    if info is not None and name in info.variables:
        warning = (f"The context file still defines {name!r}: it comes back when runs "
                   "are processed again. Remove it from the context file to be rid of it.")
    return DeletedOut(name=name, warning=warning)


@router.post("/runs", response_model=NewRowsOut, status_code=201, responses=_ERRORS)
def add_runs(body: NewRowsBody, request: Request) -> NewRowsOut:
    """Create empty rows, e.g. to write comments for runs not taken yet. With ``count``
    they follow the last run of the table; runs that exist are left alone."""
    control = _control(request, "add rows")
    # Checked here rather than by a pydantic validator, whose errors carry the exception.
    if (body.runs is None) == (body.count is None):
        raise HTTPProblem(422, "Give either `runs` (a list of run numbers) or `count` "
                          "(how many runs after the last one)")
    if body.runs is not None and not body.runs:
        raise HTTPProblem(422, "`runs` is empty: name at least one run")
    known = _table_runs(request)
    if body.count is not None:
        last = known[-1] if known else 0
        wanted = list(range(last + 1, last + 1 + body.count))
    else:
        wanted = sorted(set(body.runs or ()))
    added = _call(control.add_runs, wanted)
    existing = sorted(set(wanted) - set(added))
    return NewRowsOut(added=added, existing=existing)


# -- values written from outside the context file ----------------------------------------
class FragmentBody(BaseModel):
    """Body of ``POST /api/fragments``."""

    name: str = Field(max_length=255, description="a fragment's file name in extracted_data "
                      "(p<proposal>_r<run>.<id>.ready.h5)")
    titles: dict[str, Annotated[str, Field(max_length=1000)]] = Field(
        default_factory=dict, max_length=10_000,
        description="titles of variables that are new to the table")


class MergedOut(BaseModel):
    """Answer of ``POST /api/fragments``."""

    names: list[str] = Field(description="the variables stored")


@router.post("/fragments", response_model=MergedOut, responses=_ERRORS)
def merge_fragment(body: FragmentBody, request: Request) -> MergedOut:
    """Merge a fragment that a script wrote into ``extracted_data`` (values from
    outside the context file: ``runtable set``, ``Database.write``), by the service's
    writer, so it never races the merges of processing."""
    control = _control(request, "merge values written from outside the context file")
    return MergedOut(names=_call(control.merge_external, body.name, body.titles))
