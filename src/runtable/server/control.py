"""What the web side needs of the service: the :class:`ProcessingControl` and
:class:`Service` protocols.

They live apart from :mod:`runtable.server.app` (which routes requests to a
:class:`ProcessingControl`) and :mod:`runtable.server.serve` (which starts and stops a
:class:`Service`), so that neither of those imports the other for them.
:class:`runtable.service.Service` implements both.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING, Protocol

from ..selection import ALL

if TYPE_CHECKING:
    from ..events import EventBus
    from ..jobs import ContextInfo, Job, Progress
    from ..selection import Selection


class ProcessingControl(Protocol):
    """What the web GUI's processing control calls (``/api/reprocess``, ``/api/jobs``,
    ``DELETE /api/variables/...``, ``POST /api/runs``); see
    :class:`runtable.service.Service` for the meaning. Bad arguments raise
    ``ValueError``; ``RuntimeError`` means "cannot now" (not running, busy)."""

    def reprocess(self, runs: Iterable[int], selection: Selection = ALL) -> list[Job]:
        """Queue ``runs`` again (``selection.variables`` empty: all, also ones added
        later)."""

    def cancel(self, job_id: int) -> bool:
        """Cancel a queued or running job; False when it already ended or is unknown."""

    def job(self, job_id: int) -> Job | None:
        """One job, or None when unknown."""

    def jobs(self) -> list[Job]:
        """Queued and running jobs and the recently finished ones."""

    def job_progress(self, job_id: int) -> Progress | None:
        """The latest progress a running job reported, if any."""

    def job_stuck(self, job_id: int) -> float | None:
        """A running job flagged as possibly stuck: its last sign of life; else None."""

    def delete_variable(self, name: str) -> None:
        """Delete a variable everywhere (``KeyError`` when unknown)."""

    def add_runs(self, runs: Iterable[int]) -> list[int]:
        """Create empty rows; returns the runs that were new."""

    def merge_external(self, name: str, titles: dict[str, str]) -> list[str]:
        """Merge the fragment ``extracted_data/<name>`` written from outside the
        context file; returns the names stored."""

    @property
    def context(self) -> ContextInfo | None:
        """The latest result of loading the context file (None before the first)."""


class Service(ProcessingControl, Protocol):
    """What runs beside the web app for a database folder (the watcher/jobs wiring)."""

    #: The server's URL, set before :meth:`start`.
    url: str | None

    def start(self, bus: EventBus, *, defer_slow_upgrade: bool = False) -> None:
        """Start working; publish every change on ``bus`` (from any thread). With
        *defer_slow_upgrade*, leave the slow steps of upgrading the folder for
        :meth:`finish_upgrade`."""

    def finish_upgrade(self) -> None:
        """Do (in the background) what ``start(defer_slow_upgrade=True)`` left."""

    def notify(self, run: int, data: str) -> None:
        """``data`` ("raw"/"proc") of ``run`` is complete (``POST /api/notify``)."""

    def stop(self) -> None:
        """Stop and release everything; called once, at exit."""
