"""The catch-up decision: which runs to process after the service was not watching.

On start (and whenever it could not decide before: no context file that loads, no
proposal folder yet) the service queues the runs whose data was complete on disk but
never processed. :func:`runs_to_catch_up` decides which, from plain data the service
gathers (the runs on disk, the jobs it knows, the runs with stored values); it reads
nothing itself, so it is tested without threads, folders or a queue.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping, Sequence
from typing import Protocol

from ..selection import DATA_KINDS, DataKind

__all__ = ["runs_to_catch_up"]


class _OnDisk(Protocol):
    """A run found on disk (:class:`runtable.sources.RunOnDisk`): is its raw/proc
    data there?"""

    @property
    def run(self) -> int: ...

    @property
    def raw(self) -> bool: ...

    @property
    def proc(self) -> bool: ...


def runs_to_catch_up(
    on_disk: Iterable[_OnDisk],
    jobs: Iterable[tuple[int, str]],
    names: Mapping[DataKind, Sequence[str]],
    stored: Mapping[DataKind, Collection[int]],
    notified: Collection[tuple[int, str]] = (),
) -> list[tuple[int, str]]:
    """The ``(run, data)`` pairs to queue: raw ones first, each in the order of
    ``on_disk``.

    ``on_disk``: the runs whose data is complete. ``jobs``: ``(run, data)`` of every
    job the queue knows, whatever its state (``data`` ``"all"`` stands for both); a
    run with a job is not queued again. ``names``: per ``"raw"``/``"proc"``, the
    variables of the context file that data triggers and that are stored (none: that
    data is not processed at all). ``stored``: per data, the runs with a value of one of
    those variables in the database: processed before. ``notified``: pairs reported
    complete since the service started (that signal queues them).
    """
    seen: set[tuple[int, str]] = set()
    for run, data in jobs:
        seen.update([(run, "raw"), (run, "proc")] if data == "all" else [(run, data)])
    runs = list(on_disk)
    decided: list[tuple[int, str]] = []
    for data in DATA_KINDS:
        if not names.get(data):
            continue
        done = stored.get(data, ())
        decided.extend((found.run, data) for found in runs
                       if getattr(found, data) and (found.run, data) not in seen
                       and (found.run, data) not in notified and found.run not in done)
    return decided
