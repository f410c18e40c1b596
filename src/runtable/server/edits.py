"""What people type into the table: run comments, user-editable variables and their
values, standalone time-stamped comments.

Every edit is written to the database folder at once (one SQLite transaction, see
:mod:`runtable.server.access`), then published on the event bus so that every open
browser, the editor's included, converges through the event stream. Each route answers
with the value as stored. Bad input is 422 with a sentence saying what to do; unknown
runs, variables and comments are 404; a folder the server cannot write is 503.

Routes are plain ``def`` functions: FastAPI runs them in worker threads, so one slow
SQLite lock (the service merging a large fragment) never stalls the event loop.
"""

from __future__ import annotations

import math
import re
import sqlite3
import unicodedata
from dataclasses import asdict
from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Request
from pydantic import AfterValidator, BaseModel, Field

from ..events import CommentSet, EventBus, TimeCommentChanged, UserValueSet, VariablesChanged
from ..store import EditConflict, ReadOnlyError, ValidationError
from ..store.folder.userdata import UNCHECKED, check_timestamp
from ..store.uservars import (
    MAX_TEXT,
    RESERVED_NAMES,
    check_name,
    check_text,
    check_type,
)
from .access import FolderAccess, FolderUnwritable
from .paths import IdPath, RunPath, proposal_of
from .problems import HTTPProblem
from .table import ColumnInfo

#: A text a person types: at most MAX_TEXT characters of valid Unicode.
PersonText = Annotated[str, Field(max_length=MAX_TEXT), AfterValidator(check_text)]

router = APIRouter(prefix="/api", tags=["edits"])

_ERRORS: dict[int | str, dict[str, Any]] = {
    404: {"description": "unknown run, variable or comment"},
    422: {"description": "invalid input; `detail` says what to change"},
    503: {"description": "the server cannot write the database folder now"},
}


# -- bodies and answers ------------------------------------------------------------------
class CommentBody(BaseModel):
    """Body of ``PUT /api/runs/{run}/comment``."""

    text: Annotated[PersonText | None, Field(description="the comment; empty or null "
                                                        "clears it")]
    base: str | None = Field(None, description="the comment the edit was made on (what "
                             "the page showed); if the stored one differs, the answer is "
                             "409 with the `current` one and nothing changes")


class CommentOut(BaseModel):
    """A run's comment as stored (null: none)."""

    run: int
    text: str | None


class ValueBody(BaseModel):
    """Body of ``PUT /api/runs/{run}/values/{name}``."""

    value: Any = Field(description="a boolean, number or string as the variable's type "
                       "needs (strings like \"3.5\" or \"yes\" are converted); null clears")
    base: Any = Field(None, description="the value the edit was made on (what the page "
                      "showed); if the stored one differs, the answer is 409 with the "
                      "`current` one and nothing changes")


class ValueOut(BaseModel):
    """A user-editable cell as stored (null: empty)."""

    run: int
    name: str
    value: bool | int | float | str | None


class VariableBody(BaseModel):
    """Body of ``POST /api/variables``: a new user-editable column."""

    title: Annotated[PersonText, Field(min_length=1, max_length=200,
                                       description="shown in the header; '/' makes groups")]
    name: Annotated[str | None, Field(
        default=None, description="the column's name in the database and the Python API; "
        "derived from the title when not given")]
    type: Annotated[str, Field(description="boolean, integer, number or string")]
    description: Annotated[PersonText | None, Field(default=None)]
    after: Annotated[str | None, Field(
        default=None, description="name of the variable this column follows, or "
        "\"comment\" for the first place; null: after all others")]


class VariableOut(BaseModel):
    """A column of the table (as in ``GET /api/table``'s ``variables``).

    The answer's schema for OpenAPI, field for field the table cache's own
    :class:`runtable.server.table.ColumnInfo` (a plain dataclass: the cache makes 500 of
    them per refresh, and needs no validation)."""

    name: str
    title: str
    description: str | None
    tags: list[str]
    user_editable: bool
    type: str | None
    units: str | None = None
    after: str | None = None


class TimeCommentBody(BaseModel):
    """Body of the time-comment routes."""

    text: PersonText
    timestamp: Annotated[Annotated[float, Field(allow_inf_nan=False)] | datetime | None, Field(
        default=None, description="epoch seconds or ISO 8601 (without a zone: the "
        "server's local time); default now")]
    base: str | None = Field(None, description="PUT only: the text the edit was made "
                             "on; if the stored one differs, the answer is 409 with the "
                             "`current` one and nothing changes")


