"""Validating a context file without executing any run: ``runtable check``.

Loading reports the errors that stop a context file from being used; pyflakes adds
warnings (unused imports, undefined names) that don't, and so do two mistakes that
load fine but lose a variable: a ``@Variable`` function inside another function (it is
never a column) and code after ``return`` (it never runs). Annotations such as
``"var#flux"`` are strings pyflakes would read as Python (``var`` followed by a comment)
and report as undefined names, so they are removed before pyflakes sees the code.
"""

from __future__ import annotations

import ast
import contextlib
import itertools
import re
from dataclasses import dataclass, field
from pathlib import Path

_RUNTABLE_ANNOTATION = re.compile(r"^\s*(var|self|meta|mymdc|param|input)#")


@dataclass
class Problem:
    """One message about a context file, at a line (0 when it has none)."""

    path: str
    line: int
    message: str

    def __str__(self) -> str:
        where = f"{self.path}:{self.line}" if self.line else self.path
        return f"{where}: {self.message}"


@dataclass
class CheckReport:
    """What checking a context file found: blocking errors, warnings, and its variables."""

    errors: list[Problem] = field(default_factory=list)
    warnings: list[Problem] = field(default_factory=list)
    variables: list[dict] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.errors


def check_source(code: str, path: str | Path = "context.py") -> CheckReport:
    """Load ``code`` as a context file and lint it; never raises for problems in it.

    >>> report = check_source("from runtable.context import Variable\\nimport os\\n")
    >>> [str(w) for w in report.warnings]
    ["context.py:2: 'os' imported but unused"]
    """
    from . import ContextFileErrors, Pipeline

    path = str(path)
    report = CheckReport()
    try:
        pipeline = Pipeline.from_str(code, path=path)
    except ContextFileErrors as exc:
        report.errors = [Problem(p.path or path, p.line or 0, p.message) for p in exc.problems]
    else:
        report.variables = [
            {"name": v.name, "title": v.title, "data": v.data.value, "cluster": v.cluster,
             "transient": v.transient, "tags": list(v.tags or ())}
            for v in pipeline.vars.values()
        ]
    report.warnings = lint_warnings(code, path)
    return report


def lint_warnings(code: str, path: str = "context.py") -> list[Problem]:
    """Every warning about ``code``: pyflakes' and :func:`structure_warnings`, by line."""
    try:
        tree = ast.parse(code, filename=path)
    except SyntaxError:
        return []  # loading reports it, with its line
    warnings = structure_warnings(tree, path)
    with contextlib.suppress(ImportError):  # pyflakes missing in the context's Python
        warnings += pyflakes_warnings(code, path)
    return sorted(warnings, key=lambda w: w.line)


def pyflakes_warnings(code: str, path: str = "context.py") -> list[Problem]:
    """pyflakes' messages for ``code``, without false alarms from runtable annotations."""
    from pyflakes.checker import Checker

    try:
        tree = ast.parse(code, filename=path)
    except SyntaxError:
        return []  # loading reports it, with its line
    _strip_runtable_annotations(tree)
    checker = Checker(tree, filename=path)
    checker.messages.sort(key=lambda m: (m.lineno, m.col))
    return [Problem(path, m.lineno, m.message % m.message_args) for m in checker.messages]


def structure_warnings(tree: ast.Module, path: str = "context.py") -> list[Problem]:
    """Code that loads but does not do what it looks like: a ``@Variable`` function
    defined inside another function, and statements after ``return``/``raise``/
    ``continue``/``break`` in the same block."""
    problems: list[Problem] = []

    def visit(node: ast.AST, function: str | None) -> None:
        for field_name in ("body", "orelse", "finalbody"):
            block = getattr(node, field_name, None)
            if isinstance(block, list):
                _unreachable(block, path, problems)
        for child in ast.iter_child_nodes(node):
            if isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef)):
                if function is not None and any(_is_variable(d) for d in child.decorator_list):
                    problems.append(Problem(
                        path, _first_line(child),
                        f"@Variable function '{child.name}' is inside the function "
                        f"'{function}', so it is not a column: move it to the top level of "
                        "the file (no indentation), or into a @Group class"))
                visit(child, child.name)
            else:
                visit(child, function)

    visit(tree, None)
    return problems


