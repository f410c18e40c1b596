"""Writing values into the table from outside the context file, and refreshing the
``variables`` table from it, through the folder's one writer.

A script or notebook adds values for a run (``Database(...).write(run, name, value)``,
:func:`write_values`, ``runtable set RUN NAME VALUE``). The values become a fragment,
exactly as a context file's results do (same types, same summaries), with the
provenance ``"external"``, and then:

- when a service runs for the folder (its ``.runtable-server.json``), the service's
  writer merges it, between its other merges, and publishes the change;
- when none runs, this process merges it (:func:`local_writer`), as ``runtable
  reprocess`` does.

A name that is not a variable yet becomes one (its title the name, unless given).
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .store import DatabaseFolder
    from .store.merge import MergeResult

#: ``run_variables.provenance`` of values written from outside the context file.
EXTERNAL_PROVENANCE = "external"


class ExternalWriteError(Exception):
    """Values that can't be written, with a message that says why."""


@dataclass
class _Results:
    """What the fragment writer reads (see :class:`runtable.context.Results`)."""

    cells: dict[str, Any]
    errors: dict[str, BaseException] = field(default_factory=dict)
    provenance: str = EXTERNAL_PROVENANCE


def write_values(folder: str | os.PathLike[str], run: int, values: Mapping[str, Any], *,
                 proposal: int | None = None, titles: Mapping[str, str] | None = None,
                 provenance: str = EXTERNAL_PROVENANCE) -> list[str]:
    """Write ``values`` (``{name: value or Cell}``) for ``run``; returns the names
    stored. ``proposal`` defaults to the folder's; ``titles`` names new variables.

    Raises :class:`ExternalWriteError` for bad names, run numbers or values (nothing is
    written then), and when a service runs for the folder but can't be reached.
    """
    from .context import Cell
    from .context.variable import valid_name
    from .execute.fragment import write_fragment
    from .store import open_db
    from .store.columns import RUN_FIELDS

    folder = Path(folder)
    if isinstance(run, bool) or not isinstance(run, int) or run < 0:
        raise ExternalWriteError(f"the run must be a non-negative integer, not {run!r}")
    if not values:
        raise ExternalWriteError("no values to write")
    with open_db(folder, readonly=True) as db:
        proposal = db.proposal if proposal is None else proposal
        people = db.user_variable_names()
    if proposal is None:
        raise ExternalWriteError(f"{folder} has no proposal number; set one with "
                                 "`runtable config proposal N`")
    cells = {}
    for name, value in values.items():
        if not isinstance(name, str) or not valid_name(name) or name in RUN_FIELDS:
            raise ExternalWriteError(
                f"{name!r} can't be a variable's name: use a Python identifier (dotted "
                f"parts allowed), other than {', '.join(sorted(RUN_FIELDS))}")
        if name in people:
            raise ExternalWriteError(
                f"{name!r} is a user-editable column: its values are typed by people "
                "(in the web page, or DatabaseFolder.set_user_value)")
        try:
            cells[name] = value if isinstance(value, Cell) else Cell(value)
        except (TypeError, ValueError) as exc:
            raise ExternalWriteError(f"{name!r}: {exc}") from None
    server = _server(folder)
    fragment = write_fragment(_Results(cells, provenance=provenance),
                              folder / "extracted_data", proposal, run)
    wanted_titles = {name: (titles or {}).get(name) or name for name in cells}
    try:
        if server is not None:
            from .server.client import ClientError, post_merge

            try:
                return post_merge(server, fragment.name, wanted_titles)
            except ClientError as exc:
                raise ExternalWriteError(f"the service at {server.url} did not take the "
                                         f"values: {exc}") from None
        with local_writer(folder) as db:
            return merge_external(db, fragment, wanted_titles)[0].names
    finally:
        fragment.unlink(missing_ok=True)  # merged (gone already) or refused


def merge_external(db: DatabaseFolder, fragment: Path, titles: Mapping[str, str]
                   ) -> tuple[MergeResult, list[str]]:
    """Merge an external fragment into ``db`` and give names without a row in the
    ``variables`` table one (run by whichever process is the folder's writer); the
    merge's result and the names given a row."""
    result = db.merge_fragment(fragment)
    added = db.add_variables({n: titles.get(n) or n for n in result.names})
    return result, added


@contextlib.contextmanager
def local_writer(folder: str | os.PathLike[str], command: str = "runtable set"
                 ) -> Iterator[DatabaseFolder]:
    """The folder opened for writing by this process, when no service runs for it,
    holding the folder's writer lock meanwhile (:func:`runtable.store.become_writer`):
    the one place where a command that is not the service writes values."""
    from .store import DatabaseFolder, FolderBusy, become_writer

    if _server(folder) is not None:
        raise ExternalWriteError(f"a runtable service runs for {folder}: it is the "
                                 "folder's writer")
    try:
        lock = become_writer(folder, command)
    except FolderBusy as exc:
        raise ExternalWriteError(str(exc)) from None
    with lock, DatabaseFolder(folder) as db:
        yield db


def _server(folder: str | os.PathLike[str]) -> Any:
    """The service running for ``folder`` (None: none runs). A server file this user
    may not read means a service of another account runs: writing here would race it."""
    from .server.discovery import read_server_file, server_file

    path = server_file(folder)
    if path.exists() and not os.access(path, os.R_OK):
        raise ExternalWriteError(
            f"a runtable service of another account runs for {folder} and only it may "
            f"write there; its {path.name} is readable only by that account, so ask its "
            "owner (or use the web page)")
    return read_server_file(folder)


def read_context(folder: str | os.PathLike[str]) -> tuple[str | None, list[str]]:
    """Load the folder's context file (in its ``context_python``, as the service does)
    and bring the ``variables`` table up to date without processing any run.

    Returns ``(problems, changed)``: the load's problems (None when it loads; nothing
    is written then) and the names whose row changed. With a service running, the
    service does this itself whenever the file changes: ``changed`` is then empty.
    """
    from .jobs import inspect_context
    from .store import open_db

    folder = Path(folder)
    with open_db(folder, readonly=True) as db:
        python = db.get_setting("context_python")
    info = inspect_context(folder, python)
    if info.problems is not None:
        return info.problems, []
    if _server(folder) is not None:
        return None, []
    with local_writer(folder, "runtable read-context") as db:
        return None, db.update_computed_variables(info.definitions)
