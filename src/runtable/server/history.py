"""Where a value came from and what it was before (:mod:`runtable.store.history`).

* ``GET /api/runs/{run}/history/{name}``: every kept version of one cell, with the job,
  host, runtable version and context text of each, and whether each was computed by
  code that has changed since (``stale``).
* ``GET /api/history/stale``: which cells of the table hold stale values, for the
  table's marker.
* ``GET /api/context/texts/{sha256}`` and ``GET /api/context/diff``: a context text
  that ran, and the difference between two (or one and the file now).
* ``GET /api/time-comments/{id}/history``: the texts a standalone comment had.

"Now" is the context file as the service's check last loaded it
(:func:`runtable.jobs.inspect_context`, in ``context_python``; cached while the file
is unchanged, so it costs a ``stat``).
"""

from __future__ import annotations

import base64
import difflib
import math
import threading
from typing import Annotated, Any

import numpy as np
from fastapi import APIRouter, Query, Request

from ..context.codehash import text_sha256
from ..store.contexts import is_sha256, read_meta, read_text
from ..store.history import HistoryEntry, cell_history, stale_runs, time_comment_history
from ..store.summaries import encode_summary
from .paths import IdPath, RunPath, proposal_of
from .problems import HTTPProblem
from .table import trendline_points

router = APIRouter(prefix="/api", tags=["history"])

#: ``/api/context/diff``'s name for the context file as it is now.
CURRENT = "current"
_stale_lock = threading.Lock()
#: More runs changed than this since the stale cells were last told: all again.
_MAX_INCREMENTAL_RUNS = 500


def _now(request: Request) -> Any:
    """The context file now: :class:`~runtable.jobs.ctxcheck.ContextInfo`."""
    from ..jobs import inspect_context

    python = request.app.state.folder.reader().get_setting("context_python")
    return inspect_context(request.app.state.db_dir, python)


def _value(entry: HistoryEntry) -> dict[str, Any]:
    """An entry's value for JSON: ``value`` when it is a number, text or boolean;
    otherwise ``text`` says what it is, with the thumbnail (``png``, base64) or the
    trendline's points (``points``)."""
    value = entry.value
    if isinstance(value, bytes):
        return {"text": "<image>", "png": base64.b64encode(value).decode("ascii")}
    if isinstance(value, complex):
        return {"text": f"{value.real:.6g}{value.imag:+.6g}j"}
    if isinstance(value, np.ndarray):
        if entry.summary_type == "trendline":
            blob, _ = encode_summary(value, "trendline")
            return {"text": "<trendline>", "points": trendline_points(blob)}
        return {"text": f"<array {value.dtype}: {tuple(value.shape)}>"}
    if isinstance(value, float) and not math.isfinite(value):
        return {"value": None, "text": str(value)}
    if isinstance(value, np.generic):
        return {"value": value.item()}
    return {"value": value}


def _entry(entry: HistoryEntry, now: dict[str, str] | None, name: str) -> dict[str, Any]:
    row = entry.row()
    row.pop("value")
    current_code = (now or {}).get(name)
    stale = None
    if entry.code_hash is not None and current_code is not None:
        stale = entry.code_hash != current_code
    return {**row, **_value(entry), "stale": stale}


@router.get("/runs/{run}/history/{name}",
            responses={404: {"description": "unknown run"}})
def get_cell_history(run: RunPath, name: str, request: Request) -> dict[str, Any]:
    """Every kept version of one cell, oldest first, the current one last.

    Each entry: ``kind`` (``value``, ``error``, ``cleared``), ``value`` or ``text``
    (``png``/``points`` for thumbnails and trendlines), ``error_cls``/``error``,
    ``written_at``/``replaced_at`` (Unix seconds), ``current``, ``origin``,
    ``context_sha256``, ``code_hash``, ``job``, ``job_id``, ``executor``,
    ``slurm_job_id``, ``host``, ``user``, ``runtable``, ``fragment``, and ``stale``:
    whether the variable's code in the context file now differs from the code that
    computed this version (null when not known). ``context`` is the file now.
    """
    folder = request.app.state.folder
    proposal = proposal_of(folder, run)
    entries = cell_history(folder.reader(), proposal, run, name)
    info = _now(request)
    now = info.code if info.problems is None else None
    return {"run": run, "name": name, "context": {
                "sha256": info.sha256, "code_hash": (now or {}).get(name),
                "problems": info.problems},
            "entries": [_entry(e, now, name) for e in entries]}