class TimeCommentOut(BaseModel):
    """A standalone comment as stored (``timestamp`` null: not a valid time)."""

    id: int
    timestamp: float | None
    text: str


#: What each type of user-editable variable accepts, for error messages.
_TAKES = {
    "boolean": "true or false (also yes/no, 1/0)",
    "integer": "whole numbers",
    "number": "numbers, like 3.5 or 1e-3",
    "string": "any text",
    "": "values",
}


# -- helpers -----------------------------------------------------------------------------
def _folder(request: Request) -> FolderAccess:
    return request.app.state.folder


def _bus(request: Request) -> EventBus:
    return request.app.state.bus


def _writing(call: Any, *args: Any, **kwargs: Any) -> Any:
    """``call(*args)`` with the store's exceptions turned into answers."""
    try:
        return call(*args, **kwargs)
    except EditConflict as exc:
        raise HTTPProblem(409, str(exc), current=exc.current) from exc
    except ValidationError as exc:
        raise HTTPProblem(422, str(exc)) from exc
    except (FolderUnwritable, ReadOnlyError) as exc:
        raise HTTPProblem(503, str(exc)) from exc
    except sqlite3.OperationalError as exc:
        # Locked for longer than busy_timeout, a full disk, a read-only file system.
        raise HTTPProblem(503, f"The database could not be written ({exc}); nothing was "
                          "changed, try again") from exc


def _stamp(value: float | datetime | None) -> float | None:
    if value is None:
        return None
    try:
        # Naive datetimes: local time, as a person at the beamline means.
        return check_timestamp(value.timestamp() if isinstance(value, datetime) else value)
    except (ValidationError, OverflowError, OSError) as exc:
        raise HTTPProblem(422, f"timestamp: {exc}") from exc


def name_from_title(title: str) -> str:
    """A variable name for a column titled ``title``: ``"Sample / Temp (K)"`` ->
    ``"sample_temp_k"``. Raises ValidationError when nothing usable is left."""
    ascii_text = unicodedata.normalize("NFKD", title).encode("ascii", "ignore").decode()
    name = re.sub(r"[^a-z0-9]+", "_", ascii_text.lower()).strip("_")
    if not name:
        raise ValidationError(f"Cannot make a variable name from the title {title!r}; "
                              "give a name with letters, digits and '_'")
    if name[0].isdigit():
        name = "v_" + name
    if name in RESERVED_NAMES:
        name += "_"
    return name


def _variable_out(folder: FolderAccess, name: str) -> VariableOut:
    return VariableOut(**asdict(ColumnInfo.of(folder.reader().variables()[name])))


# -- routes ------------------------------------------------------------------------------
@router.put("/runs/{run}/comment", response_model=CommentOut, responses=_ERRORS)
def put_comment(run: RunPath, body: CommentBody, request: Request) -> CommentOut:
    """Set a run's comment; an empty text clears it. Publishes ``comment_set``."""
    folder = _folder(request)
    proposal = proposal_of(folder, run)
    text = body.text or None
    base = body.base if "base" in body.model_fields_set else UNCHECKED
    _writing(lambda: folder.writer().set_comment(proposal, run, text, base))
    _bus(request).publish(CommentSet(proposal, run, text or ""))
    return CommentOut(run=run, text=text)


@router.put("/runs/{run}/values/{name}", response_model=ValueOut, responses=_ERRORS)
def put_value(run: RunPath, name: str, body: ValueBody, request: Request) -> ValueOut:
    """Set one cell of a user-editable variable (null or "" clears it), validated for
    the variable's type. Publishes ``user_value_set``."""
    folder = _folder(request)
    proposal = proposal_of(folder, run)
    info = folder.reader().variables().get(name)
    if info is None:
        raise HTTPProblem(404, f"There is no variable named {name!r}")
    if not info.user_editable:
        raise HTTPProblem(422, f"{name!r} is computed by the context file; only "
                          "user-editable variables can be typed in")
    if isinstance(body.value, list | dict):
        raise HTTPProblem(422, f"{name!r} holds one {info.type} per run, not a list or "
                          "an object")
    base = body.base if "base" in body.model_fields_set else UNCHECKED
    try:
        stored = _writing(
            lambda: folder.writer().set_user_value(proposal, run, name, body.value, base))
    except HTTPProblem as exc:
        if exc.status == 422:  # say which cell, and what it takes
            exc = HTTPProblem(422, f"Run {run}, {info.title or name}: {exc.detail} "
                              f"(this column takes {_TAKES[info.type or '']})")
        raise exc from None
    _bus(request).publish(UserValueSet(proposal, run, name, stored))
    return ValueOut(run=run, name=name, value=stored)


