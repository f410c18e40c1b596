"""``@Group``: a reusable set of variables, instantiated once per device or sample.

::

    @Group(tags="motors")
    class Motor:
        axis: int = 0

        @Variable(title="Position", units="mm")
        def position(self, run, n: "meta#run_number"):
            return 0.5 * n + self.axis

        @Variable(title="Moved")
        def moved(self, run, pos: "self#position"):
            return abs(pos) > 1

    sample_x = Motor(title="Sample X")   # variables sample_x.position, sample_x.moved

A group becomes a keyword-only dataclass with the fields ``name``, ``title``
(default: the name), ``sep`` (joins group and variable titles, default ``"/"``) and
``tags``. An instance is named after the global it is assigned to (or ``name=``);
groups held in another group's fields are named ``<parent>.<field>``.
"""

from __future__ import annotations

import dataclasses
import functools
import re
from collections.abc import Iterable, Mapping
from typing import Any

from .annotations import is_glob, parse_params
from .errors import GroupError, Problem, caller_line, report
from .variable import Variable, _as_tags

_RESERVED = ("name", "title", "sep", "tags")
_GROUP_FLAG = "__runtable_group__"
_NAME_ATTR = "_runtable_group_name"
_GLOB_CHARS = re.compile(r"[*?\[\]!]")


def Group(cls: type | None = None, *, tags: str | Iterable[str] | None = None) -> Any:
    """Turn a class with ``@Variable`` methods into a group (see the module docs)."""
    site = caller_line(2)

    def decorate(cls: type) -> type:
        return _make_group(cls, tags, site)

    return decorate if cls is None else decorate(cls)


def _make_group(user_cls: type, tags: Any, site: tuple[str, int]) -> type:
    cls: Any = user_cls  # given attributes its type does not declare
    own = cls.__dict__
    annotations = dict(own.get("__annotations__", {}))
    declared = [f for f in _RESERVED if f in own or f in annotations]
    if declared:
        report(Problem(site[0], site[1],
                       f"Group {cls.__name__} declares {', '.join(map(repr, declared))}: "
                       "these fields are provided by @Group", "GroupError"), GroupError)
        for f in declared:  # carry on so that the rest of the file is still checked
            annotations.pop(f, None)
            if f in own:
                delattr(cls, f)
    if tags is None:
        group_tags = next((b.__dict__["_runtable_group_tags"] for b in cls.__mro__[1:]
                           if _GROUP_FLAG in b.__dict__), ())
    else:
        group_tags = _as_tags(tags)
        if group_tags is None:
            report(Problem(site[0], site[1], f"Group {cls.__name__}: tags must be a "
                           "non-empty string or an iterable of strings", "GroupError"),
                   GroupError)
            group_tags = ()
    annotations.update(name=str | None, title=str | None, sep=str, tags=tuple)
    cls.__annotations__ = annotations
    cls.name, cls.title, cls.sep, cls.tags = None, None, "/", group_tags
    variables: dict[str, Variable] = {}
    for klass in reversed(cls.__mro__):
        for attr, value in klass.__dict__.items():
            if isinstance(value, Variable):
                variables[attr] = value
            elif attr in variables:
                del variables[attr]  # overridden by a plain attribute
    cls = dataclasses.dataclass(kw_only=True)(cls)
    setattr(cls, _GROUP_FLAG, True)
    cls._runtable_group_tags = group_tags
    cls._runtable_variables = variables
    cls._runtable_site = site
    return cls


def is_group(obj: Any) -> bool:
    """True for an instance of a class decorated with ``@Group``."""
    return not isinstance(obj, type) and getattr(type(obj), _GROUP_FLAG, False)


def group_name(obj: Any) -> str | None:
    """The name a group instance was given when its pipeline was compiled."""
    return obj.__dict__.get(_NAME_ATTR) or obj.name


class GroupBoundVariable:
    """``group.method``: a group's variable, usable to link it into another group."""

    def __init__(self, group: Any, attr: str | None, variable: Variable) -> None:
        self.group = group
        self.attr = attr
        self.variable = variable

    @property
    def name(self) -> str:
        return f"{group_name(self.group)}.{self.attr}"

    def __getattr__(self, item: str) -> Any:
        return getattr(self.variable, item)

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        return self.variable(self.group, *args, **kwargs)

    def __repr__(self) -> str:
        return f"<GroupBoundVariable {self.name!r}>"


def _site(obj: Any) -> tuple[str, int | None]:
    return getattr(type(obj), "_runtable_site", ("context.py", None))


def _problem(problems: list[Problem], where: tuple[str, int | None], msg: str,
             kind: str = "GroupError") -> None:
    problems.append(Problem(where[0], where[1], msg, kind))


