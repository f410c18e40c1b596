"""Processing runs again, here and now, without a service: ``runtable reprocess``.

:func:`reprocess` executes the folder's context file for a set of runs in parallel
processes and merges each result fragment as soon as it arrives. The processes are
forked, one per run, from a warm worker (:mod:`runtable.jobs.warm`, in the
``context_python`` interpreter) that imports numpy, h5py and extra_data once while
this process loads the context file; they have the same limits and logs as the
service's local jobs. The calling process is the folder's single
writer for the duration, so no service may be running on the same folder.

Problems in the context file's variables or in a run's data never raise: they end up
in the returned :class:`~runtable.execute.RunOutcome` list. What does raise
(:class:`ReprocessError` and subclasses) is what stops anything from being processed:
a context file that does not load, runs that don't exist, an unknown variable name.

    >>> from runtable.reprocess import reprocess
    >>> outcomes = reprocess("/path/to/amore", [3, 4, 5])   # doctest: +SKIP
    >>> [(o.run, o.succeeded, len(o.errors)) for o in outcomes]   # doctest: +SKIP
"""

from __future__ import annotations

import contextlib
import os
import signal
import sys
import threading
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Literal

from .execute.runner import RunOutcome
from .jobs.model import Progress
from .runranges import RunRanges
from .selection import ALL, Selection

if TYPE_CHECKING:
    import rich.console
    import rich.progress

    from .context import Pipeline
    from .jobs import ContextInfo
    from .store import DatabaseFolder

__all__ = [
    "ConsoleReporter",
    "ContextLoadError",
    "FolderInUse",
    "MissingRunsError",
    "Reporter",
    "ReprocessError",
    "ReprocessInterrupted",
    "load_context",
    "outcome_line",
    "reprocess",
    "summary_line",
]

class ReprocessError(Exception):
    """Nothing was processed, for the reason given in the message."""


class ContextLoadError(ReprocessError):
    """The context file does not load. ``problems``: one ``file:line: message`` each."""

    def __init__(self, problems: Sequence[str]) -> None:
        self.problems = list(problems)
        super().__init__("The context file cannot be loaded:\n" + "\n".join(self.problems))


class FolderInUse(ReprocessError):
    """Another process (a running service, another ``reprocess``) writes the folder;
    ``holder`` says which (None when unknown), ``holder.url`` where it serves."""

    def __init__(self, busy: Exception) -> None:
        self.holder = getattr(busy, "holder", None)
        super().__init__(str(busy))


class MissingRunsError(ReprocessError):
    """Some of the requested runs are not on disk; ``runs`` (:class:`RunRanges`) says
    which."""

    def __init__(self, runs: Sequence[int] | RunRanges, proposal: int, where: str) -> None:
        ranges = runs if isinstance(runs, RunRanges) else RunRanges.of(runs)
        self.runs = ranges
        listed = str(ranges)
        single = len(ranges.ranges) == 1 and ranges.ranges[0][0] == ranges.ranges[0][1]
        noun = "Run" if single else "Runs"
        verb = "does" if single else "do"
        super().__init__(f"{noun} {listed} of proposal {proposal} {verb} not exist "
                         f"(no run folder under {where})")


class ReprocessInterrupted(KeyboardInterrupt):
    """Ctrl-C stopped :func:`reprocess`; ``outcomes`` are those of every requested run
    (runs stopped or never started have ``failure = ('Interrupted', ...)``). What had
    finished was merged."""

    def __init__(self, outcomes: list[RunOutcome]) -> None:
        self.outcomes = outcomes
        super().__init__("Interrupted")


class Reporter:
    """Receives progress from :func:`reprocess`; subclass it to show it. Called from
    the thread that called :func:`reprocess`."""

    def start(self, runs: Sequence[int], jobs: int) -> None:
        """Processing of ``runs`` starts, ``jobs`` at a time."""

    def finished(self, outcome: RunOutcome) -> None:
        """One run is done and its fragment merged (or it failed)."""

    def progress(self, run: int, progress: Progress) -> None:
        """A running run reports how far it is (a few times a second at most)."""

    def stopping(self, running: int) -> None:
        """Ctrl-C: ``running`` runs are being stopped; nothing new starts."""


def load_context(context_path: str | Path) -> Pipeline:
    """Load a context file, or raise :class:`ContextLoadError` listing its problems
    (each ``file:line: message``)."""
    from .context import Pipeline
    from .execute.runner import describe_load_error

    try:
        return Pipeline.from_context_file(context_path)
    except (Exception, SystemExit) as exc:
        raise ContextLoadError(describe_load_error(exc, context_path).splitlines()) from None


