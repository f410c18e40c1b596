"""Read API for notebooks: a database folder as pandas / numpy / xarray objects.

It has the same meaning as the reference system's ``damnit.Damnit`` class, so a
notebook ports by changing one import (``Damnit`` is an alias of :class:`Database`)::

    from runtable import Database

    db = Database(1234)                  # proposal number, or a folder path
    df = db.table()                      # one row per run, one column per variable
    db[100].keys()                       # variables with data for run 100
    arr = db[100, "xgm_flux"].read()     # by name or by title
    db[100, "xgm_flux"].summary()        # the value shown in the table

``table()`` reads the store's columnar copy of the table (``table_copy/``, see
:mod:`runtable.store.tablecopy`) plus the runs changed since; a :class:`Database` held
open then reads only the runs that changed (see ``docs/performance.md`` for figures).
A folder without a copy is read from SQLite once, and a copy kept in the user's own
cache folder (:func:`cache_dir`).

Only the store, numpy and h5py are imported up front; pandas, xarray and plotly
are imported by the methods that return their objects, and matplotlib only by
:meth:`VariableData.preview`.
"""

from __future__ import annotations

import functools
import os
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from enum import Enum
from io import BytesIO
from numbers import Integral
from pathlib import Path
from typing import TYPE_CHECKING, Any, overload

import h5py
import numpy as np

from .store import decode_summary, open_db
from .store.columns import column_order
from .store.fragments import VALUE_TYPE_ATTR
from .store.table import (
    KIND_ERROR,
    KIND_MISSING,
    KIND_NONE,
    KIND_VALUE,
    PLACEHOLDERS,
    TableColumns,
    read_table,
)
from .store.tablecopy import cache_dir, own_copy_dir
from .store.tableread import json_object

if TYPE_CHECKING:
    import pandas as pd

    from .store import DatabaseFolder

__all__ = ["Damnit", "DataType", "Database", "RunVariables", "VariableData", "VariableFailed",
           "cache_dir"]

# Columns of run_info that the table shows; variables can't take these names.
_FIXED = ("proposal", "run", "start_time", "added_at")
# Titles of the two variables that have no row in the `variables` table.
_SPECIAL_TITLES = {"start_time": "Timestamp", "comment": "Comment"}
_OBJTYPE_ATTR = "_damnit_objtype"
_NPY = b"\x93NUMPY"


# Kinds of cells a numeric column may hold and stay numeric (None becomes NaN).
_NUMBER_OR_NONE = np.zeros(256, dtype=bool)
_NUMBER_OR_NONE[[KIND_VALUE, KIND_NONE, KIND_ERROR]] = True
_NUMBER_OR_MISSING = _NUMBER_OR_NONE.copy()
_NUMBER_OR_MISSING[KIND_MISSING] = True


class DataType(Enum):
    """What kind of object a variable's data is, from its ``_damnit_objtype`` attribute."""

    DataArray = "dataarray"
    DataFrame = "dataframe"
    Dataset = "dataset"
    Image = "image"
    PlotlyFigure = "PlotlyFigure"
    Series = "series"
    Timestamp = "timestamp"


def _decode_attr(value: Any) -> Any:
    return value.decode() if isinstance(value, bytes) else value


def _type_hint(obj: h5py.Group | h5py.Dataset) -> DataType | None:
    hint = _decode_attr(obj.attrs.get(_OBJTYPE_ATTR, ""))
    return DataType(hint) if hint else None


def _open_h5(path: Path) -> h5py.File:
    # Default locking, like xarray's h5netcdf backend: HDF5 refuses to reopen a
    # file (which read() does for NetCDF groups) with different locking flags.
    # The store never rewrites a per-run file in place, it replaces it atomically.
    return h5py.File(path, "r")


def _decode_db_value(value: Any, summary_type: str | None) -> Any:
    if isinstance(value, bytes) and summary_type not in ("complex", "numpy", "trendline") \
            and value.startswith(_NPY):
        # Arrays written without a summary_type by older writers.
        return decode_summary(value, "numpy")
    return decode_summary(value, summary_type)


