"""Reading result fragments (layout: reference behaviour §1.3).

A fragment ``extracted_data/p{proposal}_r{run}.{random}.ready.h5`` holds one
execution's results: ``/<name>/...`` data groups, ``/.reduced/<name>`` summaries,
``/.preview/<name>`` previews and ``/.errors/<name>`` error messages. The execute
package owns the format and reads it (:mod:`runtable.execute.fragment`); here it
becomes rows for SQLite.
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ..execute.fragment import FragmentContents, read_fragment
from ..execute.summary import Summary
from .summaries import encode_summary

FRAGMENT_RE = re.compile(r"^p(\d+)_r(\d+)\.(.+)\.ready\.h5$")
#: Key of ``run_variables.attributes`` on a value kept from an earlier processing while
#: a later job died before computing it: ``{"error": message, "error_cls": class}``.
FAILED_ATTR = "failed"
#: Key of ``run_variables.attributes`` saying what Python type the value was, where
#: SQLite loses it: ``"bool"`` for a bool, which SQLite stores as 0/1.
VALUE_TYPE_ATTR = "value_type"
# Attributes of .reduced/<name> that have a column (or no meaning) in SQLite.
_COLUMN_ATTRS = {"summary_method", "max_diff", "summary_type"}


@dataclass
class SummaryRow:
    """One ``run_variables`` row to write, taken from ``.reduced/<name>``."""

    value: Any
    summary_type: str | None = None
    summary_method: str | None = None
    max_diff: float | None = None
    attributes: dict[str, Any] | None = None


@dataclass
class FragmentRows:
    """What a fragment contributes to the database: its contents as the execute package
    reads them (the one description of the format), with the run it belongs to and its
    summaries as ``run_variables`` rows."""

    proposal: int
    run: int
    fragment: FragmentContents
    #: name -> row, ``start_time`` left out (it goes to ``run_info``).
    summaries: dict[str, SummaryRow] = field(default_factory=dict)

    @property
    def start_time(self) -> float | None:
        """The run's start (epoch seconds), if the fragment carries it."""
        return self.fragment.start_time

    @property
    def names(self) -> set[str]:
        """Every name the fragment replaces (top-level groups and members of the
        ``.reduced``/``.preview``/``.errors`` groups)."""
        return set(self.fragment.names)


def parse_fragment_name(path: str | Path) -> tuple[int, int] | None:
    """``(proposal, run)`` from a ready fragment's file name, or None."""
    match = FRAGMENT_RE.match(Path(path).name)
    if match is None:
        return None
    return int(match.group(1)), int(match.group(2))


def _jsonable(value: Any) -> Any:
    if isinstance(value, bytes):
        return value.decode("utf-8", errors="replace")
    if isinstance(value, np.ndarray):
        return [_jsonable(v) for v in value.tolist()]
    if isinstance(value, np.generic):
        return _jsonable(value.item())
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if isinstance(value, (str, int, float, bool)) or value is None:
        return value
    return str(value)


def _summary_row(summary: Summary) -> SummaryRow:
    attrs = summary.attrs
    try:
        value, summary_type = encode_summary(summary.value, attrs.get("summary_type"))
    except Exception as exc:
        # One odd summary must not keep the whole fragment from merging.
        value, summary_type = f"<summary not storable: {exc}>", None
    method = attrs.get("summary_method")
    diff = attrs.get("max_diff")
    extra = {k: _jsonable(v) for k, v in attrs.items() if k not in _COLUMN_ATTRS}
    if "bold" in extra:
        extra["bold"] = bool(extra["bold"])
    if isinstance(value, int) and np.asarray(summary.value).dtype == np.bool_:
        extra[VALUE_TYPE_ATTR] = "bool"
    return SummaryRow(
        value=value,
        summary_type=summary_type,
        summary_method=_jsonable(method) if method is not None else None,
        max_diff=float(diff) if diff is not None and np.isfinite(diff) else None,
        attributes=extra or None,
    )


def fragment_rows(path: str | Path) -> FragmentRows:
    """Read the database-relevant parts of a fragment (not the data itself)."""
    path = Path(path)
    ids = parse_fragment_name(path)
    if ids is None:
        raise ValueError(f"{path.name!r} is not named like p<proposal>_r<run>.<id>.ready.h5")
    fragment = read_fragment(path)
    rows = FragmentRows(ids[0], ids[1], fragment,
                        {name: _summary_row(s) for name, s in fragment.summaries.items()})
    rows.summaries.pop("start_time", None)
    return rows


def attributes_json(attributes: dict[str, Any] | None) -> str | None:
    return json.dumps(attributes, sort_keys=True) if attributes else None