def reprocess(
    db_dir: str | Path,
    runs: Iterable[int] | RunRanges | Literal["all"],
    *,
    selection: Selection = ALL,
    jobs: int | None = None,
    python: str | Path | None = None,
    timeout: float | None = None,
    reporter: Reporter | None = None,
) -> list[RunOutcome]:
    """Process ``runs`` (run numbers, :class:`RunRanges`, or ``"all"`` runs on disk) of the folder's
    proposal again and merge the results; returns one outcome per run, by run number.

    ``selection``: which variables; its ``data`` as if that data had just arrived
    (``'all'``: every variable), its ``variables`` (exact names) and ``match`` (title
    substrings) narrow it; dependencies are always computed too. ``jobs``: runs
    processed at once (default: the ``concurrent_jobs`` setting, at most one per
    CPU). ``python``: the interpreter (default: the ``context_python`` setting).
    ``timeout``: seconds after which one run's process is killed.

    Also merges result fragments left in the folder by an earlier command or service
    that was killed, and updates the folder's ``variables`` table from the context
    file. It is the folder's single writer meanwhile: raises :class:`FolderInUse`
    while another process (a service) is. Raises
    :class:`ContextLoadError`, :class:`MissingRunsError` or :class:`ReprocessError`
    before processing anything; :class:`ReprocessInterrupted` on Ctrl-C, after
    stopping the running processes and merging what had finished.
    """
    from .store import FolderBusy, become_writer, open_db

    reporter = reporter or Reporter()
    db_dir = Path(db_dir).absolute()
    with open_db(db_dir) as db:
        proposal = db.proposal
        if proposal is None:
            raise ReprocessError(f"{db_dir} has no proposal set; "
                                 "set it with `runtable config proposal NUMBER`")
        try:
            writer = become_writer(db_dir, "runtable reprocess")
        except FolderBusy as exc:
            raise FolderInUse(exc) from None
        with writer:
            return _reprocess(db, db_dir, proposal, runs, selection, jobs, python, timeout,
                              reporter)


def _reprocess(db: DatabaseFolder, db_dir: Path, proposal: int,
               runs: Iterable[int] | RunRanges | Literal["all"], selection: Selection,
               jobs: int | None,
               python: str | Path | None, timeout: float | None,
               reporter: Reporter) -> list[RunOutcome]:
    from .sources import ProposalNotFoundError, proposal_dir, scan_runs

    try:
        prop_dir = proposal_dir(db_dir, proposal)
    except ProposalNotFoundError as exc:
        raise ReprocessError(str(exc)) from None
    # Results a killed command or service left behind come first, so that the
    # newer ones merged below win.
    from .jobs.limits import Limits

    db.merge_pending(Limits.from_settings(db.settings()).longest_s)

    data = selection.data
    on_disk = {r.run: r for r in scan_runs(prop_dir)}
    wanted = {"raw": lambda r: r.raw, "proc": lambda r: r.proc,
              "all": lambda r: r.raw or r.proc}[data]
    present = sorted(n for n, r in on_disk.items() if wanted(r))
    if runs == "all":
        run_list = present
    else:
        # Never expanded: a range is compared with the runs that exist.
        ranges = runs if isinstance(runs, RunRanges) else RunRanges.of(runs)
        run_list = ranges.select(present)
        missing = ranges.missing(present)
        if missing:
            kinds = "raw/ or proc/" if data == "all" else f"{data}/"
            raise MissingRunsError(missing, proposal, f"{prop_dir}{os.sep}{kinds}")

    python = str(python or db.get_setting("context_python") or sys.executable)
    if not (Path(python).is_file() or _on_path(python)):
        raise ReprocessError(
            f"The context_python interpreter {python} does not exist; set another "
            "with `runtable config context_python PATH`")
    if jobs is None:
        jobs = min(int(db.get_setting("concurrent_jobs") or 1), os.cpu_count() or 1)
    jobs = max(1, min(jobs, len(run_list) or 1))
    limits = _limits(db, timeout)

    # The worker imports numpy, h5py and extra_data while the context file loads (in a
    # child process: it is user code, which may exit, hang or crash): the two biggest
    # start-up costs overlap.
    pool = _WorkerPool(python) if run_list else None
    try:
        from .execute.source import EXECUTOR_ENV
        from .jobs import inspect_context

        context = inspect_context(db.path, python)
        if context.problems:
            raise ContextLoadError(context.problems.splitlines())
        names = _check_selection(context, selection)
        db.update_computed_variables(context.definitions)
        if pool is None:
            return []
        # The workers find the runs under the same root we did, even when it was
        # known only from where the database folder is.
        env = {"EXTRA_DATA_DATA_ROOT": str(prop_dir.parents[2]), EXECUTOR_ENV: "local"}
        request = {"db_dir": str(db.path), "proposal": proposal, **selection.fields(),
                   "env": env, **limits}
        reporter.start(run_list, jobs)
        return _Batch(db, proposal, pool, request, names).run(run_list, jobs, reporter)
    finally:
        if pool is not None:
            pool.close()