# -- the table -----------------------------------------------------------------
# table() reads the store's columnar copy of the table (runtable.store.tablecopy)
# plus the runs changed since, keeps the columns for the next call (which reads only
# what changed after) and turns them into a DataFrame. A folder without a copy (made
# by the reference, or whose copy was deleted) is read from SQLite once, and a copy
# kept in the user's own cache folder (cache_dir()).


@functools.cache
def _copy_on_write() -> bool:
    """Whether pandas copies data a frame shares before changing it (always from 3)."""
    import pandas as pd

    if int(pd.__version__.split(".")[0]) >= 3:
        return True
    return pd.get_option("mode.copy_on_write") is True


def _start_times(table: TableColumns, rows: np.ndarray, timezone: str) -> pd.Series:
    import pandas as pd

    return pd.to_datetime(pd.Series(table.start_time[rows], dtype=float),
                          unit="s", utc=True).dt.tz_convert(timezone)


def _frame_series(table: TableColumns, timezone: str) -> dict[str, pd.Series]:
    """The columns of the DataFrame of :meth:`Database.table`, in order, from the
    table's columns, times in ``timezone`` (the folder's setting: every view of the
    table shows the same times).

    Dtypes are those pandas infers for the cells as Python objects (the
    reference reader's rule): a column of numbers with failed cells (None)
    becomes float64; one with never-computed cells (pd.NA) stays object.
    The common cases are built from numpy arrays directly.
    """
    import pandas as pd

    rows = np.flatnonzero(~np.isnan(table.start_time))  # runs the DAQ has taken
    n_rows = len(rows)
    start = _start_times(table, rows, timezone)
    columns: dict[str, Any] = {
        "proposal": pd.Series(table.proposal[rows].tolist(), dtype=object).infer_objects(),
        "run": pd.Series(table.run[rows].tolist(), dtype=object).infer_objects(),
        "start_time": start,
    }
    unset = []
    # By name, as the reference's reader orders them.
    for name, column in sorted(table.columns.items()):
        if name in _FIXED:
            continue
        if not column.present().any():
            unset.append(name)  # declared but never computed: a column of None
            continue
        meta = table.variables.get(name)
        columns[name] = _frame_column(column.kind[rows], column.values[rows],
                                      meta.type if meta is not None else None)
    for name in unset:
        columns[name] = pd.Series([None] * n_rows, dtype=object)
    if "comment" not in columns:
        columns["comment"] = pd.Series([None] * n_rows, dtype=object)
    ordered = ["proposal", "run", "start_time", "comment"]
    ordered += [c for c in column_order(table.variables.values(), columns) if c in columns]
    ordered += [c for c in columns if c not in ordered]
    return {c: columns[c] for c in ordered}


def _frame_column(kind: np.ndarray, values: np.ndarray, user_type: str | None = None
                  ) -> pd.Series:
    import pandas as pd

    shown = kind == KIND_VALUE
    # Booleans (a typed column a person fills, or a variable that returned bools) and a
    # person's integers: their own nullable dtype, not SQLite's 0/1, nor object or
    # float64 for a column with gaps.
    boolean = values.dtype == np.bool_ or user_type == "boolean"
    if (boolean or user_type == "integer") and _NUMBER_OR_MISSING[kind].all() and (
            values.dtype.kind in "biu" or (values.dtype == object and all(
                isinstance(v, int) for v in values[shown].tolist()))):
        data = np.zeros(len(values), np.int64)
        data[shown] = values[shown]
        if boolean:
            return pd.Series(pd.arrays.BooleanArray(data != 0, ~shown))
        return pd.Series(pd.arrays.IntegerArray(data, ~shown))
    if values.dtype != object and _NUMBER_OR_NONE[kind].all():
        if shown.all():
            return pd.Series(values)
        # Numbers and None: pandas makes that float64 with NaN.
        floats = values.astype(np.float64)
        floats[~shown] = np.nan
        return pd.Series(floats)
    cells = values.astype(object)
    cells[kind == KIND_MISSING] = pd.NA
    cells[(kind == KIND_NONE) | (kind == KIND_ERROR)] = None
    for code, placeholder in PLACEHOLDERS.items():
        cells[kind == code] = placeholder
    return pd.Series(cells, dtype=object, copy=False).infer_objects()