@router.post("/variables", response_model=VariableOut, status_code=201, responses=_ERRORS)
def post_variable(body: VariableBody, request: Request) -> VariableOut:
    """Create a user-editable variable (a column people type values into).

    The name is derived from the title unless given. Publishes ``variables_changed``.
    """
    folder = _folder(request)
    title = body.title.strip()
    if not title:
        raise HTTPProblem(422, "A column needs a title")

    def create() -> str:
        name = body.name.strip() if body.name and body.name.strip() else name_from_title(title)
        check_name(name)
        check_type(body.type)
        variables = folder.reader().variables()
        if name in variables:
            how = "give another name" if body.name else "choose another title or give a name"
            raise ValidationError(f"A variable named {name!r} already exists; {how}")
        if body.after is not None and body.after != "comment" and body.after not in variables:
            raise ValidationError(f"'after' names no variable: {body.after!r}")
        db = folder.writer()
        db.add_user_variable(name, body.type, title=title,
                             description=body.description or None)
        if body.after is not None:
            # A second short transaction: had it failed, the column would only be last.
            db.place_variable_after(name, body.after)
        return name

    name = _writing(create)
    _bus(request).publish(VariablesChanged((name,)))
    return _variable_out(folder, name)


@router.get("/time-comments", response_model=list[TimeCommentOut], tags=["edits"])
def list_time_comments(request: Request) -> list[TimeCommentOut]:
    """Every standalone comment, oldest first."""
    return [TimeCommentOut(id=c.id, timestamp=_finite(c.timestamp), text=c.comment)
            for c in _folder(request).reader().time_comments()]


def _finite(value: float) -> float | None:
    return value if math.isfinite(value) else None


def _text(text: str) -> str:
    if not text.strip():
        raise HTTPProblem(422, "A comment needs some text (delete it to remove it)")
    return text


@router.post("/time-comments", response_model=TimeCommentOut, status_code=201,
             responses=_ERRORS)
def post_time_comment(body: TimeCommentBody, request: Request) -> TimeCommentOut:
    """Add a standalone comment at ``timestamp`` (default: now). Publishes
    ``time_comment`` with action ``added``."""
    folder = _folder(request)
    text = _text(body.text)
    comment_id = _writing(lambda: folder.writer().add_time_comment(text, _stamp(body.timestamp)))
    out = _time_comment(folder, comment_id)
    _bus(request).publish(TimeCommentChanged("added", out.id, out.timestamp, out.text))
    return out


@router.put("/time-comments/{comment_id}", response_model=TimeCommentOut, responses=_ERRORS)
def put_time_comment(comment_id: IdPath, body: TimeCommentBody,
                     request: Request) -> TimeCommentOut:
    """Change a standalone comment's text (and its time, when given). Publishes
    ``time_comment`` with action ``edited``."""
    folder = _folder(request)
    text = _text(body.text)
    stamp = _stamp(body.timestamp)

    def edit() -> None:
        base = body.base if "base" in body.model_fields_set else UNCHECKED
        try:
            folder.writer().edit_time_comment(comment_id, text, timestamp=stamp, base=base)
        except KeyError as exc:
            raise HTTPProblem(404, exc.args[0]) from None

    _writing(edit)
    out = _time_comment(folder, comment_id)
    _bus(request).publish(TimeCommentChanged("edited", out.id, out.timestamp, out.text))
    return out


@router.delete("/time-comments/{comment_id}", status_code=204, responses=_ERRORS)
def delete_time_comment(comment_id: IdPath, request: Request) -> None:
    """Delete a standalone comment. Publishes ``time_comment`` with action ``deleted``."""
    folder = _folder(request)

    def delete() -> None:
        if not folder.writer().delete_time_comment(comment_id):
            raise HTTPProblem(404, f"There is no time comment with id {comment_id}")

    _writing(delete)
    _bus(request).publish(TimeCommentChanged("deleted", comment_id))


def _time_comment(folder: FolderAccess, comment_id: int) -> TimeCommentOut:
    comment = folder.reader().time_comment(comment_id)
    if comment is None:  # deleted by another request in between
        raise HTTPProblem(404, f"There is no time comment with id {comment_id}")
    return TimeCommentOut(id=comment.id, timestamp=_finite(comment.timestamp),
                          text=comment.comment)
