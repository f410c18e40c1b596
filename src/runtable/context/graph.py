"""The dependency graph of a pipeline's variables: checks, order, promotion (selecting
from it: :func:`runtable.selection.select_names`).

Edges come from ``var#`` annotations (exact names or globs). Variables run in
topological order; independent variables keep their definition order.
"""

from __future__ import annotations

import graphlib
from collections.abc import Iterable, Mapping

from .annotations import matching
from .errors import Problem
from .variable import RunData, Variable, valid_name


def dependencies(var: Variable, names: Iterable[str]) -> list[str]:
    """Names of the variables ``var`` needs (its ``var#`` patterns matched against
    ``names``), in the order they appear."""
    names = list(names)
    found: dict[str, None] = {}
    for p in var.params:
        if p.kind == "var":
            found.update(dict.fromkeys(n for n in matching(p.target, names) if n != var.name))
    return list(found)


def _where(var: Variable) -> tuple[str, int | None]:
    return var.path, var.line


def check_and_order(variables: Iterable[Variable], problems: list[Problem]) -> dict[str, Variable]:
    """Check ``variables`` as a whole and return them by name in execution order, with
    ``data``/``cluster`` promoted along dependencies. Problems are appended, not raised.

    Checks: duplicate names and titles, ``var#`` patterns that match nothing (and have
    no default), cycles, and explicit ``data="raw"`` variables depending on proc ones.
    """
    by_name: dict[str, Variable] = {}
    titles: dict[str | None, str] = {}
    for var in variables:
        if not isinstance(var.name, str) or not valid_name(var.name):
            # Checked at decoration too; a name set afterwards is checked here.
            problems.append(Problem(*_where(var), f"variable {var.name!r}: its name must be a "
                                    "Python identifier (dotted in groups)"))
            continue
        other = by_name.get(var.name)
        if other is not None:
            if other.origin is not var.origin:
                kind = "GroupError" if "." in var.name else ""
                problems.append(Problem(*_where(var), f"Duplicate variable name '{var.name}'",
                                        kind))
            continue
        by_name[var.name] = var
        if var.title in titles:
            problems.append(Problem(*_where(var), f"variable '{var.name}': title "
                                    f"{var.title!r} is already used by '{titles[var.title]}'"))
        else:
            titles[var.title] = var.name

    deps: dict[str, list[str]] = {}
    for name, var in by_name.items():
        for p in var.params:
            if p.kind == "var" and not p.has_default and not matching(p.target, by_name):
                problems.append(Problem(*_where(var),
                                        f"Missing dependency: '{p.target}' for '{name}'",
                                        "KeyError"))
        deps[name] = dependencies(var, by_name)

    order = _order(deps, by_name, problems)

    # Promotion works on copies: the user's Variable objects stay as written.
    result: dict[str, Variable] = {}
    for name in order:
        var = by_name[name]
        parents = {d: result[d] for d in deps[name] if d in result}
        data, cluster = var._data, var.cluster
        proc = [d for d, p in parents.items() if p.data is RunData.PROC]
        if proc and data is None:
            data = RunData.PROC
        elif proc and data is RunData.RAW:
            problems.append(Problem(*_where(var), f"variable '{name}' has data='raw' but "
                                    f"depends on proc data: {', '.join(proc)}"))
        if any(p.cluster for p in parents.values()):
            cluster = True
        if data is not var._data or cluster != var.cluster:
            var = var.copy(_data=data, cluster=cluster)
        result[name] = var
    return result


def _order(deps: dict[str, list[str]], by_name: Mapping[str, Variable],
           problems: list[Problem]) -> list[str]:
    """Topological order; each cycle is reported, then set aside so the rest of the
    graph is still checked."""
    deps = {name: list(needs) for name, needs in deps.items()}
    in_cycles: list[str] = []
    while True:
        sorter: graphlib.TopologicalSorter[str] = graphlib.TopologicalSorter()
        for name, needs in deps.items():
            sorter.add(name, *needs)
        try:
            return list(sorter.static_order()) + in_cycles
        except graphlib.CycleError as exc:
            cycle = exc.args[1]
            first = by_name[cycle[0]]
            problems.append(Problem(*_where(first), "These variables have cyclical "
                                    f"dependencies, which is not allowed: {' -> '.join(cycle)}",
                                    "CycleError"))
            members = set(cycle)
            in_cycles += [n for n in deps if n in members]
            deps = {n: [d for d in needs if d not in members]
                    for n, needs in deps.items() if n not in members}