class _HeldFrame:
    """The DataFrame of a held :class:`Database` and its block layout, so that a
    refresh that changed a few runs costs those rows, not a new frame of every column
    (0.35 s of CPU at 20,000 x 500, most of it pandas inferring the types of object
    columns and copying every column into its blocks).

    The frame is made of blocks as pandas makes them (one 2D array per numpy dtype,
    one array per column of another dtype) through ``create_dataframe_from_blocks``;
    a patch copies the blocks it changes (frames handed out keep the old ones) and
    gives every column what :func:`_frame_series` gives: a column whose type could
    change (an object column, one whose changed cells alone have another dtype) is
    made whole again, and anything else (rows added or removed, columns added,
    removed or reordered, a dtype changed) builds the frame anew.
    """

    def __init__(self, table: TableColumns, timezone: str) -> None:
        import pandas as pd

        self.timezone = timezone
        self.rows = np.flatnonzero(~np.isnan(table.start_time))
        series = _frame_series(table, timezone)
        self.names = list(series)
        self.dtypes = {name: s.dtype for name, s in series.items()}
        self.unset = {name for name in self.names
                      if name not in _FIXED and (table.columns.get(name) is None
                                                 or not table.columns[name].present().any())}
        if _create_from_blocks() is None:
            self.blocks: list[tuple[Any, np.ndarray]] | None = None
            self.frame = pd.DataFrame(series)
            return
        # (Columns of one numpy dtype in one 2D block, in column order: as pandas
        # consolidates them.)
        groups: dict[np.dtype, list[int]] = {}
        self.blocks = []
        self.where: dict[str, tuple[int, int]] = {}
        arrays = list(series.values())
        for j, (name, column) in enumerate(series.items()):
            if isinstance(column.dtype, np.dtype):
                groups.setdefault(column.dtype, []).append(j)
            else:
                self.where[name] = (len(self.blocks), -1)
                self.blocks.append((column.array, np.array([j], np.intp)))
        for dtype, positions in groups.items():
            values = np.empty((len(positions), len(self.rows)), dtype)
            for k, j in enumerate(positions):
                values[k] = arrays[j].to_numpy()
                self.where[self.names[j]] = (len(self.blocks), k)
            self.blocks.append((values, np.array(positions, np.intp)))
        self.frame = self._assemble()

    def _assemble(self) -> pd.DataFrame:
        import pandas as pd

        assert self.blocks is not None
        return _create_from_blocks()(self.blocks, pd.RangeIndex(len(self.rows)),
                                     pd.Index(self.names))

    def patch(self, table: TableColumns, changes: Any) -> bool:
        """Bring the frame up to *table*, which *changes* (a :class:`TableChanges`)
        made from the table the frame was made of; False if it must be made anew."""
        if self.blocks is None or changes.full or changes.variables_changed:
            return False
        if not np.array_equal(np.flatnonzero(~np.isnan(table.start_time)), self.rows):
            return False
        positions = np.flatnonzero(np.isin(self.rows, changes.rows))
        rows = self.rows[positions]
        blocks = list(self.blocks)
        copied: set[int] = set()

        def put(name: str, series: pd.Series, whole: bool) -> None:
            """Column *name* whole (*whole*) or its changed rows."""
            b, k = self.where[name]
            values, placement = blocks[b]
            if k < 0:
                if not whole:
                    values = values.copy()
                    values[positions] = series.array
                else:
                    values = series.array
                blocks[b] = (values, placement)
                return
            if b not in copied:
                values = values.copy()
                blocks[b] = (values, placement)
                copied.add(b)
            if not whole:
                values[k, positions] = series.to_numpy()
            else:
                values[k] = series.to_numpy()

        for name in changes.names:
            if name in _FIXED:
                continue
            column = table.columns.get(name)
            shown = column is not None and bool(column.present().any())
            if name not in self.where or shown == (name in self.unset):
                return False  # a column added, removed, set or emptied
            if column is None or not shown or not len(rows):
                continue
            meta = table.variables.get(name)
            user_type = meta.type if meta is not None else None
            dtype = self.dtypes[name]
            part = None
            if dtype != np.dtype(object):
                part = _frame_column(column.kind[rows], column.values[rows], user_type)
                if part.dtype != dtype:
                    part = None
            if part is not None:
                put(name, part, whole=False)
                continue
            # (Whether the type of an object column changes depends on every cell.)
            full = _frame_column(column.kind[self.rows], column.values[self.rows], user_type)
            if full.dtype != dtype:
                return False
            put(name, full, whole=True)
        if len(rows):
            put("start_time", _start_times(table, self.rows, self.timezone), whole=True)
        self.blocks = blocks
        self.frame = self._assemble()
        return True


