"""Run ranges as people write them, ``"3,5-7"``: parsing, and compressing run numbers back.

One parser for every place a person names runs: ``runtable reprocess 3-7 9``,
``POST /api/reprocess`` and ``GET /api/table?runs=``. It gives one error text for one
mistake, wherever it is made, and never expands a range until asked: a range like
``1-1000000000`` costs nothing until compared with the runs that exist
(:meth:`RunRanges.select`), and expanding it (:meth:`RunRanges.expand`) is capped at
:data:`MAX_EXPANDED` runs.

:func:`compress_runs` is the way back, for messages (``[1, 2, 3, 7]`` -> ``"1-3, 7"``);
the web page's ``compressRuns`` (``frontend/src/runranges.ts``) mirrors it, since the
page writes the same form without asking the server.

Standard library only.
"""

from __future__ import annotations

import bisect
import re
from collections.abc import Iterable
from typing import Literal, overload

__all__ = ["MAX_EXPANDED", "RunRangeError", "RunRanges", "compress_runs", "parse_runs"]

#: Most runs one range may be expanded to (a typo like 1-99999999 must not allocate a
#: huge set).
MAX_EXPANDED = 1_000_000

_RANGE_RE = re.compile(r"^\s*(\d+)\s*(?:-\s*(\d+)\s*)?$")


class RunRangeError(ValueError):
    """Run numbers that cannot be read; the message says what to write instead."""


class RunRanges:
    """Run numbers as given by a person: sorted, merged ranges, never expanded (a
    range like ``1-1000000000`` costs nothing until compared with the runs that exist).
    """

    def __init__(self, ranges: Iterable[tuple[int, int]]) -> None:
        merged: list[list[int]] = []
        for first, last in sorted(ranges):
            if merged and first <= merged[-1][1] + 1:
                merged[-1][1] = max(merged[-1][1], last)
            else:
                merged.append([first, last])
        self.ranges = [(first, last) for first, last in merged]
        self._starts = [first for first, _ in self.ranges]

    @classmethod
    def of(cls, runs: Iterable[int]) -> RunRanges:
        """The ranges covering exactly ``runs``."""
        return cls((run, run) for run in runs)

    def __contains__(self, run: object) -> bool:
        if not isinstance(run, int):
            return False
        i = bisect.bisect_right(self._starts, run) - 1
        return i >= 0 and run <= self.ranges[i][1]

    def __eq__(self, other: object) -> bool:
        return isinstance(other, RunRanges) and other.ranges == self.ranges

    def __repr__(self) -> str:
        return f"RunRanges({self})"

    def __str__(self) -> str:
        return ", ".join(str(a) if a == b else f"{a}-{b}" for a, b in self.ranges)

    def __bool__(self) -> bool:
        return bool(self.ranges)

    def select(self, existing: Iterable[int]) -> list[int]:
        """The runs of ``existing`` in these ranges, sorted."""
        return sorted({run for run in existing if run in self})

    def missing(self, existing: Iterable[int]) -> RunRanges:
        """The parts of these ranges with no run of ``existing``."""
        have = self.select(existing)
        gaps = []
        for first, last in self.ranges:
            start = first
            for run in have[bisect.bisect_left(have, first):bisect.bisect_right(have, last)]:
                if run > start:
                    gaps.append((start, run - 1))
                start = run + 1
            if start <= last:
                gaps.append((start, last))
        return RunRanges(gaps)

    def expand(self) -> set[int]:
        """Every run number in these ranges; :class:`RunRangeError` beyond
        :data:`MAX_EXPANDED` of them."""
        if sum(last - first + 1 for first, last in self.ranges) > MAX_EXPANDED:
            raise RunRangeError(f"{self} names more than {MAX_EXPANDED} runs")
        return {run for first, last in self.ranges for run in range(first, last + 1)}


@overload
def parse_runs(specs: str | Iterable[str], *, allow_all: Literal[False] = ...) -> RunRanges:
    ...


@overload
def parse_runs(specs: str | Iterable[str], *, allow_all: bool) -> RunRanges | Literal["all"]:
    ...


def parse_runs(specs: str | Iterable[str], *,
               allow_all: bool = False) -> RunRanges | Literal["all"]:
    """Run numbers from a text or command-line words: ``"5"``, ``"3-7"``, ``"1,4,9-10"``
    (and, with ``allow_all``, ``"all"`` alone, returned as ``"all"``), as
    :class:`RunRanges`; :class:`RunRangeError` for anything else.

    >>> parse_runs(["3-5", "9,1"])
    RunRanges(1, 3-5, 9)
    """
    if isinstance(specs, str):
        specs = [specs]
    words = [w.strip() for spec in specs for w in str(spec).split(",") if w.strip()]
    if allow_all and [w.lower() for w in words] == ["all"]:
        return "all"
    if not words:
        raise RunRangeError("No runs given: name run numbers (e.g. 5 3-7 1,2)"
                            + (" or 'all'" if allow_all else ""))
    ranges = []
    for word in words:
        match = _RANGE_RE.match(word)
        if match is None:
            hint = (" ('all' cannot be combined with run numbers)"
                    if allow_all and word == "all" else "")
            raise RunRangeError(f"{word!r} is not a run number or range like 3-7{hint}")
        first = int(match.group(1))
        last = int(match.group(2)) if match.group(2) else first
        if last < first:
            raise RunRangeError(f"Range {word!r} goes backwards: write it as {last}-{first}")
        ranges.append((first, last))
    return RunRanges(ranges)


def compress_runs(runs: Iterable[int]) -> str:
    """``[1, 2, 3, 7]`` -> ``"1-3, 7"`` (for messages)."""
    return str(RunRanges.of(runs))