def _check_selection(context: ContextInfo, selection: Selection) -> list[str]:
    """The names the selection computes (stored ones: not transient), or
    ReprocessError for an unknown name or a title nothing matches."""
    variables, match = selection.variables, selection.match
    unknown = [v for v in variables if v not in context.variables]
    if unknown:
        known = ", ".join(sorted(context.variables)) or "none"
        raise ReprocessError(f"No variable named {', '.join(map(repr, unknown))} in the "
                             f"context file; its variables: {known}")
    selected = context.select(selection)
    if match and not variables and not selected:
        raise ReprocessError(f"No variable title contains {' or '.join(map(repr, match))}")
    return [n for n in selected if not context.variables[n].transient]


def _on_path(name: str) -> bool:
    import shutil

    return os.sep not in name and shutil.which(name) is not None


def _limits(db: DatabaseFolder, timeout: float | None) -> dict[str, float | int]:
    """The per-run limits of a worker request: those of the service's local jobs
    (``noncluster_cpus``, ``noncluster_mem``, ``job_time_limit_s`` or ``slurm_time``);
    ``timeout`` wins over the time limit."""
    from .jobs.limits import Limits

    limits = Limits.from_settings(db.settings())
    return {"cpus": limits.cpus, "mem_bytes": limits.mem_bytes,
            "time_s": float(timeout) if timeout else limits.time_s}


class _WorkerPool:
    """A warm worker (``python -m runtable.jobs.warm`` in the context's interpreter)
    that imports the heavy libraries once and forks a fresh process per run: the
    same runner, limits and logs as the service's local jobs. Its events arrive on
    :attr:`events`, ending with ``{"event": "eof", "returncode": N}``."""

    def __init__(self, python: str) -> None:
        import queue

        from .jobs.warm_client import WarmProcess

        self.python = python
        self.events: queue.SimpleQueue[dict] = queue.SimpleQueue()
        # Ctrl-C is for this process to handle: it stops the worker in order.
        self.proc = WarmProcess(python, lambda _proc, event: self.events.put(event),
                                capture_stderr=True, name="reprocess-worker-reader")

    def submit(self, request: dict) -> bool:
        """Hand over one run; False if the worker is gone."""
        try:
            self.proc.send({"op": "run", **request})
        except OSError:
            return False
        return True

    def close(self) -> None:
        """Stop the worker; it kills whatever it still runs. Safe to call twice."""
        self.proc.close(15)


