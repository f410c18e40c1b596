"""Executing a context file for one run, in this process: :func:`execute_run`.

This is what a processing job does, whether it runs in a fresh subprocess (see
:mod:`.subprocess`), a long-lived warm worker or a Slurm job: load the context file,
pick the variables the trigger asks for, open the run, compute, write the result
fragment, and append a readable account to ``process_logs/r{run}-p{proposal}.out``.

Nothing the context file does can make :func:`execute_run` raise: a broken file, a
run that can't be opened or a bug in a variable all end up in the returned
:class:`RunOutcome`.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import socket
import sys
import time
import traceback
import warnings
from collections.abc import Callable, Iterator, Sequence
from dataclasses import asdict, dataclass, field
from datetime import datetime
from pathlib import Path
from typing import IO, Any

from ..selection import RAW, DataName, Selection
from ..sharing import shared_dir, shared_file
from .fragment import DEFAULT_PROVENANCE, FragmentWriter, read_fragment
from .source import user_name

log = logging.getLogger("runtable.execute")

#: Log records from these loggers go into the run's log file.
LOGGERS = ("runtable",)
_LOG_FORMAT = "%(asctime)s %(levelname)-7s %(name)s: %(message)s"


@dataclass
class RunOutcome:
    """What happened when a context was executed for one run.

    ``fragment``: the ``...ready.h5`` file written, or None when nothing was.
    ``ok``: variables computed and stored (including those that returned None).
    ``errors``: variable name -> ``(exception class name, message)``; skipped
    variables appear here with class ``Skip``.
    ``failure``: ``(class name, message)`` when the run as a whole failed (context file
    did not load, run could not be opened, the process crashed); None otherwise.
    ``durations``: seconds spent in each phase (load, open, execute, write, total).
    """

    proposal: int
    run: int
    fragment: Path | None = None
    ok: list[str] = field(default_factory=list)
    errors: dict[str, tuple[str, str]] = field(default_factory=dict)
    failure: tuple[str, str] | None = None
    durations: dict[str, float] = field(default_factory=dict)
    log_path: Path | None = None

    @property
    def succeeded(self) -> bool:
        """True when the run was processed (individual variables may still have failed)."""
        return self.failure is None

    def to_json(self) -> str:
        """One line of JSON (what ``python -m runtable.execute`` prints)."""
        data = asdict(self)
        for key in ("fragment", "log_path"):
            data[key] = None if data[key] is None else str(data[key])
        return json.dumps(data, separators=(",", ":"))

    @classmethod
    def from_json(cls, text: str) -> RunOutcome:
        """Inverse of :meth:`to_json`."""
        data = json.loads(text)
        for key in ("fragment", "log_path"):
            if data.get(key) is not None:
                data[key] = Path(data[key])
        data["errors"] = {k: tuple(v) for k, v in data.get("errors", {}).items()}
        if data.get("failure") is not None:
            data["failure"] = tuple(data["failure"])
        return cls(**data)


def log_path_for(db_dir: str | Path, proposal: int, run: int) -> Path:
    """The log file of a run: ``<db_dir>/process_logs/r{run}-p{proposal}.out``."""
    return Path(db_dir) / "process_logs" / f"r{run}-p{proposal}.out"


def execute_run(
    db_dir: str | Path,
    proposal: int,
    run: int,
    *,
    selection: Selection = RAW,
    context_file: str | Path | None = None,
    run_data: Any = None,
    capture_output: bool = True,
    partial: str | Path | None = None,
    on_progress: Callable[[dict[str, Any]], None] | None = None,
) -> RunOutcome:
    """Execute the context file for one run and write its result fragment.

    ``selection`` says which variables (:class:`~runtable.selection.Selection`): its
    ``data`` is what triggered the job (``'raw'`` selects raw-data variables,
    ``'proc'`` proc-data variables, ``'all'`` everything; dependencies are always
    added back), its ``variables`` (exact names) and ``match`` (case-insensitive title
    substrings) narrow it further, its ``cluster`` = True/False keeps only cluster /
    non-cluster variables (None: all). ``context_file`` defaults to
    ``<db_dir>/context.py``. ``run_data``: an already-open run (e.g. an
    ``extra_data.DataCollection``) to use instead of opening it with extra_data.

    While running, output printed by the context file and log records of the
    ``runtable`` loggers are appended to the run's log (``capture_output=False``
    leaves ``sys.stdout``/``sys.stderr`` alone). Safe to call repeatedly in one
    process; never raises for problems in the context file or the data.

    ``partial``: the ``….writing.h5`` name of the fragment while it is written (see
    :func:`runtable.execute.fragment.partial_path`); whoever starts the job chooses it
    to find what a job that died had finished.

    ``on_progress``: called from a thread, a few times a second at most, with the
    job's progress while variables are computed (see
    :class:`runtable.context.tracking.ProgressReporter`).
    """
    db_dir = Path(db_dir)
    context_path = Path(context_file) if context_file is not None else db_dir / "context.py"
    log_path = log_path_for(db_dir, proposal, run)
    outcome = RunOutcome(proposal, run, log_path=log_path)
    start = time.perf_counter()
    with _run_log(log_path) as logfile:
        logfile.write(
            f"----- Processing r{run} (p{proposal}) as {user_name()} on {socket.gethostname()} "
            f"at {datetime.now().astimezone().isoformat(timespec='seconds')} -----\n"
        )
        with _capture(logfile, capture_output):
            try:
                _execute(outcome, db_dir, context_path, selection, run_data, partial,
                         on_progress)
            # SystemExit too: sys.exit() in a context file must not end a warm worker.
            except (Exception, SystemExit) as exc:
                log.error("Processing failed", exc_info=True)
                outcome.failure = (type(exc).__name__, str(exc))
            finally:
                _close_pyplot_figures()
        outcome.durations["total"] = round(time.perf_counter() - start, 6)
        logfile.write(_summary_line(outcome))
    return outcome


def _execute(
    outcome: RunOutcome,
    db_dir: Path,
    context_path: Path,
    selection: Selection,
    run_data: Any,
    partial: str | Path | None,
    on_progress: Callable[[dict[str, Any]], None] | None = None,
) -> None:
    from runtable.context import Pipeline
    from runtable.context.tracking import reporting

    timer = _Timer(outcome.durations)

    with timer("load"):
        try:
            pipeline = Pipeline.from_context_file(context_path)
        except (Exception, SystemExit) as exc:
            message = describe_load_error(exc, context_path)
            # ContextFileErrors already say file:line for each problem; a traceback
            # through our loader would only hide them.
            detail = message if getattr(exc, "problems", None) else _format_exc(exc)
            log.error("Could not load the context file:\n%s", detail)
            outcome.failure = (type(exc).__name__, message)
            return
        context_sha256 = _keep_context(db_dir, pipeline)
        full = pipeline.with_context(proposal=outcome.proposal, run_number=outcome.run)
        selected = full.select(selection.variables, selection.match, selection.data,
                               selection.cluster)
    log.info(
        "Using %d variables (of %d) from %s: %s",
        len(selected.vars), len(full.vars), context_path.name, sorted(selected.vars),
    )

    dc = run_data
    if dc is None:
        with timer("open"):
            try:
                dc, selected = _open_run(outcome.proposal, outcome.run, selection.data,
                                         selected)
            except Exception as exc:
                log.error("Could not open run %d of proposal %d", outcome.run,
                          outcome.proposal, exc_info=True)
                outcome.failure = (type(exc).__name__, f"Could not open the run: {exc}")
                return

    # Each variable is saved as it finishes: if the job dies (a crash, a limit), what
    # it had computed is kept (runtable.jobs.errors.write_error_fragment).
    writer = FragmentWriter(db_dir / "extracted_data", outcome.proposal, outcome.run,
                            selected.provenance or DEFAULT_PROVENANCE, path=partial,
                            context_sha256=context_sha256)
    try:
        with timer("execute"), reporting(on_progress, len(selected.vars)):
            results = selected.execute(data=dc, on_result=writer.add)
        with timer("write"):
            fragment = writer.finish()
            contents = read_fragment(fragment)
    except BaseException:
        writer.abort()
        raise
    outcome.fragment = fragment
    outcome.errors = dict(contents.errors)
    outcome.ok = [n for n in results.cells if n != "start_time" and n not in outcome.errors]


def _keep_context(db_dir: Path, pipeline: Any) -> str | None:
    """Keep the text the job loaded, with its variables' code hashes, in the folder
    (:mod:`runtable.store.contexts`); returns its hash for the fragment. Failing to
    keep it costs only the record, never the run."""
    from runtable.context.codehash import code_hashes, text_sha256
    from runtable.store.contexts import is_kept, keep_text

    text = pipeline.source_text
    if text is None:
        return None
    sha256 = text_sha256(text)
    if is_kept(db_dir, sha256):
        # Every run but the first of a text: hashing costs ~0.2 ms per variable.
        return sha256
    try:
        code: dict[str, str] | None = code_hashes(pipeline)
    except Exception:  # a shape of file the hashing does not know: no stale marks
        log.warning("Could not hash the variables' code", exc_info=True)
        code = None
    try:
        keep_text(db_dir, sha256, text, code)
    except Exception:
        log.warning("Could not keep the context file's text in %s (values of this run "
                    "record its hash, but the text cannot be shown)",
                    db_dir / "context_history", exc_info=True)
    return sha256


#: extra_data opens a new run's files in a pool of fresh processes, which costs about a
#: second before the first file is read: worth it only for runs of many files.
PARALLEL_OPEN_MIN_FILES = 64


def _parallel_open(proposal: int, run: int, kinds: Sequence[str]) -> bool:
    """Whether extra_data should open the run's files in parallel processes: only when
    this process may use several CPUs and the run has many files (a small run opens
    in tens of milliseconds serially, ~1 s slower through a process pool)."""
    if len(os.sched_getaffinity(0)) < 2:
        return False
    from runtable.sources import find_proposal

    try:
        prop_dir = find_proposal(proposal)
    except Exception:
        return True  # extra_data's own default; it reports a missing run itself
    count = 0
    for kind in kinds:
        with contextlib.suppress(OSError):
            count += sum(1 for _ in os.scandir(prop_dir / kind / f"r{run:04d}"))
    return count >= PARALLEL_OPEN_MIN_FILES


def _open_run(proposal: int, run: int, data: DataName, selected: Any) -> tuple[Any, Any]:
    """Open the run with extra_data: raw data only for a raw trigger, else raw and proc
    (as the reference does), and always proc when a selected variable needs it. Proc
    variables are dropped, with a warning, when the run has no proc data."""
    import extra_data

    from runtable.context import RunData

    proc_vars = sorted(n for n, v in selected.vars.items() if v.data is RunData.PROC)
    if data == "raw" and not proc_vars:
        return extra_data.open_run(proposal, run, data="raw",
                                   parallelize=_parallel_open(proposal, run, ("raw",))
                                   ), selected
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        dc = extra_data.open_run(proposal, run, data="all",
                                 parallelize=_parallel_open(proposal, run, ("raw", "proc")))
    proc_missing = False
    for w in caught:
        if "origin proc" in str(w.message):
            proc_missing = True
        else:
            warnings.warn_explicit(w.message, w.category, w.filename, w.lineno)
    if proc_missing and proc_vars:
        log.warning("Run %d has no proc data; skipping proc variables %s", run, proc_vars)
        # Raw variables never depend on proc ones (those would have become proc), so
        # this keeps exactly the rest of the selection.
        selected = selected.select(run_data=RunData.RAW)
    return dc, selected


def describe_load_error(exc: BaseException, context_path: str | Path) -> str:
    """A one-line-per-problem description of why a context file didn't load,
    each line starting ``file:line:`` where the line is known."""
    path = str(context_path)
    problems = getattr(exc, "problems", None)
    if problems:
        lines = []
        for p in problems:
            where = getattr(p, "path", None) or path
            line = getattr(p, "line", None)
            message = getattr(p, "message", None) or str(p)
            lines.append(f"{where}:{line}: {message}" if line else f"{where}: {message}")
        return "\n".join(lines)
    if isinstance(exc, SyntaxError) and exc.lineno:
        return f"{exc.filename or path}:{exc.lineno}: SyntaxError: {exc.msg}"
    line = _line_in(exc, path)
    where = f"{path}:{line}" if line else path
    return f"{where}: {type(exc).__name__}: {exc}"


def _line_in(exc: BaseException, path: str) -> int | None:
    # The innermost frame executing the context file is where the user should look.
    target = os.path.realpath(path)
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        for frame in reversed(traceback.extract_tb(current.__traceback__)):
            if frame.filename == path or os.path.realpath(frame.filename) == target:
                return frame.lineno
        current = current.__cause__ or current.__context__
    return None


def _format_exc(exc: BaseException) -> str:
    return "".join(traceback.format_exception(exc)).rstrip()


class _Timer:
    def __init__(self, durations: dict[str, float]) -> None:
        self.durations = durations

    @contextlib.contextmanager
    def __call__(self, phase: str) -> Iterator[None]:
        start = time.perf_counter()
        try:
            yield
        finally:
            self.durations[phase] = round(time.perf_counter() - start, 6)


@contextlib.contextmanager
def _run_log(path: Path) -> Iterator[IO[str]]:
    """The run's log file, opened for appending, with ``runtable`` log records
    going to it for the duration."""
    new = not path.exists()
    shared_dir(path.parent)
    with open(path, "a", buffering=1, encoding="utf-8", errors="replace") as logfile:
        if new:
            shared_file(path)
        handler = logging.StreamHandler(logfile)
        handler.setFormatter(logging.Formatter(_LOG_FORMAT, "%H:%M:%S"))
        handler.setLevel(logging.INFO)
        loggers = [logging.getLogger(name) for name in LOGGERS]
        levels = [lg.level for lg in loggers]
        for lg in loggers:
            lg.addHandler(handler)
            if lg.getEffectiveLevel() > logging.INFO:
                lg.setLevel(logging.INFO)
        try:
            yield logfile
        finally:
            for lg, level in zip(loggers, levels):
                lg.removeHandler(handler)
                lg.setLevel(level)
            handler.close()


@contextlib.contextmanager
def _capture(logfile: IO[str], enabled: bool) -> Iterator[None]:
    if not enabled:
        yield
        return
    with contextlib.redirect_stdout(logfile), contextlib.redirect_stderr(logfile):
        yield


def _close_pyplot_figures() -> None:
    # Figures made with pyplot stay registered until closed: a warm worker would
    # otherwise keep every run's figures alive.
    pyplot = sys.modules.get("matplotlib.pyplot")
    if pyplot is not None:
        with contextlib.suppress(Exception):
            pyplot.close("all")


def _summary_line(outcome: RunOutcome) -> str:
    total = outcome.durations.get("total", 0.0)
    if outcome.failure is not None:
        cls, message = outcome.failure
        return (f"----- Failed r{outcome.run} (p{outcome.proposal}) after {total:.2f} s: "
                f"{cls}: {message} -----\n")
    lines = [
        f"----- Finished r{outcome.run} (p{outcome.proposal}) in {total:.2f} s: "
        f"{len(outcome.ok)} variables computed, {len(outcome.errors)} errors -----\n"
    ]
    for name, (cls, message) in outcome.errors.items():
        first = message.splitlines()[0] if message else ""
        lines.append(f"  {name}: {cls}: {first}\n")
    return "".join(lines)
