"""The filters of ``GET /api/table``: ``runs=`` and ``names=``."""

from __future__ import annotations

import re


class BadQuery(ValueError):
    """A ``runs=`` or ``names=`` filter that cannot be parsed."""


# -- query parsing -----------------------------------------------------------------------
_RANGE_RE = re.compile(r"^\s*(\d+)\s*(?:-\s*(\d+)\s*)?$")
#: Most runs one ``runs=`` filter may expand to (a typo like 1-99999999 must not
#: allocate a huge set).
MAX_RUN_FILTER = 1_000_000


def parse_runs(text: str | None) -> set[int] | None:
    """``"3,5-7"`` -> ``{3, 5, 6, 7}``; None or empty -> None (all runs)."""
    if text is None or not text.strip():
        return None
    runs: set[int] = set()
    for part in text.split(","):
        if not part.strip():
            continue
        m = _RANGE_RE.match(part)
        if m is None:
            raise BadQuery(f"runs={text!r}: {part.strip()!r} is not a run number or a "
                           "range like 5-7")
        lo = int(m.group(1))
        hi = int(m.group(2)) if m.group(2) is not None else lo
        if hi < lo:
            raise BadQuery(f"runs={text!r}: the range {part.strip()!r} goes backwards")
        if hi - lo + 1 + len(runs) > MAX_RUN_FILTER:
            raise BadQuery(f"runs={text!r} names more than {MAX_RUN_FILTER} runs")
        runs.update(range(lo, hi + 1))
    return runs


def parse_names(text: str | None) -> set[str] | None:
    """``"a,b"`` -> ``{"a", "b"}``; None or empty -> None (all columns)."""
    if text is None or not text.strip():
        return None
    return {n.strip() for n in text.split(",") if n.strip()}

