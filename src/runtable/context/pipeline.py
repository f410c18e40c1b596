"""``Pipeline``: a set of variables and the context to compute them for one run.

::

    pipeline = Pipeline.from_context_file("context.py")
    results = pipeline.with_context(proposal=1234, run_number=5).execute()
    results.cells["n_trains"].data, results.errors

A pipeline is cheap to copy; every derived pipeline (``select``, ``with_context``,
``union``) is a new object, and ``execute`` keeps no state between runs beyond the
``results`` attribute of the pipeline it was called on.
"""

from __future__ import annotations

import hashlib
import logging
import warnings
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any

from ..selection import Selection, select_names
from .annotations import static_problems
from .environment import context_environment
from .errors import LOADING, ContextFileErrors, LoadState, Problem
from .execution import DEFAULT_NAME, Execution, Results
from .graph import check_and_order, dependencies
from .group import assign_names, expand, group_name, is_group
from .variable import RunData, Variable

log = logging.getLogger("runtable.context")


class Pipeline:
    """Variables plus the run to compute them for.

    Build one from a context file (:meth:`from_context_file`), from code
    (:meth:`from_str`) or by hand::

        p = Pipeline(1234, 5).add(n_trains, flux, {"sample_x": Motor()})
        results = p.execute(data=extra_data.open_run(1234, 5))
    """

    def __init__(
        self,
        proposal: int | None = None,
        run_number: int | None = None,
        *,
        name: str | None = None,
        data: Any = None,
        run_data: RunData | str | None = None,
        param_values: Mapping[str, Any] | None = None,
    ) -> None:
        self.proposal = proposal
        self.run_number = run_number
        self._name = name
        self.data = data
        self.run_data = RunData(run_data) if run_data is not None else RunData.ALL
        self.param_values = dict(param_values or {})
        self.results: Results | None = None
        self.provenance = "context.py"
        #: The text this pipeline was loaded from (and the name it was loaded under),
        #: or None when it was built in code.
        self.source_text: str | None = None
        self.source_path: str | None = None
        self._items: list[Any] = []
        self._vars: dict[str, Variable] = {}
        self._namespace: Mapping[str, Any] | None = None
        #: The folder of the context file this pipeline was loaded from (first on
        #: sys.path while it executes), or None.
        self._folder: Path | None = None
        self._file_order: list[str] = []  # names in definition order
        self._dirty = False

    def __repr__(self) -> str:
        return f"<Pipeline {self.name!r}: {len(self.vars)} variables>"

    # -- contents -------------------------------------------------------------------

    @property
    def name(self) -> str:
        """The explicit name, else a short hash of the parameters, run and variables."""
        if self._name is not None:
            return self._name
        key = "|".join([repr(sorted(self.param_values.items())), str(self.proposal),
                        str(self.run_number), ",".join(self.vars)])
        return hashlib.sha256(key.encode()).hexdigest()[:12]

    @name.setter
    def name(self, value: str | None) -> None:
        self._name = value

    @property
    def vars(self) -> dict[str, Variable]:
        """Variables by name, in execution order."""
        if self._dirty:
            self._compile_or_raise()
        return self._vars

    @property
    def context(self) -> dict[str, Any]:
        """The run context: proposal, run_number, run_data and param_values."""
        return {"proposal": self.proposal, "run_number": self.run_number,
                "run_data": self.run_data, "param_values": dict(self.param_values)}

    def add(self, *items: Any) -> Pipeline:
        """Add Variables, Group instances, ``{name: group_or_variable}`` dicts, or
        lists/tuples of these; recompiles and clears ``results``. Returns ``self``."""
        new = list(self._items)
        for item in items:
            new.extend(_flatten(item, None))
        self._items = new
        self.results = None
        if LOADING.get() is not None:
            # Inside a context file, groups are named from the file's globals once it
            # has run; the loader compiles then.
            self._dirty = True
        else:
            self._compile_or_raise()
        return self

    def _compile(self) -> list[Problem]:
        problems: list[Problem] = []
        roots = [(key, obj) for key, obj in self._items if is_group(obj)]
        expanded: dict[int, list[Variable]] = {}
        for obj in assign_names(roots, self._namespace, problems):
            if group_name(obj):
                expanded[id(obj)] = expand(obj, problems)
        variables: list[Variable] = []
        done: set[int] = set()
        for key, obj in self._items:
            if is_group(obj):
                # A root group brings its nested groups' variables right after its own.
                for gid, gvars in expanded.items():
                    if gid not in done and (gid == id(obj) or _nested_in(gid, obj)):
                        done.add(gid)
                        variables.extend(gvars)
                continue
            var = obj if key is None or obj.name == key else obj.copy(name=key)
            variables.append(var)
        for gid, gvars in expanded.items():  # groups reachable only through others
            if gid not in done:
                variables.extend(gvars)
        self._file_order = list(dict.fromkeys(v.name for v in variables if v.name is not None))
        for var in variables:
            in_group = getattr(var, "group", None) is not None
            for message in static_problems(var.params, in_group):
                problems.append(Problem(var.path, var.line, f"variable '{var.name}': {message}"))
        self._vars = check_and_order(variables, problems)
        self._dirty = False
        return problems

    def _compile_or_raise(self) -> None:
        problems = self._compile()
        if problems:
            raise ContextFileErrors(problems)

    # -- derived pipelines ----------------------------------------------------------

    def copy(self) -> Pipeline:
        """An independent copy (same variables, own context and results)."""
        new = Pipeline.__new__(Pipeline)
        new.__dict__.update(self.__dict__)
        new._items = list(self._items)
        new._vars = dict(self.vars)
        new.param_values = dict(self.param_values)
        new.results = None
        return new

    def with_context(self, **fields: Any) -> Pipeline:
        """A copy with some of proposal, run_number, name, data, run_data,
        param_values changed::

            p.with_context(proposal=1234, run_number=7, param_values={"threshold": 3})
        """
        allowed = {"proposal", "run_number", "name", "data", "run_data", "param_values"}
        unknown = set(fields) - allowed
        if unknown:
            raise TypeError(f"with_context() got unknown fields: {', '.join(sorted(unknown))}")
        new = self.copy()
        for key, value in fields.items():
            if key == "param_values":
                value = dict(value or {})
            elif key == "run_data":
                value = RunData(value) if value is not None else RunData.ALL
            setattr(new, key, value)
        return new

    def select(
        self,
        variables: Iterable[str] = (),
        match: Iterable[str] = (),
        run_data: RunData | str | None = None,
        cluster: bool | None = None,
    ) -> Pipeline:
        """A copy with only some variables, plus everything they depend on.

        ``run_data``: the trigger (raw -> raw variables, proc -> proc variables, all);
        ``cluster``: None all, True only cluster variables, False only the others;
        ``variables``: exact names (overrides ``match``); ``match``: case-insensitive
        substrings of titles.
        """
        selection = Selection(run_data or "all", variables, match, cluster)  # type: ignore[arg-type]
        defined = self.vars
        names = select_names(defined, selection,
                             lambda name: dependencies(defined[name], defined))
        new = self.copy()
        new._vars = {n: self._vars[n] for n in names}
        new._items = [(None, v) for v in new._vars.values()]
        if run_data is not None:
            new.run_data = RunData(run_data)
        return new

    def union(self, other: Pipeline, on_conflict: str = "error") -> Pipeline:
        """A pipeline with the variables of both; a name defined differently in both
        raises unless ``on_conflict`` is ``"left"`` or ``"right"`` (which one wins)."""
        if on_conflict not in ("error", "left", "right"):
            raise ValueError("on_conflict must be 'error', 'left' or 'right'")
        merged = self._defined()
        for name, var in other._defined().items():
            mine = merged.get(name)
            if mine is None:
                merged[name] = var
            elif mine.origin is not var.origin:
                if on_conflict == "error":
                    raise ValueError(f"Duplicate variable name '{name}'")
                if on_conflict == "right":
                    merged[name] = var
        new = self.copy()
        new._items = [(None, v) for v in merged.values()]
        new._compile_or_raise()
        return new

    def vars_to_dict(self, inc_transient: bool = False) -> dict[str, dict[str, Any]]:
        """``{name: {title, description, tags, attributes, type}}`` for the database,
        in the order the variables are defined (not the order they are computed in)."""
        return {
            name: {"title": v.title, "description": v.description, "tags": list(v.tags or ()),
                   "attributes": None, "type": None}
            for name, v in self._defined().items()
            if inc_transient or not v.transient
        }

    def _defined(self) -> dict[str, Variable]:
        """The variables by name in the order they are defined."""
        variables = self.vars
        order = [n for n in self._file_order if n in variables]
        placed = set(order)
        order += [n for n in variables if n not in placed]
        return {n: variables[n] for n in order}

    # -- context files ----------------------------------------------------------------

    @classmethod
    def from_context_file(cls, path: str | Path) -> Pipeline:
        """Load a context file; raises :class:`ContextFileErrors` listing every problem."""
        from .loader import load_file

        return load_file(path)

    @classmethod
    def from_str(cls, code: str, path: str = "context.py") -> Pipeline:
        """Load context-file code; ``path`` is the name used in error messages."""
        from .loader import load_source

        return load_source(code, path)

    @staticmethod
    def default() -> Pipeline:
        """Inside a context file: the pipeline its variables are collected into.

        ``Pipeline.default().add({"motor": Motor()})`` adds what discovery of globals
        would not find. Outside a context file this is a new, empty pipeline.
        """
        state = LOADING.get()
        if state is None:
            return Pipeline(name=DEFAULT_NAME)
        if state.default is None:
            state.default = Pipeline(name=DEFAULT_NAME)
        return state.default

    @staticmethod
    def set_default(pipeline: Pipeline) -> None:
        """Inside a context file: use ``pipeline`` instead of discovering variables."""
        if not isinstance(pipeline, Pipeline):
            raise TypeError(
                f"Pipeline.set_default expects a Pipeline instance, not {type(pipeline).__name__}")
        state: LoadState | None = LOADING.get()
        if state is None:
            raise RuntimeError("Pipeline.set_default() can only be used in a context file")
        state.replaced = pipeline

    # -- execution ------------------------------------------------------------------

    def execute(self, data: Any = None, param_values: Mapping[str, Any] | None = None,
                on_result: Callable[[str, Any], None] | None = None) -> Results:
        """Compute every variable for this pipeline's run and return :class:`Results`.

        ``data`` is the run object passed to the variables; by default ``self.data``,
        else the run is opened with ``extra_data.open_run(proposal, run_number)``.
        ``on_result(name, cell_or_exception)`` is called as each stored variable
        finishes (a processing job saves it at once, so a crash later keeps it).
        """
        if self.proposal is None or self.run_number is None:
            raise ValueError("proposal and run_number must be set")
        variables = self.vars
        run = data if data is not None else self.data
        if run is None:
            run, variables = self._open_run(variables)
        params = {**self.param_values, **(param_values or {})}
        with context_environment(self._folder):
            results = Execution(self, run, variables, params).run(on_result)
        self.results = results
        return results

    def _open_run(self, variables: dict[str, Variable]) -> tuple[Any, dict[str, Variable]]:
        """Raw data for a raw trigger, else raw + proc; proc variables are dropped
        (with a warning) when the run has no proc data."""
        import extra_data

        if self.run_data is RunData.RAW:
            return extra_data.open_run(self.proposal, self.run_number, data="raw"), variables
        proc = [n for n, v in variables.items() if v.data is RunData.PROC]
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            run = extra_data.open_run(self.proposal, self.run_number, data="all")
        for w in caught:
            if "origin proc" not in str(w.message):
                warnings.warn_explicit(w.message, w.category, w.filename, w.lineno)
            elif proc:
                log.warning("No proc data for run %s of proposal %s: skipping %s",
                            self.run_number, self.proposal, ", ".join(proc))
                variables = {n: v for n, v in variables.items() if n not in proc}
        return run, variables


def _flatten(item: Any, key: str | None) -> list[tuple[str | None, Any]]:
    if isinstance(item, Variable):
        if item.func is None:
            raise TypeError("Pipeline.add got a Variable that decorates no function")
        return [(key, item)]
    if is_group(item):
        return [(key, item)]
    if isinstance(item, dict):
        out = []
        for k, v in item.items():
            if not isinstance(k, str):
                raise TypeError(f"Pipeline.add: dict keys must be names, not {k!r}")
            out.extend(_flatten(v, k))
        return out
    if isinstance(item, list | tuple) and key is None:
        return [pair for sub in item for pair in _flatten(sub, None)]
    raise TypeError(
        "Pipeline.add accepts Variables, Group instances, dicts of them and lists or "
        f"tuples of these, not {type(item).__name__}"
    )


def _nested_in(gid: int, root: Any) -> bool:
    import dataclasses

    stack, seen = [root], set()
    while stack:
        obj = stack.pop()
        if id(obj) in seen:
            continue
        seen.add(id(obj))
        for f in dataclasses.fields(obj):
            child = getattr(obj, f.name, None)
            if is_group(child):
                if id(child) == gid:
                    return True
                stack.append(child)
    return False
