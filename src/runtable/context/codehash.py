"""What a variable's value depends on in the context file, as a short hash.

A value is *stale* when the code that computed it has changed since. Comparing whole
context files would call every value stale after any edit (adding a column, say), so
each variable gets its own hash, :func:`code_hashes`, from:

- the source of its function, decorator included (a changed ``summary=`` changes the
  value shown);
- the source of the functions and classes of the same file that it uses, and the
  values of simple module-level constants it reads (numbers, strings, tuples of them);
- for a variable of a group, the group's name and its simple fields;
- the hashes of the variables it depends on (``var#``), so a change upstream reaches
  every value computed from it.

Code imported from other modules is not followed: editing a helper module leaves the
hashes unchanged (docs/history.md says so).
"""

from __future__ import annotations

import ast
import dataclasses
import functools
import hashlib
import types
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .pipeline import Pipeline

#: Hex digits kept of each hash: 64 bits tell a file's variables apart with room.
HASH_LENGTH = 16


def text_sha256(text: str) -> str:
    """The content hash of a context file's text (what identifies a version of it)."""
    return hashlib.sha256(text.encode("utf-8", "surrogateescape")).hexdigest()


def code_hashes(pipeline: Pipeline) -> dict[str, str]:
    """``{variable name: hash}`` for every variable of a pipeline loaded from a file or
    string (empty for a pipeline built in code, which has no text to point into)."""
    text = getattr(pipeline, "source_text", None)
    if text is None:
        return {}
    from .graph import dependencies

    sources = _Sources(text, getattr(pipeline, "source_path", "context.py"),
                       pipeline._namespace or {})
    variables = pipeline.vars
    done: dict[str, str] = {}

    def hash_of(name: str, visiting: frozenset[str] = frozenset()) -> str:
        if name in done:
            return done[name]
        var = variables[name]
        digest = hashlib.sha256(sources.own(var).encode("utf-8", "surrogateescape"))
        for dep in sorted(dependencies(var, variables)):
            if dep in variables and dep not in visiting:  # cycles never load; be safe
                digest.update(f"\0{dep}={hash_of(dep, visiting | {name})}".encode())
        done[name] = digest.hexdigest()[:HASH_LENGTH]
        return done[name]

    return {name: hash_of(name) for name in variables}


class _Sources:
    """The loaded text, cut into the spans of its functions and classes."""

    def __init__(self, text: str, path: str, namespace: Mapping[str, Any]) -> None:
        self.lines = text.splitlines()
        self.path = path
        self.namespace = namespace
        self.spans: dict[int, int] = {}
        try:
            tree = ast.parse(text)
        except SyntaxError:  # the file loaded, so this cannot happen; stay total anyway
            return
        for node in ast.walk(tree):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
                # co_firstlineno of a decorated function is its first decorator's line.
                start = min([d.lineno for d in node.decorator_list] + [node.lineno])
                self.spans[start] = node.end_lineno or node.lineno

    def own(self, var: Any) -> str:
        func = var.func
        while isinstance(func, functools.partial):
            func = func.func
        parts = [self._function(func, set())]
        group = getattr(var, "group", None)
        if group is not None and dataclasses.is_dataclass(group):
            fields = {f.name: _stable(getattr(group, f.name, None))
                      for f in dataclasses.fields(group)}
            parts.append(f"group {type(group).__qualname__} {sorted(fields.items())}")
        return "\n".join(parts)

    def _function(self, func: Any, seen: set[int]) -> str:
        code = getattr(func, "__code__", None)
        if code is None:
            return f"<{type(func).__qualname__}>"
        if id(code) in seen:
            return ""
        seen.add(id(code))
        segment = self._segment(code)
        parts = [segment if segment is not None else _fingerprint(code)]
        for name in sorted(_names(code)):
            value = self.namespace.get(name, _MISSING)
            if value is _MISSING or value is func:
                continue
            if isinstance(value, types.FunctionType):
                parts.append(f"{name}: {self._function(value, seen)}")
            elif isinstance(value, type):
                parts.append(f"{name}: {self._class(value, seen)}")
            elif _simple(value):
                parts.append(f"{name} = {_stable(value)}")
        return "\n".join(p for p in parts if p)

    def _class(self, cls: type, seen: set[int]) -> str:
        if id(cls) in seen:
            return ""
        seen.add(id(cls))
        # Classes of this file: their text (methods are inside it); others by name only.
        for member in vars(cls).values():
            code = getattr(member, "__code__", None)
            if code is not None and code.co_filename == self.path:
                first = min((c.co_firstlineno for c in _codes_of(cls)), default=None)
                start = self._class_start(first)
                if start is not None:
                    return "\n".join(self.lines[start - 1:self.spans[start]])
                break
        return f"<class {cls.__module__}.{cls.__qualname__}>"

    def _class_start(self, line: int | None) -> int | None:
        if line is None:
            return None
        # The innermost class span that encloses the first method.
        best = None
        for start, end in self.spans.items():
            if start < line <= end and (best is None or start > best):
                best = start
        return best

    def _segment(self, code: types.CodeType) -> str | None:
        if code.co_filename != self.path:
            return None
        end = self.spans.get(code.co_firstlineno)
        if end is None:
            return None
        return "\n".join(self.lines[code.co_firstlineno - 1:end])


_MISSING = object()


def _codes_of(cls: type) -> list[types.CodeType]:
    out = []
    for member in vars(cls).values():
        func = getattr(member, "func", member)  # a @Variable method keeps its function
        code = getattr(func, "__code__", None)
        if code is not None:
            out.append(code)
    return out


def _names(code: types.CodeType) -> set[str]:
    """Global names a function (and the functions nested in it) reads."""
    names = set(code.co_names)
    for const in code.co_consts:
        if isinstance(const, types.CodeType):
            names |= _names(const)
    return names


def _fingerprint(code: types.CodeType) -> str:
    """A function without source in the file (made in code): its bytecode and
    constants, without line numbers (moving it must not change it)."""
    consts = [_fingerprint(c) if isinstance(c, types.CodeType) else repr(c)
              for c in code.co_consts]
    return f"{code.co_name}:{code.co_code.hex()}:{consts}:{code.co_names}"


def _simple(value: Any) -> bool:
    if isinstance(value, str | bytes | int | float | complex | bool) or value is None:
        return True
    if isinstance(value, tuple | frozenset):
        return all(_simple(v) for v in value)
    return False


def _stable(value: Any) -> str:
    """A text for ``value`` that is the same in every process (no memory addresses)."""
    if _simple(value):
        return repr(value)
    if isinstance(value, list | tuple):
        return "[" + ", ".join(_stable(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{_stable(k)}: {_stable(v)}"
                               for k, v in sorted(value.items(), key=lambda kv: repr(kv[0]))) + "}"
    name = getattr(value, "name", None)
    if dataclasses.is_dataclass(value) and isinstance(name, str):
        return f"<group {name}>"
    return f"<{type(value).__module__}.{type(value).__qualname__}>"
