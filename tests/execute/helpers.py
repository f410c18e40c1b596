"""A stand-in for context.Results, for testing summaries and fragments on their own."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from runtable.context.cell import Cell


@dataclass
class FakeResults:
    """What Pipeline.execute returns, reduced to what the fragment writer reads."""

    cells: dict[str, Cell]
    errors: dict[str, BaseException] = field(default_factory=dict)
    provenance: str = "context.py"


def results_of(errors: dict[str, BaseException] | None = None, **values: Any) -> FakeResults:
    """``results_of(a=1, b=Cell(...))``: FakeResults with a start_time cell."""
    cells = {"start_time": Cell(1767225600.25)}
    for name, value in values.items():
        cells[name] = value if isinstance(value, Cell) else Cell(value)
    return FakeResults(cells, errors or {})
