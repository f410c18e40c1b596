"""The context file: read, validate, save with history, roll back.

* ``GET /api/context``: the text, its version and the load status when known.
* ``POST /api/context/check``: load and lint a text in the folder's ``context_python``
  without saving it (:mod:`runtable.server.contextcheck`).
* ``PUT /api/context``: check, then save -- unless the file changed on disk since the
  editor loaded it (409 with the disk's text), or the text has errors (422).
* ``GET /api/context/history`` and ``/history/{id}``: every text saved here, and the
  text found on disk before each save, in ``<db>/context_history/``. Rolling back is
  loading an old text into the editor and saving it through ``PUT`` like any edit.

A *version* is ``<sha256 prefix>-<mtime_ns>``. Only the content part decides a
conflict: a file that was touched but not changed is no conflict.

Saving writes a temporary file beside ``context.py`` and renames it over it (keeping
the mode), so the service's monitor and a concurrent editor see the old file or the
new one, never a part. The service notices the new file within its
``context_poll_s``, reloads it and publishes ``context_status`` and
``variables_changed``; this module publishes ``context_saved`` at once.
"""

from __future__ import annotations

import contextlib
import difflib
import hashlib
import json
import os
import re
import tempfile
import threading
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field

from ..events import ContextSaved
from ..sharing import FILE_MODE, shared_dir, shared_file
from .contextcheck import EDITOR_CHECK_TIMEOUT_S, CheckResult, check_text
from .problems import HTTPProblem

router = APIRouter(prefix="/api", tags=["context file"])

#: Longest context file accepted: real ones are tens of kB.
MAX_TEXT = 5_000_000
HISTORY_DIR = "context_history"
_ID_RE = re.compile(r"\d{8}T\d{6}\.\d{6}Z(-\d+)?")
_state_guard = threading.Lock()


# -- bodies and answers ------------------------------------------------------------------
class CheckBody(BaseModel):
    """Body of ``POST /api/context/check``."""

    text: Annotated[str, Field(max_length=MAX_TEXT, strict=True,
                               description="the context file's text to check")]


class SaveBody(BaseModel):
    """Body of ``PUT /api/context``."""

    text: Annotated[str, Field(max_length=MAX_TEXT, strict=True,
                               description="the new text of the context file")]
    base_version: str | None = Field(
        None, max_length=200, description="the version the editor started from "
        "(from GET /api/context or a 409 answer); required unless `force`")
    force: bool = Field(False, strict=True,
                        description="save even if the file changed on disk since")


class ContextOut(BaseModel):
    """Answer of ``GET /api/context``."""

    path: str = Field(description="the file's name on the server")
    exists: bool
    text: str
    version: str
    modified: float | None = Field(description="modification time, Unix seconds")
    status: dict[str, Any] | None = Field(
        description="the last check of exactly this text in this server "
        "(`ok`, `errors`, `warnings`), or null when not checked yet")


class SaveOut(BaseModel):
    """Answer of a successful ``PUT /api/context``."""

    version: str
    changed: bool = Field(description="false when the text equalled the file's")
    history_id: str | None = Field(description="the history entry of the saved text")
    check: dict[str, Any] = Field(description="the check of the saved text (warnings)")


class HistoryEntry(BaseModel):
    """One kept version of the context file."""

    id: str
    time: float = Field(description="Unix seconds")
    kind: str = Field(description="`saved` (saved from the editor) or `before` (the "
                      "text found on disk before a save)")
    size: int
    by: str = ""
    summary: str = ""
    first_changed_line: int | None = None


_ERRORS: dict[int | str, dict[str, Any]] = {
    409: {"description": "the file changed on disk since `base_version`; the answer "
          "has the disk's `text` and `version`"},
    422: {"description": "the text has errors (`errors`, `warnings`) or the body is bad"},
}


# -- the file ----------------------------------------------------------------------------
def _context_path(request: Request) -> Path:
    return Path(request.app.state.db_dir) / "context.py"


def _version(data: bytes, mtime_ns: int | None) -> str:
    return f"{hashlib.sha256(data).hexdigest()[:16]}-{mtime_ns or 0}"


def _content_part(version: str | None) -> str:
    return (version or "").split("-", 1)[0]


def _read(path: Path) -> tuple[bytes | None, int | None, int | None]:
    """(bytes, mtime_ns, mode) of the file; None bytes when it does not exist."""
    try:
        with open(path, "rb") as f:
            st = os.fstat(f.fileno())
            return f.read(), st.st_mtime_ns, st.st_mode
    except FileNotFoundError:
        return None, None, None
    except OSError as exc:
        raise HTTPProblem(503, f"The server cannot read {path}: {exc.strerror}") from exc


