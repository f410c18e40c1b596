"""Loading a context file: compile, run its top level, collect its variables.

Loading never raises anything but :class:`ContextFileErrors` for problems in the file
(including a SyntaxError, an exception or ``sys.exit()`` at its top level), and leaves
no trace in the interpreter when it fails.
"""

from __future__ import annotations

import ast
import os
import sys
import traceback
import types
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from .environment import context_environment, context_folder, explain_missing_module
from .errors import LOADING, ContextFileErrors, LoadState, Problem
from .group import is_group
from .pipeline import DEFAULT_NAME, Pipeline
from .variable import Variable

_MODULE_NAME = "runtable_context_file"


def load_file(path: str | Path) -> Pipeline:
    """Load the context file at ``path`` (see :meth:`Pipeline.from_context_file`)."""
    path = Path(path)
    try:
        code = path.read_text()
    except OSError as exc:
        raise ContextFileErrors(
            [Problem(str(path), None, f"cannot read the context file: {exc.strerror}")]
        ) from None
    return load_source(code, str(path))


def load_source(code: str, path: str = "context.py") -> Pipeline:
    """Load context-file ``code``; ``path`` names it in messages and tracebacks, and its
    folder comes first on ``sys.path`` while the file loads and runs."""
    state = LoadState(path)
    try:
        tree = ast.parse(code, filename=path)
    except SyntaxError as exc:
        raise ContextFileErrors([Problem(path, exc.lineno, f"SyntaxError: {exc.msg}",
                                         "SyntaxError")]) from None
    state.deflines = _def_lines(tree)
    folder = context_folder(path)
    module = types.ModuleType(_MODULE_NAME)
    module.__file__ = path
    namespace = module.__dict__
    token = LOADING.set(state)
    # While its top level runs, the file is a module (dataclasses and typing look
    # classes' modules up); afterwards it is removed so loads don't accumulate.
    previous = sys.modules.get(_MODULE_NAME)
    sys.modules[_MODULE_NAME] = module
    try:
        with context_environment(folder):
            try:
                try:
                    exec(compile(tree, path, "exec", dont_inherit=True), namespace)
                except (Exception, SystemExit) as exc:
                    state.problems.append(_problem_from_exception(exc, path, folder))
                    raise ContextFileErrors(_sorted(state.problems)) from None
            finally:
                if previous is None:
                    sys.modules.pop(_MODULE_NAME, None)
                else:
                    sys.modules[_MODULE_NAME] = previous
            pipeline = _collect(state, namespace)
            pipeline._folder = folder
            # What was run, exactly: the record of which text computed a value.
            pipeline.source_text = code
            pipeline.source_path = path
            try:
                state.problems.extend(pipeline._compile())
            except Exception as exc:
                # Options already reported as invalid can trip later checks; the
                # reported problems are what the user needs to fix first.
                if not state.problems:
                    state.problems.append(_problem_from_exception(exc, path, folder))
            if state.problems:
                raise ContextFileErrors(_sorted(state.problems))
            return pipeline
    finally:
        LOADING.reset(token)


def _def_lines(tree: ast.AST) -> dict[int, int]:
    # A decorated function's code starts at its first decorator; problems about its
    # arguments read better at the ``def`` line.
    lines = {}
    for node in ast.walk(tree):
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef) and node.decorator_list:
            lines[min(d.lineno for d in node.decorator_list)] = node.lineno
    return lines


def _collect(state: LoadState, namespace: Mapping[str, Any]) -> Pipeline:
    if state.replaced is not None:
        pipeline = state.replaced
    else:
        pipeline = state.default if state.default is not None else Pipeline(name=DEFAULT_NAME)
        known = {id(obj) for _, obj in pipeline._items}
        found = [
            (None, value) for key, value in namespace.items()
            if not key.startswith("__") and id(value) not in known
            and ((isinstance(value, Variable) and value.func is not None) or is_group(value))
        ]
        # Discovered globals first, in definition order; explicit additions after.
        pipeline._items = list({id(obj): (k, obj) for k, obj in found + pipeline._items}.values())
    pipeline._namespace = namespace
    pipeline.provenance = "context.py"
    return pipeline


def _problem_from_exception(exc: BaseException, path: str, folder: Path | None) -> Problem:
    explain_missing_module(exc, folder)
    line = None
    target = os.path.realpath(path)
    # The innermost frame in the context file is where the user should look.
    for frame in reversed(traceback.extract_tb(exc.__traceback__)):
        if frame.filename == path or os.path.realpath(frame.filename) == target:
            line = frame.lineno
            break
    if isinstance(exc, SyntaxError) and exc.filename == path and exc.lineno:
        line = exc.lineno
    text = str(exc)
    message = f"{type(exc).__name__}: {text}" if text else type(exc).__name__
    if isinstance(exc, SystemExit):
        message = f"SystemExit({exc.code!r}): the context file called sys.exit()"
    return Problem(path, line, message, type(exc).__name__, _user_traceback(exc, path),
                   type(exc))


def _user_traceback(exc: BaseException, path: str) -> str:
    """The traceback of ``exc`` without the loader's own frames above the file's."""
    tb = exc.__traceback__
    target = os.path.realpath(path)
    while tb is not None:
        name = tb.tb_frame.f_code.co_filename
        if name == path or os.path.realpath(name) == target:
            break
        tb = tb.tb_next
    return "".join(traceback.format_exception(type(exc), exc, tb)).rstrip()


def _sorted(problems: list[Problem]) -> list[Problem]:
    # A problem found both by a decorator and when the pipeline is built is one.
    unique = list({(p.path, p.message): p for p in reversed(problems)}.values())[::-1]
    return sorted(unique, key=lambda p: (p.path != problems[0].path, p.line or 0))
