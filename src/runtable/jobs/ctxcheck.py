"""Does the context file load? :func:`check_context`, run before each dispatch.

The file is user code, so it is loaded in a separate process with the folder's
``context_python`` (``python -m runtable.jobs.ctxcheck DB_DIR`` prints one JSON
line), never in the service. The answer is cached on the file's size and
modification time, so checking before every job costs a ``stat``.
"""

from __future__ import annotations

import json
import os
import sys
import threading
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from ..selection import Selection, select_names

#: Time limit of the check the queue makes before dispatching: nobody waits for it, and
#: a file wrongly found not to load pauses the queue, so it is twice the editor's
#: (:data:`runtable.server.contextcheck.EDITOR_CHECK_TIMEOUT_S`), where a person waits.
QUEUE_CHECK_TIMEOUT_S = 120.0


@dataclass(frozen=True)
class VariableInfo:
    """What the queue needs to know about a variable to mark it failed."""

    name: str
    title: str
    data: str  # 'raw' | 'proc'
    cluster: bool
    transient: bool
    deps: tuple[str, ...] = ()


@dataclass
class ContextInfo:
    """Result of loading the context file: ``problems`` (None when it loads) and its
    variables."""

    problems: str | None
    variables: dict[str, VariableInfo] = field(default_factory=dict)
    #: ``Pipeline.vars_to_dict()`` of the file: what the database's ``variables`` table
    #: holds (title, description, tags, ...), without transient variables.
    definitions: dict[str, dict[str, Any]] = field(default_factory=dict)
    #: The SHA-256 of the text that was loaded, and its variables' code hashes
    #: (:mod:`runtable.context.codehash`): what tells a stale value.
    sha256: str | None = None
    code: dict[str, str] = field(default_factory=dict)

    def select(self, selection: Selection) -> list[str]:
        """Names a job with this selection computes (:func:`runtable.selection.select_names`,
        as ``Pipeline.select``).

        A job's names are compared with the context file as it is now: a name the
        file no longer defines is left out here (the job itself reports it when it
        runs), and a selection of such names only computes nothing."""
        known = tuple(n for n in selection.variables if n in self.variables)
        if selection.variables and not known:
            return []
        return select_names(self.variables, replace(selection, variables=known),
                            lambda name: [d for d in self.variables[name].deps
                                          if d in self.variables])


_cache: dict[tuple, ContextInfo] = {}
_cache_lock = threading.Lock()


def _key(path: Path, python: str) -> tuple:
    try:
        st = path.stat()
    except OSError:
        return (str(path), python, None)
    return (str(path), python, st.st_mtime_ns, st.st_size, st.st_ino)


def inspect_context(db_dir: str | Path, python: str | Path | None = None,
                    context_file: str | Path | None = None) -> ContextInfo:
    """Load the context file in a child process (cached until the file changes)."""
    db_dir = Path(db_dir)
    path = Path(context_file) if context_file else db_dir / "context.py"
    python = str(python or sys.executable)
    key = _key(path, python)
    with _cache_lock:
        cached = _cache.get(key)
    if cached is not None:
        return cached
    if key[2] is None:
        info = ContextInfo(f"{path}: the context file does not exist")
    else:
        info = _load_in_child(db_dir, path, python)
    with _cache_lock:
        # Only the newest version of each file is worth keeping.
        for old in [k for k in _cache if k[:2] == key[:2]]:
            del _cache[old]
        _cache[key] = info
    return info


def check_context(db_dir: str | Path, python: str | Path | None = None,
                  context_file: str | Path | None = None) -> str | None:
    """Why the context file can't be used (one line per problem), or None if it loads."""
    return inspect_context(db_dir, python, context_file).problems


def _load_in_child(db_dir: Path, path: Path, python: str) -> ContextInfo:
    from runtable.execute.subprocess import run_json_child

    cmd = [python, "-m", "runtable.jobs.ctxcheck", str(path)]
    try:
        answer = run_json_child(cmd, cwd=db_dir, timeout=QUEUE_CHECK_TIMEOUT_S)
    except OSError as exc:
        return ContextInfo(f"Could not start {python}: {exc}")
    if answer.timed_out:
        return ContextInfo(f"{path}: loading the context file took longer than "
                           f"{QUEUE_CHECK_TIMEOUT_S:g} s")
    if answer.line is not None:
        return _parse(json.loads(answer.line))
    err = answer.stderr.decode("utf-8", "replace").strip().splitlines()[-5:]
    return ContextInfo(f"{path}: checking the context file failed "
                       f"(exit {answer.returncode}): " + "\n".join(err))


def _parse(data: Mapping[str, Any]) -> ContextInfo:
    variables = {
        name: VariableInfo(name=name, title=v["title"], data=v["data"], cluster=v["cluster"],
                           transient=v["transient"], deps=tuple(v["deps"]))
        for name, v in data.get("variables", {}).items()
    }
    return ContextInfo(data.get("problems"), variables, dict(data.get("definitions") or {}),
                       data.get("sha256"), dict(data.get("code") or {}))


def main(argv: list[str] | None = None) -> int:
    """``python -m runtable.jobs.ctxcheck CONTEXT_FILE``: print one JSON line."""
    argv = sys.argv[1:] if argv is None else argv
    path = Path(argv[0])
    out = os.fdopen(os.dup(1), "w")
    os.dup2(2, 1)  # the context's own prints must not corrupt the answer
    from runtable.context import Pipeline
    from runtable.context.codehash import code_hashes, text_sha256
    from runtable.context.graph import dependencies
    from runtable.execute.runner import describe_load_error

    try:
        pipeline = Pipeline.from_context_file(path)
    except (Exception, SystemExit) as exc:
        out.write(json.dumps({"problems": describe_load_error(exc, path)}) + "\n")
        return 0
    variables = {
        name: {"title": v.title or name, "data": v.data.value, "cluster": bool(v.cluster),
               "transient": bool(v.transient), "deps": dependencies(v, pipeline.vars)}
        for name, v in pipeline.vars.items()
    }
    try:
        code = code_hashes(pipeline)
    except Exception:  # no stale marks rather than no table
        code = {}
    out.write(json.dumps({"problems": None, "variables": variables,
                          "definitions": pipeline.vars_to_dict(),
                          "sha256": text_sha256(pipeline.source_text or ""),
                          "code": code}) + "\n")
    out.flush()
    return 0


if __name__ == "__main__":
    sys.exit(main())