def assign_names(
    roots: Iterable[tuple[str | None, Any]],
    namespace: Mapping[str, Any] | None,
    problems: list[Problem],
) -> list[Any]:
    """Name every group instance reachable from ``roots`` and ``namespace``; return the
    instances to expand (those reachable from ``roots``), parents first.

    ``roots`` pairs each group with the name it was added under (a dict key) or None.
    """
    names: dict[int, str] = {}
    roots = list(roots)
    level: list[tuple[str, Any]] = [
        (k, v) for k, v in (namespace or {}).items() if not k.startswith("__") and is_group(v)
    ]
    level += [(key or v.name, v) for key, v in roots if key or v.name]
    while level:
        paths: dict[int, tuple[Any, list[str]]] = {}
        for path, obj in level:
            if id(obj) not in names:
                paths.setdefault(id(obj), (obj, []))[1].append(path)
        level = []
        for oid, (obj, found) in paths.items():
            unique = list(dict.fromkeys(found))
            if obj.name is not None:
                name = obj.name
            else:
                name = unique[0]
                if len(unique) > 1:
                    _problem(problems, _site(obj),
                             f"Group instance of {type(obj).__name__} is assigned to multiple "
                             f"names ({', '.join(unique)}); give it an explicit name=")
            names[oid] = name
            for f in dataclasses.fields(obj):
                child = getattr(obj, f.name, None)
                if is_group(child):
                    level.append((f"{name}.{f.name}", child))

    # Everything reachable from the roots, parents before children.
    order: list[Any] = []
    seen: set[int] = set()
    stack = [obj for _, obj in roots]
    while stack:
        obj = stack.pop(0)
        if id(obj) in seen:
            continue
        seen.add(id(obj))
        order.append(obj)
        stack.extend(getattr(obj, f.name) for f in dataclasses.fields(obj)
                     if is_group(getattr(obj, f.name, None)))
    by_name: dict[str, Any] = {}
    for obj in order:
        if not type(obj).__dict__.get(_GROUP_FLAG):
            _problem(problems, _site(obj),
                     f"class {type(obj).__name__} derives from a Group but is not decorated "
                     "with @Group itself")
        name = names.get(id(obj))
        if name is None:
            _problem(problems, _site(obj),
                     f"Group instance of {type(obj).__name__} has no name: assign it to a "
                     "global variable, give it name=..., or add it as {'name': group}")
            continue
        other = by_name.setdefault(name, obj)
        if other is not obj:
            _problem(problems, _site(obj),
                     f"Group name '{name}' is used by multiple group instances")
        object.__setattr__(obj, _NAME_ATTR, name)
        # As in the reference, the instance's own fields say what it was named, so
        # its methods can use self.name and self.title.
        if obj.name is None:
            object.__setattr__(obj, "name", name)
        if obj.title is None:
            object.__setattr__(obj, "title", name.replace(".", _sep(obj)))
    return [obj for obj in order if id(obj) in names]


def expand(instance: Any, problems: list[Problem]) -> list[Variable]:
    """The variables of one named group instance, with ``self#`` resolved."""
    gname = group_name(instance)
    assert gname is not None, "expand() is given named instances only"
    sep = _sep(instance)
    title = instance.title or gname.replace(".", sep)
    gtags = _as_tags(instance.tags) or ()
    out: list[Variable] = []
    placeholders: dict[str, Variable] = {}
    for attr, var in type(instance)._runtable_variables.items():
        if var.func is None:
            continue
        where = (var.path, var.line)
        params = []
        for p in parse_params(var.func, skip=2):
            if p.kind != "self":
                params.append(p)
                continue
            try:
                target = _resolve_self(instance, gname, p.target)
            except (GroupError, AttributeError) as exc:
                kind = "GroupError" if isinstance(exc, GroupError) else "AttributeError"
                _problem(problems, where, f"variable '{gname}.{attr}': {exc}", kind)
                continue
            if target is None:
                name = f"{gname}.__missing__.{_GLOB_CHARS.sub('_', p.target)}"
                placeholders.setdefault(name, _placeholder(name))
                target = name
            params.append(p.retarget("var", target))
        new = var.copy(
            name=f"{gname}.{attr}",
            title=f"{title}{sep}{var.title}",
            tags=tuple(sorted(set(gtags) | set(var.tags or ()))),
            func=functools.partial(var.func, instance),
        )
        new.params = params
        new.origin = new
        new.group = instance
        out.append(new)
    return list(placeholders.values()) + out


def _sep(instance: Any) -> str:
    return instance.sep if isinstance(instance.sep, str) else "/"


def _resolve_self(instance: Any, gname: str, path: str) -> str | None:
    """The variable name ``self#path`` refers to; None when a field on the way is None."""
    *parents, leaf = path.split(".")
    obj: Any = instance
    objname: str | None = gname
    for part in parents:
        if not hasattr(obj, part):
            raise AttributeError(f"'self#{path}': group '{objname}' has no attribute '{part}'")
        obj = getattr(obj, part)
        if obj is None:
            return None
        if not is_group(obj):
            raise AttributeError(
                f"'self#{path}': '{part}' is a {type(obj).__name__!r}, not a group")
        objname = group_name(obj)
    if is_glob(leaf):
        return f"{objname}.{leaf}"
    if not hasattr(obj, leaf):
        raise GroupError(f"'self#{path}': '{leaf}' does not exist in group '{objname}'")
    target = getattr(obj, leaf)
    if target is None:
        return None
    if isinstance(target, GroupBoundVariable):
        if group_name(target.group) is None:
            raise GroupError(f"'self#{path}' links to a variable of a Group instance of "
                             f"{type(target.group).__name__} that has no name")
        return target.name
    if isinstance(target, Variable):
        return target.name
    raise GroupError(f"'self#{path}' refers to '{leaf}' of type '{type(target).__name__}', "
                     "not a Variable")


def _placeholder(name: str) -> Variable:
    # Stands in for a group component left as None: it returns no data, so the
    # variables needing it are skipped (or use their defaults).
    def missing(run: Any) -> None:
        return None

    var = Variable(transient=True)(missing)
    var.name = var.title = name
    var.params = []
    return var