def _unreachable(block: list[ast.stmt], path: str, problems: list[Problem]) -> None:
    for stmt, after in itertools.pairwise(block):
        if isinstance(stmt, (ast.Return, ast.Raise, ast.Continue, ast.Break)):
            word = type(stmt).__name__.lower()
            problems.append(Problem(
                path, _first_line(after),
                f"unreachable code: this line comes after the `{word}` on line "
                f"{stmt.lineno} and never runs (is it indented too far?)"))
            return


def _first_line(stmt: ast.stmt) -> int:
    """Where a statement starts as a person reads it: a decorated one at its first
    decorator."""
    decorators = getattr(stmt, "decorator_list", None)
    return decorators[0].lineno if decorators else stmt.lineno


def _is_variable(decorator: ast.expr) -> bool:
    """``@Variable``, ``@Variable(...)``, ``@damnit_ctx.Variable(...)``."""
    target = decorator.func if isinstance(decorator, ast.Call) else decorator
    name = target.attr if isinstance(target, ast.Attribute) else getattr(target, "id", "")
    return name == "Variable"


def _strip_runtable_annotations(tree: ast.AST) -> None:
    for node in ast.walk(tree):
        if isinstance(node, ast.arg) and _is_runtable_annotation(node.annotation):
            node.annotation = None


def _is_runtable_annotation(node: ast.AST | None) -> bool:
    return (
        isinstance(node, ast.Constant)
        and isinstance(node.value, str)
        and bool(_RUNTABLE_ANNOTATION.match(node.value))
    )


def check_file(path: str | Path, timeout: float | None = None) -> int:
    """Print a report for the context file at ``path``; the exit status for the CLI.

    The file is loaded in a child process (``runtable.server.contextcheck``), stopped
    after ``timeout`` seconds: it is user code, which may exit, hang or crash at import.
    """
    from rich.console import Console
    from rich.markup import escape
    from rich.table import Table

    from runtable.server.contextcheck import EDITOR_CHECK_TIMEOUT_S, check_text

    console = Console(highlight=False)
    path = Path(path)
    try:
        data = path.read_bytes()
    except OSError as exc:
        console.print(f"[red]Cannot read {escape(str(path))}: {exc.strerror}[/red]")
        return 2
    try:
        code = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data[:exc.start].count(b"\n") + 1
        console.print(f"[red]error[/red] {escape(str(path))}:{line}: the file is not UTF-8 "
                      f"text (byte 0x{data[exc.start]:02x}); save it as UTF-8.",
                      soft_wrap=True)
        return 1
    result = check_text(code, path.parent, timeout=timeout or EDITOR_CHECK_TIMEOUT_S,
                        name=str(path.absolute()))

    def where(issue: object) -> str:
        line = getattr(issue, "line", None)
        shown = getattr(issue, "path", "") or str(path)
        return f"{shown}:{line}" if line else shown

    for issue in result.errors:
        console.print(f"[red]error[/red] {escape(where(issue))}: {escape(issue.message)}",
                      soft_wrap=True)
    for issue in result.warnings:
        console.print(f"[yellow]warning[/yellow] {escape(where(issue))}: "
                      f"{escape(issue.message)}", soft_wrap=True)
    if not result.ok:
        n = len(result.errors)
        console.print(
            f"{escape(str(path))}: {n} error{'s' if n != 1 else ''}; the file cannot be used.",
            soft_wrap=True,
        )
        return 1
    table = Table("name", "title", "data", "cluster", "tags", title=f"{path}: variables")
    for v in result.variables:
        table.add_row(*map(escape, (v["name"], v["title"], v.get("data", ""))),
                      "yes" if v.get("cluster") else "", escape(", ".join(v.get("tags", []))))
    console.print(table)
    n = len(result.variables)
    console.print(f"{escape(str(path))}: OK, {n} variable{'s' if n != 1 else ''}.",
                  soft_wrap=True)
    return 0
