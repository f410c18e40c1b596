"""Executing a pipeline's variables for one run: arguments, errors, results.

All the state of one execution lives in an :class:`Execution`, so a long-lived
process can execute pipelines for many runs without anything carrying over.
"""

from __future__ import annotations

import contextlib
import logging
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from . import tracking
from .annotations import matching, resolve_var
from .cell import Cell
from .environment import explain_missing_module
from .errors import DependencyError
from .metadata import MetadataCache
from .variable import Skip, Variable

if TYPE_CHECKING:
    from .pipeline import Pipeline

log = logging.getLogger("runtable.context")

#: Pipelines with this name log without a ``[label]`` prefix.
DEFAULT_NAME = "default"


def dependency_skip(error: DependencyError) -> Skip:
    """The error of a variable skipped because every dependency that failed was itself
    skipped (or its source is missing from the run).

    A plain :class:`Skip`, so it is stored with the class name the reference stores
    (its readers show only ``Skip`` cells as skipped), carrying the dependency tree as
    its message and as ``dependency_error``.
    """
    skip = Skip(str(error))
    skip.dependency_error = error  # type: ignore[attr-defined]
    return skip


def _skips(exc: BaseException) -> bool:
    # A source missing from the run is a property of the data, not a bug: the
    # reference skips its dependents too. (Checked by name: extra_data may be absent.)
    cls = type(exc)
    return isinstance(exc, Skip) or (
        cls.__name__ == "SourceNameError" and cls.__module__.startswith("extra_data"))


class Results:
    """What one execution produced: ``cells`` (name -> :class:`Cell`, starting with
    ``start_time``) and ``errors`` (name -> exception). A variable is in at most one."""

    def __init__(self, cells: dict[str, Cell], errors: dict[str, BaseException],
                 pipeline: Pipeline | None = None, provenance: str = "context.py") -> None:
        self.cells = cells
        self.errors = errors
        self.pipeline = pipeline
        self.provenance = provenance

    def __repr__(self) -> str:
        return f"<Results: {len(self.cells)} cells, {len(self.errors)} errors>"

    def save(self, out_dir: str | Path, proposal: int, run: int) -> Path:
        """Write these results as a fragment in ``out_dir``; returns its path."""
        from runtable.execute.fragment import write_fragment

        return write_fragment(self, out_dir, proposal, run)


class _MissingDependencies(Exception):
    def __init__(self, error: BaseException, names: list[str]) -> None:
        self.error, self.names = error, names


class _MissingParams(Exception):
    pass