class _Batch:
    """Runs handed to the worker ``jobs`` at a time; this thread merges every fragment
    as it arrives (the folder's single writer) and handles Ctrl-C."""

    def __init__(self, db: DatabaseFolder, proposal: int, pool: _WorkerPool,
                 request: dict, names: list[str]) -> None:
        self.db = db
        self.proposal = proposal
        self.pool = pool
        self.request = request
        #: What each run computes: the variables a run that dies gets its error for.
        self.names = names
        self.partials: dict[int, str] = {}  # run -> the fragment its process writes

    def _submit(self, run: int) -> bool:
        from .execute.fragment import partial_path

        partial = str(partial_path(self.db.extracted_dir, self.proposal, run))
        self.partials[run] = partial
        return self.pool.submit({**self.request, "id": run, "run": run, "partial": partial})

    def run(self, runs: list[int], jobs: int, reporter: Reporter) -> list[RunOutcome]:
        import queue

        outcomes: dict[int, RunOutcome] = {}
        waiting = list(runs)
        running: set[int] = set()
        stop = threading.Event()
        dead: str | None = None  # why the worker is gone, once it is
        with _sigint_sets(stop):
            while (waiting and dead is None) or running:
                while waiting and len(running) < jobs and dead is None:
                    if stop.is_set():
                        break
                    if self._submit(waiting[0]):
                        running.add(waiting.pop(0))
                    else:
                        dead = self._death_note()
                if stop.is_set():
                    break
                try:
                    # A short wait so that Ctrl-C (which only sets a flag) is seen soon.
                    event = self.pool.events.get(timeout=0.2)
                except queue.Empty:
                    continue
                kind = event.get("event")
                if kind == "eof":
                    dead = self._death_note()
                    for run in sorted(running):
                        outcomes[run] = self._merge(self._died(run, "ProcessingCrashed", dead))
                        reporter.finished(outcomes[run])
                    running.clear()
                elif kind == "finished" and event.get("id") in running:
                    run = int(event["id"])
                    running.discard(run)
                    outcomes[run] = self._merge(self._outcome(run, event))
                    reporter.finished(outcomes[run])
                elif kind == "progress" and event.get("id") in running:
                    with contextlib.suppress(KeyError, TypeError, ValueError):
                        reporter.progress(int(event["id"]), Progress.from_event(event))
            if stop.is_set():
                # Runs that finished before Ctrl-C was seen are merged all the same.
                with contextlib.suppress(queue.Empty):
                    while running:
                        event = self.pool.events.get_nowait()
                        if event.get("event") == "finished" and event.get("id") in running:
                            run = int(event["id"])
                            running.discard(run)
                            outcomes[run] = self._merge(self._outcome(run, event))
                            reporter.finished(outcomes[run])
                reporter.stopping(len(running))
                self.pool.close()  # kills the runs still going; nothing more is merged
                self._discard_partials()
                for run in runs:
                    outcomes.setdefault(run, RunOutcome(self.proposal, run, failure=(
                        "Interrupted", "stopped by Ctrl-C before it finished"
                        if run in running else "not started (Ctrl-C)")))
                raise ReprocessInterrupted([outcomes[r] for r in sorted(outcomes)])
        for run in waiting:
            outcomes[run] = self._failed(run, "ProcessingCrashed", dead or "not started")
            reporter.finished(outcomes[run])
        return [outcomes[r] for r in sorted(outcomes)]

    def _death_note(self) -> str:
        from .execute.subprocess import describe_exit

        code = self.pool.proc.wait(5)
        why = ("it stopped reading requests" if code is None
               else describe_exit(code).replace("The processing process", "it"))
        tail = self.pool.proc.stderr_tail()
        return (f"The worker process ({self.pool.python} -m runtable.jobs.warm) stopped "
                f"unexpectedly: {why}" + (f". Its last words:\n{tail}" if tail else ""))

    def _failed(self, run: int, cls: str, message: str) -> RunOutcome:
        from .execute.runner import log_path_for

        log_path = log_path_for(self.db.path, self.proposal, run)
        outcome = RunOutcome(self.proposal, run, failure=(cls, message), log_path=log_path)
        # The run's log tells what happened, as it does for a job of the service.
        with contextlib.suppress(OSError), open(log_path, "a") as log:
            log.write(f"----- Failed r{run} (p{self.proposal}): {message} -----\n")
        return outcome

    def _discard_partials(self) -> None:
        """Remove what runs stopped on purpose (Ctrl-C) had written."""
        from .execute.fragment import journal_path

        for partial in self.partials.values():
            for path in (Path(partial), journal_path(partial)):
                path.unlink(missing_ok=True)
        self.partials.clear()

    def _died(self, run: int, cls: str, message: str) -> RunOutcome:
        """A run whose process died: what it had finished and the error for the rest
        go into a fragment (:mod:`runtable.jobs.errors`), merged like any other."""
        from .jobs.errors import make_error, write_error_fragment

        outcome = self._failed(run, cls, message)
        try:
            outcome.fragment = write_error_fragment(
                self.db.path, self.proposal, run, self.names, make_error(cls, message),
                partial=self.partials.pop(run, None))
        except Exception as exc:  # a full disk, say: the run's log still tells
            outcome.failure = (cls, f"{message} (and its error could not be recorded: "
                                    f"{exc})")
        return outcome

    def _outcome(self, run: int, event: dict) -> RunOutcome:
        from .execute.subprocess import describe_exit

        if event.get("killed"):
            return self._died(run, str(event["killed"]), str(event.get("message") or ""))
        if event.get("outcome"):
            try:
                return RunOutcome.from_json(event["outcome"])
            except (ValueError, TypeError):
                pass
        return self._died(run, "ProcessingCrashed",
                          describe_exit(int(event.get("returncode") or 0)) +
                          "; see the run's log in process_logs/")

    def _merge(self, outcome: RunOutcome) -> RunOutcome:
        if outcome.fragment is None:
            return outcome
        try:
            self.db.merge_fragment(outcome.fragment)
        except Exception as exc:
            # The fragment stays in extracted_data/ and a later merge can take it.
            outcome.failure = (type(exc).__name__, f"Could not merge the results: {exc}")
        return outcome


