"""The read API's entry point: :class:`Database`, a database folder opened for
reading (``Damnit``, the reference system's name for it)."""

from __future__ import annotations

import os
import threading
from numbers import Integral
from pathlib import Path
from typing import TYPE_CHECKING, Any, overload

import numpy as np

from ..store import open_db
from ..store.table import TableColumns, read_table
from ..store.tablecopy import own_copy_dir
from .frame import HeldFrame, copy_on_write
from .variable import RunVariables, VariableData

if TYPE_CHECKING:
    import pandas as pd


class Database:
    """A database folder opened for reading.

    *location* is a proposal number (its folder ``<proposal dir>/usr/Shared/amore``
    is found like the service finds it) or the path of a database folder::

        db = Database(1234)
        db = Database("/path/to/amore")
        db.table(with_titles=True)
        db[100]               # RunVariables of run 100 (of db.proposal)
        db[1234, 100]         # ... of a given proposal
        db[100, "xgm_flux"]   # VariableData, by name or title
        db[1234, 100, "xgm_flux"]

    Reading works while the service writes the folder, and in folders you can't write.
    :meth:`table` reads the copy of the table that the folder's writer keeps; for a
    folder without one it keeps a copy in the user's cache folder (see
    :func:`cache_dir`; ``cache=False`` turns that off).
    """

    def __init__(self, location: int | str | os.PathLike[str], *, cache: bool = True) -> None:
        if isinstance(location, Integral) and not isinstance(location, bool):
            from ..sources import default_database_folder

            path = default_database_folder(int(location))
        elif isinstance(location, (str, os.PathLike)):
            path = Path(location)
        else:
            raise TypeError(f"Database() takes a proposal number or a folder path, "
                            f"not {type(location).__name__}")
        if not path.is_dir():
            raise FileNotFoundError(f"Database folder {path} does not exist")
        if not (path / "runs.sqlite").is_file():
            raise FileNotFoundError(
                f"{path} has no runs.sqlite: it is not a runtable/DAMNIT database folder "
                "(create one with `runtable init`)")
        self._path = path
        self._cache = cache
        self._db = open_db(path, readonly=True)
        # The table as columns, kept by table() to read only what changed next time,
        # and the DataFrame made of it; one table() at a time updates them.
        self._columns: TableColumns | None = None
        self._frame: HeldFrame | None = None
        self._table_lock = threading.Lock()

    @property
    def path(self) -> Path:
        """The database folder."""
        return self._path

    @property
    def proposal(self) -> int | None:
        """The proposal the folder belongs to."""
        return self._db.proposal

    def write(self, run: int, name: str, value: Any, *, title: str | None = None,
              proposal: int | None = None) -> None:
        """Store ``value`` (anything a variable may return, or a ``Cell``) as variable
        ``name`` of ``run``, with the provenance ``"external"``; the variable is made if
        needed (titled ``title``, default its name). It goes through the folder's one
        writer: the running service, else this process (see :mod:`runtable.external`).
        Many values at once: :func:`runtable.external.write_values`.

            >>> db.write(100, "sample_thickness", 0.25)    # doctest: +SKIP

        Raises :class:`~runtable.external.ExternalWriteError` for what can't be stored.
        """
        from ..external import write_values

        write_values(self._path, run, {name: value}, proposal=proposal,
                     titles={name: title} if title else None)

    def runs(self) -> list[int]:
        """Run numbers taken by the DAQ (those with a start time), in order."""
        return [r for _, r in self._db.started_runs()]

    # The overloads tell a type checker which indexing gives a variable's data.
    @overload
    def __getitem__(self, key: int | tuple[int, int]) -> RunVariables: ...
    @overload
    def __getitem__(self, key: tuple[int, str] | tuple[int, int, str]) -> VariableData: ...
    @overload
    def __getitem__(self, key: Any) -> RunVariables | VariableData: ...
    def __getitem__(self, key: Any) -> RunVariables | VariableData:
        proposal = variable = None
        if isinstance(key, tuple) and len(key) == 3:
            proposal, run, variable = key
        elif isinstance(key, tuple) and len(key) == 2:
            if isinstance(key[1], str):
                run, variable = key
            else:
                proposal, run = key
        elif isinstance(key, Integral) and not isinstance(key, bool):
            run = key
        else:
            raise TypeError(f"Index a Database with run, (run, variable), (proposal, run) or "
                            f"(proposal, run, variable), not {key!r}")
        if not isinstance(run, Integral) or isinstance(run, bool) or (
                proposal is not None and not isinstance(proposal, Integral)):
            raise TypeError(f"Run and proposal numbers must be integers: {key!r}")
        if proposal is None:
            proposal = self.proposal
        if proposal is None:
            raise KeyError("This database has no proposal set; index it with (proposal, run)")
        proposal, run = int(proposal), int(run)
        if not self._db.run_started(proposal, run):
            raise KeyError(f"Unknown run {run} for p{proposal}")
        run_vars = RunVariables(self._db, proposal, run)
        return run_vars if variable is None else run_vars[variable]

    def table(self, with_titles: bool = False, where: str | None = None) -> pd.DataFrame:
        """The run table as a DataFrame: ``proposal``, ``run``, ``start_time``
        (in the folder's ``timezone`` setting, Europe/Berlin unless set), ``comment``,
        then one column per variable.

        Cells hold the summary value; thumbnails, trendlines and arrays appear as
        ``'<thumbnail>'``, ``'<sparkline>'`` and ``'<ndarray>'``. A variable never
        computed for a run is ``pd.NA``; one that failed is None/NaN. A variable whose
        values are all bools is a ``boolean`` column (nullable: missing and failed
        cells are ``pd.NA``). User-editable columns have the dtype of their type:
        ``boolean``, ``Int64`` (both nullable), ``float64`` or text. With
        *with_titles*, columns are named by title (``Proposal``, ``Run``, ``Timestamp``).

        *where* keeps only the runs an expression of the filter language selects
        (``docs/filters.md``; the web GUI's filters are written in it too); a
        :class:`~runtable.store.where.WhereError` (a ``ValueError``) says what is
        wrong with one that cannot be read or names an unknown column.

            >>> Database("/path/to/amore").table()[["run", "xgm_flux"]]   # doctest: +SKIP
            >>> db.table(where="xgm_flux > 1.5 and sample = 'YAG'")    # doctest: +SKIP
        """
        with self._table_lock:
            df = self._table_by_name()
            if where is not None and where.strip():
                from ..store.where import rows_where

                assert self._columns is not None
                keep = rows_where(self._columns, where, self._db.get_setting("timezone"))
                # The frame has the rows with a start time (_frame_series), in order.
                df = df[keep[~np.isnan(self._columns.start_time)]].reset_index(drop=True)
        if with_titles:
            titles = self._db.titles()
            renames = {n: t for n, t in titles.items() if t and n != "comment"}
            renames.update(proposal="Proposal", run="Run", start_time="Timestamp")
            df = df.rename(columns=renames)
        return df

    def _table_by_name(self) -> pd.DataFrame:
        timezone = self._db.get_setting("timezone")
        if self._columns is None:
            own = own_copy_dir(self._db.db_path) if self._cache else None
            self._columns = read_table(self._db, details=False,
                                       copy=own if own is not None else True)
            self._frame = None
        else:
            changes = self._columns.refresh(self._db)
            if changes and self._frame is not None and not (
                    self._frame.timezone == timezone
                    and self._frame.patch(self._columns, changes)):
                self._frame = None
        if self._frame is None or self._frame.timezone != timezone:
            self._frame = HeldFrame(self._columns, timezone)
        # A copy: the caller may change what it gets, the next call starts afresh
        # (with pandas' copy-on-write, always on from pandas 3, a shallow one is enough).
        return self._frame.frame.copy(deep=not copy_on_write())

    def close(self) -> None:
        """Close the database connection (also done when used with ``with``)."""
        self._db.close()

    def __enter__(self) -> Database:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"<Database {self._path} for p{self.proposal}>"


#: The reference system's name for :class:`Database`, so notebooks port unchanged.
Damnit = Database