class Execution:
    """One execution of a pipeline for one run (all state lives here)."""

    def __init__(self, pipeline: Pipeline, run: Any, variables: dict[str, Variable],
                 params: dict[str, Any]) -> None:
        self.pipeline = pipeline
        self.run_obj = run
        self.variables = variables
        self.params = params
        name = pipeline.name
        self.label = "" if name == DEFAULT_NAME else f"[{name}] "
        self.values: dict[str, Any] = {}
        self.errors: dict[str, BaseException] = {}
        proposal, run_number = pipeline.proposal, pipeline.run_number
        assert proposal is not None and run_number is not None, "Pipeline.execute() checks"
        self.metadata = MetadataCache(proposal, run_number)

    def run(self, on_result: Callable[[str, Cell | BaseException], None] | None = None
            ) -> Results:
        """Compute every variable in order. ``on_result(name, cell or exception)`` is
        called as each stored (non-transient) variable finishes, ``start_time`` first,
        so results can be saved before the next variable runs."""
        cells: dict[str, Cell] = {"start_time": Cell(start_time(self.run_obj))}
        if on_result is not None:
            on_result("start_time", cells["start_time"])
        for done, (name, var) in enumerate(self.variables.items()):
            tracking.variable_started(name, done)
            cell = self._compute(name, var)
            if on_result is not None and not var.transient:
                result = self.errors.get(name, cell)
                if result is not None:
                    on_result(name, result)
            if cell is None:
                continue
            if cell.data is not None:
                self.values[name] = cell.data
            if not var.transient:
                cells[name] = cell
        tracking.variable_started("", len(self.variables))
        errors = {n: e for n, e in self.errors.items() if not self.variables[n].transient}
        return Results(cells, errors, self.pipeline, self.pipeline.provenance)

    def _compute(self, name: str, var: Variable) -> Cell | None:
        label = self.label
        try:
            kwargs = self._arguments(var)
        except _MissingDependencies as exc:
            log.warning("%sSkipping %s because of missing dependencies: %s",
                        label, name, ", ".join(exc.names))
            self.errors[name] = exc.error
            return None
        except _MissingParams as exc:
            log.warning("%sSkipping %s because of missing parameters: %s", label, name, exc)
            return None
        except Exception as exc:
            log.error("%sCould not get data for %s", label, name, exc_info=True)
            self.errors[name] = exc
            return None
        start = time.perf_counter()
        try:
            cell = _as_cell(var(self.run_obj, **kwargs), var)
        except Skip as exc:
            log.info("%sSkipped %s: %s", label, name, exc)
            self.errors[name] = exc
            return None
        except (Exception, SystemExit) as exc:
            explain_missing_module(exc, self.pipeline._folder)
            log.error("%sCould not get data for %s", label, name, exc_info=True)
            self.errors[name] = exc
            return None
        log.info("%sComputed %s in %.3f s", label, name, time.perf_counter() - start)
        with contextlib.suppress(OSError, ValueError, AttributeError):
            sys.stdout.flush()  # keep the variable's own prints next to its log line
        return cell

    def _arguments(self, var: Variable) -> dict[str, Any]:
        kwargs: dict[str, Any] = {}
        missing: list[str] = []
        for p in var.params:
            if p.kind != "var":
                continue
            found, value = resolve_var(p.target, self.values)
            if found:
                kwargs[p.name] = value
            elif not p.has_default:
                missing += [n for n in matching(p.target, self.variables) if n not in missing]
        if missing:
            raise _MissingDependencies(self._dependency_error(missing), missing)
        absent = []
        for p in var.params:
            if p.kind == "var":
                continue
            if p.kind == "meta":
                kwargs[p.name] = self._meta(p.target)
            elif p.kind == "mymdc":
                kwargs[p.name] = self.metadata.get(p.target)
            elif p.kind == "param":
                if p.target in self.params:
                    kwargs[p.name] = self.params[p.target]
                elif not p.has_default:
                    absent.append(p.target)
            else:
                raise RuntimeError(f"Unknown path '{p.annotation}' for argument '{p.name}'")
        if absent:
            raise _MissingParams(", ".join(absent))
        return kwargs

    def _dependency_error(self, missing: list[str]) -> BaseException:
        failed = {n: self.errors[n] for n in missing if n in self.errors}
        if not failed:
            return Skip("Dependencies returned no data:\n"
                        + "\n".join(f"- '{n}'" for n in missing))
        error = DependencyError(failed)
        if all(_skips(e) for e in failed.values()):
            return dependency_skip(error)
        return error

    def _meta(self, field: str) -> Any:
        if field == "run_number":
            return self.pipeline.run_number
        if field == "proposal":
            return self.pipeline.proposal
        if field == "proposal_path":
            return proposal_path(self.run_obj)
        raise RuntimeError(f"Unknown path 'meta#{field}'")


def _as_cell(value: Any, var: Variable) -> Cell:
    if var.transient:
        if isinstance(value, Cell):
            return value
        # Transient values are never saved, so they skip Cell's storage checks.
        cell = Cell(None)
        cell.data = value
        return cell
    cell = value if isinstance(value, Cell) else Cell(value)
    if cell.summary is None:
        cell.summary = var.summary
    if cell.units is None:
        cell.units = var.units or _dataarray_units(cell.data)
    return cell


def _dataarray_units(data: Any) -> str | None:
    if type(data).__module__.startswith("xarray") and type(data).__name__ == "DataArray":
        units = data.attrs.get("units")
        if isinstance(units, str) and units:
            return units
    return None


def _data_collection(run: Any) -> bool:
    extra_data = sys.modules.get("extra_data")  # a DataCollection implies it is imported
    return extra_data is not None and isinstance(run, extra_data.DataCollection)


def start_time(run: Any) -> float:
    """Epoch seconds of the run's first train; else the mtime of the first raw file in
    name order (any file if none is raw); the current time when ``run`` is not a
    DataCollection."""
    if not _data_collection(run):
        return time.time()
    import numpy as np

    try:
        first = run.select_trains(np.s_[:1]).train_timestamps()
        if len(first) and not np.isnat(first[0]):
            return first[0].astype("datetime64[ns]").astype(np.int64) / 1e9
    except Exception:
        log.debug("No train timestamps", exc_info=True)
    # In name order, as the reference does: the order files are listed in varies
    # between openings of the same run.
    files = sorted(f.filename for f in run.files)
    raw = [f for f in files if Path(f).name.upper().startswith("RAW-")]
    for name in raw + files:
        try:
            return Path(name).stat().st_mtime
        except OSError:
            continue
    return time.time()


def proposal_path(run: Any) -> Path | str:
    """The proposal folder of a run (three levels above its first file), or ""."""
    if not _data_collection(run) or not run.files:
        return ""
    return Path(*Path(run.files[0].filename).parts[:-3])
