"""Errors of the context-file language, and how problems in a file are collected.

While a context file loads, problems found by decorators (a bad ``units=``, a Group
declaring a reserved field) are appended to the load in progress instead of raised,
so that one load reports every problem of the file at once.
"""

from __future__ import annotations

import builtins
import contextvars
import graphlib
import sys
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .pipeline import Pipeline


@dataclass
class Problem:
    """One problem in a context file: where it is and what is wrong.

    ``kind`` names the error class the problem stands for (``"GroupError"``,
    ``"CycleError"``, ``"SyntaxError"``...), or is empty for plain validation problems.
    """

    path: str
    line: int | None
    message: str
    kind: str = ""
    #: The traceback from the context file's own frames on, for problems that were
    #: exceptions raised while its top level ran ("" otherwise).
    traceback: str = field(default="", compare=False, repr=False)
    #: The class of the exception the problem was (for exceptions raised by the file's
    #: own code, which may define it); else looked up from ``kind``.
    error_class: type | None = field(default=None, compare=False, repr=False)

    def __str__(self) -> str:
        where = f"{self.path}:{self.line}" if self.line else self.path
        return f"{where}: {self.message}"

    def __getstate__(self) -> dict[str, Any]:
        # A class defined by the context file can't be pickled; ``kind`` names it.
        state = dict(self.__dict__)
        cls = state.get("error_class")
        if cls is not None and getattr(builtins, cls.__name__, None) is not cls:
            state["error_class"] = None
        return state


class GroupError(Exception):
    """A Group is declared, named or linked in a way that cannot work."""


class ContextFileErrors(Exception):
    """Everything wrong with a context file, found in one load.

    ``problems`` is a list of :class:`Problem`; ``str()`` gives one per line::

        context.py:12: variable 'foo': units must be a non-empty string
        context.py:20: Missing dependency: 'bar' for 'foo'

    When every problem is of one kind that the reference system raises as its own
    exception type (a missing dependency as ``KeyError``, a cycle as
    ``graphlib.CycleError``, ``GroupError``, ``AttributeError``, or the exception the
    file's code raised), the error is also an instance of that type, so code written
    to catch the reference's exceptions keeps working.
    """

    def __new__(cls, problems: Iterable[Problem] = (), *args: Any) -> ContextFileErrors:
        problems = list(problems)
        if cls is ContextFileErrors:
            cls = _typed_class(problems)
        return super().__new__(cls, problems, *args)

    def __init__(self, problems: Iterable[Problem]) -> None:
        self.problems = list(problems)
        # Not super().__init__: a typed subclass's other base may take other arguments.
        Exception.__init__(self, "\n".join(map(str, self.problems)))

    def __str__(self) -> str:
        return "\n".join(map(str, self.problems))

    def __reduce__(self) -> tuple:
        # Errors travel between processes (worker pools); keep the problems intact.
        # The typed subclass is made again from the problems on the other side.
        return ContextFileErrors, (self.problems,)


#: Problem kinds that are not the name of a built-in exception.
_KIND_CLASSES: dict[str, type] = {"GroupError": GroupError, "CycleError": graphlib.CycleError}
_TYPED: dict[type, type] = {}


def _problem_class(problem: Problem) -> type | None:
    cls = problem.error_class
    if cls is None and problem.kind:
        cls = _KIND_CLASSES.get(problem.kind) or getattr(builtins, problem.kind, None)
    if isinstance(cls, type) and issubclass(cls, Exception):
        return cls
    return None


def _typed_class(problems: list[Problem]) -> type:
    """ContextFileErrors, or a subclass that is also the problems' common type."""
    kinds = {_problem_class(p) for p in problems}
    if len(kinds) != 1 or None in kinds:
        return ContextFileErrors
    base = kinds.pop()
    assert base is not None
    if issubclass(base, ContextFileErrors):
        return ContextFileErrors
    typed = _TYPED.get(base)
    if typed is None:
        try:
            typed = type("ContextFileErrors", (ContextFileErrors, base),
                         {"__module__": __name__, "__qualname__": "ContextFileErrors"})
        except TypeError:  # an exception type that can't be combined (layout, metaclass)
            return ContextFileErrors
        if getattr(builtins, base.__name__, None) is base or base in _KIND_CLASSES.values():
            _TYPED[base] = typed  # (classes of context files are not kept alive)
    return typed


class DependencyError(Exception):
    """A variable was not computed because variables it needs failed.

    ``failed`` maps each failed dependency to its exception; ``str()`` is a tree::

        Skipped due to missing dependency:
        ├ (a) failed: ZeroDivisionError: division by zero
        └ (b) skipped
           └ (c) failed: KeyError: 'x'
    """

    def __init__(self, failed: Mapping[str, BaseException]) -> None:
        self.failed = dict(failed)
        super().__init__(self._render())

    def __reduce__(self) -> tuple:
        return type(self), (self.failed,)

    def _render(self) -> str:
        return "Skipped due to missing dependency:\n" + "\n".join(_tree(self.failed, ""))


def _nested(exc: BaseException) -> DependencyError | None:
    if isinstance(exc, DependencyError):
        return exc
    return getattr(exc, "dependency_error", None)


def _tree(failed: Mapping[str, BaseException], prefix: str) -> list[str]:
    from .variable import Skip

    lines: list[str] = []
    items = list(failed.items())
    for i, (name, exc) in enumerate(items):
        last = i == len(items) - 1
        branch, cont = ("└ ", "   ") if last else ("├ ", "│  ")
        nested = _nested(exc)
        if nested is not None:
            lines.append(f"{prefix}{branch}({name}) skipped")
            lines.extend(_tree(nested.failed, prefix + cont))
            continue
        text = str(exc)
        if isinstance(exc, Skip):
            head = f"({name}) skipped: " if text else f"({name}) skipped"
        else:
            head = f"({name}) failed: {type(exc).__name__}" + (": " if text else "")
        first, *rest = (text or "").split("\n")
        lines.append(f"{prefix}{branch}{head}{first}".rstrip())
        lines.extend(f"{prefix}{cont}  {more}" for more in rest)
    return lines


@dataclass
class LoadState:
    """What one load of a context file collects while the file's code runs."""

    path: str
    problems: list[Problem] = field(default_factory=list)
    deflines: dict[int, int] = field(default_factory=dict)  # first decorator line -> def
    default: Pipeline | None = None  # the Pipeline that Pipeline.default() returns
    replaced: Pipeline | None = None  # set by Pipeline.set_default()


LOADING: contextvars.ContextVar[LoadState | None] = contextvars.ContextVar(
    "runtable_context_loading", default=None
)


def caller_line(depth: int = 2) -> tuple[str, int]:
    """File and line of the code ``depth`` frames up (the decorator's call site)."""
    frame = sys._getframe(depth)
    return frame.f_code.co_filename, frame.f_lineno


def report(problem: Problem, exc_type: type[Exception] = ContextFileErrors) -> None:
    """Record ``problem`` in the load in progress, or raise it when nothing is loading."""
    state = LOADING.get()
    if state is not None:
        state.problems.append(problem)
        return
    if exc_type is ContextFileErrors:
        raise ContextFileErrors([problem])
    raise exc_type(problem.message)
