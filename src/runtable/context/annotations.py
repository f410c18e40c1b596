"""Binding a variable's extra arguments from their string annotations.

The first positional parameter of a variable receives the run; every other
parameter is filled only when annotated with a string ``"<kind>#<target>"``::

    def f(run, flux: "var#xgm_flux", n: "meta#run_number", thr: "param#threshold" = 3):

Non-string annotations (and strings without a ``#`` prefix, such as those produced by
``from __future__ import annotations``) are ignored: such parameters keep their
Python defaults.
"""

from __future__ import annotations

import inspect
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, replace
from typing import Any

#: Parameter has no Python default.
EMPTY: Any = inspect.Parameter.empty

META_FIELDS = ("run_number", "proposal", "proposal_path")
MYMDC_FIELDS = ("sample_name", "run_type", "techniques")
KINDS = ("var", "self", "meta", "mymdc", "param")
# "input#" was the reference system's earlier spelling of "param#".
_ALIASES = {"input": "param"}
_ANNOTATION = re.compile(r"^\s*([A-Za-z_]\w*)#(.*?)\s*$")
_GLOB_CHARS = re.compile(r"[*?\[]")


@dataclass(frozen=True)
class Param:
    """One bound parameter: ``kind`` is var/self/meta/mymdc/param (or the unknown
    prefix as written); ``target`` is the part after ``#``."""

    name: str
    kind: str
    target: str
    default: Any = EMPTY

    @property
    def has_default(self) -> bool:
        return self.default is not EMPTY

    @property
    def annotation(self) -> str:
        return f"{self.kind}#{self.target}"

    def retarget(self, kind: str, target: str) -> Param:
        return replace(self, kind=kind, target=target)


def parse_params(func: Callable, skip: int = 1) -> list[Param]:
    """The annotated parameters of ``func`` after its first ``skip`` positional ones."""
    params = list(inspect.signature(func).parameters.values())
    result = []
    for p in params[skip:]:
        ann = p.annotation
        if not isinstance(ann, str):
            continue
        m = _ANNOTATION.match(_unquote(ann))
        if not m:
            continue
        kind = _ALIASES.get(m.group(1), m.group(1))
        result.append(Param(p.name, kind, m.group(2), p.default))
    return result


def _unquote(annotation: str) -> str:
    # Under ``from __future__ import annotations`` the annotation "var#x" arrives as
    # the source text, quotes included.
    text = annotation.strip()
    if len(text) >= 2 and text[0] == text[-1] and text[0] in "'\"":
        import ast

        try:
            value = ast.literal_eval(text)
        except (ValueError, SyntaxError):
            return annotation
        return value if isinstance(value, str) else annotation
    return annotation


def is_glob(pattern: str) -> bool:
    """True if ``pattern`` uses fnmatch wildcards."""
    return bool(_GLOB_CHARS.search(pattern))


def matching(pattern: str, names: Iterable[str]) -> list[str]:
    """Names matched by a ``var#`` pattern (exact name, or fnmatch glob)."""
    if not is_glob(pattern):
        return [pattern] if pattern in names else []
    from fnmatch import fnmatchcase

    return [n for n in names if fnmatchcase(n, pattern)]


def resolve_var(pattern: str, available: Mapping[str, Any]) -> tuple[bool, Any]:
    """``(found, value)`` for a ``var#`` pattern against the values computed so far.

    An exact name gives its value; a glob gives ``{name: value}`` of its matches
    (even a single one); nothing available gives ``(False, None)``.
    """
    if not is_glob(pattern):
        if pattern in available:
            return True, available[pattern]
        return False, None
    found = {n: available[n] for n in matching(pattern, available)}
    return bool(found), found


def static_problems(params: Iterable[Param], in_group: bool) -> list[str]:
    """Problems visible without running: unknown mymdc fields, misplaced ``self#``."""
    problems = []
    for p in params:
        if p.kind == "mymdc" and p.target not in MYMDC_FIELDS:
            problems.append(
                f"argument '{p.name}': unknown field 'mymdc#{p.target}' "
                f"(known: {', '.join(MYMDC_FIELDS)})"
            )
        elif p.kind == "self" and not in_group:
            problems.append(
                f"argument '{p.name}': 'self#{p.target}' can only be used in a Group"
            )
        elif p.kind in ("var", "self", "param") and not p.target:
            problems.append(f"argument '{p.name}': '{p.kind}#' needs a name after '#'")
    return problems