def _decode(data: bytes | None, path: Path) -> str:
    if data is None:
        return ""
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise HTTPProblem(500, f"{path} is not UTF-8 text (byte {exc.start}), so the web "
                          "editor cannot show it without changing it; fix it in a text "
                          "editor on the server") from exc


def _write_atomically(path: Path, text: str, mode: int | None) -> None:
    # Through a symlink, the file it points to is replaced, not the link.
    target = Path(os.path.realpath(path))
    fd, tmp = tempfile.mkstemp(prefix=".context-", suffix=".py.tmp", dir=target.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(text.encode("utf-8"))
            f.flush()
            os.fsync(f.fileno())
        # The mode the file had (never writable by others), else the team's.
        os.chmod(tmp, mode & 0o7775 if mode is not None else FILE_MODE)
        os.replace(tmp, target)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


def _python(request: Request) -> str | None:
    try:
        return request.app.state.folder.reader().get_setting("context_python")
    except Exception:  # an unreadable database must not stop checking a text
        return None


def _timeout(request: Request) -> float:
    return float(getattr(request.app.state, "context_check_timeout_s", EDITOR_CHECK_TIMEOUT_S))


def _check(request: Request, text: str) -> CheckResult:
    result = check_text(text, request.app.state.db_dir, _python(request), _timeout(request))
    # Remember the verdict for this exact text, so GET can tell the status at once.
    statuses = _statuses(request)
    statuses[hashlib.sha256(text.encode("utf-8")).hexdigest()] = result.to_json()
    while len(statuses) > 20:
        statuses.pop(next(iter(statuses)))
    return result


def _statuses(request: Request) -> dict[str, dict[str, Any]]:
    state = request.app.state
    with _state_guard:
        if not hasattr(state, "context_statuses"):
            state.context_statuses = {}
        return state.context_statuses


def _save_lock(request: Request) -> threading.Lock:
    """Serialises "compare with disk, write, record" between concurrent saves."""
    state = request.app.state
    with _state_guard:
        if not hasattr(state, "context_save_lock"):
            state.context_save_lock = threading.Lock()
        return state.context_save_lock


# -- history -----------------------------------------------------------------------------
def _history_dir(request: Request) -> Path:
    return Path(request.app.state.db_dir) / HISTORY_DIR


def _new_id(folder: Path, now: float) -> str:
    base = datetime.fromtimestamp(now, UTC).strftime("%Y%m%dT%H%M%S.%fZ")
    entry, n = base, 1
    while (folder / f"{entry}.py").exists():
        entry, n = f"{base}-{n}", n + 1
    return entry


def _diff_summary(old: str, new: str) -> tuple[str, int | None]:
    """("+a -b lines", first changed line of ``new``) between two texts."""
    a, b = old.splitlines(), new.splitlines()
    added = removed = 0
    first: int | None = None
    for tag, i1, i2, j1, j2 in difflib.SequenceMatcher(None, a, b, autojunk=False).get_opcodes():
        if tag == "equal":
            continue
        if first is None:
            first = j1 + 1
        removed += i2 - i1
        added += j2 - j1
    return (f"+{added} -{removed} lines" if first is not None else "no change"), first


def _record(folder: Path, text: str, kind: str, by: str, previous: str | None) -> str:
    """Keep ``text`` as a history entry (the text, then its JSON metadata); its id."""
    shared_dir(folder)
    now = time.time()
    entry = _new_id(folder, now)
    summary, first = ("first version kept", None) if previous is None else \
        _diff_summary(previous, text)
    meta = {"id": entry, "time": now, "kind": kind, "size": len(text.encode("utf-8")),
            "by": by, "summary": summary, "first_changed_line": first}
    # The text first: an entry whose metadata exists always has its text.
    for suffix, content in ((".py", text), (".json", json.dumps(meta))):
        path = folder / f"{entry}{suffix}"
        path.write_text(content, encoding="utf-8")
        shared_file(path)
    return entry


def _entries(folder: Path) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    if not folder.is_dir():
        return out
    for meta_path in folder.glob("*.json"):
        try:
            meta = json.loads(meta_path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            continue  # a damaged entry hides itself rather than the whole history
        if isinstance(meta, dict) and meta.get("id") == meta_path.stem \
                and (folder / f"{meta_path.stem}.py").is_file():
            out.append(meta)
    out.sort(key=lambda m: m["id"], reverse=True)
    return out


def _latest_text(folder: Path) -> str | None:
    entries = _entries(folder)
    if not entries:
        return None
    try:
        return (folder / f"{entries[0]['id']}.py").read_text(encoding="utf-8")
    except OSError:
        return None


def _who(request: Request) -> str:
    host = request.client.host if request.client else "unknown"
    agent = request.headers.get("user-agent", "")
    browser = next((name for name in ("Firefox", "Edg", "Chrome", "Safari", "curl",
                                      "python") if name in agent), "")
    return f"web editor from {host}" + (f" ({browser})" if browser else "")


# -- routes ------------------------------------------------------------------------------
@router.get("/context", response_model=ContextOut)
def get_context(request: Request) -> ContextOut:
    """The context file's text and version (and its load status, when known)."""
    path = _context_path(request)
    data, mtime_ns, _ = _read(path)
    text = _decode(data, path)
    status = _statuses(request).get(hashlib.sha256(data or b"").hexdigest())
    return ContextOut(path=str(path), exists=data is not None, text=text,
                      version=_version(data or b"", mtime_ns),
                      modified=mtime_ns / 1e9 if mtime_ns else None, status=status)


@router.post("/context/check")
def check_context(body: CheckBody, request: Request) -> dict[str, Any]:
    """Load and lint ``text`` as the context file, without saving it.

    ``errors`` (``message``, ``line``, ``column``, ``kind``, ``path`` when in another
    file, ``traceback``) would stop the file from being used; ``warnings`` (pyflakes,
    without false alarms for ``var#``/``meta#``/``self#`` annotations) don't.
    """
    return _check(request, body.text).to_json()


@router.put("/context", response_model=SaveOut, responses=_ERRORS)
def save_context(body: SaveBody, request: Request) -> SaveOut | JSONResponse:
    """Check ``text``, then save it as the context file, keeping the old and the new
    text in the history. Errors: 422 (nothing saved). Changed on disk since
    ``base_version`` (and not ``force``): 409 with the disk's ``text`` and ``version``.
    """
    if not body.force and not body.base_version:
        raise HTTPProblem(422, "base_version is missing: send the version you loaded "
                          "(GET /api/context), or force: true to overwrite")
    result = _check(request, body.text)
    if not result.ok:
        n = len(result.errors)
        return JSONResponse(status_code=422, content={
            "detail": f"Not saved: the context file has {n} error{'s' if n != 1 else ''} "
                      "(see errors); fix them and save again",
            **result.to_json()})
    path = _context_path(request)
    history = _history_dir(request)
    with _save_lock(request):
        data, mtime_ns, mode = _read(path)
        disk_text = _decode(data, path)
        disk_version = _version(data or b"", mtime_ns)
        if not body.force and _content_part(body.base_version) != _content_part(disk_version):
            return JSONResponse(status_code=409, content={
                "detail": "The context file changed on disk since you opened it; "
                          "compare, then reload it or overwrite it",
                "text": disk_text, "version": disk_version, "exists": data is not None})
        if data is not None and disk_text == body.text:
            return SaveOut(version=disk_version, changed=False, history_id=None,
                           check=result.to_json())
        try:
            if data is not None and _latest_text(history) != disk_text:
                # Edited outside the editor (or the first save here): keep it too.
                _record(history, disk_text, "before", "found on disk before a save",
                        _latest_text(history))
            entry = _record(history, body.text, "saved", _who(request),
                            disk_text if data is not None else None)
            _write_atomically(path, body.text, mode)
        except OSError as exc:
            raise HTTPProblem(503, f"Not saved: the server cannot write {exc.filename or path}"
                              f" ({exc.strerror}). Your text is still in the editor.") from exc
        new_data, new_mtime, _ = _read(path)
        version = _version(new_data or b"", new_mtime)
    request.app.state.bus.publish(ContextSaved(version=version, history_id=entry))
    return SaveOut(version=version, changed=True, history_id=entry, check=result.to_json())


@router.get("/context/history", response_model=list[HistoryEntry])
def list_history(request: Request) -> list[HistoryEntry]:
    """Every kept version of the context file, newest first."""
    known = HistoryEntry.model_fields
    return [HistoryEntry(**{k: v for k, v in m.items() if k in known})
            for m in _entries(_history_dir(request))]


@router.get("/context/history/{entry}", responses={404: {"description": "no such entry"}})
def get_history(entry: str, request: Request) -> dict[str, Any]:
    """One kept version: its metadata and ``text``."""
    folder = _history_dir(request)
    if not _ID_RE.fullmatch(entry):
        raise HTTPProblem(404, f"No context-file history entry {entry!r}")
    try:
        text = (folder / f"{entry}.py").read_text(encoding="utf-8")
        meta = json.loads((folder / f"{entry}.json").read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise HTTPProblem(404, f"No context-file history entry {entry!r}") from None
    except (OSError, ValueError) as exc:
        raise HTTPProblem(500, f"History entry {entry} cannot be read: {exc}") from exc
    return {**meta, "text": text}
