"""The selection of what to compute for a run: which data triggered it, which variables.

The names of data live here too: :data:`DataKind` (``raw``/``proc``, the folders a
run is complete in) and :data:`DataName` (a trigger: those or ``all``).

A job, a ``runtable reprocess`` and a ``POST /api/reprocess`` all say the same four
things: the data that triggered it (:data:`DataName`), exact variable names, title
substrings, and cluster or not. :class:`Selection` carries them as one value, and
:func:`select_names` is the one rule that turns a selection into the names to
compute, for the loaded context (:meth:`runtable.context.Pipeline.select`) and for its
description the service keeps (:meth:`runtable.jobs.ContextInfo.select`) alike.

Standard library only: the service and the queue use it without importing the context
language (and numpy with it).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Literal, Protocol

__all__ = ["ALL", "DATA_KINDS", "DATA_NAMES", "RAW", "DataKind", "DataName", "Selection",
           "check_data", "check_data_kind", "select_names"]

#: What triggers a job: raw data, proc data, or both (``all``).
DataName = Literal["raw", "proc", "all"]
DATA_NAMES: tuple[DataName, ...] = ("raw", "proc", "all")


#: The data folders of a proposal that hold run folders, in the order they are scanned;
#: what a run can be complete in.
DataKind = Literal["raw", "proc"]
DATA_KINDS: tuple[DataKind, ...] = ("raw", "proc")


def check_data_kind(data: object) -> DataKind:
    """Return ``data`` if it is ``'raw'`` or ``'proc'``, else raise ValueError."""
    if data not in DATA_KINDS:
        raise ValueError(f"data must be 'raw' or 'proc', not {data!r}")
    return data


def check_data(data: object) -> DataName:
    """``data`` if it is ``'raw'``, ``'proc'`` or ``'all'``; ValueError otherwise."""
    if data not in DATA_NAMES:
        raise ValueError(f"data must be 'raw', 'proc' or 'all', not {data!r}")
    return data


@dataclass(frozen=True)
class Selection:
    """What a job computes: variables triggered by ``data`` (``all``: every one),
    narrowed to exact ``variables`` names (which override ``match``) or to titles
    containing one of ``match`` (case-insensitive); ``cluster`` True/False keeps only
    cluster / non-cluster variables (None: both). Everything the chosen variables
    depend on is computed too."""

    data: DataName = "all"
    variables: tuple[str, ...] = ()
    match: tuple[str, ...] = ()
    cluster: bool | None = None

    def __post_init__(self) -> None:
        check_data(str(self.data))
        # A person's list or a single string: always a tuple of names.
        for name in ("variables", "match"):
            value = getattr(self, name)
            object.__setattr__(self, name, (value,) if isinstance(value, str) else tuple(value))
        object.__setattr__(self, "data", str(self.data))

    def fields(self) -> dict[str, Any]:
        """The four fields as plain JSON values (a request, a job's row)."""
        return {"data": self.data, "variables": list(self.variables),
                "match": list(self.match), "cluster": self.cluster}

    @classmethod
    def from_fields(cls, fields: Mapping[str, Any]) -> Selection:
        """The selection of a request or job record (what :meth:`fields` gives; a
        missing ``data`` is ``raw``, as for a job)."""
        return cls(fields.get("data") or "raw", tuple(fields.get("variables") or ()),
                   tuple(fields.get("match") or ()), fields.get("cluster"))


#: The selection of a job that new raw data triggers: every raw-data variable.
RAW = Selection("raw")
#: Every variable of the context file.
ALL = Selection("all")


class _Variable(Protocol):
    @property
    def data(self) -> str: ...

    @property
    def cluster(self) -> bool: ...

    @property
    def title(self) -> str | None: ...


def select_names(variables: Mapping[str, _Variable], selection: Selection,
                 needs: Callable[[str], Iterable[str]]) -> list[str]:
    """The names ``selection`` computes, in the order of ``variables``: those it
    chooses plus everything they need (``needs(name)``: the names ``name`` depends
    on, transitively followed). A name of ``selection.variables`` that is not a
    variable raises KeyError."""
    names, match = selection.variables, [m.lower() for m in selection.match]
    unknown = [n for n in names if n not in variables]
    if unknown:
        raise KeyError(f"No variable named {', '.join(map(repr, unknown))}")
    chosen = []
    for name, var in variables.items():
        if selection.data != "all" and var.data != selection.data:
            continue
        if selection.cluster is not None and var.cluster != selection.cluster:
            continue
        if names:
            if name not in names:
                continue
        elif match and not any(m in (var.title or name).lower() for m in match):
            continue
        chosen.append(name)
    wanted: set[str] = set()
    stack = chosen
    while stack:
        name = stack.pop()
        if name in wanted:
            continue
        wanted.add(name)
        stack.extend(needs(name))
    return [n for n in variables if n in wanted]
