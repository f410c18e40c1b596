"""``@Variable``: one column of the run table, computed by a function of the run."""

from __future__ import annotations

import copy
import inspect
from collections.abc import Callable, Iterable
from enum import StrEnum
from typing import Any

from .annotations import Param, parse_params
from .errors import LOADING, Problem, caller_line, report


class RunData(StrEnum):
    """Which data of a run a variable needs, or which data triggered processing."""

    RAW = "raw"
    PROC = "proc"
    ALL = "all"


class Skip(Exception):
    """Raise in a variable to leave its cell empty with a note, not an error::

        if n_trains < 10:
            raise Skip("run too short")
    """


class Variable:
    """Decorate a function of a run to make it a column of the table.

    Usable bare or with options; the first positional argument is the title::

        @Variable
        def n_trains(run):
            return len(run.train_ids)

        @Variable("XGM flux", units="µJ", summary="mean", tags="xgm")
        def flux(run, n: "var#n_trains"):
            '''Photon flux per train (this docstring is the column's description).'''
            return run["SA1_XTD2_XGM/DOOCS/MAIN", "pulseEnergy.photonFlux"].ndarray()

    ``data``: ``"raw"`` (default) or ``"proc"`` (computed once calibrated data exists);
    ``cluster=True``: computed in a dedicated cluster job; ``transient=True``: passed
    to dependents but never saved. Problems in the options are reported when the
    context file loads, each with its line.
    """

    def __init__(
        self,
        title: str | Callable | None = None,
        description: str | None = None,
        summary: str | None = None,
        data: str | None = None,
        cluster: bool = False,
        tags: str | Iterable[str] | None = None,
        transient: bool = False,
        units: str | None = None,
    ) -> None:
        func = None
        if callable(title) and not isinstance(title, str):
            func, title = title, None  # used bare: @Variable
        self.site = caller_line(2)
        self.name: str | None = None
        self.func: Callable | None = None
        self.title = title
        self.description = description
        self.summary = summary
        self.explicit_data = data
        self._data = _as_run_data(data)
        self.cluster = cluster
        self.tags = _as_tags(tags)
        self.transient = transient
        self.units = units
        self.path, self.line = self.site
        self.origin: Variable = self
        self._params: list[Param] | None = None
        if func is not None:
            self._bind(func)

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        """Decorate a function, or, once decorated, call it directly (handy in tests)."""
        if self.func is None:
            if len(args) != 1 or kwargs or not callable(args[0]):
                raise TypeError("@Variable(...) must decorate a function")
            self._bind(args[0])
            return self
        return self.func(*args, **kwargs)

    def __set_name__(self, owner: type, name: str) -> None:
        self.attr = name

    def __get__(self, instance: Any, owner: type | None = None) -> Any:
        if instance is None:
            return self
        from .group import GroupBoundVariable

        return GroupBoundVariable(instance, getattr(self, "attr", self.name), self)

    def __repr__(self) -> str:
        return f"<Variable {self.name!r} title={self.title!r}>"

    @property
    def data(self) -> RunData:
        """The data the variable needs: RunData.RAW unless ``data="proc"`` (or promoted)."""
        return self._data or RunData.RAW

    @data.setter
    def data(self, value: str | RunData | None) -> None:
        self._data = _as_run_data(value)

    @property
    def params(self) -> list[Param]:
        """The parameters bound from annotations (``var#``, ``meta#``...)."""
        if self._params is None:
            self._params = parse_params(self.func, skip=1) if self.func else []
        return self._params

    @params.setter
    def params(self, value: list[Param]) -> None:
        self._params = list(value)

    def copy(self, **changes: Any) -> Variable:
        """A shallow copy with some attributes changed (``origin`` stays the same)."""
        new = copy.copy(self)
        for key, value in changes.items():
            setattr(new, key, value)
        return new

    def _bind(self, func: Callable) -> None:
        self.func = func
        self.name = getattr(func, "__name__", None)
        if self.title is None:
            self.title = self.name
        if self.description is None:
            self.description = inspect.getdoc(func)
        code = getattr(func, "__code__", None)
        if code is not None:
            # Dependency problems point at the ``def`` line, not the decorator's.
            self.path, self.line = code.co_filename, code.co_firstlineno
            state = LOADING.get()
            if state is not None and state.path == self.path:
                self.line = state.deflines.get(self.line, self.line)
        for message in self.option_problems():
            report(Problem(self.site[0], self.site[1], f"variable '{self.name}': {message}"))

    def option_problems(self) -> list[str]:
        """What is wrong with the decorator's options (empty when all is well)."""
        problems = []
        if not isinstance(self.name, str) or not valid_name(self.name):
            problems.append("its name must be a Python identifier (dotted in groups)")
        if not (self.title is None or (isinstance(self.title, str) and self.title.strip())):
            problems.append("title must be a non-empty string")
        if self.description is not None and not isinstance(self.description, str):
            problems.append("description must be a string")
        if self.summary is not None and not _numpy_function(self.summary):
            problems.append(
                f"summary must name a numpy function such as 'mean', not {self.summary!r}"
            )
        if self.units is not None and not (isinstance(self.units, str) and self.units.strip()):
            problems.append("units must be a non-empty string")
        if self.tags is None:
            problems.append("tags must be a non-empty string or an iterable of strings")
        if self.explicit_data is not None and self._data is None:
            problems.append(f"data must be 'raw' or 'proc', not {self.explicit_data!r}")
        for flag in ("cluster", "transient"):
            if not isinstance(getattr(self, flag), bool):
                problems.append(f"{flag} must be True or False")
        return problems


def valid_name(name: str) -> bool:
    """Every dot-separated part must be a Python identifier (group variables are dotted)."""
    return all(part.isidentifier() for part in name.split("."))


def _as_run_data(value: Any) -> RunData | None:
    if value is None:
        return None
    if isinstance(value, RunData):
        return None if value is RunData.ALL else value
    if value in ("raw", "proc"):
        return RunData(value)
    return None


def _as_tags(tags: Any) -> tuple[str, ...] | None:
    """Tags as a tuple, or None when they are invalid."""
    if tags is None:
        return ()
    if isinstance(tags, str):
        return (tags,) if tags.strip() else None
    try:
        items = tuple(tags)
    except TypeError:
        return None
    if not all(isinstance(t, str) and t.strip() for t in items):
        return None
    return items


def _numpy_function(name: Any) -> bool:
    if not isinstance(name, str):
        return False
    import numpy as np

    return callable(getattr(np, name, None))
