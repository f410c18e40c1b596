"""Checking a context file's text without saving it, in the experiment's Python.

The text is user code and the server's interpreter need not be the experiment's, so
:func:`check_text` runs ``python -m runtable.server.contextcheck NAME`` in the folder's
``context_python`` with the text on stdin, in the database folder (so relative paths
in the file mean what they mean when the service loads it). The child loads the text
as :mod:`runtable.context.loader` does for the service and lints it as ``runtable
check`` does (:mod:`runtable.context.check`), then prints one JSON line. A file that
loops or blocks at import is killed, with its whole process group, after a time limit.

This module imports only the standard library at the top: the child side must start
quickly and needs neither the web framework nor numpy.
"""

from __future__ import annotations

import json
import os
import sys
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

#: Default time limit of one check in the editor, where a person waits for the answer;
#: a context file that imports heavy libraries (extra_data, xarray) on a loaded machine
#: needs a few seconds, a loop never ends. The queue's own check, which nobody waits
#: for, allows twice as long (:data:`runtable.jobs.ctxcheck.QUEUE_CHECK_TIMEOUT_S`).
EDITOR_CHECK_TIMEOUT_S = 60.0


@dataclass
class Issue:
    """One error or warning: where (``line``/``column`` are 1-based; None when
    unknown) and what. ``path`` is another file when the problem is in a module the
    context file imports."""

    message: str
    line: int | None = None
    column: int | None = None
    kind: str = ""
    path: str = ""
    traceback: str = ""


@dataclass
class CheckResult:
    """Errors block a save; warnings (pyflakes) don't."""

    errors: list[Issue] = field(default_factory=list)
    warnings: list[Issue] = field(default_factory=list)
    #: ``[{"name", "title", "data", "cluster", "tags"}]`` of the variables, when the
    #: file loads.
    variables: list[dict[str, Any]] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.errors

    def to_json(self) -> dict[str, Any]:
        """The answer's body: ``ok``, ``errors``, ``warnings``, ``variables``."""
        return {"ok": self.ok, "errors": [asdict(e) for e in self.errors],
                "warnings": [asdict(w) for w in self.warnings],
                "variables": self.variables}


def check_text(text: str, db_dir: str | os.PathLike[str], python: str | None = None,
               timeout: float = EDITOR_CHECK_TIMEOUT_S, name: str | None = None) -> CheckResult:
    """Load and lint ``text`` as ``db_dir``'s context file (``name``: its path, by
    default ``db_dir/context.py``), in ``python`` (default: this interpreter). Never
    raises for problems in the text, the interpreter or a time-out: they come back as
    errors a person can act on."""
    from runtable.execute.subprocess import run_json_child

    db_dir = Path(db_dir).absolute()
    name = name or str(db_dir / "context.py")
    python = python or sys.executable
    cmd = [python, "-m", "runtable.server.contextcheck", name]
    try:
        answer = run_json_child(cmd, cwd=db_dir, timeout=timeout, input=text.encode("utf-8"))
    except OSError as exc:
        return CheckResult([Issue(
            f"Could not start the context's Python {python!r}: {exc.strerror or exc}. "
            "Set another with `runtable config context_python PATH`.", kind="Setup")])
    if answer.timed_out:
        return CheckResult([Issue(
            f"Loading the context file did not finish within {timeout:g} s, so it was "
            "stopped. Look for a loop or a blocking call (input(), a network request, "
            "reading a large file) at the top level of the file, outside the "
            "@Variable functions.", kind="Timeout")])
    if answer.line is not None:
        return _parse(json.loads(answer.line))
    tail = "\n".join(answer.stderr.decode("utf-8", "replace").strip().splitlines()[-8:])
    return CheckResult([Issue(
        f"Loading the context file ended its process without an answer (exit status "
        f"{answer.returncode}). Look for os._exit(), a crash in a library it imports, or "
        f"code that kills its own process at the top level of the file; or runtable is "
        f"not installed in {python}.", kind="Exited", traceback=tail)])


def _parse(data: dict[str, Any]) -> CheckResult:
    def issues(items: list[dict[str, Any]]) -> list[Issue]:
        known = Issue.__dataclass_fields__
        return [Issue(**{k: v for k, v in item.items() if k in known}) for item in items]

    return CheckResult(issues(data.get("errors", [])), issues(data.get("warnings", [])),
                       list(data.get("variables", [])))


# -- the child side ----------------------------------------------------------------------
def _check_in_child(text: str, name: str) -> dict[str, Any]:
    import ast
    import linecache

    from runtable.context import ContextFileErrors, Pipeline
    from runtable.context.check import lint_warnings

    # Tracebacks show the lines of the text being checked, not of the file on disk.
    linecache.cache[name] = (len(text), None, text.splitlines(keepends=True), name)
    column = None
    try:
        ast.parse(text, filename=name)
    except SyntaxError as exc:
        column = exc.offset
    errors: list[dict[str, Any]] = []
    variables: list[dict[str, Any]] = []
    try:
        pipeline = Pipeline.from_str(text, path=name)
    except ContextFileErrors as exc:
        for p in exc.problems:
            other = p.path and os.path.realpath(p.path) != os.path.realpath(name)
            errors.append(asdict(Issue(
                p.message, p.line, column if p.kind == "SyntaxError" else None, p.kind,
                p.path if other else "", getattr(p, "traceback", ""))))
    else:
        variables = [{"name": v.name, "title": v.title or v.name, "data": v.data.value,
                      "cluster": bool(v.cluster), "tags": list(v.tags or ())}
                     for v in pipeline.vars.values()]
    warnings = [asdict(Issue(w.message, w.line or None, kind="lint"))
                for w in lint_warnings(text, name)]
    return {"errors": errors, "warnings": warnings, "variables": variables}


def main(argv: list[str] | None = None) -> int:
    """``python -m runtable.server.contextcheck NAME``: check stdin, print one JSON line."""
    argv = sys.argv[1:] if argv is None else argv
    name = argv[0] if argv else "context.py"
    text = sys.stdin.buffer.read().decode("utf-8", "replace")
    # stdin is at its end now: a context file calling input() gets EOF, not a hang.
    out = os.fdopen(os.dup(1), "w")
    os.dup2(2, 1)  # the context file's own prints must not corrupt the answer
    try:
        answer = _check_in_child(text, name)
    except BaseException as exc:  # whatever happens, say it in the answer
        answer = {"errors": [asdict(Issue(f"The check itself failed: "
                                          f"{type(exc).__name__}: {exc}", kind="Internal"))]}
    out.write(json.dumps(answer) + "\n")
    out.flush()
    return 0


if __name__ == "__main__":
    sys.exit(main())