@functools.cache
def _create_from_blocks() -> Any:
    """pandas' ``create_dataframe_from_blocks`` (pandas 3), or None."""
    try:
        from pandas.api.internals import create_dataframe_from_blocks
    except ImportError:
        return None
    return create_dataframe_from_blocks


class VariableData:
    """One variable of one run. Get it by indexing a :class:`Database` or
    :class:`RunVariables`, not by creating it::

        var = db[100, "xgm_flux"]
        var.read(), var.summary(), var.units
    """

    def __init__(self, name: str, title: str, proposal: int, run: int, h5_path: Path,
                 db: DatabaseFolder, db_only: bool) -> None:
        self._name = name
        self._title = title
        self._proposal = proposal
        self._run = run
        self._h5_path = h5_path
        self._db = db
        self._db_only = db_only

    @property
    def name(self) -> str:
        """The variable's name (its function name in the context file)."""
        return self._name

    @property
    def title(self) -> str:
        """The variable's title (its name when no title was given)."""
        return self._title

    @property
    def proposal(self) -> int:
        return self._proposal

    @property
    def run(self) -> int:
        return self._run

    @property
    def file(self) -> Path:
        """The run's HDF5 file (user-editable variables and comments are not in it)."""
        return self._h5_path

    @property
    def units(self) -> str | None:
        """Physical units recorded with the summary, if any."""
        return (self._db.get_attributes(self._proposal, self._run, self._name) or {}).get(
            "units")

    def type_hint(self) -> DataType | None:
        """The :class:`DataType` of the stored data, or None for plain arrays/scalars."""
        if self._db_only:
            return None
        with self._group() as group:
            return _type_hint(group) if group is not None else None

    @contextmanager
    def _group(self) -> Iterator[h5py.Group | None]:
        if not self._h5_path.is_file():
            yield None
            return
        with _open_h5(self._h5_path) as f:
            yield f.get(self._name)

    def _read_xarray(self, group: str, one_array: bool) -> Any:
        import xarray as xr

        load = xr.load_dataarray if one_array else xr.load_dataset
        obj = load(self._h5_path, group=group, engine="h5netcdf")
        # Our bookkeeping attributes are not the user's metadata.
        obj.attrs = {k: v for k, v in obj.attrs.items() if not k.startswith("_damnit_")}
        return obj

    @staticmethod
    def _read_parquet(dset: h5py.Dataset) -> Any:
        import pandas as pd

        return pd.read_parquet(BytesIO(dset[()].tobytes()), engine="pyarrow")

    def read(self, deserialize_plotly: bool = True) -> Any:
        """The variable's full data: an ndarray, scalar, string, xarray object,
        pandas object, or plotly figure (its JSON text with ``deserialize_plotly=False``).

        Variables that live only in the database (comments, user-editable
        variables) return their value, like :meth:`summary`.

            >>> db[100, "camera_mean"].read().shape   # doctest: +SKIP
            (256, 256)
        """
        if self._db_only:
            return self.summary()
        with self._group() as group:
            if group is None:
                # Only a summary was saved (e.g. Cell(None, summary_value=...)).
                return self.summary()
            if isinstance(group, h5py.Dataset):
                return group[()]
            hint = _type_hint(group)
            if hint is DataType.Dataset:
                return self._read_xarray(self._name, one_array=False)
            if hint is DataType.DataArray:
                return self._read_xarray(self._name, one_array=True)
            dset = group["data"]
            if hint is DataType.Series:
                return self._read_parquet(dset).iloc[:, 0]
            if hint is DataType.DataFrame:
                return self._read_parquet(dset)
            if hint is DataType.PlotlyFigure:
                raw = dset[()].tobytes()
                if not deserialize_plotly:
                    return raw.decode()
                import plotly.io as pio

                return pio.from_json(raw)
            if h5py.check_string_dtype(dset.dtype) is not None:
                if dset.ndim == 0:
                    value = dset[()]
                    return value.decode("utf-8", "surrogateescape") \
                        if isinstance(value, bytes) else str(value)
                strings = dset.asstr("utf-8", "surrogateescape")[()]
                # One string stored as a 1-element array (older writers) reads as
                # that string; the reference returns only the first element of
                # any string array, we return all of them.
                return strings.ravel()[0] if strings.size == 1 else strings
            return dset[()]

    def summary(self) -> Any:
        """The summary value shown in the table: a number, string, complex, ndarray
        (arrays and trendlines) or PNG ``bytes`` (thumbnails); None if there is none
        (``start_time`` has no summary row).

            >>> db[100, "xgm_flux"].summary()   # doctest: +SKIP
            1523.5
        """
        row = self._db.conn.execute(
            "SELECT value, summary_type, attributes FROM run_variables WHERE proposal = ? "
            "AND run = ? AND name = ? ORDER BY version DESC LIMIT 1",
            (self._proposal, self._run, self._name)).fetchone()
        if row is None:
            return None
        if isinstance(row[0], int) and isinstance(row[2], str) and \
                json_object(row[2]).get(VALUE_TYPE_ATTR) == "bool":
            return bool(row[0])  # (SQLite stores 0/1)
        return _decode_db_value(row[0], row[1])

    def history(self) -> pd.DataFrame:
        """Every version of this cell that was kept, oldest first, the current one last:
        what the value was before each reprocessing or edit, and where each came from.

        Columns: ``kind`` (``value``, ``error``, ``cleared``), ``value`` (the summary, as
        :meth:`summary` gives it), ``error_cls``/``error``, ``written_at`` and
        ``replaced_at`` (times in the folder's ``timezone``), ``current``, ``origin``
        (``context file``, ``typed``, ``external``, ``another program``...),
        ``context_sha256`` (the context file's text that computed it, kept in
        ``context_history/texts/``), ``code_hash`` (of this variable's code in that
        text), ``job`` (in words), ``job_id``, ``executor``, ``slurm_job_id``, ``host``,
        ``user``, ``runtable`` (version) and ``fragment``. See docs/history.md.

            >>> db[100, "xgm_flux"].history()[["written_at", "value", "job"]]  # doctest: +SKIP
        """
        import pandas as pd

        from .store.history import ROW_FIELDS, cell_history

        rows = [e.row() for e in cell_history(self._db, self._proposal, self._run,
                                              self._name)]
        df = pd.DataFrame(rows, columns=list(ROW_FIELDS))
        zone = self._db.get_setting("timezone")
        for column in ("written_at", "replaced_at"):
            df[column] = pd.to_datetime(df[column].astype("float64"), unit="s",
                                        utc=True).dt.tz_convert(zone)
        return df

    def preview_data(self, *, data_fallback: bool = True,
                     deserialize_plotly: bool = True) -> Any:
        """What the GUI plots for this cell: the explicit ``Cell(preview=...)`` if
        there is one, else (with *data_fallback*) the data itself when it is a 1D/2D
        numeric array or an RGB(A) image. Returns an ndarray, DataArray, pandas
        Series, plotly figure (or JSON text), or None.
        """
        if self._db_only or not self._h5_path.is_file():
            return None
        with _open_h5(self._h5_path) as f:
            xr_group: str | None = None
            dset: h5py.Dataset | None = None
            explicit = f.get(f".preview/{self._name}")
            if explicit is not None:
                hint = _type_hint(explicit)
                if isinstance(explicit, h5py.Group):
                    xr_group = explicit.name
                else:
                    dset = explicit
            elif data_fallback and self._name in f:
                group = f[self._name]
                hint = _type_hint(group)
                if hint in (DataType.Dataset, DataType.DataFrame):
                    return None
                if hint is DataType.DataArray:
                    xr_group = self._name
                elif isinstance(group, h5py.Group) and "data" in group:
                    dset = group["data"]
            else:
                return None

            if xr_group is not None:
                for obj in f[xr_group].values():
                    if isinstance(obj, h5py.Dataset) and (
                            obj.ndim > 3 or (obj.ndim == 3 and obj.shape[-1] not in (3, 4))):
                        return None  # too many dimensions: don't load it at all
                arr = self._read_xarray(xr_group, one_array=True)
                if arr.ndim and (np.issubdtype(arr.dtype, np.number) or arr.dtype == bool):
                    return arr
                return None
            if dset is None:
                return None
            if hint is DataType.Series:
                return self._read_parquet(dset).iloc[:, 0]
            numeric = np.issubdtype(dset.dtype, np.number) or dset.dtype == bool
            if numeric and (dset.ndim in (1, 2) or (dset.ndim == 3 and dset.shape[-1] in (3, 4))):
                value = dset[()]
                if hint is DataType.PlotlyFigure:
                    raw = value.tobytes()
                    if not deserialize_plotly:
                        return raw.decode()
                    import plotly.io as pio

                    return pio.from_json(raw)
                return value
        return None

    def preview(self) -> Any:
        """Plot :meth:`preview_data` (for notebooks). Raises ValueError if there is none."""
        obj = self.preview_data()
        if obj is None:
            raise ValueError(f"No preview available for {self._name!r} in run {self._run}")
        if type(obj).__module__.startswith("plotly"):
            obj.show()
            return obj
        if hasattr(obj, "plot") and not isinstance(obj, np.ndarray):
            return obj.plot()  # pandas / xarray choose the right plot
        import matplotlib.pyplot as plt
        from matplotlib.image import AxesImage
        from matplotlib.lines import Line2D

        arr = np.asarray(obj).squeeze()
        fig, ax = plt.subplots()
        res: AxesImage | list[Line2D]
        if arr.ndim == 3:
            res = ax.imshow(arr)
            ax.set_axis_off()
            return res
        if arr.ndim == 2:
            res = ax.imshow(arr)
            res.set_clim(np.nanquantile(arr, 0.01), np.nanquantile(arr, 0.99))
            fig.colorbar(res, ax=ax)
        elif arr.ndim == 1:
            res = ax.plot(arr, "o")
            ax.set_ylabel(self._title)
        else:
            plt.close(fig)
            return None
        ax.set_title(f"{self._title} (run {self._run})")
        return res

    def __repr__(self) -> str:
        return f"<VariableData for {self._name!r} in p{self._proposal}, r{self._run}>"