@router.get("/history/stale")
def get_stale(request: Request) -> dict[str, Any]:
    """``stale``: ``{variable name: [runs]}`` whose value in the table was computed by
    code that has changed in the context file since (the variable's own function, the
    file's helpers it uses, or a variable it depends on). Empty while the context file
    does not load (``problems`` says why)."""
    info = _now(request)
    if info.problems is not None or not info.code:
        return {"context": info.sha256, "problems": info.problems, "stale": {}}
    db = request.app.state.folder.reader()
    proposal = request.app.state.folder.proposal
    seq = db.change_seq()
    key = (seq, info.sha256)
    state = request.app.state
    # One computation at a time: browsers asking meanwhile get its answer.
    with _stale_lock:
        cached = getattr(state, "stale_cache", None)
        if cached is not None and cached[0] == key:
            return cached[1]
        answer = _stale_answer(db, info, proposal, seq, cached)
        state.stale_cache = (key, answer)
    return answer


def _stale_answer(db: Any, info: Any, proposal: int | None, seq: int | None,
                  cached: tuple[tuple[Any, Any], dict[str, Any]] | None) -> dict[str, Any]:
    stale = None
    if cached is not None and cached[0][1] == info.sha256 and cached[0][0] is not None \
            and seq is not None:
        # The same context file, some runs changed since: only those are looked at
        # again (the whole table costs a few µs per stale cell, docs/performance.md).
        changed = db.runs_changed_since(cached[0][0])
        if len(changed) <= _MAX_INCREMENTAL_RUNS:
            again = stale_runs(db, info.code, proposal, changed)
            stale = {}
            for name in sorted({*cached[1]["stale"], *again}):
                runs = sorted({r for r in cached[1]["stale"].get(name, ())
                               if r not in changed} | set(again.get(name, ())))
                if runs:
                    stale[name] = runs
    if stale is None:
        stale = stale_runs(db, info.code, proposal)
    return {"context": info.sha256, "problems": None, "stale": stale}


@router.get("/context/texts/{sha256}", responses={404: {"description": "no such text"}})
def get_context_text(sha256: str, request: Request) -> dict[str, Any]:
    """A context file's text that ran (by its SHA-256), with ``first_run`` (Unix
    seconds) and ``code`` (its variables' code hashes) when known."""
    text = read_text(request.app.state.db_dir, sha256)
    if text is None:
        raise HTTPProblem(404, f"No context text {sha256[:64]!r} is kept in this folder")
    meta = read_meta(request.app.state.db_dir, sha256) or {}
    return {"sha256": sha256, "text": text, "first_run": meta.get("first_run"),
            "code": meta.get("code")}


def _text_of(request: Request, which: str) -> str:
    if which == CURRENT:
        try:
            return (request.app.state.db_dir / "context.py").read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            raise HTTPProblem(404, f"The context file cannot be read now: {exc}") from exc
    if not is_sha256(which):
        raise HTTPProblem(422, f"{which[:80]!r} is neither a context text's SHA-256 nor "
                          f"{CURRENT!r}")
    text = read_text(request.app.state.db_dir, which)
    if text is None:
        raise HTTPProblem(404, f"The context text {which[:12]}… is not kept in this folder "
                          "(it ran before runtable kept texts, or was deleted)")
    return text


@router.get("/context/diff", responses={404: {"description": "a text is not kept"},
                                        422: {"description": "not a hash"}})
def get_context_diff(
    request: Request,
    a: Annotated[str, Query(max_length=100, description="SHA-256 of the older text, or "
                            "`current`")],
    b: Annotated[str, Query(max_length=100, description="SHA-256 of the newer text, or "
                            "`current`")] = CURRENT,
) -> dict[str, Any]:
    """The difference between two context texts, as a unified diff (``diff``: lines
    starting with ``+``, ``-``, space, or ``@@``), with the number of lines added and
    removed."""
    old, new = _text_of(request, a), _text_of(request, b)
    lines = list(difflib.unified_diff(old.splitlines(), new.splitlines(),
                                      fromfile=_label(a, old), tofile=_label(b, new),
                                      lineterm="", n=3))
    added = sum(1 for ln in lines[2:] if ln.startswith("+"))
    removed = sum(1 for ln in lines[2:] if ln.startswith("-"))
    return {"a": a, "b": b, "diff": lines, "added": added, "removed": removed,
            "same": old == new}


def _label(which: str, text: str) -> str:
    if which == CURRENT:
        return f"context.py now ({text_sha256(text)[:12]})"
    return f"context.py {which[:12]}"


@router.get("/time-comments/{comment_id}/history",
            responses={404: {"description": "no such comment, now or before"}})
def get_time_comment_history(comment_id: IdPath, request: Request) -> list[dict[str, Any]]:
    """The texts a standalone comment had, oldest first, the current one last
    (``replaced_at`` null); ``deleted`` marks the last text of a deleted comment."""
    versions = time_comment_history(request.app.state.folder.reader(), comment_id)
    if not versions:
        raise HTTPProblem(404, f"There is no time comment with id {comment_id}, and there "
                          "never was")
    return [{"comment": v.comment, "timestamp": v.timestamp, "replaced_at": v.replaced_at,
             "deleted": v.deleted} for v in versions]