@contextlib.contextmanager
def _sigint_sets(event: threading.Event) -> Iterator[None]:
    """While active, Ctrl-C sets *event* instead of raising KeyboardInterrupt, so it
    can never interrupt a merge half-way. Only possible in the main thread."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def handler(signum: int, frame: object) -> None:
        event.set()

    previous = signal.signal(signal.SIGINT, handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)


class ConsoleReporter(Reporter):
    """Shows :func:`reprocess` in a terminal: a line per finished run above a
    progress bar (the bar only when the output is a terminal). Call :meth:`close`."""

    def __init__(self, console: rich.console.Console | None = None) -> None:
        from rich.console import Console

        self.console = console if console is not None else Console(highlight=False)
        self._bar: tuple[rich.progress.Progress, rich.progress.TaskID] | None = None

    def start(self, runs: Sequence[int], jobs: int) -> None:
        from rich.progress import (
            BarColumn,
            MofNCompleteColumn,
            Progress,
            SpinnerColumn,
            TextColumn,
            TimeElapsedColumn,
        )

        n = len(runs)
        self.console.print(f"Processing {n} run{'s' if n != 1 else ''}, "
                           f"{jobs} at a time (Ctrl-C stops)", soft_wrap=True)
        bar = Progress(
            SpinnerColumn(), TextColumn("[progress.description]{task.description}"),
            BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
            console=self.console, transient=True, disable=not self.console.is_terminal)
        self._bar = (bar, bar.add_task("processing", total=n))
        bar.start()

    def finished(self, outcome: RunOutcome) -> None:
        self.console.print(outcome_line(outcome), soft_wrap=True)
        if self._bar is not None:
            bar, task = self._bar
            bar.advance(task)

    def progress(self, run: int, progress: Progress) -> None:
        if self._bar is not None:
            bar, task = self._bar
            bar.update(task, description=f"r{run}: {progress.text()}")

    def stopping(self, running: int) -> None:
        self.console.print(f"Stopping: killing {running} running run process"
                           f"{'es' if running != 1 else ''}; merging what finished.")

    def close(self) -> None:
        if self._bar is not None:
            self._bar[0].stop()
            self._bar = None


#: Error classes of variables skipped on purpose (``raise Skip(...)``), and of their
#: dependents: not errors to count.
SKIP_CLASSES = frozenset({"Skip", "DependencySkip"})


def _errors_and_skips(outcome: RunOutcome) -> tuple[dict[str, tuple[str, str]],
                                                     dict[str, tuple[str, str]]]:
    errors = {n: e for n, e in outcome.errors.items() if e[0] not in SKIP_CLASSES}
    skips = {n: e for n, e in outcome.errors.items() if e[0] in SKIP_CLASSES}
    return errors, skips


def outcome_line(outcome: RunOutcome) -> str:
    """One line about one run's outcome, as plain text."""
    head = f"r{outcome.run:04d}"
    if outcome.failure is not None:
        cls, message = outcome.failure
        first = message.strip().splitlines()[0] if message.strip() else ""
        return f"{head}  FAILED  {cls}: {first}"
    n_ok = len(outcome.ok)
    text = f"{head}  ok      {n_ok} variable{'s' if n_ok != 1 else ''}"
    errors, skips = _errors_and_skips(outcome)
    for found, word, with_class in ((errors, "error", True), (skips, "skipped", False)):
        if not found:
            continue
        shown = []
        for name, (cls, message) in list(found.items())[:3]:
            first = message.strip().splitlines()[0] if message.strip() else ""
            what = f"{cls}: {first}" if with_class else first
            shown.append(f"{name}: {what}" if what else f"{name}: {cls}")
        more = f"; +{len(found) - 3} more" if len(found) > 3 else ""
        count = f"{len(found)} {word}{'s' if with_class and len(found) != 1 else ''}"
        text += f", {count} ({'; '.join(shown)}{more})"
    return text


def summary_line(outcomes: Sequence[RunOutcome]) -> str:
    """A one-line total over a batch's outcomes (skipped variables are no errors)."""
    failed = [o for o in outcomes if o.failure is not None]
    with_errors = [o for o in outcomes if o.failure is None and _errors_and_skips(o)[0]]
    skipped = sum(len(_errors_and_skips(o)[1]) for o in outcomes if o.failure is None)
    ok = len(outcomes) - len(failed)
    text = f"{len(outcomes)} run{'s' if len(outcomes) != 1 else ''} processed: {ok} ok"
    if with_errors:
        text += f" ({len(with_errors)} with variable errors)"
    text += f", {len(failed)} failed"
    if skipped:
        text += f"; {skipped} variable{'s' if skipped != 1 else ''} skipped on purpose"
    text += "."
    if failed or with_errors:
        text += " Details in process_logs/ of the database folder."
    return text