class VariableFailed(KeyError):
    """A variable has no data for a run because computing it failed or was skipped;
    ``error_cls`` and ``message`` are the stored error. A :class:`KeyError`, as for any
    variable without data, so ``name in db[run]`` and ``except KeyError`` still work.

        >>> db[6, "ratio"]   # doctest: +SKIP
        VariableFailed: 'ratio' failed in p1234, r6: ZeroDivisionError: division by zero
    """

    def __init__(self, name: str, proposal: int, run: int, error_cls: str,
                 message: str) -> None:
        super().__init__(name)
        self.name, self.proposal, self.run = name, proposal, run
        self.error_cls, self.message = error_cls, message

    def __str__(self) -> str:
        what = "was skipped" if self.error_cls == "Skip" else "failed"
        return (f"{self.name!r} {what} in p{self.proposal}, r{self.run}: "
                f"{self.error_cls}: {self.message}")


class RunVariables:
    """The variables of one run. Index it by name or title::

        rv = db[100]
        rv.keys()          # names with data for this run
        rv["xgm_flux"]     # or rv["XGM flux"]
    """

    def __init__(self, db: DatabaseFolder, proposal: int, run: int) -> None:
        self._db = db
        self._proposal = proposal
        self._run = run
        self._h5_path = db.run_file(proposal, run)

    @property
    def proposal(self) -> int:
        return self._proposal

    @property
    def run(self) -> int:
        return self._run

    @property
    def file(self) -> Path:
        """The run's HDF5 file."""
        return self._h5_path

    def _locations(self) -> dict[str, bool]:
        """name -> True if it lives only in the database (comments, user variables)."""
        found: dict[str, bool] = {}
        if self._h5_path.is_file():
            with _open_h5(self._h5_path) as f:
                found.update((k, False) for k in f if not k.startswith("."))
                if ".reduced" in f:
                    found.update((k, False) for k in f[".reduced"] if k not in found)
        db_only = [*self._db.user_variable_names(), "comment"]
        marks = ",".join("?" * len(db_only))
        for (name,) in self._db.conn.execute(
                f"SELECT DISTINCT name FROM run_variables WHERE proposal = ? AND run = ? "
                f"AND value IS NOT NULL AND name IN ({marks})",
                (self._proposal, self._run, *db_only)):
            found[name] = True
        return found

    def _titles(self, names: set[str] | dict[str, bool]) -> dict[str, str]:
        titles = {name: title or name for name, title in self._db.conn.execute(
            "SELECT name, title FROM variables") if name in names}
        for name in names:
            titles.setdefault(name, _SPECIAL_TITLES.get(name, name))
        return titles

    def keys(self) -> list[str]:
        """Sorted names of the variables that have data (or a value) for this run."""
        return sorted(self._locations())

    def titles(self) -> list[str]:
        """Sorted titles of the variables in :meth:`keys`."""
        return sorted(self._titles(self._locations()).values())

    def __getitem__(self, key: str) -> VariableData:
        locations = self._locations()
        titles = self._titles(locations)
        if key not in locations:
            by_title = {t: n for n, t in titles.items()}
            if key not in by_title:
                self._raise_stored_error(key)
                raise KeyError(f"No data for variable {key!r} in p{self._proposal}, "
                               f"r{self._run}; available: {sorted(locations)}")
            key = by_title[key]
        return VariableData(key, titles[key], self._proposal, self._run, self._h5_path,
                            self._db, locations[key])

    def _raise_stored_error(self, key: str) -> None:
        """:class:`VariableFailed` if *key* (a name or title) failed for this run."""
        name = next((n for n, t in self._db.conn.execute("SELECT name, title FROM variables")
                     if key in (n, t)), key)
        attributes = self._db.get_attributes(self._proposal, self._run, name) or {}
        if "error" in attributes:
            raise VariableFailed(name, self._proposal, self._run,
                                 str(attributes.get("error_cls") or "Error"),
                                 str(attributes["error"]))

    def __contains__(self, key: object) -> bool:
        try:
            self[key]  # type: ignore[index]
        except KeyError:
            return False
        return True

    def _ipython_key_completions_(self) -> list[str]:
        return self.keys()

    def __repr__(self) -> str:
        return (f"<RunVariables for p{self._proposal}, r{self._run} "
                f"with {len(self.keys())} variables>")


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
            from .sources import default_database_folder

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
        self._frame: _HeldFrame | None = None
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
        from .external import write_values

        write_values(self._path, run, {name: value}, proposal=proposal,
                     titles={name: title} if title else None)

    def runs(self) -> list[int]:
        """Run numbers taken by the DAQ (those with a start time), in order."""
        return [r for (r,) in self._db.conn.execute(
            "SELECT run FROM run_info WHERE start_time IS NOT NULL ORDER BY proposal, run")]

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
        row = self._db.conn.execute(
            "SELECT 1 FROM run_info WHERE proposal = ? AND run = ? AND start_time IS NOT NULL",
            (proposal, run)).fetchone()
        if row is None:
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
                from .store.where import rows_where

                assert self._columns is not None
                keep = rows_where(self._columns, where, self._db.get_setting("timezone"))
                # The frame has the rows with a start time (_frame_series), in order.
                df = df[keep[~np.isnan(self._columns.start_time)]].reset_index(drop=True)
        if with_titles:
            titles = dict(self._db.conn.execute("SELECT name, title FROM variables"))
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
            self._frame = _HeldFrame(self._columns, timezone)
        # A copy: the caller may change what it gets, the next call starts afresh
        # (with pandas' copy-on-write, always on from pandas 3, a shallow one is enough).
        return self._frame.frame.copy(deep=not _copy_on_write())

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
